//! Tamper evidence of the log: hashes chain each stream's events (also
//! within one multi-event append), seals chain the global order, and a
//! verification names the first event changed or removed behind the
//! writers' back, over HTTP (admins) and from the binary (exit code 1).

use std::process::Command;
use std::time::{Duration, Instant};

use eventlog::audit_verify::{verify, ProblemKind};
use eventlog::seal::{event_hash, seal, seals, HashedFields};
use eventlog::store::{EventMetadata, EventStore, NewEvent, StreamWrite};
use eventlog::{PgEventStore, StoreError};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::helpers::{fresh_store, greeting_graph, send, spawn_app_with, TestApp, BIN};
use crate::support::{admin_request, id_of, user};

/// A server without the sealing loop: the tests seal when they mean to.
async fn app_without_sealer() -> TestApp {
    spawn_app_with(|config| config.seal_interval = None).await
}

/// Wait until every stored event is below the horizon (transactions of
/// other tests on the same server can hold it back for a moment).
async fn settled(pool: &PgPool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let below: bool =
            sqlx::query_scalar("SELECT count(*) FILTER (WHERE tx_id < log_horizon()) = count(*) FROM events")
                .fetch_one(pool)
                .await
                .unwrap();
        if below {
            return;
        }
        assert!(Instant::now() < deadline, "the horizon never passed the log's head");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A graph with `versions` events on its stream; answers its stream id.
async fn graph_stream(app: &TestApp, owner: Uuid, versions: usize) -> String {
    let graph_id = id_of(&app.create_graph(owner, greeting_graph()).await);
    for _ in 1..versions {
        let (status, body) = app.put(&format!("/api/graphs/{graph_id}"), owner, &greeting_graph()).await;
        assert_eq!(status, 200, "{body}");
    }
    format!("graph-{graph_id}")
}

async fn verify_over_http(app: &TestApp) -> Value {
    let (status, report) = send(admin_request(app, Method::POST, "/api/admin/audit/verify", user())).await;
    assert_eq!(status, 200, "{report}");
    report
}

#[tokio::test]
async fn a_sealed_log_verifies_and_an_altered_event_is_named() {
    let app = app_without_sealer().await;
    let owner = user();
    let stream = graph_stream(&app, owner, 2).await;
    graph_stream(&app, owner, 1).await;
    settled(&app.pool).await;
    let first = seal(&app.pool).await.unwrap().expect("a first seal");
    assert_eq!((first.seq, first.from_tx_id, first.from_position, first.prev_digest.as_str()), (1, 0, 0, ""));
    assert!(seal(&app.pool).await.unwrap().is_none(), "nothing new, no seal");
    graph_stream(&app, owner, 1).await;
    settled(&app.pool).await;
    let second = seal(&app.pool).await.unwrap().expect("a second seal");
    assert_eq!((second.from_tx_id, second.from_position), (first.to_tx_id, first.to_position));
    assert_eq!(second.prev_digest, first.digest);

    let report = verify_over_http(&app).await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["seals_checked"], 2);
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&app.pool).await.unwrap();
    assert_eq!(report["events_checked"], total);
    assert_eq!(report["first_problem"], Value::Null);
    assert_eq!(app.post("/api/admin/audit/verify", owner, &json!({})).await.0, 403, "admins only");

    let position: i64 = sqlx::query_scalar("SELECT position FROM events WHERE stream_id = $1 AND version = 1")
        .bind(&stream)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    sqlx::query(r#"UPDATE events SET data = '{"name": "forged"}' WHERE position = $1"#)
        .bind(position)
        .execute(&app.pool)
        .await
        .unwrap();
    let report = verify_over_http(&app).await;
    assert_eq!(report["ok"], false, "{report}");
    let problem = &report["first_problem"];
    assert_eq!(problem["kind"], "altered", "{report}");
    assert_eq!((problem["position"].as_i64(), problem["version"].as_i64()), (Some(position), Some(1)));
    assert_eq!(problem["stream_id"], stream.as_str());

    // The binary says the same and fails, for scripts that only look at the exit code.
    let output = Command::new(BIN).args(["audit", "verify"]).env("DATABASE_URL", &app.url).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("altered") && stderr.contains(&stream), "{stderr}");
    let printed: Value = serde_json::from_slice(&output.stdout).expect("the report as JSON on stdout");
    assert_eq!(printed["first_problem"]["position"], position);
}

