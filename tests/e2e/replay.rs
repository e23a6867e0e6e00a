//! Replay and fork (issue 23): a replay re-runs every block on the answers
//! its recording holds (no call out, no charge) and outputs what the
//! original did; a fork re-runs the nodes upstream of its node so and runs
//! the rest live; a replay on a changed graph says where it diverged; the
//! timeline shows each step; only the owner (or an admin) may do any of it.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::agents::{agent_graph, store_key, with_stubs, TEXT_GENERATOR};
use crate::helpers::{send, TestApp};
use crate::support::{admin_request, assert_error, event_count, user};

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.expect(sql)
}

/// Charges of every kind in the log.
async fn charges(app: &TestApp) -> i64 {
    count(app, "SELECT count(*) FROM events WHERE event_type IN ('NodeExecutionCharged', 'TokensCharged')").await
}

/// The id of the graph's node running `block_id`.
fn node_of(graph: &Value, block_id: &str) -> String {
    let nodes = graph["nodes"].as_array().expect("nodes");
    nodes.iter().find(|n| n["block_id"] == block_id).expect("node")["id"].as_str().unwrap().to_owned()
}

/// Run the researcher agent once with stored credentials; answers the
/// graph, the body that ran it, and the ended run.
async fn recorded_run(app: &TestApp, owner: uuid::Uuid, echo_url: &str) -> (Value, Value, Value) {
    let credentials = store_key(app, owner).await;
    let graph = app.create_graph(owner, agent_graph(echo_url)).await;
    let graph_id = graph["id"].as_str().unwrap().to_owned();
    let body = json!({"inputs": {"topic": "owls"}, "credentials_inputs": {"openai_api_key_credentials": credentials}});
    let (status, queued) = app.post(&format!("/api/graphs/{graph_id}/execute/1"), owner, &body).await;
    assert_eq!(status, 200, "{queued}");
    let run = app.run_ended(owner, &graph_id, queued["id"].as_str().unwrap(), Duration::from_secs(30)).await;
    assert_eq!(run["status"], "COMPLETED", "{run}");
    (graph, body, run)
}

