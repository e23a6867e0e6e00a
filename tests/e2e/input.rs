//! Text the read models cannot store is refused at the edge: a NUL in a
//! body, a query or a token claim is a 422 (401 for the token), and nothing
//! reaches the log to stall a projector.

use reqwest::Method;
use serde_json::json;

use api::auth::{sign, Claims};

use crate::helpers::{claims, sample_graph, send, spawn_app};
use crate::support::{admin_request, assert_field_error, event_count, user};

#[tokio::test]
async fn nul_in_a_body_or_query_is_a_422_naming_the_field_and_appends_nothing() {
    let app = spawn_app().await;
    let owner = user();
    app.create_graph(owner, sample_graph("fine")).await;
    let before = event_count(&app).await;

    let mut graph = sample_graph("a\u{0}b");
    graph["description"] = json!("ok");
    let (status, body) = app.post("/api/graphs", owner, &json!({ "graph": graph })).await;
    assert_eq!(status, 422, "{body}");
    assert_field_error(&body, "graph.name");
    assert_eq!(body["errors"][0]["type"], "string_nul", "{body}");

    let (status, body) = app.post("/api/auth/user/email", owner, &json!("a\u{0}@b.co")).await;
    assert_eq!(status, 422, "{body}");
    assert_field_error(&body, "body");

    let (status, body) = app.get("/api/library/agents?search_term=a%00b", owner).await;
    assert_eq!(status, 422, "{body}");
    assert_field_error(&body, "search_term");
    assert_eq!(event_count(&app).await, before, "a refused command appends nothing");

    // The projectors never met the text: none of them reports an error.
    let (status, report) = send(admin_request(&app, Method::GET, "/api/admin/projections", user())).await;
    assert_eq!(status, 200, "{report}");
    for projection in report["projections"].as_array().expect("projections") {
        assert!(projection["last_error"].is_null(), "{projection}");
    }
    let (status, listed) = app.get("/api/graphs", owner).await;
    assert_eq!((status, listed.as_array().map(Vec::len)), (200, Some(1)), "{listed}");
}

#[tokio::test]
async fn an_escaped_backslash_before_u0000_is_ordinary_text() {
    let app = spawn_app().await;
    let owner = user();
    let (status, body) = app.post("/api/graphs", owner, &json!({ "graph": sample_graph("a\\u0000b") })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "a\\u0000b");
}

#[tokio::test]
async fn a_token_whose_email_holds_nul_is_refused_before_it_registers_anyone() {
    let app = spawn_app().await;
    let id = user();
    let claims = Claims { email: Some("a\u{0}@b.co".into()), ..claims(id, false) };
    let token = sign(&app.auth, &claims).expect("sign");
    let (status, body) = send(app.anonymous(Method::POST, "/api/auth/user").bearer_auth(token)).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(event_count(&app).await, 0);
}

#[tokio::test]
async fn listings_serve_pages_up_to_the_thousandth_and_refuse_deeper_ones() {
    let app = crate::helpers::spawn_app().await;
    let owner = crate::support::user();
    for path in ["/api/library/agents", "/api/store/agents", "/api/store/submissions", "/api/review/pending"] {
        let (status, _) = app.get(&format!("{path}?page=1000&page_size=100"), owner).await;
        assert_eq!(status, 200, "{path}");
        let (status, body) = app.get(&format!("{path}?page=1001"), owner).await;
        assert_eq!(status, 422, "{path}: {body}");
        crate::support::assert_field_error(&body, "page");
    }
}
