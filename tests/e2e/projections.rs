//! The projector runner: exactly-once application across failures and
//! crashes, rebuilds, and status reporting.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use commands::PgEventStore;
use eventlog::store::{EventMetadata, EventStore, GlobalPosition, NewEvent, RecordedEvent, StreamWrite};
use eventlog::tail::TailConfig;
use projections::{BoxFuture, ProjectionError, Projections, Projector};
use serde_json::json;
use sqlx::PgConnection;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::helpers::{fresh_store, sample_graph, spawn_app};

/// Records every event it applies; fails once on chosen events after part
/// of the batch was written, and can stall to be killed mid-batch.
struct Recorder {
    fail_once: Mutex<HashSet<i64>>,
    stall_on: Option<i64>,
}

impl Projector for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["test_applied"]
    }

    fn categories(&self) -> &'static [&'static str] {
        &["numbered"]
    }

    fn handle<'a>(
        &'a self,
        event: &'a RecordedEvent,
        conn: &'a mut PgConnection,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            sqlx::query("INSERT INTO test_applied (event_id) VALUES ($1)")
                .bind(event.event_id)
                .execute(&mut *conn)
                .await?;
            let data: serde_json::Value = serde_json::from_str(event.data.get()).unwrap_or_default();
            let n = data["n"].as_i64().unwrap_or(-1);
            if self.fail_once.lock().unwrap().remove(&n) {
                return Err(ProjectionError::Database(sqlx::Error::Protocol(format!("injected failure at {n}"))));
            }
            if self.stall_on == Some(n) {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            Ok(())
        })
    }
}

async fn append_numbered(store: &PgEventStore, count: usize) {
    for chunk in 0..count / 50 {
        let events = (0..50)
            .map(|k| NewEvent {
                event_id: Uuid::new_v4(),
                event_type: "Numbered".into(),
                schema_version: 1,
                data: serde_json::value::to_raw_value(&json!({ "n": chunk * 50 + k })).unwrap(),
                metadata: EventMetadata { correlation_id: Uuid::new_v4(), ..Default::default() },
            })
            .collect();
        let write = StreamWrite { stream_id: format!("num-{chunk}"), expected_version: 0, events };
        store.append(&[write]).await.unwrap();
    }
}

async fn setup(store: &PgEventStore) {
    sqlx::query("CREATE TABLE test_applied (event_id uuid NOT NULL)").execute(store.pool()).await.unwrap();
}

fn runner(store: &PgEventStore, recorder: Recorder) -> Projections {
    Projections::new(store.clone(), vec![Arc::new(recorder)]).with_tail_config(TailConfig {
        batch: 40,
        rebuild_batch: 40,
        ..TailConfig::default()
    })
}

async fn assert_applied_exactly_once(store: &PgEventStore, expected: i64) {
    let (total, distinct): (i64, i64) = sqlx::query_as("SELECT count(*), count(DISTINCT event_id) FROM test_applied")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(total, expected, "every event applied");
    assert_eq!(distinct, expected, "no event applied twice");
}

/// The last committed event, visible or not yet: `head()` would stop short
/// while another test's transaction holds the cluster-wide horizon back.
async fn last_committed(store: &PgEventStore) -> GlobalPosition {
    let (tx_id, position): (i64, i64) =
        sqlx::query_as("SELECT tx_id, position FROM events ORDER BY tx_id DESC, position DESC LIMIT 1")
            .fetch_one(store.pool())
            .await
            .unwrap();
    GlobalPosition { tx_id, position }
}

