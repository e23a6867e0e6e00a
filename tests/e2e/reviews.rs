//! Human in the loop (issue 18, part 4): a review pauses a run in REVIEW,
//! only its owner decides, the decision (or a timeout's) resumes it.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};
use crate::support::{event_count, id_of, user};

const HITL: &str = "8b2a7b3c-6e9d-4a5f-8c1b-2e3f4a5b6c7d";
const AGENT_INPUT: &str = "c0a8e994-ebf1-4a9c-a4d8-89d09c86741b";
const AGENT_OUTPUT: &str = "363ae599-353e-4804-937e-b2ee3cef3da4";

/// AgentInput(x) → HumanInTheLoop → approved / rejected / note outputs.
fn review_graph(extra: Value) -> Value {
    let mut review = json!({"name": "Check the draft"});
    review.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    json!({
        "name": "reviewed", "description": "",
        "nodes": [
            {"id": "in", "block_id": AGENT_INPUT, "input_default": {"name": "x"}},
            {"id": "hitl", "block_id": HITL, "input_default": review},
            {"id": "ok", "block_id": AGENT_OUTPUT, "input_default": {"name": "approved"}},
            {"id": "no", "block_id": AGENT_OUTPUT, "input_default": {"name": "rejected"}},
            {"id": "note", "block_id": AGENT_OUTPUT, "input_default": {"name": "note"}}
        ],
        "links": [
            {"source_id": "in", "sink_id": "hitl", "source_name": "result", "sink_name": "data"},
            {"source_id": "hitl", "sink_id": "ok", "source_name": "approved_data", "sink_name": "value"},
            {"source_id": "hitl", "sink_id": "no", "source_name": "rejected_data", "sink_name": "value"},
            {"source_id": "hitl", "sink_id": "note", "source_name": "review_message", "sink_name": "value"}
        ]
    })
}

pub(crate) async fn start(app: &TestApp, owner: uuid::Uuid, extra: Value, x: Value) -> (String, String) {
    let graph = app.create_graph(owner, review_graph(extra)).await;
    assert_eq!(graph["has_human_in_the_loop"], true);
    let graph_id = id_of(&graph);
    let (status, queued) =
        app.post(&format!("/api/graphs/{graph_id}/execute/1"), owner, &json!({"inputs": {"x": x}})).await;
    assert_eq!(status, 200, "{queued}");
    (graph_id, queued["id"].as_str().unwrap().to_owned())
}

pub(crate) async fn status_becomes(
    app: &TestApp,
    owner: uuid::Uuid,
    graph_id: &str,
    run_id: &str,
    want: &str,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, run) = app.get(&format!("/api/graphs/{graph_id}/executions/{run_id}"), owner).await;
        if run["status"] == want {
            return run;
        }
        assert!(tokio::time::Instant::now() < deadline, "never {want}: {run}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_review_pauses_the_run_and_the_owners_edited_approval_resumes_it() {
    let app = spawn_app().await;
    let (owner, stranger) = (user(), user());
    let (graph_id, run_id) = start(&app, owner, json!({}), json!({"draft": "v1"})).await;
    let paused = status_becomes(&app, owner, &graph_id, &run_id, "REVIEW").await;
    let node = paused["node_executions"].as_array().unwrap().iter().find(|n| n["block_id"] == HITL).unwrap().clone();
    assert_eq!(node["status"], "REVIEW", "{paused}");
    let node_exec_id = node["node_exec_id"].as_str().unwrap();

    let (status, pending) = app.get("/api/review/pending", owner).await;
    assert_eq!(status, 200);
    let pending = pending.as_array().unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["node_exec_id"], node_exec_id);
    assert_eq!(pending[0]["graph_exec_id"], run_id.as_str());
    assert_eq!(pending[0]["payload"], json!({"draft": "v1"}));
    assert_eq!(pending[0]["instructions"], "Check the draft");
    assert_eq!(pending[0]["status"], "WAITING");
    assert_eq!(pending[0]["editable"], true);
    let (_, for_run) = app.get(&format!("/api/review/execution/{run_id}"), owner).await;
    assert_eq!(for_run.as_array().unwrap().len(), 1);

    // A stranger sees nothing and decides nothing.
    let (status, _) = app.get(&format!("/api/review/execution/{run_id}"), stranger).await;
    assert_eq!(status, 404);
    let (_, theirs) = app.get("/api/review/pending", stranger).await;
    assert_eq!(theirs, json!([]));
    let before = event_count(&app).await;
    let decide = |approved: bool| {
        json!({"reviews": [{"node_exec_id": node_exec_id, "approved": approved, "message": "looks good",
            "reviewed_data": {"draft": "v2"}}]})
    };
    let (status, body) = app.post("/api/review/action", stranger, &decide(true)).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(event_count(&app).await, before, "a refused decision appended");

    let (status, answer) = app.post("/api/review/action", owner, &decide(true)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"approved_count": 1, "rejected_count": 0, "failed_count": 0, "error": null}));
    let run = app.run_ended(owner, &graph_id, &run_id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "COMPLETED", "{run}");
    assert_eq!(run["outputs"]["approved"], json!([{"draft": "v2"}]), "the edited data went on");
    assert_eq!(run["outputs"]["note"], json!(["looks good"]));
    assert!(run["outputs"].get("rejected").is_none(), "{run}");
    let (_, pending) = app.get("/api/review/pending", owner).await;
    assert_eq!(pending, json!([]));
    let (status, _) = app.post("/api/review/action", owner, &decide(false)).await;
    assert_eq!(status, 404, "decided once");
}