async fn ended(app: &TestApp, owner: uuid::Uuid, graph_id: &str, queued: &Value) -> Value {
    app.run_ended(owner, graph_id, queued["id"].as_str().expect("a queued run"), Duration::from_secs(30)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_calls_nothing_charges_nothing_and_outputs_exactly_what_the_original_did() {
    let (model, echo, app) = with_stubs().await;
    let (owner, stranger) = (user(), user());
    let (graph, _, original) = recorded_run(&app, owner, &echo.url).await;
    let graph_id = graph["id"].as_str().unwrap();
    let original_id = original["id"].as_str().unwrap();
    let (calls, posts, charged) = (model.received().len(), echo.received().len(), charges(&app).await);
    assert_eq!((calls, posts), (1, 1));

    // Nobody else may replay it, or read its steps; nothing is appended.
    let before = event_count(&app).await;
    let replay_path = format!("/api/graphs/{graph_id}/executions/{original_id}/replay");
    let timeline_path = |run: &str| format!("/api/graphs/{graph_id}/executions/{run}/timeline");
    let (status, body) = app.post(&replay_path, stranger, &json!({})).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(app.get(&timeline_path(original_id), stranger).await.0, 404);
    assert_eq!(event_count(&app).await, before);

    let (status, queued) = app.post(&replay_path, owner, &json!({})).await;
    assert_eq!(status, 200, "{queued}");
    let replay = ended(&app, owner, graph_id, &queued).await;
    assert_eq!(replay["status"], "COMPLETED", "{replay}");
    assert_eq!(
        serde_json::to_string(&replay["outputs"]).unwrap(),
        serde_json::to_string(&original["outputs"]).unwrap(),
        "byte-equal outputs"
    );
    assert_eq!((model.received().len(), echo.received().len()), (calls, posts), "nothing was called");
    assert_eq!(charges(&app).await, charged, "nothing was charged");
    let replay_id = replay["id"].as_str().unwrap();
    let said = format!(
        "SELECT count(*) FROM events WHERE stream_id = 'execution-{replay_id}' \
         AND event_type = 'ExecutionQueued' AND data->'replay'->>'execution_id' = '{original_id}'"
    );
    assert_eq!(count(&app, &said).await, 1, "the replay's queuing names the run it replays");

    // The timelines: the original live and charged, the replay recorded.
    let (status, live) = app.get(&timeline_path(original_id), owner).await;
    assert_eq!(status, 200, "{live}");
    let steps = live["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 4, "{live}");
    assert!(steps.iter().all(|s| s["recorded"] == false && s["status"] == "COMPLETED"), "{live}");
    let model_step = steps.iter().find(|s| s["block_id"] == TEXT_GENERATOR).unwrap();
    assert_eq!(model_step["cost"], 3 + 1, "gpt-4o's price and 18 tokens: {model_step}");
    assert_eq!(model_step["calls"].as_array().unwrap().len(), 1);
    assert!(model_step["calls"][0]["answer"]["content"].as_str().unwrap().contains("owls"), "{model_step}");
    assert!(!live.to_string().contains("sk-agent-test"), "no secret in a timeline");
    let (_, recorded) = app.get(&timeline_path(replay_id), owner).await;
    assert_eq!(recorded["replayed_from"], original_id);
    let steps = recorded["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 4, "{recorded}");
    assert!(steps.iter().all(|s| s["recorded"] == true && s["cost"] == 0), "{recorded}");
    // An admin reads anyone's timeline.
    let (status, _) = send(admin_request(&app, Method::GET, &timeline_path(replay_id), user())).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_from_the_middle_node_makes_exactly_the_calls_downstream_of_it() {
    let (model, echo, app) = with_stubs().await;
    let owner = user();
    let (graph, _, original) = recorded_run(&app, owner, &echo.url).await;
    let graph_id = graph["id"].as_str().unwrap();
    let original_id = original["id"].as_str().unwrap();
    let web = node_of(&graph, "6595ae1f-b924-42cb-9a41-551a0611c4b4");
    let fork_path = format!("/api/graphs/{graph_id}/executions/{original_id}/fork");

    let before = event_count(&app).await;
    let (status, body) = app.post(&fork_path, owner, &json!({"node_id": "no-such-node"})).await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = app.post(&fork_path, owner, &json!({"inputs": {}})).await;
    assert_eq!(status, 422, "a fork names its node: {body}");
    assert_eq!(event_count(&app).await, before, "a refused fork appends nothing");

    let (status, queued) = app.post(&fork_path, owner, &json!({"node_id": web, "inputs": {"body": "forked"}})).await;
    assert_eq!(status, 200, "{queued}");
    let fork = ended(&app, owner, graph_id, &queued).await;
    assert_eq!(fork["status"], "COMPLETED", "{fork}");
    assert_eq!(model.received().len(), 1, "the model upstream was not asked again");
    let posted = echo.received();
    assert_eq!(posted.len(), 2, "the web request downstream ran live once");
    assert_eq!(posted[1].body, "forked");
    assert_eq!(fork["outputs"]["result"][0]["body"], "forked", "{fork}");

    let (_, timeline) =
        app.get(&format!("/api/graphs/{graph_id}/executions/{}/timeline", fork["id"].as_str().unwrap()), owner).await;
    assert_eq!(timeline["forked_at"], web.as_str());
    // The forked node had every input it needs, so it started at once.
    let recorded = |block: &str| {
        let steps = timeline["steps"].as_array().unwrap();
        steps.iter().find(|s| s["block_id"] == block).expect("a step")["recorded"].clone()
    };
    assert_eq!(recorded("c0a8e994-ebf1-4a9c-a4d8-89d09c86741b"), true, "input recorded: {timeline}");
    assert_eq!(recorded(TEXT_GENERATOR), true, "model recorded");
    assert_eq!(recorded("6595ae1f-b924-42cb-9a41-551a0611c4b4"), false, "request live");
    assert_eq!(recorded("363ae599-353e-4804-937e-b2ee3cef3da4"), false, "output live");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_on_a_changed_graph_version_says_at_which_node_it_diverged() {
    let (model, echo, app) = with_stubs().await;
    let owner = user();
    let (graph, _, original) = recorded_run(&app, owner, &echo.url).await;
    let graph_id = graph["id"].as_str().unwrap();
    let original_id = original["id"].as_str().unwrap();
    // Version 2 asks the model differently.
    let mut changed = agent_graph(&echo.url);
    changed["nodes"][1]["input_default"]["sys_prompt"] = json!("Answer in one word.");
    let (status, v2) = app.put(&format!("/api/graphs/{graph_id}"), owner, &changed).await;
    assert_eq!((status, v2["version"].clone()), (200, json!(2)), "{v2}");
    let llm = node_of(&v2, TEXT_GENERATOR);

    let path = format!("/api/graphs/{graph_id}/executions/{original_id}/replay");
    let (status, queued) = app.post(&path, owner, &json!({"graph_version": 2})).await;
    assert_eq!(status, 200, "{queued}");
    let replay = ended(&app, owner, graph_id, &queued).await;
    assert_eq!(replay["status"], "FAILED", "{replay}");
    let error = replay["stats"]["error"].as_str().unwrap_or_default();
    assert!(error.starts_with(&format!("Replay diverged at node {llm}")), "{replay}");
    assert_eq!(model.received().len(), 1, "a diverged replay calls nothing");
    let (_, timeline) =
        app.get(&format!("/api/graphs/{graph_id}/executions/{}/timeline", replay["id"].as_str().unwrap()), owner).await;
    assert_eq!(timeline["diverged"]["node_id"], llm.as_str(), "{timeline}");
    assert!(timeline["diverged"]["reason"].as_str().unwrap().contains("input"), "{timeline}");
    assert_eq!(timeline["steps"][0]["recorded"], true, "the unchanged input node replayed: {timeline}");

    // The same version replays to the end; a version that does not exist is 404.
    let (_, queued) = app.post(&path, owner, &json!({"graph_version": 1})).await;
    assert_eq!(ended(&app, owner, graph_id, &queued).await["status"], "COMPLETED");
    let (status, body) = app.post(&path, owner, &json!({"graph_version": 9})).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = app.post(&path, owner, &json!({"graph_version": "two"})).await;
    assert_eq!(status, 422, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_still_going_cannot_be_replayed() {
    let (model, echo, app) = with_stubs().await;
    model.script([crate::stubs::Reply::Slow(Duration::from_secs(30), "late".into())]);
    let owner = user();
    let credentials = store_key(&app, owner).await;
    let graph = app.create_graph(owner, agent_graph(&echo.url)).await;
    let graph_id = graph["id"].as_str().unwrap();
    let body = json!({"inputs": {"topic": "x"}, "credentials_inputs": {"openai_api_key_credentials": credentials}});
    let (_, queued) = app.post(&format!("/api/graphs/{graph_id}/execute/1"), owner, &body).await;
    let run_id = queued["id"].as_str().unwrap();
    let (status, body) =
        app.post(&format!("/api/graphs/{graph_id}/executions/{run_id}/replay"), owner, &json!({})).await;
    assert_eq!(status, 409, "{body}");
    assert_error(&body, "conflict");
    assert_eq!(
        count(&app, "SELECT count(*) FROM events WHERE event_type = 'ExecutionQueued'").await,
        1,
        "no replay queued"
    );
    let (status, _) = app.post(&format!("/api/graphs/{graph_id}/executions/{run_id}/stop"), owner, &json!({})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_reviewed_run_replays_its_decision_without_waiting_for_a_person_and_an_admin_may_replay_it() {
    let app = crate::helpers::spawn_app().await;
    let owner = user();
    let (graph_id, run_id) = crate::reviews::start(&app, owner, json!({}), json!({"draft": "v1"})).await;
    crate::reviews::status_becomes(&app, owner, &graph_id, &run_id, "REVIEW").await;
    let (_, pending) = app.get(&format!("/api/review/execution/{run_id}"), owner).await;
    let node_exec_id = pending[0]["node_exec_id"].clone();
    let decision = json!({"reviews": [{"node_exec_id": node_exec_id, "approved": true, "message": "fine",
        "reviewed_data": {"draft": "v2"}}]});
    assert_eq!(app.post("/api/review/action", owner, &decision).await.0, 200);
    let original = app.run_ended(owner, &graph_id, &run_id, Duration::from_secs(20)).await;
    assert_eq!(original["outputs"]["approved"], json!([{"draft": "v2"}]), "{original}");

    // An admin replays the owner's run; the replay is the owner's.
    let path = format!("/api/graphs/{graph_id}/executions/{run_id}/replay");
    let (status, queued) = send(admin_request(&app, Method::POST, &path, user()).json(&json!({}))).await;
    assert_eq!(status, 200, "{queued}");
    assert_eq!(queued["user_id"], owner.to_string());
    let replay = ended(&app, owner, &graph_id, &queued).await;
    assert_eq!(replay["status"], "COMPLETED", "the recorded decision, no pause: {replay}");
    assert_eq!(replay["outputs"], original["outputs"]);
    let (_, pending) = app.get("/api/review/pending", owner).await;
    assert_eq!(pending, json!([]), "nobody is asked again");
}
