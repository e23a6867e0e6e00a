//! The external API over HTTP: authentication by `X-API-Key`, per-route
//! scopes, suspension and revocation effective at the next request, and
//! each route doing what its internal twin does.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::api_keys::{create_key, id_and_secret};
use crate::helpers::{blocks, greeting_graph, send, spawn_app, TestApp};
use crate::support::{assert_error, id_of, user};

/// A request to the external API with `key` (none when `None`).
async fn external(app: &TestApp, method: Method, path: &str, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut request = app.anonymous(method, &format!("/external-api/v1{path}"));
    if let Some(key) = key {
        request = request.header("X-API-Key", key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    send(request).await
}

async fn get(app: &TestApp, path: &str, key: &str) -> (u16, Value) {
    external(app, Method::GET, path, Some(key), None).await
}

#[tokio::test]
async fn a_key_is_needed_and_each_route_needs_its_scope() {
    let app = spawn_app().await;
    let owner = user();
    let (status, _) = app.post("/api/auth/user", owner, &json!({})).await;
    assert_eq!(status, 200);
    let (id, secret) = id_and_secret(&create_key(&app, owner, &["IDENTITY"]).await);

    let (status, me) = get(&app, "/me", &secret).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["id"], owner.to_string());
    assert!(me["email"].as_str().is_some_and(|e| e.ends_with("@example.com")), "{me}");
    assert_eq!(me["timezone"], "not-set");
    assert!(me.get("name").is_some(), "{me}");

    for (key, why) in [(None, "no key"), (Some("agpt_unknown"), "unknown"), (Some("Bearer x"), "garbage")] {
        let (status, body) = external(&app, Method::GET, "/me", key, None).await;
        assert_eq!(status, 401, "{why}: {body}");
        assert_error(&body, "unauthorized");
    }
    let forged = format!("{}{}", &secret[..secret.len() - 1], if secret.ends_with('A') { 'B' } else { 'A' });
    let (status, _) = get(&app, "/me", &forged).await;
    assert_eq!(status, 401, "a key one character off is unknown");

    let (status, body) = get(&app, "/blocks", &secret).await;
    assert_eq!(status, 403, "{body}");
    assert_error(&body, "forbidden");
    let rescope = json!({"permissions": ["IDENTITY", "READ_BLOCK"]});
    let (status, _) = app.put(&format!("/api/api-keys/{id}/permissions"), owner, &rescope).await;
    assert_eq!(status, 200);
    let (status, catalog) = get(&app, "/blocks", &secret).await;
    assert_eq!(status, 200, "a new scope holds at the next request: {catalog}");
    let listed = catalog.as_array().expect("blocks");
    assert!(listed.iter().any(|b| b["id"] == blocks::FILL_TEMPLATE));
    assert!(listed.iter().all(|b| b.get("costs").is_none()), "no costs on the external catalog");

    let (_, info) = app.get(&format!("/api/api-keys/{id}"), owner).await;
    assert!(info["last_used_at"].is_string(), "use is recorded: {info}");
}

#[tokio::test]
async fn suspension_and_revocation_hold_at_the_very_next_request() {
    let app = spawn_app().await;
    let owner = user();
    let (suspended, suspended_secret) = id_and_secret(&create_key(&app, owner, &["IDENTITY"]).await);
    let (revoked, revoked_secret) = id_and_secret(&create_key(&app, owner, &["IDENTITY"]).await);
    for secret in [&suspended_secret, &revoked_secret] {
        assert_eq!(get(&app, "/me", secret).await.0, 200, "verified once, so remembered");
    }
    let (status, _) = app.post(&format!("/api/api-keys/{suspended}/suspend"), owner, &json!({})).await;
    assert_eq!(status, 200);
    let (status, body) = get(&app, "/me", &suspended_secret).await;
    assert_eq!(status, 401, "{body}");
    assert_error(&body, "unauthorized");
    let (status, _) = app.delete(&format!("/api/api-keys/{revoked}"), owner).await;
    assert_eq!(status, 200);
    let (status, body) = get(&app, "/me", &revoked_secret).await;
    assert_eq!(status, 401, "{body}");
    assert_error(&body, "unauthorized");
}

#[tokio::test]
async fn a_block_runs_with_execute_block() {
    let app = spawn_app().await;
    let owner = user();
    let (_, secret) = id_and_secret(&create_key(&app, owner, &["EXECUTE_BLOCK"]).await);
    let input = json!({"format": "{{a}}, {{b}}!", "values": {"a": "Hello", "b": "World"}});
    let path = format!("/blocks/{}/execute", blocks::FILL_TEMPLATE);
    let (status, out) = external(&app, Method::POST, &path, Some(&secret), Some(input)).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["output"], json!(["Hello, World!"]));
    let (status, body) = external(&app, Method::POST, &path, Some(&secret), Some(json!([1]))).await;
    assert_eq!(status, 422, "{body}");
    assert_error(&body, "validation_error");
    let (status, body) = external(&app, Method::POST, "/blocks/nope/execute", Some(&secret), Some(json!({}))).await;
    assert_eq!(status, 404, "{body}");
}