#[tokio::test]
async fn a_rejection_routes_the_original_data_to_the_rejected_pin() {
    let app = spawn_app().await;
    let owner = user();
    let (graph_id, run_id) = start(&app, owner, json!({"editable": false}), json!("publish?")).await;
    status_becomes(&app, owner, &graph_id, &run_id, "REVIEW").await;
    let (_, pending) = app.get(&format!("/api/review/execution/{run_id}"), owner).await;
    let node_exec_id = pending[0]["node_exec_id"].clone();
    let body = json!({"reviews": [{"node_exec_id": node_exec_id, "approved": false, "reviewed_data": "ignored"}]});
    let (status, answer) = app.post("/api/review/action", owner, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["rejected_count"], 1);
    let run = app.run_ended(owner, &graph_id, &run_id, Duration::from_secs(20)).await;
    assert_eq!(run["outputs"]["rejected"], json!(["publish?"]), "{run}");
    assert!(run["outputs"].get("approved").is_none() && run["outputs"].get("note").is_none(), "{run}");
}

#[tokio::test]
async fn a_review_that_times_out_is_decided_by_its_timeout_action() {
    let app = spawn_app().await;
    let owner = user();
    let approve = json!({"timeout_seconds": 1, "timeout_action": "approve"});
    let (graph_id, run_id) = start(&app, owner, approve, json!("auto")).await;
    let run = app.run_ended(owner, &graph_id, &run_id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "COMPLETED", "{run}");
    assert_eq!(run["outputs"]["approved"], json!(["auto"]));
    assert_eq!(run["outputs"]["note"], json!(["The review timed out"]));

    let fail = json!({"timeout_seconds": 1, "timeout_action": "fail"});
    let (graph_id, run_id) = start(&app, owner, fail, json!("x")).await;
    let run = app.run_ended(owner, &graph_id, &run_id, Duration::from_secs(20)).await;
    let node = run["node_executions"].as_array().unwrap().iter().find(|n| n["block_id"] == HITL).unwrap();
    assert_eq!(node["status"], "FAILED", "{run}");
    assert!(node["output_data"]["error"][0].as_str().unwrap().contains("timed out"), "{run}");
}

#[tokio::test]
async fn stopping_a_run_in_review_terminates_it_and_closes_the_review() {
    let app = spawn_app().await;
    let owner = user();
    let (graph_id, run_id) = start(&app, owner, json!({}), json!(1)).await;
    status_becomes(&app, owner, &graph_id, &run_id, "REVIEW").await;
    let (status, _) = app.post(&format!("/api/graphs/{graph_id}/executions/{run_id}/stop"), owner, &json!({})).await;
    assert_eq!(status, 200);
    let run = app.run_ended(owner, &graph_id, &run_id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "TERMINATED", "{run}");
    let (_, pending) = app.get("/api/review/pending", owner).await;
    assert_eq!(pending, json!([]));
}
