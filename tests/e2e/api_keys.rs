//! API keys over HTTP: the secret shown once and never stored, listing and
//! reading without it, suspending, revoking, re-scoping, isolation between
//! users, and bad input refused with nothing appended.

use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{send, spawn_app, TestApp};
use crate::support::{assert_error, assert_field_error, event_count, user};

/// Create a key for `owner` with `permissions`; the answer's body.
pub async fn create_key(app: &TestApp, owner: Uuid, permissions: &[&str]) -> Value {
    let body = json!({"name": "ci", "permissions": permissions, "description": "for the pipeline"});
    let (status, created) = app.post("/api/api-keys", owner, &body).await;
    assert_eq!(status, 200, "create key: {created}");
    created
}

/// The id and secret of a created key.
pub fn id_and_secret(created: &Value) -> (String, String) {
    let id = created["api_key"]["id"].as_str().expect("key id").to_owned();
    (id, created["plain_text_key"].as_str().expect("plain_text_key").to_owned())
}

#[tokio::test]
async fn a_key_shows_its_secret_once_and_goes_through_suspension_rescoping_and_revocation() {
    let app = spawn_app().await;
    let owner = user();
    let created = create_key(&app, owner, &["READ_BLOCK", "IDENTITY", "READ_BLOCK"]).await;
    let (id, secret) = id_and_secret(&created);
    assert!(secret.starts_with("agpt_") && secret.len() >= 40, "{secret}");
    let info = &created["api_key"];
    assert_eq!(info["status"], "ACTIVE");
    assert_eq!(info["scopes"], json!(["IDENTITY", "READ_BLOCK"]));
    assert_eq!(info["head"], secret[..8]);
    assert_eq!(info["tail"], secret[secret.len() - 8..]);
    assert_eq!(info["type"], "api_key");
    assert_eq!(info["user_id"], owner.to_string());
    assert_eq!(info["description"], "for the pipeline");
    assert_eq!(info["revoked_at"], Value::Null);

    let (status, listed) = app.get("/api/api-keys", owner).await;
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["id"], id);
    let (status, read) = app.get(&format!("/api/api-keys/{id}"), owner).await;
    assert_eq!(status, 200);
    assert_eq!(read, listed[0]);
    for shown in [&listed, &read] {
        assert!(shown.get("plain_text_key").is_none() && !shown.to_string().contains(&secret[8..]), "{shown}");
    }
    // Neither the log nor any table holds the secret: only an argon2 hash.
    let leaked: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE data::text LIKE '%' || $1 || '%'")
        .bind(&secret[5..])
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(leaked, 0);
    let hash: String =
        sqlx::query_scalar("SELECT data->'secret'->>'hash' FROM events WHERE event_type = 'ApiKeyCreated'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");

    let (status, suspended) = app.post(&format!("/api/api-keys/{id}/suspend"), owner, &json!({})).await;
    assert_eq!((status, suspended["status"].as_str()), (200, Some("SUSPENDED")), "{suspended}");
    let path = format!("/api/api-keys/{id}/permissions");
    let (status, rescoped) = app.put(&path, owner, &json!({"permissions": ["EXECUTE_GRAPH", "READ_GRAPH"]})).await;
    assert_eq!(status, 200, "{rescoped}");
    assert_eq!(rescoped["scopes"], json!(["EXECUTE_GRAPH", "READ_GRAPH"]));
    let (status, revoked) = app.delete(&format!("/api/api-keys/{id}"), owner).await;
    assert_eq!((status, revoked["status"].as_str()), (200, Some("REVOKED")), "{revoked}");
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    assert_eq!(revoked["scopes"], json!(["EXECUTE_GRAPH", "READ_GRAPH"]));

    // Revoking deletes: the key is gone from its owner's view and changes
    // no more, with nothing appended.
    let before = event_count(&app).await;
    let (status, listed) = app.get("/api/api-keys", owner).await;
    assert_eq!((status, listed), (200, json!([])));
    for (status, body) in [
        app.get(&format!("/api/api-keys/{id}"), owner).await,
        app.delete(&format!("/api/api-keys/{id}"), owner).await,
        app.post(&format!("/api/api-keys/{id}/suspend"), owner, &json!({})).await,
        app.put(&path, owner, &json!({"permissions": []})).await,
    ] {
        assert_eq!(status, 404, "{body}");
        assert_error(&body, "not_found");
    }
    assert_eq!(event_count(&app).await, before);
}

#[tokio::test]
async fn another_users_key_is_not_found_and_stays_untouched() {
    let app = spawn_app().await;
    let (owner, stranger) = (user(), user());
    let (id, _) = id_and_secret(&create_key(&app, owner, &["IDENTITY"]).await);
    let before = event_count(&app).await;
    let key = format!("/api/api-keys/{id}");
    for (status, body) in [
        app.get(&key, stranger).await,
        app.delete(&key, stranger).await,
        app.post(&format!("{key}/suspend"), stranger, &json!({})).await,
        app.put(&format!("{key}/permissions"), stranger, &json!({"permissions": ["READ_GRAPH"]})).await,
    ] {
        assert_eq!(status, 404, "{body}");
        assert_error(&body, "not_found");
    }
    let (_, listed) = app.get("/api/api-keys", stranger).await;
    assert_eq!(listed, json!([]));
    assert_eq!(event_count(&app).await, before);
    let (_, read) = app.get(&key, owner).await;
    assert_eq!(read["status"], "ACTIVE");
}