/// Poll a run's external results until it has completed.
async fn completed(app: &TestApp, path: &str, secret: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, results) = get(app, path, secret).await;
        assert_eq!(status, 200, "{results}");
        if results["status"] == "COMPLETED" {
            return results;
        }
        assert_ne!(results["status"], "FAILED", "{results}");
        assert!(results["output"].is_null(), "no output before it completes: {results}");
        assert!(tokio::time::Instant::now() < deadline, "run never completed: {results}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_graph_runs_with_execute_graph_and_its_results_are_read_with_read_graph() {
    let app = spawn_app().await;
    let owner = user();
    let graph_id = id_of(&app.create_graph(owner, greeting_graph()).await);
    let (_, runner) = id_and_secret(&create_key(&app, owner, &["EXECUTE_GRAPH", "READ_GRAPH"]).await);
    let (_, reader_only) = id_and_secret(&create_key(&app, owner, &["READ_GRAPH"]).await);

    let run = format!("/graphs/{graph_id}/execute/1");
    let body = json!({"node_input": {"name": "Ada"}});
    let (status, refused) = external(&app, Method::POST, &run, Some(&reader_only), Some(body.clone())).await;
    assert_eq!(status, 403, "{refused}");
    let (status, started) = external(&app, Method::POST, &run, Some(&runner), Some(body)).await;
    assert_eq!(status, 200, "{started}");
    let exec_id = started["id"].as_str().expect("run id").to_owned();

    let path = format!("/graphs/{graph_id}/executions/{exec_id}/results");
    let results = completed(&app, &path, &reader_only).await;
    assert_eq!(results["execution_id"], exec_id);
    assert_eq!(results["output"], json!([{"greeting": "Hello, Ada!"}]));
    let nodes = results["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 3, "{results}");
    assert!(nodes.iter().all(|n| n["node_id"].is_string() && n["input"].is_object() && n["output"].is_object()));

    let (status, _) = get(&app, &format!("/graphs/{graph_id}/executions/{}/results", Uuid::new_v4()), &runner).await;
    assert_eq!(status, 404);
    let stranger_key = id_and_secret(&create_key(&app, user(), &["READ_GRAPH", "EXECUTE_GRAPH"]).await).1;
    assert_eq!(get(&app, &path, &stranger_key).await.0, 404, "another user's run is unknown");
    let (status, _) = external(&app, Method::POST, &run, Some(&stranger_key), Some(json!({"node_input": {}}))).await;
    assert_eq!(status, 404, "another user's graph is unknown");
    let (status, body) =
        external(&app, Method::POST, &format!("/graphs/{graph_id}/execute/x"), Some(&runner), Some(json!({}))).await;
    assert_eq!(status, 422, "{body}");
}

#[tokio::test]
async fn every_external_route_is_documented_with_the_key_scheme() {
    let app = spawn_app().await;
    let (status, doc) = send(app.anonymous(Method::GET, "/openapi.json")).await;
    assert_eq!(status, 200);
    assert_eq!(
        doc["components"]["securitySchemes"]["APIKeyHeader"]["name"], "X-API-Key",
        "{}",
        doc["components"]["securitySchemes"]
    );
    for (path, method) in [
        ("/external-api/v1/me", "get"),
        ("/external-api/v1/blocks", "get"),
        ("/external-api/v1/blocks/{block_id}/execute", "post"),
        ("/external-api/v1/graphs/{graph_id}/execute/{graph_version}", "post"),
        ("/external-api/v1/graphs/{graph_id}/executions/{graph_exec_id}/results", "get"),
    ] {
        let op = &doc["paths"][path][method];
        assert_eq!(op["security"], json!([{"APIKeyHeader": []}]), "{path}");
        for status in ["200", "401", "403"] {
            assert!(op["responses"][status].is_object(), "{path} documents {status}");
        }
    }
}

#[tokio::test]
async fn a_key_revoked_through_one_instance_is_refused_by_another_at_once() {
    let first = spawn_app().await;
    let second = crate::helpers::spawn_app_on(first.url.clone(), |_| {}).await;
    let owner = user();
    let (id, secret) = id_and_secret(&create_key(&first, owner, &["IDENTITY"]).await);
    assert_eq!(get(&second, "/me", &secret).await.0, 200, "the second instance verified and remembers it");
    let (status, _) = first.delete(&format!("/api/api-keys/{id}"), owner).await;
    assert_eq!(status, 200);
    let (status, body) = get(&second, "/me", &secret).await;
    assert_eq!(status, 401, "{body}");
    assert_error(&body, "unauthorized");
}

#[tokio::test]
async fn changing_keys_with_one_idempotency_key_drops_no_change() {
    let app = spawn_app().await;
    let owner = user();
    let (id, secret) = id_and_secret(&create_key(&app, owner, &["IDENTITY"]).await);
    let keyed = |method: Method, path: String| app.request(method, &path, owner).header("Idempotency-Key", "same");
    let rescope = json!({"permissions": ["IDENTITY", "READ_BLOCK"]});
    let (status, _) = send(keyed(Method::PUT, format!("/api/api-keys/{id}/permissions")).json(&rescope)).await;
    assert_eq!(status, 200);
    let (status, suspended) = send(keyed(Method::POST, format!("/api/api-keys/{id}/suspend"))).await;
    assert_eq!((status, suspended["status"].as_str()), (200, Some("SUSPENDED")), "{suspended}");
    assert_eq!(get(&app, "/blocks", &secret).await.0, 401);
}
