//! Authentication, impersonation, admin access, the error shape and the
//! cross-cutting middleware (aliases, health, fallbacks, request ids).

use api::auth::{Claims, AUDIENCE};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{claims, sample_graph, send, spawn_app, TestApp, TEST_KEY};
use crate::support::{admin_request, assert_error, id_of, listed_graph_ids, user};

/// Unpadded base64url, as JWT segments are encoded.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn sign_with(claims: &Claims, algorithm: Algorithm, key: &str) -> String {
    sign_value(&serde_json::to_value(claims).expect("claims"), algorithm, key)
}

fn sign_value(claims: &Value, algorithm: Algorithm, key: &str) -> String {
    encode(&Header::new(algorithm), claims, &EncodingKey::from_secret(key.as_bytes())).expect("sign")
}

/// GET /api/graphs with a raw bearer token.
async fn get_graphs_with_token(app: &TestApp, token: &str) -> (u16, Value) {
    send(app.anonymous(Method::GET, "/api/graphs").bearer_auth(token)).await
}

#[track_caller]
fn assert_unauthorized(status: u16, body: &Value) {
    assert_eq!(status, 401, "{body}");
    assert_error(body, "unauthorized");
}

#[test]
fn base64url_matches_known_vectors() {
    assert_eq!(base64url(b""), "");
    assert_eq!(base64url(b"f"), "Zg");
    assert_eq!(base64url(b"fo"), "Zm8");
    assert_eq!(base64url(b"foo"), "Zm9v");
    assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
}

#[tokio::test]
async fn missing_authorization_header_is_401() {
    let app = spawn_app().await;
    let (status, body) = send(app.anonymous(Method::GET, "/api/graphs")).await;
    assert_unauthorized(status, &body);
    assert_eq!(body["detail"], "Authorization header is missing");
}

#[tokio::test]
async fn non_bearer_authorization_header_is_401() {
    let app = spawn_app().await;
    let token = app.token(user(), false);
    let (status, body) =
        send(app.anonymous(Method::GET, "/api/graphs").header("Authorization", format!("Token {token}"))).await;
    assert_unauthorized(status, &body);
}

#[tokio::test]
async fn valid_token_is_accepted() {
    let app = spawn_app().await;
    let (status, body) = get_graphs_with_token(&app, &app.token(user(), false)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!([]));
}

#[tokio::test]
async fn token_signed_with_another_key_is_401() {
    let app = spawn_app().await;
    let token = sign_with(&claims(user(), false), Algorithm::HS256, "some-other-key-entirely");
    let (status, body) = get_graphs_with_token(&app, &token).await;
    assert_unauthorized(status, &body);
}

#[tokio::test]
async fn tampered_claims_are_401() {
    let app = spawn_app().await;
    let token = app.token(user(), false);
    let parts: Vec<&str> = token.split('.').collect();
    let forged = base64url(serde_json::to_string(&claims(user(), true)).expect("json").as_bytes());
    let token = format!("{}.{forged}.{}", parts[0], parts[2]);
    let (status, body) = get_graphs_with_token(&app, &token).await;
    assert_unauthorized(status, &body);
}

