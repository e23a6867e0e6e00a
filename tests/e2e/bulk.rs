//! The executions, store and credits read models written a batch at a time (one
//! statement per batch, or per run of events between the rare ones that go
//! alone) equal the ones written event by event, wherever the log is cut
//! into batches (issue 20, point 5).

use std::sync::Arc;
use std::time::Duration;

use commands::PgEventStore;
use eventlog::store::RecordedEvent;
use eventlog::tail::TailConfig;
use projections::{BoxFuture, ProjectionError, Projections, Projector};
use serde_json::{json, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::agents::{agent_graph, store_key, with_stubs, TEXT_GENERATOR};
use crate::helpers::{greeting_graph, TestApp};
use crate::support::{id_of, user};

const COUNTDOWN: &str = "d67a9c52-5e4e-11e2-bcfd-0800200c9a71";

/// A projector without its batch path: the reference.
struct EventByEvent(Arc<dyn Projector>);

impl Projector for EventByEvent {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn tables(&self) -> &'static [&'static str] {
        self.0.tables()
    }
    fn categories(&self) -> &'static [&'static str] {
        self.0.categories()
    }
    fn version(&self) -> i32 {
        self.0.version()
    }
    fn wants(&self, event: &RecordedEvent) -> bool {
        self.0.wants(event)
    }
    fn handle<'a>(
        &'a self,
        event: &'a RecordedEvent,
        conn: &'a mut PgConnection,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        self.0.handle(event, conn)
    }
}

async fn run(app: &TestApp, owner: Uuid, graph_id: &str, body: Value) -> String {
    let (status, queued) = app.post(&format!("/api/graphs/{graph_id}/execute/1"), owner, &body).await;
    assert_eq!(status, 200, "{queued}");
    queued["id"].as_str().unwrap().to_owned()
}

/// Runs of every kind: outputs, model calls with token counts, a failure,
/// a review decided, a stop, shares and a delete.
async fn varied_runs(app: &TestApp, echo_url: &str) {
    let owner = user();
    let greeting = id_of(&app.create_graph(owner, greeting_graph()).await);
    let submitted = crate::store::submit(app, owner, &greeting, "greeter", "Greeter").await;
    let version = submitted["store_listing_version_id"].as_str().unwrap();
    assert_eq!(crate::store::review(app, user(), version, true).await.0, 200);
    let mut greeted = Vec::new();
    for name in ["a", "b", "c"] {
        greeted.push(run(app, owner, &greeting, json!({"inputs": {"name": name}})).await);
    }
    let agent = id_of(&app.create_graph(owner, agent_graph(echo_url)).await);
    let credentials = store_key(app, owner).await;
    let with_key =
        json!({"inputs": {"topic": "owls"}, "credentials_inputs": {"openai_api_key_credentials": credentials}});
    let asked = run(app, owner, &agent, with_key).await;
    let failed = run(app, owner, &agent, json!({"inputs": {"topic": "no key"}})).await;
    // Enough runs of the listed graph for batches of the store's and the
    // credits' own events to go as statements.
    let many = (0..40).map(|i| run(app, owner, &greeting, json!({"inputs": {"name": format!("n{i}")}})));
    let many = futures_util::future::join_all(many).await;
    for (graph, id) in greeted.iter().chain(&many).map(|r| (&greeting, r)).chain([(&agent, &asked), (&agent, &failed)])
    {
        app.run_ended(owner, graph, id, Duration::from_secs(60)).await;
    }
    let share = |id: &str| format!("/api/graphs/{greeting}/executions/{id}/share");
    assert_eq!(app.post(&share(&greeted[0]), owner, &json!({})).await.0, 200);
    assert_eq!(app.post(&share(&greeted[1]), owner, &json!({})).await.0, 200);
    assert_eq!(app.delete(&share(&greeted[1]), owner).await.0, 204);
    assert_eq!(app.delete(&format!("/api/executions/{}", greeted[2]), owner).await.0, 204);

    let (reviewed, review_run) = crate::reviews::start(app, owner, json!({}), json!({"draft": "v1"})).await;
    let paused = crate::reviews::status_becomes(app, owner, &reviewed, &review_run, "REVIEW").await;
    let node = paused["node_executions"].as_array().unwrap().iter().find(|n| n["status"] == "REVIEW").unwrap();
    let decision = json!({"reviews": [{"node_exec_id": node["node_exec_id"], "approved": true, "message": "ok"}]});
    assert_eq!(app.post("/api/review/action", owner, &decision).await.0, 200);
    app.run_ended(owner, &reviewed, &review_run, Duration::from_secs(20)).await;

    let slow = json!({"name": "slow", "description": "", "links": [],
        "nodes": [{"id": "t", "block_id": COUNTDOWN, "input_default": {"seconds": 30}}]});
    let slow = id_of(&app.create_graph(owner, slow).await);
    let stopped = run(app, owner, &slow, json!({})).await;
    let stop = format!("/api/graphs/{slow}/executions/{stopped}/stop");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, got) = app.get(&format!("/api/graphs/{slow}/executions/{stopped}"), owner).await;
        if got["node_executions"][0]["status"] == "RUNNING" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never started: {got}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.post(&stop, owner, &json!({})).await.0, 200);
    app.run_ended(owner, &slow, &stopped, Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_executions_model_written_in_batches_equals_the_one_written_event_by_event() {
    let (_model, echo, app) = with_stubs().await;
    varied_runs(&app, &echo.url).await;
    let store = PgEventStore::new(app.pool.clone());
    let stats: i64 =
        sqlx::query_scalar("SELECT count(*) FROM rm_node_executions WHERE block_id = $1 AND stats IS NOT NULL")
            .bind(TEXT_GENERATOR)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(stats, 1, "the model call's token counts are in the live model");

    for name in ["executions", "store", "credits"] {
        // The live model, rebuilt event by event.
        let projector = projections::all().into_iter().find(|p| p.name() == name).unwrap();
        let reference = Projections::new(store.clone(), vec![Arc::new(EventByEvent(projector))]);
        reference.begin_rebuild(name).await.unwrap().run(|_| {}).await.unwrap();

        // Rebuilt a batch at a time with every cut, and compared row by row.
        for batch in [1, 3, 45, 57, 64, 89, 2_000] {
            let batched = Projections::new(store.clone(), projections::all())
                .with_tail_config(TailConfig { rebuild_batch: batch, ..TailConfig::default() });
            let report = batched.verify(name).await.unwrap();
            assert!(report.equal, "{name} in batches of {batch}: {}", serde_json::to_string_pretty(&report).unwrap());
            assert!(report.events > 50, "{report:?}");
        }
    }
    let kinds: Vec<(String, i64)> =
        sqlx::query_as("SELECT kind, count(*) FROM rm_credit_transactions GROUP BY kind ORDER BY kind")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(kinds.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["GRANT", "USAGE"], "{kinds:?}");
    let runs: i64 = sqlx::query_scalar("SELECT runs FROM rm_store_agents").fetch_one(&app.pool).await.unwrap();
    assert_eq!(runs, 43, "the listed graph's runs are counted");
}