async fn wait_until_caught_up(projections: &Projections, store: &PgEventStore) {
    let last = last_committed(store).await;
    assert!(
        projections.wait_for(&["recorder"], last, Duration::from_secs(30)).await.unwrap().is_empty(),
        "projector caught up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_mid_batch_roll_back_and_retry_without_duplicates() {
    let store = fresh_store().await;
    setup(&store).await;
    append_numbered(&store, 1000).await;
    let recorder = Recorder { fail_once: Mutex::new([7, 333, 334, 999].into()), stall_on: None };
    let projections = runner(&store, recorder);
    let stop = CancellationToken::new();
    projections.spawn(stop.clone()).await.unwrap();
    wait_until_caught_up(&projections, &store).await;
    assert_applied_exactly_once(&store, 1000).await;
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_killed_mid_batch_resumes_from_its_checkpoint() {
    let store = fresh_store().await;
    setup(&store).await;
    append_numbered(&store, 1000).await;
    let first = runner(&store, Recorder { fail_once: Mutex::default(), stall_on: Some(517) });
    let stop = CancellationToken::new();
    let tasks = first.spawn(stop.clone()).await.unwrap();
    // Wait until it is stuck inside the batch holding event 517, then kill it.
    let stuck = first.checkpoint("recorder");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut checkpoint = stuck.await.unwrap();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = first.checkpoint("recorder").await.unwrap();
        if now == checkpoint && now.position > 0 {
            break;
        }
        checkpoint = now;
    }
    for task in tasks {
        task.abort();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let partial: i64 = sqlx::query_scalar("SELECT count(*) FROM test_applied").fetch_one(store.pool()).await.unwrap();
    let stored = first.checkpoint("recorder").await.unwrap();
    let upto: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE (tx_id, position) <= ($1, $2)")
        .bind(stored.tx_id)
        .bind(stored.position)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(partial < 1000, "the kill happened mid-log: {partial}");
    assert_eq!(partial, upto, "exactly the events up to the checkpoint were applied, none of the killed batch");
    // A new process picks up where the checkpoint says.
    let second = runner(&store, Recorder { fail_once: Mutex::default(), stall_on: None });
    let stop2 = CancellationToken::new();
    second.spawn(stop2.clone()).await.unwrap();
    wait_until_caught_up(&second, &store).await;
    assert_applied_exactly_once(&store, 1000).await;
    stop.cancel();
    stop2.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilding_a_read_model_reproduces_it() {
    let app = spawn_app().await;
    let user = Uuid::new_v4();
    for i in 0..5 {
        app.create_graph(user, sample_graph(&format!("g{i}"))).await;
    }
    let (_, before) = app.get("/api/graphs", user).await;
    let (_, library_before) = app.get("/api/library/agents", user).await;
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_autogpt-es"))
        .args(["projections", "rebuild", "--all"])
        .env(
            "DATABASE_URL",
            app.pool
                .connect_options()
                .get_database()
                .map(|db| format!("{}/{db}", crate::helpers::server_url()))
                .unwrap(),
        )
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let out = String::from_utf8_lossy(&status.stdout);
    assert!(out.contains("graphs: rebuilt from"), "{out}");
    let (_, after) = app.get("/api/graphs", user).await;
    let (_, library_after) = app.get("/api/library/agents", user).await;
    assert_eq!(before, after);
    assert_eq!(before.as_array().unwrap().len(), 5);
    assert_eq!(library_before, library_after);
}

#[tokio::test]
async fn projectors_that_ignore_events_still_report_no_lag_soon_after() {
    let app = spawn_app().await;
    let (user, admin) = (Uuid::new_v4(), Uuid::new_v4());
    // Graph events only: the users projector has nothing to apply, and
    // acknowledges them in memory first, in the checkpoint within a second.
    app.create_graph(user, sample_graph("g")).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = crate::helpers::send(
            app.client.get(format!("{}/api/admin/projections", app.address)).bearer_auth(app.token(admin, true)),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let rows = body["projections"].as_array().unwrap();
        // Every projector of the read side, and the relay.
        assert_eq!(rows.len(), projections::all().len() + 1);
        if rows.iter().all(|r| r["lag_events"] == 0 && r["checkpoint_token"] == body["head_token"]) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "lag never reached zero: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_projecting_the_same_log_apply_every_event_once() {
    let store = fresh_store().await;
    // Two processes' worth of runners over one database, racing for the
    // same checkpoints; one of them also appends, in batches both the
    // one-statement path and the transaction path handle.
    let first = Projections::new(store.clone(), projections::all());
    let second = Projections::new(store.clone(), projections::all());
    let stop = CancellationToken::new();
    first.spawn(stop.clone()).await.unwrap();
    second.spawn(stop.clone()).await.unwrap();
    write_graphs(&store, 8, 25).await;
    let last = last_committed(&store).await;
    let names = first.names();
    assert!(
        first.wait_for(&names, last, Duration::from_secs(30)).await.unwrap().is_empty(),
        "first instance caught up"
    );
    assert!(
        second.wait_for(&names, last, Duration::from_secs(30)).await.unwrap().is_empty(),
        "second instance caught up"
    );
    let pool = store.pool();
    let count = |sql: &'static str| async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await.unwrap() };
    assert_eq!(count("SELECT count(*) FROM rm_graphs").await, 8 * 25 + 8 * 5, "every version once");
    assert_eq!(count("SELECT count(*) FROM rm_graphs WHERE is_active").await, 8 * 25, "one active version each");
    assert_eq!(count("SELECT count(*) FROM rm_graphs WHERE is_active AND version = 2").await, 8 * 5);
    assert_eq!(count("SELECT count(*) FROM rm_library_agents").await, 8 * 25);
    assert_eq!(count("SELECT count(*) FROM rm_library_agents WHERE graph_version = 2").await, 8 * 5);
    stop.cancel();
}

#[tokio::test]
async fn waiting_for_a_projector_this_process_does_not_run_is_an_error_not_caught_up() {
    let store = fresh_store().await;
    let projections = Projections::new(store, projections::all());
    let waited = projections.wait_for(&["no_such_projection"], GlobalPosition::START, Duration::from_millis(10)).await;
    assert!(matches!(waited, Err(ProjectionError::NotRunning(ref name)) if name == "no_such_projection"), "{waited:?}");
    let none_behind = projections.wait_for(&[projections::users::NAME], GlobalPosition::START, Duration::ZERO).await;
    assert_eq!(none_behind.unwrap(), Vec::<&str>::new(), "position zero is always reached");
}

/// `writers` concurrent writers each create `per_writer` graphs, every fifth
/// with a second version (which deactivates the first: not a plain insert).
async fn write_graphs(store: &PgEventStore, writers: usize, per_writer: usize) {
    let commands = Arc::new(commands::services::Commands::new(store.clone()));
    let writers: Vec<_> = (0..writers)
        .map(|w| {
            let commands = Arc::clone(&commands);
            tokio::spawn(async move {
                let user = Uuid::new_v4();
                let ctx = commands::CommandContext::for_user(user);
                for i in 0..per_writer {
                    let draft = serde_json::from_value(sample_graph(&format!("g{w}-{i}"))).unwrap();
                    let created = commands.create_graph(&ctx, user, draft).await.unwrap();
                    if i % 5 == 0 {
                        let again = serde_json::from_value(sample_graph(&format!("g{w}-{i}-v2"))).unwrap();
                        commands.create_graph_version(&ctx, user, created.graph_id, again).await.unwrap();
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resets_during_live_projection_under_concurrent_writers_never_deadlock() {
    let store = fresh_store().await;
    // Small batches: many transactions and bulk statements to collide with.
    let small = TailConfig { batch: 7, rebuild_batch: 7, ..TailConfig::default() };
    let projections = Projections::new(store.clone(), projections::all()).with_tail_config(small);
    let stop = CancellationToken::new();
    projections.spawn(stop.clone()).await.unwrap();
    let writing = tokio::spawn({
        let store = store.clone();
        async move { write_graphs(&store, 6, 20).await }
    });
    let mut resets = 0;
    while !writing.is_finished() {
        for name in [projections::graphs::NAME, projections::library::NAME] {
            projections.reset(name).await.unwrap_or_else(|e| panic!("reset {name} failed: {e}"));
            resets += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    writing.await.unwrap();
    assert!(resets >= 4, "resets ran while writers wrote ({resets})");
    let last = last_committed(&store).await;
    let pending = projections.wait_for(&projections.names(), last, Duration::from_secs(30)).await.unwrap();
    assert!(pending.is_empty(), "{pending:?} caught up after the last reset");
    let count = |sql: &'static str| {
        let pool = store.pool().clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await.unwrap() }
    };
    assert_eq!(count("SELECT count(*) FROM rm_graphs").await, 6 * 20 + 6 * 4, "every version once");
    assert_eq!(count("SELECT count(*) FROM rm_library_agents").await, 6 * 20);
    stop.cancel();
}
