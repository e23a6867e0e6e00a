//! Auditors reading history: a stream's events with metadata (its creator
//! or an admin), and the global log filtered and paged by token (admins).

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{greeting_graph, send, spawn_app};
use crate::support::{admin_request, id_of, user};

#[tokio::test]
async fn streams_are_read_by_their_creator_or_an_admin_and_the_log_pages_by_token_with_filters() {
    let app = spawn_app().await;
    let (owner, stranger, admin) = (user(), user(), user());
    let graph_id = id_of(&app.create_graph(owner, greeting_graph()).await);
    let (status, _) = app.put(&format!("/api/graphs/{graph_id}"), owner, &greeting_graph()).await;
    assert_eq!(status, 200);
    let path = format!("/api/audit/streams/graph-{graph_id}");
    let (status, page) = app.get(&path, owner).await;
    assert_eq!(status, 200, "{page}");
    let types: Vec<&str> =
        page["events"].as_array().unwrap().iter().map(|e| e["event_type"].as_str().unwrap()).collect();
    assert_eq!(types, ["GraphCreated", "GraphVersionCreated"]);
    assert_eq!(page["events"][0]["metadata"]["user_id"], owner.to_string().as_str());
    assert_eq!(page["events"][1]["version"], 2);
    assert_eq!(page["next_version"], Value::Null);
    let (_, first) = app.get(&format!("{path}?limit=1"), owner).await;
    assert_eq!((first["events"].as_array().unwrap().len(), first["next_version"].as_i64()), (1, Some(1)));
    let (_, rest) = app.get(&format!("{path}?from_version=1"), owner).await;
    assert_eq!(rest["events"][0]["event_type"], "GraphVersionCreated");
    assert_eq!(app.get(&path, stranger).await.0, 404, "another user's stream is not found");
    assert_eq!(send(admin_request(&app, Method::GET, &path, admin)).await.0, 200);
    assert_eq!(app.get("/api/audit/streams/graph-00000000-0000-0000-0000-000000000000", owner).await.0, 404);

    let (status, state) = app.get(&format!("{path}/state?version=1"), owner).await;
    assert_eq!(status, 200, "{state}");
    assert_eq!((state["version"].as_i64(), state["state"]["versions"].clone()), (Some(1), serde_json::json!([1])));
    let (_, now) = app.get(&format!("{path}/state"), owner).await;
    assert_eq!(now["state"]["versions"], serde_json::json!([1, 2]), "{now}");
    let at = page["events"][0]["recorded_at"].as_str().unwrap();
    let (_, then) = app.get(&format!("{path}/state?at={}", at.replace('+', "%2B")), owner).await;
    assert_eq!(then["version"], 1, "as of the first event's time: {then}");
    assert_eq!(app.post("/api/auth/user", owner, &serde_json::json!({})).await.0, 200);
    let (_, user_state) = app.get(&format!("/api/audit/streams/user-{owner}/state"), owner).await;
    assert!(user_state["state"].is_object(), "the user's own stream: {user_state}");
    assert_eq!(app.get(&format!("{path}/state"), stranger).await.0, 404);

    assert_eq!(app.get("/api/audit/events", owner).await.0, 403, "the log is for admins");
    let (status, log) = send(admin_request(&app, Method::GET, "/api/audit/events?category=graph&limit=1", admin)).await;
    assert_eq!(status, 200, "{log}");
    assert_eq!(log["events"][0]["event_type"], "GraphCreated");
    let next = log["next"].as_str().expect("a full page names the next").to_owned();
    let (_, more) =
        send(admin_request(&app, Method::GET, &format!("/api/audit/events?category=graph&after={next}"), admin)).await;
    let more_types: Vec<&str> =
        more["events"].as_array().unwrap().iter().map(|e| e["event_type"].as_str().unwrap()).collect();
    assert_eq!(more_types, ["GraphVersionCreated"], "after the token, only later events");
    let by_user = format!("/api/audit/events?user_id={stranger}");
    let (_, none) = send(admin_request(&app, Method::GET, &by_user, admin)).await;
    assert_eq!(none["events"].as_array().map(Vec::len), Some(0));
    let (_, typed) =
        send(admin_request(&app, Method::GET, "/api/audit/events?event_type=LibraryAgentAdded", admin)).await;
    assert!(typed["events"].as_array().unwrap().iter().all(|e| e["event_type"] == "LibraryAgentAdded"));
    assert!(!typed["events"].as_array().unwrap().is_empty());
    let (status, _) = send(admin_request(&app, Method::GET, "/api/audit/events?after=nonsense", admin)).await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn a_submitter_reads_its_listings_history_without_the_reviewers_internal_notes() {
    let app = spawn_app().await;
    let (owner, admin) = (user(), user());
    let graph_id = id_of(&app.create_graph(owner, greeting_graph()).await);
    let submission = serde_json::json!({"agent_id": graph_id, "agent_version": 1, "slug": "noted", "name": "Noted",
        "sub_heading": "s", "description": "d", "categories": ["tools"], "image_urls": []});
    let (status, submitted) = app.post("/api/store/submissions", owner, &submission).await;
    assert_eq!(status, 200, "{submitted}");
    let version = submitted["store_listing_version_id"].as_str().unwrap();
    let review = serde_json::json!({"store_listing_version_id": version, "is_approved": false,
        "comments": "please add a picture", "internal_comments": "owner is a known spammer"});
    let path = format!("/api/store/admin/submissions/{version}/review");
    let (status, body) = send(admin_request(&app, Method::POST, &path, admin).json(&review)).await;
    assert_eq!(status, 200, "{body}");

    let stream = format!("/api/audit/streams/store_listing-{}", submitted["listing_id"].as_str().unwrap());
    let (status, own) = app.get(&stream, owner).await;
    assert_eq!(status, 200, "{own}");
    assert!(!own["events"].as_array().unwrap().is_empty());
    assert!(!own.to_string().contains("known spammer"), "{own}");
    let (status, state) = app.get(&format!("{stream}/state"), owner).await;
    assert_eq!(status, 200, "{state}");
    assert!(!state.to_string().contains("known spammer"), "{state}");
    // Nor who reviewed it: not in events, state or the submitter's list.
    let (_, mine) = app.get("/api/store/submissions", owner).await;
    assert_eq!(mine["submissions"][0]["status"], "REJECTED", "{mine}");
    for read in [&own, &state, &mine] {
        assert!(!read.to_string().contains(&admin.to_string()), "the reviewer's id leaked: {read}");
    }
    let (status, full) = send(admin_request(&app, Method::GET, &stream, admin)).await;
    assert_eq!(status, 200);
    assert!(full.to_string().contains("known spammer"), "admins see everything: {full}");
    assert!(full.to_string().contains(&admin.to_string()), "including who reviewed: {full}");
    // Pages are cut in SQL and a page past the end is empty, not an error.
    let (status, page) = app.get(&format!("{stream}?from_version=1000&limit=1"), owner).await;
    assert_eq!(status, 200);
    assert_eq!(page["events"], Value::Array(vec![]));
}