#[tokio::test]
async fn alg_none_token_is_401() {
    let app = spawn_app().await;
    let header = base64url(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = base64url(serde_json::to_string(&claims(user(), true)).expect("json").as_bytes());
    let (status, body) = get_graphs_with_token(&app, &format!("{header}.{payload}.")).await;
    assert_unauthorized(status, &body);
}

#[tokio::test]
async fn token_with_another_algorithm_than_the_pinned_one_is_401() {
    let app = spawn_app().await;
    // Same secret, so only the algorithm differs.
    let token = sign_with(&claims(user(), false), Algorithm::HS512, TEST_KEY);
    let (status, body) = get_graphs_with_token(&app, &token).await;
    assert_unauthorized(status, &body);
}

#[tokio::test]
async fn expired_token_is_401() {
    let app = spawn_app().await;
    let expired = Claims { exp: chrono::Utc::now().timestamp() - 60, ..claims(user(), false) };
    let (status, body) = get_graphs_with_token(&app, &sign_with(&expired, Algorithm::HS256, TEST_KEY)).await;
    assert_unauthorized(status, &body);
    assert!(body["detail"].as_str().unwrap_or("").to_lowercase().contains("expired"), "{body}");
}

#[tokio::test]
async fn wrong_audience_is_401() {
    let app = spawn_app().await;
    let other = Claims { aud: "anon".into(), ..claims(user(), false) };
    assert_ne!(other.aud, AUDIENCE);
    let (status, body) = get_graphs_with_token(&app, &sign_with(&other, Algorithm::HS256, TEST_KEY)).await;
    assert_unauthorized(status, &body);
}

#[tokio::test]
async fn token_without_exp_is_401() {
    let app = spawn_app().await;
    let no_exp = json!({"sub": user().to_string(), "aud": AUDIENCE, "role": "authenticated"});
    let (status, body) = get_graphs_with_token(&app, &sign_value(&no_exp, Algorithm::HS256, TEST_KEY)).await;
    assert_unauthorized(status, &body);
}

#[tokio::test]
async fn subject_that_is_not_a_user_id_is_401() {
    let app = spawn_app().await;
    let bad_sub = Claims { sub: "not-a-uuid".into(), ..claims(user(), false) };
    let (status, body) = get_graphs_with_token(&app, &sign_with(&bad_sub, Algorithm::HS256, TEST_KEY)).await;
    assert_unauthorized(status, &body);
}

#[tokio::test]
async fn non_admin_cannot_impersonate() {
    let app = spawn_app().await;
    let (caller, victim) = (user(), user());
    let request = app.request(Method::POST, "/api/graphs", caller).header("X-Act-As-User-Id", victim.to_string());
    let (status, body) = send(request.json(&json!({"graph": sample_graph("sneaky")}))).await;
    assert_eq!(status, 403, "{body}");
    assert_error(&body, "forbidden");
    assert!(listed_graph_ids(&app, victim).await.is_empty(), "nothing may be created for the victim");
    assert!(listed_graph_ids(&app, caller).await.is_empty(), "nor for the caller");
}

#[tokio::test]
async fn admin_acts_as_the_named_user() {
    let app = spawn_app().await;
    let (admin, target) = (user(), user());
    let request =
        admin_request(&app, Method::POST, "/api/graphs", admin).header("X-Act-As-User-Id", target.to_string());
    let (status, graph) = send(request.json(&json!({"graph": sample_graph("on behalf")}))).await;
    assert_eq!(status, 200, "{graph}");
    assert_eq!(graph["user_id"], target.to_string(), "the graph belongs to the impersonated user");
    assert_eq!(listed_graph_ids(&app, target).await, vec![id_of(&graph)]);
    assert!(listed_graph_ids(&app, admin).await.is_empty(), "the admin's own list is untouched");

    // Reads as the target work the same way.
    let request = admin_request(&app, Method::GET, "/api/graphs", admin).header("X-Act-As-User-Id", target.to_string());
    let (status, list) = send(request).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
}

#[tokio::test]
async fn admin_impersonation_with_a_malformed_user_id_is_rejected() {
    let app = spawn_app().await;
    let request = admin_request(&app, Method::GET, "/api/graphs", user()).header("X-Act-As-User-Id", "nobody");
    let (status, body) = send(request).await;
    assert_eq!(status, 400, "{body}");
    assert_error(&body, "bad_request");
}

#[tokio::test]
async fn projection_status_is_admin_only() {
    let app = spawn_app().await;
    let (status, body) = app.get("/api/admin/projections", user()).await;
    assert_eq!(status, 403, "{body}");
    assert_error(&body, "forbidden");

    let (status, body) = send(app.anonymous(Method::GET, "/api/admin/projections")).await;
    assert_eq!(status, 401, "{body}");
}

#[tokio::test]
async fn admin_sees_every_projection_with_its_lag() {
    let app = spawn_app().await;
    let owner = user();
    app.create_graph(owner, sample_graph("g")).await;
    let (status, body) = send(admin_request(&app, Method::GET, "/api/admin/projections", user())).await;
    assert_eq!(status, 200, "{body}");
    let list = body["projections"].as_array().expect("a list of projections");
    assert!(body["head"].as_i64() > Some(0), "the log has events: {body}");
    assert!(body["head_token"].is_string(), "{body}");
    for field in ["held_back_events", "held_back_ms"] {
        assert!(body["horizon"][field].as_i64() >= Some(0), "horizon.{field}: {body}");
    }
    for name in ["graphs", "library_agents", "users"] {
        let entry =
            list.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("no projection named {name}: {body}"));
        for field in ["checkpoint", "checkpoint_tx", "lag_events", "lag_ms"] {
            assert!(entry[field].is_i64(), "{name}.{field} is not an integer: {entry}");
        }
        assert!(entry["checkpoint_token"].is_string(), "{entry}");
        assert!(entry["lag_events"].as_i64() >= Some(0), "{entry}");
    }
    // The create waited for these two, so they have caught up with it.
    for name in ["graphs", "library_agents"] {
        let entry = list.iter().find(|p| p["name"] == name).expect("entry");
        assert!(entry["checkpoint"].as_i64() > Some(0), "{entry}");
    }
}

