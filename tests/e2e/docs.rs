//! The OpenAPI document, the docs page and the cross-cutting middleware.

use reqwest::Method;
use uuid::Uuid;

use crate::helpers::{send, spawn_app};

#[tokio::test]
async fn openapi_document_describes_the_routes_with_reference_operation_ids() {
    let app = spawn_app().await;
    let (status, spec) = send(app.anonymous(Method::GET, "/openapi.json")).await;
    assert_eq!(status, 200);
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"), "{}", spec["openapi"]);
    assert_eq!(spec["paths"]["/api/graphs"]["post"]["operationId"], "postV1Create new graph");
    assert_eq!(spec["paths"]["/api/library/agents"]["get"]["operationId"], "getV2List library agents");
    assert_eq!(
        spec["paths"]["/api/graphs/{graph_id}/versions/active"]["put"]["operationId"],
        "putV1Set active graph version"
    );
    let schemas = &spec["components"]["schemas"];
    for name in ["Graph", "Node", "Link", "CreateGraph", "GraphSettings", "LibraryAgentUpdateRequest", "ErrorBody"] {
        assert!(schemas.get(name).is_some(), "schema {name} missing");
    }
    assert_eq!(schemas["Graph"]["required"], serde_json::json!(["name", "description"]));
    let response = app.anonymous(Method::GET, "/docs").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("/openapi.json"));
}

#[tokio::test]
async fn responses_are_gzipped_on_request_and_carry_security_headers() {
    let app = spawn_app().await;
    let response =
        app.request(Method::GET, "/api/blocks", Uuid::new_v4()).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(headers["content-encoding"], "gzip");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
}

#[tokio::test]
async fn cors_preflight_is_answered() {
    let app = spawn_app().await;
    let response = app
        .anonymous(Method::OPTIONS, "/api/graphs")
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,content-type")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn wrong_method_is_405_in_the_error_shape() {
    let app = spawn_app().await;
    let (status, body) = send(app.request(Method::DELETE, "/api/blocks", Uuid::new_v4())).await;
    assert_eq!(status, 405);
    assert_eq!(body["error_type"], "method_not_allowed");
    assert!(body["timestamp"].is_string());
}
