//! Poison runs: a node whose runs keep taking the process down is failed
//! after a few starts instead of taking down every server that resumes it.

use std::time::Duration;

use serde_json::{json, Value};

use crate::executors::{slow_graph, starts_of, COUNTDOWN};
use crate::helpers::{fresh_database, serve, Server, TestApp};
use crate::support::{id_of, user};

/// The countdown's node execution once it runs for the `round`th time.
async fn running_for_the(round: i64, app: &TestApp, detail: &str, owner: uuid::Uuid) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, run) = app.get(detail, owner).await;
        let nodes = run["node_executions"].as_array().cloned().unwrap_or_default();
        let countdown = nodes.iter().find(|n| n["block_id"] == COUNTDOWN && n["status"] == "RUNNING");
        if let Some(id) = countdown.and_then(|n| n["node_exec_id"].as_str()) {
            if starts_of(app, id).await == round {
                return id.to_owned();
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "the countdown never ran a {round}th time: {run}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A server process, killed with `kill -9` when dropped (as an abort or
/// the kernel's OOM killer would), so a failing test leaves none behind.
struct Killed(Server);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.child.kill();
        let _ = self.0.child.wait();
    }
}

fn kill(server: Killed) {
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_running_when_the_process_died_three_times_is_failed_and_the_server_stays_up() {
    let url = fresh_database().await;
    let env = [("EXECUTOR_LEASE_MS", "1000")];
    let mut server = Killed(serve(&url, &env));
    let mut app = TestApp::at(server.0.port, url.clone()).await;
    let owner = user();
    let graph_id = id_of(&app.create_graph(owner, slow_graph(600)).await);
    let (status, queued) = app.post(&format!("/api/graphs/{graph_id}/execute/1"), owner, &json!({})).await;
    assert_eq!(status, 200, "{queued}");
    let run_id = queued["id"].as_str().unwrap().to_owned();
    let detail = format!("/api/graphs/{graph_id}/executions/{run_id}");
    let mut countdown = String::new();
    // Three processes die while the node runs (as a block that aborts the
    // process, or exhausts its memory, would make them die).
    for round in 1..=3 {
        countdown = running_for_the(round, &app, &detail, owner).await;
        kill(server);
        server = Killed(serve(&url, &env));
        app = TestApp::at(server.0.port, url.clone()).await;
    }
    let run = app.run_ended(owner, &graph_id, &run_id, Duration::from_secs(30)).await;
    let nodes = run["node_executions"].as_array().unwrap();
    let node = nodes.iter().find(|n| n["node_exec_id"] == countdown.as_str()).expect("the countdown");
    assert_eq!(node["status"], "FAILED", "{run}");
    assert_eq!(node["output_data"]["error"], json!(["the process stopped 3 times while running this node"]), "{run}");
    assert_eq!(starts_of(&app, &countdown).await, 3, "not started a fourth time");
    assert_eq!(run["outputs"], json!({}), "nothing after it ran: {run}");
    assert!(run["status"].as_str().is_some_and(|s| ["COMPLETED", "FAILED"].contains(&s)), "{run}");
    // The server that gave up on the node is still up and serving.
    let (status, _): (u16, Value) = app.get("/api/graphs", owner).await;
    assert_eq!(status, 200);
    assert!(server.0.child.try_wait().expect("status").is_none(), "still running");
}
