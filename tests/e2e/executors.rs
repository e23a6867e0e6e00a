//! Several instances on one database: each queued run is claimed and run
//! by exactly one of them.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::{blocks, echo_graph, fresh_database, serve, spawn_app, spawn_app_on, spawn_app_with, TestApp};

pub(crate) const COUNTDOWN: &str = "d67a9c52-5e4e-11e2-bcfd-0800200c9a71";
use crate::support::{id_of, user};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_run_each_of_200_runs_exactly_once() {
    let a = spawn_app().await;
    let b = spawn_app_on(a.url.clone(), |_| {}).await;
    let graph = echo_graph();
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
    let completed: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_graph_executions WHERE status = 'COMPLETED'")
        .fetch_one(&a.pool)
        .await
        .unwrap();
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
    let workers: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT data->>'worker') FROM events WHERE event_type = 'ExecutionStarted'")
            .fetch_one(&a.pool)
            .await
            .unwrap();
    assert_eq!(workers, 2, "both instances took runs");
    let (_, outputs) = a.get(&format!("/api/graphs/{}/executions?page_size=100", graphs[0]), users[0]).await;
    assert_eq!(outputs["pagination"]["total_items"], 25);
}

/// How many times a node execution began to run, as the log has it.
pub(crate) async fn starts_of(app: &TestApp, node_exec_id: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'NodeExecutionStarted' AND data->>'node_exec_id' = $1",
    )
    .bind(node_exec_id)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// A value stored, a countdown of `seconds` on it, then the output `done`.
pub(crate) fn slow_graph(seconds: u64) -> serde_json::Value {
    json!({
        "name": "slow", "description": "",
        "nodes": [
            {"id": "s", "block_id": blocks::STORE_VALUE, "input_default": {"input": "x"}},
            {"id": "t", "block_id": COUNTDOWN, "input_default": {"seconds": seconds}},
            {"id": "o", "block_id": blocks::AGENT_OUTPUT, "input_default": {"name": "done"}}
        ],
        "links": [
            {"source_id": "s", "sink_id": "t", "source_name": "output", "sink_name": "input_message"},
            {"source_id": "t", "sink_id": "o", "source_name": "output_message", "sink_name": "value"}
        ]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_whose_worker_is_killed_is_resumed_by_another_without_rerunning_finished_nodes() {
    let url = fresh_database().await;
    let lease = [("EXECUTOR_LEASE_MS", "1000")];
    let mut first = serve(&url, &lease);
    let a = TestApp::at(first.port, url.clone()).await;
    let owner = user();
    let graph_id = id_of(&a.create_graph(owner, slow_graph(2)).await);
    let (status, queued) = a.post(&format!("/api/graphs/{graph_id}/execute/1"), owner, &json!({})).await;
    assert_eq!(status, 200, "{queued}");
    let run_id = queued["id"].as_str().unwrap().to_owned();
    // Wait until the first instance is inside the countdown, then kill it.
    let detail = format!("/api/graphs/{graph_id}/executions/{run_id}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let store_node = loop {
        let (_, run) = a.get(&detail, owner).await;
        let nodes = run["node_executions"].as_array().cloned().unwrap_or_default();
        if nodes.iter().any(|n| n["block_id"] == COUNTDOWN && n["status"] == "RUNNING") {
            break nodes.iter().find(|n| n["block_id"] == blocks::STORE_VALUE).unwrap()["node_exec_id"].clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "countdown never started: {run}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    first.child.kill().expect("kill -9");
    first.child.wait().unwrap();

    let b = spawn_app_on(url.clone(), |c| c.executor_lease = Duration::from_millis(1000)).await;
    let run = b.run_ended(owner, &graph_id, &run_id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "COMPLETED", "{run}");
    assert_eq!(run["outputs"], json!({"done": ["x"]}), "{run}");
    let resumed: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'ExecutionResumed'")
        .fetch_one(&b.pool)
        .await
        .unwrap();
    assert_eq!(resumed, 1);
    assert_eq!(starts_of(&b, store_node.as_str().unwrap()).await, 1, "the finished node did not run again");
    let countdown = run["node_executions"].as_array().unwrap().iter().find(|n| n["block_id"] == COUNTDOWN).unwrap();
    assert_eq!(starts_of(&b, countdown["node_exec_id"].as_str().unwrap()).await, 2, "the interrupted node ran again");
    assert_eq!(countdown["output_data"], json!({"output_message": ["x"]}), "its output once");
    // A node is charged in the append that first starts it: the one started
    // again after the takeover is not charged again.
    let charged: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'NodeExecutionCharged'")
        .fetch_one(&b.pool)
        .await
        .unwrap();
    let node_executions = run["node_executions"].as_array().unwrap().len();
    assert_eq!(usize::try_from(charged).unwrap(), node_executions, "one charge per node execution: {run}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_per_user_cap_holds_across_instances_and_the_rest_waits_queued() {
    let app = spawn_app_with(|c| c.executor_per_user = 2).await;
    let other = spawn_app_on(app.url.clone(), |c| c.executor_per_user = 2).await;
    let owner = user();
    let graph = json!({
        "name": "wait", "description": "",
        "nodes": [{"id": "t", "block_id": COUNTDOWN, "input_default": {"seconds": 1}}],
        "links": []
    });
    let graph_id = id_of(&app.create_graph(owner, graph).await);
    let runs = 6;
    for i in 0..runs {
        let instance = if i % 2 == 0 { &app } else { &other };
        let (status, _) = instance.post(&format!("/api/graphs/{graph_id}/execute/1"), owner, &json!({})).await;
        assert_eq!(status, 200);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut most_running = 0;
    loop {
        let (_, listed) = app.get("/api/executions", owner).await;
        let listed = listed.as_array().cloned().unwrap_or_default();
        let running = listed.iter().filter(|r| r["status"] == "RUNNING").count();
        most_running = most_running.max(running);
        if listed.len() == runs && listed.iter().all(|r| r["status"] == "COMPLETED") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{listed:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(most_running, 2, "two runs of the user at a time, though two instances each had room for two");
}
