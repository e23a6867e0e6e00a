//! Users over HTTP: get-or-create from the token, timezone, e-mail.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{claims, send, spawn_app};
use crate::support::{admin_request, assert_error, assert_field_error, events_of_type, user};

#[tokio::test]
async fn first_call_creates_the_user_from_the_token() {
    let app = spawn_app().await;
    let id = user();
    let (status, body) = app.post("/api/auth/user", id, &json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], id.to_string());
    assert_eq!(body["email"], claims(id, false).email.expect("email in token"));
    assert_eq!(body["timezone"], "not-set");
    chrono::DateTime::parse_from_rfc3339(body["created_at"].as_str().expect("created_at")).expect("RFC 3339");
}

#[tokio::test]
async fn get_or_create_is_idempotent() {
    let app = spawn_app().await;
    let id = user();
    let (_, first) = app.post("/api/auth/user", id, &json!({})).await;
    let (status, second) = app.post("/api/auth/user", id, &json!({})).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(first, second, "the same user, unchanged");
    assert_eq!(events_of_type(&app, "UserRegistered").await, 1);

    let other = user();
    let (_, theirs) = app.post("/api/auth/user", other, &json!({})).await;
    assert_eq!(theirs["id"], other.to_string());
    assert_eq!(events_of_type(&app, "UserRegistered").await, 2);
}

#[tokio::test]
async fn get_or_create_needs_a_token() {
    let app = spawn_app().await;
    let (status, body) = send(app.anonymous(Method::POST, "/api/auth/user")).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["detail"], "Authorization header is missing");
    assert_eq!(events_of_type(&app, "UserRegistered").await, 0);
}

#[tokio::test]
async fn timezone_starts_unset_and_can_be_chosen() {
    let app = spawn_app().await;
    let id = user();
    let (status, body) = app.get("/api/auth/user/timezone", id).await;
    assert_eq!((status, body), (200, json!({"timezone": "not-set"})));

    let (status, body) = app.post("/api/auth/user/timezone", id, &json!({"timezone": "Europe/Paris"})).await;
    assert_eq!((status, body), (200, json!({"timezone": "Europe/Paris"})));
    let (status, body) = app.get("/api/auth/user/timezone", id).await;
    assert_eq!((status, body), (200, json!({"timezone": "Europe/Paris"})));
    let (_, profile) = app.post("/api/auth/user", id, &json!({})).await;
    assert_eq!(profile["timezone"], "Europe/Paris");

    // Setting the same zone again records nothing new.
    let (status, _) = app.post("/api/auth/user/timezone", id, &json!({"timezone": "Europe/Paris"})).await;
    assert_eq!(status, 200);
    assert_eq!(events_of_type(&app, "UserTimezoneSet").await, 1);

    // Another user is unaffected.
    let (_, theirs) = app.get("/api/auth/user/timezone", user()).await;
    assert_eq!(theirs, json!({"timezone": "not-set"}));
}

#[tokio::test]
async fn unknown_timezone_is_422() {
    let app = spawn_app().await;
    let id = user();
    let (status, body) = app.post("/api/auth/user/timezone", id, &json!({"timezone": "Mars/Olympus"})).await;
    assert_eq!(status, 422, "{body}");
    assert_field_error(&body, "timezone");
    let (status, body) = app.post("/api/auth/user/timezone", id, &json!({})).await;
    assert_eq!(status, 422, "{body}");
    assert_field_error(&body, "timezone");
    let (_, body) = app.get("/api/auth/user/timezone", id).await;
    assert_eq!(body, json!({"timezone": "not-set"}));
    assert_eq!(events_of_type(&app, "UserTimezoneSet").await, 0);
}

#[tokio::test]
async fn email_can_be_changed() {
    let app = spawn_app().await;
    let id = user();
    let (status, body) = app.post("/api/auth/user/email", id, &json!("new@example.com")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"email": "new@example.com"}));
    let (_, profile) = app.post("/api/auth/user", id, &json!({})).await;
    assert_eq!(profile["email"], "new@example.com");
    assert_eq!(events_of_type(&app, "UserEmailChanged").await, 1);
}

#[tokio::test]
async fn invalid_email_is_422_and_changes_nothing() {
    let app = spawn_app().await;
    let id = user();
    let original = claims(id, false).email.expect("email in token");
    for bad in [json!("nope"), json!("a@b"), json!("two words@example.com"), json!("")] {
        let (status, body) = app.post("/api/auth/user/email", id, &bad).await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert_error(&body, "validation_error");
    }
    // Not a JSON string at all.
    let (status, body) = app.post("/api/auth/user/email", id, &json!({"email": "new@example.com"})).await;
    assert_eq!(status, 422, "{body}");
    assert_error(&body, "validation_error");

    let (_, profile) = app.post("/api/auth/user", id, &json!({})).await;
    assert_eq!(profile["email"], original);
    assert_eq!(events_of_type(&app, "UserEmailChanged").await, 0);
}

#[tokio::test]
async fn an_impersonated_user_is_not_given_the_admins_email() {
    let app = spawn_app().await;
    let (admin, target) = (user(), user());
    let request =
        admin_request(&app, Method::POST, "/api/auth/user", admin).header("X-Act-As-User-Id", target.to_string());
    let (status, body) = send(request).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], target.to_string());
    let admin_email = claims(admin, true).email.unwrap();
    assert_ne!(body["email"], admin_email.as_str(), "the token's e-mail belongs to the admin");
}

#[tokio::test]
async fn notification_preferences_list_every_type_and_keep_what_was_chosen() {
    let app = crate::helpers::spawn_app().await;
    let owner = crate::support::user();
    let (status, _) = app.get("/api/auth/user/preferences", owner).await;
    assert_eq!(status, 404, "not registered yet");
    app.post("/api/auth/user", owner, &serde_json::json!({})).await;
    let (status, defaults) = app.get("/api/auth/user/preferences", owner).await;
    assert_eq!(status, 200, "{defaults}");
    assert_eq!(defaults["preferences"].as_object().unwrap().len(), 12);
    assert!(defaults["preferences"].as_object().unwrap().values().all(|v| v == true));
    assert_eq!(defaults["daily_limit"], 10);
    let body =
        serde_json::json!({"email": "alerts@example.com", "preferences": {"AGENT_RUN": false}, "daily_limit": 3});
    let (status, saved) = app.post("/api/auth/user/preferences", owner, &body).await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["email"], "alerts@example.com");
    assert_eq!(saved["preferences"]["AGENT_RUN"], false);
    assert_eq!(saved["preferences"]["LOW_BALANCE"], true);
    assert_eq!(saved["daily_limit"], 3);
    let (_, read) = app.get("/api/auth/user/preferences", owner).await;
    assert_eq!(read["preferences"], saved["preferences"]);
    let before = crate::support::event_count(&app).await;
    for bad in [
        serde_json::json!({"email": "a@example.com", "preferences": {"NOPE": true}, "daily_limit": 1}),
        serde_json::json!({"email": "a@example.com", "preferences": {}, "daily_limit": 5000}),
        serde_json::json!({"email": "not an address", "preferences": {}, "daily_limit": 1}),
    ] {
        let (status, body) = app.post("/api/auth/user/preferences", owner, &bad).await;
        assert_eq!(status, 422, "{bad}: {body}");
    }
    assert_eq!(crate::support::event_count(&app).await, before, "a refused change appended");
}
