//! `/metrics`: Prometheus text for admins.

use reqwest::Method;
use uuid::Uuid;

use crate::helpers::{sample_graph, spawn_app};
use crate::support::{admin_request, assert_error};

#[tokio::test]
async fn admins_scrape_requests_appends_projector_lag_and_the_horizon() {
    let app = spawn_app().await;
    app.create_graph(Uuid::new_v4(), sample_graph("measured")).await;
    let response = admin_request(&app, Method::GET, "/metrics", Uuid::new_v4()).send().await.expect("send");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text().await.expect("text");
    for expected in [
        r#"http_requests_total{method="POST",route="/api/graphs",status="200"}"#,
        r#"http_request_duration_seconds_bucket{method="POST",route="/api/graphs",le="0.005"}"#,
        "eventlog_appends_total ",
        "eventlog_appended_events_total ",
        r#"projection_lag_events{projection="graphs"}"#,
        r#"projection_lag_seconds{projection="library_agents"}"#,
        r#"projection_failing{projection="users"}"#,
        r#"projection_state{projection="graphs",state="live"} 1"#,
        r#"projection_version{projection="graphs"} 1"#,
        "eventlog_held_back_events ",
        "eventlog_oldest_transaction_age_seconds ",
    ] {
        assert!(text.contains(expected), "no {expected} in:\n{text}");
    }
}

#[tokio::test]
async fn metrics_are_for_admins_only() {
    let app = spawn_app().await;
    let (status, body) = app.get("/metrics", Uuid::new_v4()).await;
    assert_eq!(status, 403, "{body}");
    assert_error(&body, "forbidden");
    let (status, _) = crate::helpers::send(app.anonymous(Method::GET, "/metrics")).await;
    assert_eq!(status, 401);
}
