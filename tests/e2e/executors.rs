//! Several instances on one database: each queued run is claimed and run
//! by exactly one of them.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::{blocks, spawn_app, spawn_app_on};
use crate::support::{id_of, user};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_run_each_of_200_runs_exactly_once() {
    let a = spawn_app().await;
    let b = spawn_app_on(a.url.clone(), |_| {}).await;
    let graph = json!({
        "name": "echo", "description": "",
        "nodes": [
            {"id": "in", "block_id": blocks::AGENT_INPUT, "input_default": {"name": "n"}},
            {"id": "out", "block_id": blocks::AGENT_OUTPUT, "input_default": {"name": "echo"}}
        ],
        "links": [{"source_id": "in", "sink_id": "out", "source_name": "result", "sink_name": "value"}]
    });
    let users: Vec<_> = (0..8).map(|_| user()).collect();
    let mut graphs = Vec::new();
    for owner in &users {
        graphs.push(id_of(&a.create_graph(*owner, graph.clone()).await));
    }
    // 200 runs, half submitted through each instance, 8 at a time.
    for chunk in 0..25 {
        join_all((0..8).map(|j| {
            let i = chunk * 8 + j;
            let (app, owner, graph_id) = (if i % 2 == 0 { &a } else { &b }, users[j], graphs[j].clone());
            async move {
                let (status, body) =
                    app.post(&format!("/api/graphs/{graph_id}/execute/1"), owner, &json!({"inputs": {"n": i}})).await;
                assert_eq!(status, 200, "{body}");
            }
        }))
        .await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM rm_graph_executions WHERE status NOT IN ('COMPLETED', 'FAILED', 'TERMINATED')",
        )
        .fetch_one(&a.pool)
        .await
        .unwrap();
        if open == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{open} runs still open");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let completed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM rm_graph_executions WHERE status = 'COMPLETED'").fetch_one(&a.pool).await.unwrap();
    assert_eq!(completed, 200);
    // One claim per run in the log, and no run's nodes ran twice.
    let claims: Vec<(String, i64)> = sqlx::query_as(
        "SELECT stream_id, count(*) FROM events WHERE event_type = 'ExecutionStarted' GROUP BY stream_id",
    )
    .fetch_all(&a.pool)
    .await
    .unwrap();
    assert_eq!(claims.len(), 200);
    assert!(claims.iter().all(|(_, n)| *n == 1), "a run was claimed twice");
    let node_starts: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'NodeExecutionStarted'")
        .fetch_one(&a.pool)
        .await
        .unwrap();
    assert_eq!(node_starts, 400, "two nodes per run, each started once");
    let workers: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT data->>'worker') FROM events WHERE event_type = 'ExecutionStarted'",
    )
    .fetch_one(&a.pool)
    .await
    .unwrap();
    assert_eq!(workers, 2, "both instances took runs");
    let (_, outputs) = a.get(&format!("/api/graphs/{}/executions?page_size=100", graphs[0]), users[0]).await;
    assert_eq!(outputs["pagination"]["total_items"], 25);
}
