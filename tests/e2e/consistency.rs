//! Read-your-writes: a committed command never answers an error, answers a
//! consistency token, and any query waits (boundedly) for that token.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::helpers::{sample_graph, send, server_url, spawn_app_on, spawn_app_with, TestApp};
use crate::support::{assert_error, assert_field_error, listed_graph_ids};

const TOKEN: &str = "x-consistency-token";
const PENDING: &str = "x-read-models-pending";

/// A write transaction left open in another database of the same server:
/// it holds back the log's horizon for every reader, as any idle-in-
/// transaction session or long migration would.
async fn open_blocker() -> PgConnection {
    let mut conn = PgConnection::connect(&format!("{}/postgres", server_url())).await.expect("connect");
    sqlx::query("BEGIN").execute(&mut conn).await.expect("begin");
    sqlx::query("SELECT pg_current_xact_id()").execute(&mut conn).await.expect("take an xid");
    conn
}

async fn release(mut blocker: PgConnection) {
    sqlx::query("COMMIT").execute(&mut blocker).await.expect("commit");
}

async fn short_timeout_app() -> TestApp {
    spawn_app_with(|c| c.consistency_timeout = Duration::from_millis(300)).await
}

/// Send as a careful client would: retry any 5xx (a proxy or SDK does).
async fn send_retrying(app: &TestApp, method: Method, path: &str, user: Uuid, body: &Value) -> reqwest::Response {
    for _ in 0..3 {
        let response = app.request(method.clone(), path, user).json(body).send().await.expect("send");
        if !response.status().is_server_error() {
            return response;
        }
    }
    panic!("{method} {path} kept answering 5xx");
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_command_answers_success_while_read_models_are_held_back() {
    let app = short_timeout_app().await;
    let user = Uuid::new_v4();
    let blocker = open_blocker().await;
    let graph = sample_graph("held back");
    let response = send_retrying(&app, Method::POST, "/api/graphs", user, &json!({ "graph": graph })).await;
    assert_eq!(response.status().as_u16(), 200);
    let pending = header(&response, PENDING).expect("the response says the read models are catching up");
    assert!(pending.contains("graphs") && pending.contains("library_agents"), "{pending}");
    let token = header(&response, TOKEN).expect("a consistency token");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["name"], "held back", "the body is the saved graph: {body}");
    assert_eq!(body["version"], 1);
    assert_eq!(body["is_active"], true);
    let graph_id = body["id"].as_str().expect("id").to_owned();

    // A query holding the token cannot be answered yet: 503, safe to retry.
    let held = app.request(Method::GET, "/api/graphs", user).header(TOKEN, &token).send().await.expect("send");
    assert_eq!(held.status().as_u16(), 503);
    assert_eq!(header(&held, "retry-after").as_deref(), Some("1"));
    assert_error(&held.json().await.expect("json"), "read_models_pending");

    release(blocker).await;
    // With the token, the first read after the release sees the write.
    let (status, listed) = send(app.request(Method::GET, "/api/graphs", user).header(TOKEN, &token)).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = listed.as_array().expect("list").iter().filter_map(|g| g["id"].as_str()).collect();
    assert_eq!(ids, [graph_id.as_str()], "exactly one graph, though the client retried on 5xx");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_whose_bodies_come_from_read_models_answer_from_the_log_when_those_lag() {
    let app = short_timeout_app().await;
    let user = Uuid::new_v4();
    let created = app.create_graph(user, sample_graph("favourite")).await;
    let (_, agent) = app.get(&format!("/api/library/agents/by-graph/{}", created["id"].as_str().unwrap()), user).await;
    let agent_id = agent["id"].as_str().expect("agent id").to_owned();

    let blocker = open_blocker().await;
    let path = format!("/api/library/agents/{agent_id}");
    let patched = send_retrying(&app, Method::PATCH, &path, user, &json!({"is_favorite": true})).await;
    assert_eq!(patched.status().as_u16(), 200);
    assert!(header(&patched, PENDING).is_some());
    let token = header(&patched, TOKEN).expect("token");
    let body: Value = patched.json().await.expect("json");
    assert_eq!(body["is_favorite"], true, "the body shows the change: {body}");
    assert_eq!(body["name"], "favourite", "with the graph's fields, from the log: {body}");
    release(blocker).await;
    let (_, fresh_view) = send(app.request(Method::GET, &path, user).header(TOKEN, token)).await;
    // The body built from the log is the one the read model serves.
    let strip = |mut v: Value| {
        v.as_object_mut().expect("object").remove("updated_at");
        v
    };
    assert_eq!(strip(body), strip(fresh_view));

    let blocker = open_blocker().await;
    let response = send_retrying(&app, Method::POST, "/api/auth/user", Uuid::new_v4(), &Value::Null).await;
    assert_eq!(response.status().as_u16(), 200, "registering answers the user it decided");
    let user_body: Value = response.json().await.expect("json");
    assert!(user_body["id"].is_string() && user_body["timezone"] == "not-set", "{user_body}");
    release(blocker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_from_one_instance_makes_another_read_the_write() {
    let first = spawn_app_with(|_| {}).await;
    let second = spawn_app_on(first.url.clone(), |_| {}).await;
    let user = Uuid::new_v4();
    for i in 0..10 {
        let response = first
            .request(Method::POST, "/api/graphs", user)
            .json(&json!({ "graph": sample_graph(&format!("g{i}")) }))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status().as_u16(), 200);
        let token = header(&response, TOKEN).expect("token");
        let id = response.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned();
        let (status, graph) =
            send(second.request(Method::GET, &format!("/api/graphs/{id}"), user).header(TOKEN, token)).await;
        assert_eq!(status, 200, "the other instance waited for the token: {graph}");
        assert_eq!(graph["name"], format!("g{i}"));
    }
    assert_eq!(listed_graph_ids(&second, user).await.len(), 10);
}

#[tokio::test]
async fn a_malformed_token_is_a_422_naming_the_header() {
    let app = spawn_app_with(|_| {}).await;
    for bad in ["12", "1.zz.1", "2.1.1"] {
        let (status, body) = send(app.request(Method::GET, "/api/graphs", Uuid::new_v4()).header(TOKEN, bad)).await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert_field_error(&body, "X-Consistency-Token");
    }
}

#[tokio::test]
async fn a_token_ahead_of_the_log_is_a_400_at_once_not_a_stall() {
    let app = spawn_app_with(|_| {}).await;
    let owner = Uuid::new_v4();
    let (_, graph) = send_json(&app, owner).await;
    let real = graph.headers().get(TOKEN).expect("a command's token").to_str().unwrap().to_owned();
    let forged = format!("{}.7fffffffffff", real.rsplit_once('.').unwrap().0);
    let started = std::time::Instant::now();
    let (status, body) = send(app.request(Method::GET, "/api/graphs", owner).header(TOKEN, &forged)).await;
    assert_eq!(status, 400, "{body}");
    assert!(started.elapsed() < Duration::from_secs(2), "answered after {:?}", started.elapsed());
    // A position the log has, in a transaction it has not yet had.
    let (_, position) = real.rsplit_once('.').unwrap();
    let forged = format!("1.7fffffffffff.{position}");
    let started = std::time::Instant::now();
    let (status, body) = send(app.request(Method::GET, "/api/graphs", owner).header(TOKEN, &forged)).await;
    assert_eq!(status, 400, "a far-future transaction: {body}");
    assert!(started.elapsed() < Duration::from_secs(2), "answered after {:?}", started.elapsed());
    // The token a command gave is still honoured.
    let (status, _) = send(app.request(Method::GET, "/api/graphs", owner).header(TOKEN, &real)).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_caller_waits_for_read_models_only_so_many_times_at_once_and_others_are_not_affected() {
    let app = spawn_app_with(|c| {
        c.consistency_timeout = Duration::from_millis(1500);
        c.waits_per_user = 2;
    })
    .await;
    let (greedy, other) = (Uuid::new_v4(), Uuid::new_v4());
    let blocker = open_blocker().await;
    let created = send_retrying(&app, Method::POST, "/api/graphs", greedy, &json!({"graph": sample_graph("w")})).await;
    let token = header(&created, TOKEN).expect("a token the read models have not reached");
    let held = |who: Uuid| {
        let request = app.request(Method::GET, "/api/graphs", who).header(TOKEN, &token);
        async move {
            let response = request.send().await.expect("send");
            let retry_after = header(&response, "retry-after");
            (response.status().as_u16(), retry_after, response.json::<Value>().await.expect("json"))
        }
    };
    let started = std::time::Instant::now();
    let (greedy_answers, other_answer) =
        tokio::join!(futures_util::future::join_all((0..5).map(|_| held(greedy))), held(other));
    release(blocker).await;
    let mut statuses: Vec<u16> = greedy_answers.iter().map(|(s, _, _)| *s).collect();
    statuses.sort();
    assert_eq!(statuses, [429, 429, 429, 503, 503], "two wait, the rest are refused: {greedy_answers:?}");
    for (_, retry_after, body) in greedy_answers.iter().filter(|(s, _, _)| *s == 429) {
        assert_error(body, "too_many_waits");
        assert_eq!(retry_after.as_deref(), Some("1"));
    }
    assert_eq!(other_answer.0, 503, "another caller still waits its turn: {other_answer:?}");
    assert!(started.elapsed() >= Duration::from_millis(1400), "the waits were real: {:?}", started.elapsed());
    let metrics = crate::support::admin_request(&app, Method::GET, "/metrics", Uuid::new_v4());
    let text = metrics.send().await.expect("send").text().await.expect("text");
    for name in ["api_waits_refused_total ", "api_waiting_requests "] {
        assert!(text.contains(name), "no {name} in /metrics");
    }
    // Places come back: with the read models caught up, the caller reads.
    let (status, _) = send(app.request(Method::GET, "/api/graphs", greedy).header(TOKEN, &token)).await;
    assert_eq!(status, 200);
}

async fn send_json(app: &TestApp, owner: Uuid) -> (u16, reqwest::Response) {
    let response = app
        .request(Method::POST, "/api/graphs", owner)
        .json(&json!({"graph": crate::helpers::echo_graph()}))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response)
}