#[tokio::test]
async fn an_event_deleted_in_the_middle_of_a_stream_is_named() {
    let app = app_without_sealer().await;
    let owner = user();
    graph_stream(&app, owner, 1).await;
    let stream = graph_stream(&app, owner, 3).await;
    settled(&app.pool).await;
    seal(&app.pool).await.unwrap().expect("a seal");
    sqlx::query("DELETE FROM events WHERE stream_id = $1 AND version = 2")
        .bind(&stream)
        .execute(&app.pool)
        .await
        .unwrap();
    let report = verify(&app.pool, |_| {}).await.unwrap();
    assert!(!report.ok);
    let problem = report.first_problem.expect("a problem");
    assert_eq!(problem.kind, ProblemKind::Deleted, "{problem:?}");
    assert_eq!((problem.stream_id.as_deref(), problem.version), (Some(stream.as_str()), Some(3)));
    assert!(problem.detail.contains("2..2"), "{}", problem.detail);
}

#[tokio::test]
async fn deleting_the_last_event_of_a_stream_breaks_its_seal() {
    let app = app_without_sealer().await;
    let owner = user();
    let stream = graph_stream(&app, owner, 2).await;
    graph_stream(&app, owner, 1).await;
    settled(&app.pool).await;
    let sealed = seal(&app.pool).await.unwrap().expect("a seal");
    // No later event of the stream names it: only the seal can tell.
    sqlx::query("DELETE FROM events WHERE stream_id = $1 AND version = 2")
        .bind(&stream)
        .execute(&app.pool)
        .await
        .unwrap();
    let report = verify_over_http(&app).await;
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["first_problem"]["kind"], "seal_mismatch", "{report}");
    assert_eq!(report["first_problem"]["position"], sealed.to_position);
    let detail = report["first_problem"]["detail"].as_str().unwrap();
    assert!(detail.contains("seal 1"), "{detail}");
}

fn event(n: usize) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: "Counted".into(),
        schema_version: 1,
        data: serde_json::value::to_raw_value(&json!({ "n": n, "text": "é \"quoted\"" })).unwrap(),
        metadata: EventMetadata { correlation_id: Uuid::new_v4(), ..Default::default() },
    }
}