#[tokio::test]
async fn api_v1_alias_serves_the_same_routes() {
    let app = spawn_app().await;
    let owner = user();
    let graph = app.create_graph(owner, sample_graph("aliased")).await;
    let (status, body) = app.get("/api/v1/graphs", owner).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, app.get("/api/graphs", owner).await.1);
    let (status, body) = app.get(&format!("/api/v1/graphs/{}", id_of(&graph)), owner).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "aliased");
}

#[tokio::test]
async fn health_needs_no_auth() {
    let app = spawn_app().await;
    let (status, body) = send(app.anonymous(Method::GET, "/health")).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"status": "healthy"}));
}

#[tokio::test]
async fn unknown_route_is_a_json_404() {
    let app = spawn_app().await;
    for path in ["/no/such/route", "/api/no-such-route"] {
        let (status, body) = send(app.anonymous(Method::GET, path)).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_error(&body, "not_found");
    }
    let (status, body) = app.get("/api/no-such-route", user()).await;
    assert_eq!(status, 404, "{body}");
    assert_error(&body, "not_found");
}

#[tokio::test]
async fn wrong_method_is_a_json_405() {
    let app = spawn_app().await;
    let (status, body) = app.delete("/api/blocks", user()).await;
    assert_eq!(status, 405, "{body}");
    assert_error(&body, "method_not_allowed");
}

#[tokio::test]
async fn request_id_is_echoed_when_sent() {
    let app = spawn_app().await;
    let response =
        app.anonymous(Method::GET, "/health").header("X-Request-Id", "my-request-42").send().await.expect("send");
    assert_eq!(response.headers().get("x-request-id").and_then(|v| v.to_str().ok()), Some("my-request-42"));

    // Also on errors.
    let response =
        app.anonymous(Method::GET, "/api/graphs").header("X-Request-Id", "failing-request").send().await.expect("send");
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(response.headers().get("x-request-id").and_then(|v| v.to_str().ok()), Some("failing-request"));
}

#[tokio::test]
async fn request_id_is_generated_when_absent() {
    let app = spawn_app().await;
    let mut seen = Vec::new();
    for _ in 0..2 {
        let response = app.anonymous(Method::GET, "/health").send().await.expect("send");
        let id = response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let id = id.expect("a generated X-Request-Id");
        assert!(!id.is_empty());
        seen.push(id);
    }
    assert_ne!(seen[0], seen[1], "each request gets its own id");
}

#[tokio::test]
async fn a_verify_key_that_is_not_a_key_of_the_algorithm_stops_startup() {
    let mut config = api::Config::local("postgres://postgres@127.0.0.1:1/unused", TEST_KEY);
    config.auth.algorithm = Algorithm::RS256;
    let error = api::App::build(config).await.err().expect("startup must fail");
    assert!(matches!(error, api::app::StartupError::Key(_)), "{error}");
    assert!(error.to_string().starts_with("JWT_VERIFY_KEY is not a valid key"), "{error}");
}
