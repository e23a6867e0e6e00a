//! Small assertions and request helpers shared by the HTTP test files.

use reqwest::{Method, RequestBuilder};
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::TestApp;

/// A fresh user id.
pub fn user() -> Uuid {
    Uuid::new_v4()
}

/// Assert the one JSON error shape: a string `detail`, the expected
/// `error_type` and an RFC 3339 `timestamp`.
#[track_caller]
pub fn assert_error(body: &Value, error_type: &str) {
    assert!(body.get("detail").is_some_and(Value::is_string), "detail missing or not a string: {body}");
    assert_eq!(body["error_type"], error_type, "error_type: {body}");
    let ts = body["timestamp"].as_str().unwrap_or_else(|| panic!("timestamp missing: {body}"));
    chrono::DateTime::parse_from_rfc3339(ts).unwrap_or_else(|e| panic!("timestamp {ts:?} is not RFC 3339: {e}"));
}

/// Assert a 422 whose `errors` array names `field`.
#[track_caller]
pub fn assert_field_error(body: &Value, field: &str) {
    assert_error(body, "validation_error");
    let errors = body["errors"].as_array().unwrap_or_else(|| panic!("errors array missing: {body}"));
    assert!(errors.iter().any(|e| e["field"] == field), "no error for field {field}: {body}");
}

/// Number of rows in the event log.
pub async fn event_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&app.pool).await.expect("count events")
}

/// Number of events of one type in the log.
pub async fn events_of_type(app: &TestApp, event_type: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = $1")
        .bind(event_type)
        .fetch_one(&app.pool)
        .await
        .expect("count events")
}

/// A request as an admin `user`.
pub fn admin_request(app: &TestApp, method: Method, path: &str, user: Uuid) -> RequestBuilder {
    app.client.request(method, format!("{}{path}", app.address)).bearer_auth(app.token(user, true))
}

/// The ids of the graphs `GET /api/graphs` lists for `user`.
pub async fn listed_graph_ids(app: &TestApp, user: Uuid) -> Vec<String> {
    let (status, body) = app.get("/api/graphs", user).await;
    assert_eq!(status, 200, "list graphs: {body}");
    body.as_array()
        .expect("graph list is an array")
        .iter()
        .map(|g| g["id"].as_str().expect("graph id").to_owned())
        .collect()
}

/// The library agents of one `GET /api/library/agents` page (query included in `path`).
pub async fn library_page(app: &TestApp, path: &str, user: Uuid) -> Value {
    let (status, body) = app.get(path, user).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// The graph ids of the agents in a library page.
pub fn agent_graph_ids(page: &Value) -> Vec<String> {
    page["agents"]
        .as_array()
        .expect("agents array")
        .iter()
        .map(|a| a["graph_id"].as_str().expect("graph_id").to_owned())
        .collect()
}

/// The id of a served graph.
pub fn id_of(graph: &Value) -> String {
    graph["id"].as_str().unwrap_or_else(|| panic!("no id in {graph}")).to_owned()
}
