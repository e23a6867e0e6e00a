//! `Idempotency-Key`: bound to the user, the route and the request body.

use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{sample_graph, send, spawn_app, TestApp};
use crate::support::{assert_error, event_count, id_of, listed_graph_ids, user};

async fn post_graph(app: &TestApp, who: Uuid, key: &str, name: &str) -> (u16, Value) {
    let request = app.request(Method::POST, "/api/graphs", who).header("Idempotency-Key", key);
    send(request.json(&json!({ "graph": sample_graph(name) }))).await
}

#[tokio::test]
async fn the_same_key_and_body_answer_the_original_result_even_when_a_new_decision_would_differ() {
    let app = spawn_app().await;
    let owner = user();
    let (status, first) = post_graph(&app, owner, "k1", "original").await;
    assert_eq!(status, 200, "{first}");
    let id = id_of(&first);
    // Deleting the graph: deciding the create anew would now be a new graph.
    let (status, _) = app.delete(&format!("/api/graphs/{id}"), owner).await;
    assert_eq!(status, 200);
    let events = event_count(&app).await;
    let response = app
        .request(Method::POST, "/api/graphs", owner)
        .header("Idempotency-Key", "k1")
        .json(&json!({ "graph": sample_graph("original") }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["idempotent-replayed"], "true");
    assert!(response.headers().get("x-consistency-token").is_some(), "the original token comes along");
    let replayed: Value = response.json().await.expect("json");
    assert_eq!(replayed, first, "the original answer, byte for byte");
    assert_eq!(event_count(&app).await, events, "nothing appended");
    assert!(listed_graph_ids(&app, owner).await.is_empty(), "and no graph made again");

    // An error is an answer too: the same key and body get it again.
    let bad = json!({ "graph": { "name": "broken", "nodes": [{"id": "x", "block_id": "nope"}], "links": [] } });
    let request = || app.request(Method::POST, "/api/graphs", owner).header("Idempotency-Key", "k-bad").json(&bad);
    let (first_status, first_error) = send(request()).await;
    assert_eq!(first_status, 422, "{first_error}");
    let (again_status, again_error) = send(request()).await;
    assert_eq!((again_status, &again_error), (422, &first_error), "the same error, timestamp and all");
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused_and_appends_nothing() {
    let app = spawn_app().await;
    let owner = user();
    let (status, _) = post_graph(&app, owner, "k2", "first").await;
    assert_eq!(status, 200);
    let events = event_count(&app).await;
    let (status, body) = post_graph(&app, owner, "k2", "second").await;
    assert_eq!(status, 422, "{body}");
    assert_error(&body, "idempotency_key_reused");
    assert_eq!(event_count(&app).await, events);

    // A user's key: another user's is their own, but the same user's key
    // on another route is refused like another body, and does nothing.
    let (status, _) = post_graph(&app, user(), "k2", "second").await;
    assert_eq!(status, 200, "another user's key");
    let (status, body) = send(app.request(Method::POST, "/api/auth/user", owner).header("Idempotency-Key", "k2")).await;
    assert_eq!(status, 422, "another route: {body}");
    assert_error(&body, "idempotency_key_reused");
    assert_eq!(event_count(&app).await, events + 3, "only the other user's graph (graph, library, quota)");
}

#[tokio::test]
async fn a_key_reused_for_another_graphs_run_is_refused_and_never_lands_on_the_first_run() {
    let app = crate::helpers::spawn_app_with(|c| c.executor_workers = 0).await;
    let owner = user();
    let (a, b) =
        (id_of(&post_graph(&app, owner, "ga", "a").await.1), id_of(&post_graph(&app, owner, "gb", "b").await.1));
    let execute = |graph: String| {
        let path = format!("/api/graphs/{graph}/execute/1");
        send(app.request(Method::POST, &path, owner).header("Idempotency-Key", "run-key").json(&json!({"inputs": {}})))
    };
    let (status, first) = execute(a.clone()).await;
    assert_eq!(status, 200, "{first}");
    let events = event_count(&app).await;
    let (status, body) = execute(b.clone()).await;
    assert_eq!(status, 422, "another path id: {body}");
    assert_error(&body, "idempotency_key_reused");
    assert_eq!(event_count(&app).await, events, "a refused reuse appends nothing");
    // Even once the key's record is gone (kept records expire), the ids a
    // key derives belong to its route: the other graph gets a run of its own.
    sqlx::query("DELETE FROM idempotency_keys WHERE key = 'run-key'").execute(&app.pool).await.unwrap();
    let (status, second) = execute(b.clone()).await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(second["id"], first["id"], "not the first graph's run: {second}");
    assert_eq!(second["graph_id"], b.as_str(), "{second}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_wait_for_the_first_and_get_its_answer() {
    let app = spawn_app().await;
    let owner = user();
    let answers = futures_util::future::join_all((0..8).map(|_| post_graph(&app, owner, "k3", "raced"))).await;
    let (status, first) = &answers[0];
    for (s, body) in &answers {
        assert!(*s == 200 || *s == 409, "{s}: {body}");
        if *s == 200 {
            assert_eq!(body, first, "every success is the same answer");
        } else {
            assert_error(body, "idempotency_key_in_use");
        }
    }
    assert_eq!(*status, 200, "{first}");
    assert_eq!(listed_graph_ids(&app, owner).await, vec![id_of(first)], "one graph");
}

#[tokio::test]
async fn a_committed_command_is_answered_even_when_its_idempotency_record_cannot_be_kept() {
    let app = spawn_app().await;
    let owner = user();
    // Keeping a response fails from now on (claiming a key still works).
    for statement in [
        "CREATE FUNCTION refuse_kept_answer() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'the idempotency record cannot be kept'; END $$",
        "CREATE TRIGGER refuse_kept_answer BEFORE UPDATE ON idempotency_keys FOR EACH ROW \
         WHEN (NEW.status IS NOT NULL) EXECUTE FUNCTION refuse_kept_answer()",
    ] {
        sqlx::query(statement).execute(&app.pool).await.expect(statement);
    }
    let events = event_count(&app).await;
    let (status, first) = post_graph(&app, owner, "k-unkept", "kept").await;
    assert_eq!(status, 200, "the command committed, so it is answered: {first}");
    let id = id_of(&first);
    let committed = event_count(&app).await;
    assert!(committed > events);
    assert_eq!(listed_graph_ids(&app, owner).await, std::slice::from_ref(&id));

    let (status, again) = post_graph(&app, owner, "k-unkept", "kept").await;
    assert_eq!((status, id_of(&again)), (200, id.clone()), "a retry answers the same graph: {again}");
    assert_eq!(event_count(&app).await, committed, "and appends nothing");
    assert_eq!(listed_graph_ids(&app, owner).await, [id]);
}