#[tokio::test]
async fn events_of_one_multi_event_append_chain_to_each_other() {
    let store = fresh_store().await;
    let writes = [
        StreamWrite { stream_id: "counter-a".into(), expected_version: 0, events: (0..3).map(event).collect() },
        StreamWrite { stream_id: "counter-b".into(), expected_version: 0, events: (0..2).map(event).collect() },
    ];
    store.append(&writes).await.unwrap();
    store
        .append(&[StreamWrite { stream_id: "counter-a".into(), expected_version: 3, events: vec![event(9)] }])
        .await
        .unwrap();
    let rows = sqlx::query(
        "SELECT stream_id, version, event_id, event_type, schema_version, recorded_at, data::text AS data, \
         metadata::text AS metadata, hash FROM events ORDER BY stream_id, version",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(rows.len(), 6);
    let mut prev: Vec<u8> = vec![];
    for row in &rows {
        let fields = HashedFields {
            stream_id: row.get("stream_id"),
            version: row.get("version"),
            event_id: row.get("event_id"),
            event_type: row.get("event_type"),
            schema_version: row.get("schema_version"),
            recorded_at: row.get("recorded_at"),
            data: row.get("data"),
            metadata: row.get("metadata"),
        };
        if fields.version == 1 {
            prev.clear();
        }
        let stored: Vec<u8> = row.get("hash");
        assert_eq!(event_hash(&prev, &fields).as_slice(), stored, "{} v{}", fields.stream_id, fields.version);
        prev = stored;
    }
    // The append computes the hash in Rust; event_content is its reference.
    let by_reference: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events e WHERE e.hash = sha256(coalesce((SELECT p.hash FROM events p \
         WHERE p.stream_id = e.stream_id AND p.version = e.version - 1), '\\x'::bytea) || event_content(e))",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(by_reference, 6, "the append and event_content encode the same bytes");
    settled(store.pool()).await;
    let report = verify(store.pool(), |_| {}).await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!((report.events_checked, report.streams), (6, 2));
}

#[tokio::test]
async fn the_server_seals_the_log_periodically() {
    let app = spawn_app_with(|config| config.seal_interval = Some(Duration::from_millis(50))).await;
    graph_stream(&app, user(), 2).await;
    settled(&app.pool).await;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&app.pool).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let sealed: i64 = seals(&app.pool).await.unwrap().iter().map(|s| s.event_count).sum();
        if sealed == total {
            break;
        }
        assert!(Instant::now() < deadline, "the loop sealed {sealed} of {total} events");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(verify_over_http(&app).await["ok"], true);
}

#[tokio::test]
async fn an_append_chains_only_from_the_hash_stored_at_its_expected_version() {
    let store = fresh_store().await;
    let one =
        |expected_version, n| StreamWrite { stream_id: "counter-c".into(), expected_version, events: vec![event(n)] };
    let count = |pool: PgPool| async move {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events").fetch_one(&pool).await.unwrap()
    };
    store.append(&[one(0, 1)]).await.unwrap();
    // Behind the writer's back, the stored hash of version 1 changes.
    sqlx::query("UPDATE events SET hash = sha256(hash) WHERE stream_id = 'counter-c'")
        .execute(store.pool())
        .await
        .unwrap();
    // The writer still holds the hash it appended; chaining from it would
    // not link to what is stored: refused, nothing appended.
    let refused = store.append(&[one(1, 2)]).await;
    assert!(matches!(refused, Err(StoreError::Conflict { .. })), "{refused:?}");
    assert_eq!(count(store.pool().clone()).await, 1);
    // The conflict made it forget: a retry chains from what is stored.
    store.append(&[one(1, 2)]).await.unwrap();
    // A store that knows the hash and one that asks the log race at one
    // version: one chain, one winner.
    let other = PgEventStore::new(store.pool().clone());
    let (mine, theirs) = ([one(2, 3)], [one(2, 4)]);
    let (a, b) = tokio::join!(store.append(&mine), other.append(&theirs));
    assert_eq!(u8::from(a.is_ok()) + u8::from(b.is_ok()), 1, "{a:?} {b:?}");
    // A writer that brings no hash (a binary from before the append made
    // them, a hand-written INSERT) gets the one the chain calls for.
    sqlx::query(
        "INSERT INTO events (stream_id, version, event_id, event_type, schema_version, data, metadata) \
         VALUES ('counter-c', 4, gen_random_uuid(), 'Counted', 1, '{}', '{}')",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let chained: bool = sqlx::query_scalar(
        "SELECT e.hash = sha256(p.hash || event_content(e)) FROM events e \
         JOIN events p ON p.stream_id = e.stream_id AND p.version = e.version - 1 \
         WHERE e.stream_id = 'counter-c' AND e.version = 4",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!(chained, "the trigger chained the hand-written event");
    settled(store.pool()).await;
    let report = verify(store.pool(), |_| {}).await.unwrap();
    let problem = report.first_problem.expect("the changed hash is found");
    assert_eq!((problem.stream_id.as_deref(), problem.version), (Some("counter-c"), Some(1)), "{problem:?}");
    assert_eq!(report.events_checked, 4);
}