#[tokio::test]
async fn bad_input_is_refused_in_the_error_shape_and_appends_nothing() {
    let app = spawn_app().await;
    let owner = user();
    let before = event_count(&app).await;
    let cases = [
        (json!({"name": "x"}), "permissions"),
        (json!({"permissions": ["IDENTITY"]}), "name"),
        (json!({"name": "x", "permissions": ["ROOT"]}), "permissions[0]"),
        (json!({"name": " \u{3000}\t", "permissions": []}), "name"),
        (json!({"name": "x".repeat(300), "permissions": []}), "name"),
        (json!({"name": "x", "permissions": [], "description": "d".repeat(2001)}), "description"),
    ];
    for (body, field) in cases {
        let (status, answer) = app.post("/api/api-keys", owner, &body).await;
        assert_eq!(status, 422, "{body} → {answer}");
        assert_field_error(&answer, field);
    }
    let (status, answer) = send(app.request(Method::POST, "/api/api-keys", owner).body("{not json")).await;
    assert_eq!(status, 422, "{answer}");
    let (status, answer) = app.put("/api/api-keys/nope/permissions", owner, &json!({"permissions": []})).await;
    assert_eq!(status, 404, "{answer}");
    assert_error(&answer, "not_found");
    let (status, answer) = send(app.anonymous(Method::GET, "/api/api-keys")).await;
    assert_eq!(status, 401, "{answer}");
    assert_eq!(event_count(&app).await, before);
}

#[tokio::test]
async fn a_create_retried_with_its_idempotency_key_makes_no_second_key() {
    let app = spawn_app().await;
    let owner = user();
    let body = json!({"name": "once", "permissions": ["IDENTITY"]});
    let create = || app.request(Method::POST, "/api/api-keys", owner).header("Idempotency-Key", "k-1").json(&body);
    let (status, first) = send(create()).await;
    assert_eq!(status, 200, "{first}");
    let (status, again) = send(create()).await;
    assert_eq!(status, 409, "{again}");
    assert_error(&again, "conflict");
    assert!(!again.to_string().contains("agpt_"), "{again}");
    let (_, listed) = app.get("/api/api-keys", owner).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM idempotency_keys").fetch_one(&app.pool).await.unwrap_or(0);
    assert_eq!(kept, 0, "no idempotency record keeps the secret");
}

#[tokio::test]
async fn a_created_keys_secret_is_answered_even_when_a_read_model_cannot_be_read() {
    let app = spawn_app().await;
    let owner = user();
    sqlx::query("ALTER TABLE api_key_usage RENAME TO api_key_usage_away").execute(&app.pool).await.unwrap();
    let events = event_count(&app).await;
    let created = create_key(&app, owner, &["READ_BLOCK"]).await;
    let (id, secret) = id_and_secret(&created);
    assert!(secret.starts_with("agpt_"), "{created}");
    let info = &created["api_key"];
    assert_eq!((info["head"].as_str(), info["tail"].as_str()), (Some(&secret[..8]), Some(&secret[secret.len() - 8..])));
    assert_eq!((info["status"].as_str(), info["last_used_at"].clone()), (Some("ACTIVE"), Value::Null));
    assert_eq!(event_count(&app).await, events + 2, "the key and its quota place");
    sqlx::query("ALTER TABLE api_key_usage_away RENAME TO api_key_usage").execute(&app.pool).await.unwrap();
    let (status, listed) = app.get("/api/api-keys", owner).await;
    assert_eq!((status, listed[0]["id"].as_str()), (200, Some(id.as_str())), "{listed}");
}

#[tokio::test]
async fn a_key_with_an_expiry_works_until_then_and_is_refused_after() {
    let app = spawn_app().await;
    let owner = user();
    let expires_at = chrono::Utc::now() + chrono::TimeDelta::seconds(2);
    let body = json!({"name": "short", "permissions": ["IDENTITY"], "expires_at": expires_at});
    let (status, created) = app.post("/api/api-keys", owner, &body).await;
    assert_eq!(status, 200, "{created}");
    assert!(created["api_key"]["expires_at"].is_string(), "{created}");
    let (_, secret) = id_and_secret(&created);
    let me = || app.anonymous(Method::GET, "/external-api/v1/me").header("X-API-Key", secret.clone());
    let (status, body) = send(me()).await;
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let (status, body) = send(me()).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["detail"], "API key has expired");

    let before = event_count(&app).await;
    let past = json!({"name": "old", "permissions": ["IDENTITY"], "expires_at": chrono::Utc::now()});
    let (status, body) = app.post("/api/api-keys", owner, &past).await;
    assert_eq!(status, 400, "{body}");
    assert_error(&body, "bad_request");
    assert_eq!(event_count(&app).await, before);
}
