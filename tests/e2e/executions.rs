//! Running graphs over HTTP: a run is queued, a worker runs it to its end,
//! and the run's read model shows every node execution and the outputs.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{blocks, greeting_graph, sample_graph, send, spawn_app, TestApp};
use crate::support::{admin_request, event_count, events_of_type, id_of, user};

const COUNTDOWN: &str = "d67a9c52-5e4e-11e2-bcfd-0800200c9a71";

async fn execute(app: &TestApp, owner: Uuid, graph_id: &str, inputs: Value) -> (u16, Value) {
    app.post(&format!("/api/graphs/{graph_id}/execute/1"), owner, &json!({ "inputs": inputs })).await
}

/// Poll the run until it has ended (bounded).
async fn ended(app: &TestApp, owner: Uuid, graph_id: &str, run_id: &str) -> Value {
    app.run_ended(owner, graph_id, run_id, Duration::from_secs(15)).await
}

#[tokio::test]
async fn the_greeting_graph_runs_to_its_output() {
    let app = spawn_app().await;
    let owner = user();
    let graph_id = id_of(&app.create_graph(owner, greeting_graph()).await);
    let (status, queued) = execute(&app, owner, &graph_id, json!({"name": "World"})).await;
    assert_eq!(status, 200, "{queued}");
    assert_eq!(queued["status"], "QUEUED");
    assert_eq!(queued["graph_version"], 1);
    assert_eq!(queued["inputs"], json!({"name": "World"}));
    let run_id = queued["id"].as_str().expect("run id").to_owned();

    let run = ended(&app, owner, &graph_id, &run_id).await;
    assert_eq!(run["status"], "COMPLETED", "{run}");
    assert_eq!(run["outputs"], json!({"greeting": ["Hello, World!"]}));
    let nodes = run["node_executions"].as_array().expect("node executions");
    assert_eq!(nodes.len(), 3, "{run}");
    assert!(nodes.iter().all(|n| n["status"] == "COMPLETED"), "{run}");
    let template = nodes.iter().find(|n| n["block_id"] == blocks::FILL_TEMPLATE).unwrap();
    assert_eq!(template["output_data"], json!({"output": ["Hello, World!"]}));
    assert_eq!(template["input_data"]["values"], json!({"name": "World"}));
    assert_eq!(run["stats"]["node_exec_count"], 3);
    assert!(run["started_at"].is_string() && run["ended_at"].is_string());
    assert_eq!(events_of_type(&app, "ExecutionStarted").await, 1, "claimed once");

    let (_, all) = app.get("/api/executions", owner).await;
    assert_eq!(all.as_array().map(Vec::len), Some(1), "{all}");
    let (_, page) = app.get(&format!("/api/graphs/{graph_id}/executions?page=1&page_size=10"), owner).await;
    assert_eq!(page["executions"][0]["id"], run_id.as_str());
    assert_eq!(page["pagination"]["total_items"], 1);
}

#[tokio::test]
async fn autogpts_sample_graph_prints_the_filled_template() {
    let app = spawn_app().await;
    let owner = user();
    let mut graph = sample_graph("sample");
    graph["nodes"][2]["input_default"] = json!({"format": "{{a}}, {{b}}{{c}}", "values_#_c": "!!!"});
    let graph_id = id_of(&app.create_graph(owner, graph).await);
    let (status, queued) = execute(&app, owner, &graph_id, json!({})).await;
    assert_eq!(status, 200, "{queued}");
    let run = ended(&app, owner, &graph_id, queued["id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "COMPLETED", "{run}");
    let nodes = run["node_executions"].as_array().unwrap();
    let print = nodes.iter().find(|n| n["block_id"] == blocks::PRINT).expect("print ran");
    assert_eq!(print["output_data"], json!({"output": ["Hello, World!!!"], "status": ["printed"]}));
    let template = nodes.iter().find(|n| n["block_id"] == blocks::FILL_TEMPLATE).unwrap();
    assert_eq!(template["input_data"]["values"], json!({"c": "!!!", "a": "Hello", "b": "World"}));
}

#[tokio::test]
async fn a_stopped_run_ends_terminated_and_a_second_stop_answers_null() {
    let app = spawn_app().await;
    let owner = user();
    let graph = json!({
        "name": "slow", "description": "waits",
        "nodes": [{"id": "t", "block_id": COUNTDOWN, "input_default": {"seconds": 30}}],
        "links": []
    });
    let graph_id = id_of(&app.create_graph(owner, graph).await);
    let (_, queued) = execute(&app, owner, &graph_id, json!({})).await;
    let run_id = queued["id"].as_str().unwrap().to_owned();
    // Let the worker start the countdown.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, run) = app.get(&format!("/api/graphs/{graph_id}/executions/{run_id}"), owner).await;
        if run["node_executions"][0]["status"] == "RUNNING" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never started: {run}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stop = format!("/api/graphs/{graph_id}/executions/{run_id}/stop");
    let (status, stopped) = app.post(&stop, owner, &json!({})).await;
    assert_eq!(status, 200, "{stopped}");
    assert_eq!(stopped["status"], "TERMINATED");
    let run = ended(&app, owner, &graph_id, &run_id).await;
    assert_eq!(run["status"], "TERMINATED");
    assert_eq!(run["node_executions"][0]["status"], "TERMINATED");
    let (status, again) = app.post(&stop, owner, &json!({})).await;
    assert_eq!((status, again), (200, Value::Null));
    // The worker gave up at its next look: nothing more was appended.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(events_of_type(&app, "NodeOutputProduced").await, 0);
}

#[tokio::test]
async fn runs_are_refused_when_inputs_are_missing_and_hidden_from_other_users() {
    let app = spawn_app().await;
    let owner = user();
    let graph = json!({
        "name": "needs input", "description": "",
        "nodes": [{"id": "s", "block_id": blocks::STORE_VALUE}],
        "links": []
    });
    let graph_id = id_of(&app.create_graph(owner, graph).await);
    let (status, body) = execute(&app, owner, &graph_id, json!({})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["detail"]["type"], "validation_error", "AutoGPT's structured detail: {body}");
    assert!(body["detail"]["message"].is_string(), "{body}");
    let node_errors = &body["detail"]["node_errors"];
    assert!(node_errors.as_object().is_some_and(|e| e.values().any(|f| f.get("input").is_some())), "{body}");
    assert_eq!(&body["node_errors"], node_errors, "the house shape keeps node_errors at the top too: {body}");
    assert_eq!(events_of_type(&app, "ExecutionQueued").await, 0, "a refused run appends nothing");

    let greeting = id_of(&app.create_graph(owner, greeting_graph()).await);
    let (_, queued) = execute(&app, owner, &greeting, json!({"name": "x"})).await;
    let run_id = queued["id"].as_str().unwrap();
    let stranger = user();
    let (status, _) = app.get(&format!("/api/graphs/{greeting}/executions/{run_id}"), stranger).await;
    assert_eq!(status, 404);
    let (status, _) = execute(&app, stranger, &greeting, json!({})).await;
    assert_eq!(status, 404, "another user's graph cannot be run");
    let (status, _) = app.get(&format!("/api/graphs/{graph_id}/executions/{run_id}"), owner).await;
    assert_eq!(status, 404, "the run belongs to another graph");
    let (status, body) = send(app.request(Method::POST, &format!("/api/graphs/{greeting}/execute/x"), owner)).await;
    assert_eq!(status, 422, "{body}");
}

#[tokio::test]
async fn operators_see_the_executor_in_the_admin_route_and_metrics() {
    let app = spawn_app().await;
    let owner = user();
    let graph_id = id_of(&app.create_graph(owner, greeting_graph()).await);
    let (_, queued) = execute(&app, owner, &graph_id, json!({"name": "ops"})).await;
    ended(&app, owner, &graph_id, queued["id"].as_str().unwrap()).await;
    let admin = user();
    let (status, report) = send(admin_request(&app, Method::GET, "/api/admin/projections", admin)).await;
    assert_eq!(status, 200, "{report}");
    let executor = &report["executor"];
    assert_eq!(executor["finished_here"], 1, "{report}");
    assert_eq!((executor["queued"].as_i64(), executor["running"].as_i64()), (Some(0), Some(0)), "{report}");
    assert!(executor["last_error"].is_null(), "{report}");
    assert!(report["projections"].as_array().unwrap().iter().any(|p| p["name"] == "executions"));
    let metrics = admin_request(&app, Method::GET, "/metrics", admin).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("executor_finished_here 1"), "{metrics}");
    assert!(metrics.contains("executor_queued_runs 0"), "{metrics}");
}

#[tokio::test]
async fn a_shared_run_is_public_until_unshared_and_a_deleted_one_is_gone() {
    let app = spawn_app().await;
    let owner = user();
    let graph_id = id_of(&app.create_graph(owner, greeting_graph()).await);
    let (_, queued) = execute(&app, owner, &graph_id, json!({"name": "share"})).await;
    let run_id = queued["id"].as_str().unwrap().to_owned();
    ended(&app, owner, &graph_id, &run_id).await;
    let share = format!("/api/graphs/{graph_id}/executions/{run_id}/share");
    let (status, shared) = app.post(&share, owner, &json!({})).await;
    assert_eq!(status, 200, "{shared}");
    let token = shared["share_token"].as_str().expect("token").to_owned();
    assert_eq!(shared["share_url"], format!("/share/{token}"));
    let (_, again) = app.post(&share, owner, &json!({})).await;
    assert_eq!(again["share_token"], token.as_str(), "sharing twice keeps the token");
    let public = format!("/api/public/shared/{token}");
    let (status, seen) = send(app.anonymous(Method::GET, &public)).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["graph_name"], "greeting");
    assert_eq!(seen["outputs"], json!({"greeting": ["Hello, share!"]}));
    let (_, meta) = app.get(&format!("/api/graphs/{graph_id}/executions/{run_id}"), owner).await;
    assert_eq!((meta["is_shared"].as_bool(), meta["share_token"].as_str()), (Some(true), Some(token.as_str())));
    let (status, _) = app.delete(&share, owner).await;
    assert_eq!(status, 204);
    let (status, _) = send(app.anonymous(Method::GET, &public)).await;
    assert_eq!(status, 404, "unshared");

    let (status, _) = app.delete(&format!("/api/executions/{run_id}"), user()).await;
    assert_eq!(status, 404, "only the owner deletes");
    let (status, _) = app.delete(&format!("/api/executions/{run_id}"), owner).await;
    assert_eq!(status, 204);
    let (status, _) = app.get(&format!("/api/graphs/{graph_id}/executions/{run_id}"), owner).await;
    assert_eq!(status, 404);
    let (_, all) = app.get("/api/executions", owner).await;
    assert_eq!(all, json!([]));
}

#[tokio::test]
async fn one_block_runs_on_its_own_and_answers_its_outputs_by_pin() {
    let app = spawn_app().await;
    let caller = user();
    let path = format!("/api/blocks/{}/execute", blocks::FILL_TEMPLATE);
    let (status, body) = app.post(&path, caller, &json!({"values": {"a": "x"}, "format": "<{{a}}>"})).await;
    assert_eq!((status, body), (200, json!({"output": ["<x>"]})));
    let step = "f66a3543-28d3-4ab5-8945-9b336371e2ce";
    let (_, body) = app.post(&format!("/api/blocks/{step}/execute"), caller, &json!({"items": ["a", "b"]})).await;
    assert_eq!(body, json!({"item": ["a", "b"], "key": [0, 1]}));
    let (status, body) = app.post(&path, caller, &json!({"values": {}, "format": "{% if %}"})).await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = app.post("/api/blocks/nope/execute", caller, &json!({})).await;
    assert_eq!(status, 404);
    assert_eq!(events_of_type(&app, "ExecutionQueued").await, 0, "nothing is recorded");
}

#[tokio::test]
async fn rebuilding_the_read_models_runs_nothing_again_and_charges_nothing_again() {
    let app = spawn_app().await;
    let owner = user();
    let graph_id = id_of(&app.create_graph(owner, greeting_graph()).await);
    let (_, queued) = execute(&app, owner, &graph_id, json!({"name": "again"})).await;
    let run_id = queued["id"].as_str().unwrap().to_owned();
    let before = ended(&app, owner, &graph_id, &run_id).await;
    let counts = |app: &TestApp| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_as::<_, (String, i64)>("SELECT event_type, count(*) FROM events GROUP BY 1 ORDER BY 1")
                .fetch_all(&pool)
                .await
                .unwrap()
        }
    };
    let logged = counts(&app).await;
    let rebuilt = std::process::Command::new(crate::helpers::BIN)
        .args(["projections", "rebuild", "--all"])
        .env("DATABASE_URL", &app.url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(rebuilt.status.success(), "{}", String::from_utf8_lossy(&rebuilt.stderr));
    // Give the executor a few looks at the rebuilt read model.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(counts(&app).await, logged, "no event was appended by the rebuild");
    let (_, after) = app.get(&format!("/api/graphs/{graph_id}/executions/{run_id}"), owner).await;
    assert_eq!(after["status"], "COMPLETED");
    assert_eq!(after["outputs"], before["outputs"]);
    assert_eq!(after["node_executions"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn branches_of_a_run_run_side_by_side() {
    let app = spawn_app().await;
    let owner = user();
    let graph = json!({
        "name": "two waits", "description": "",
        "nodes": [
            {"id": "a", "block_id": COUNTDOWN, "input_default": {"seconds": 1, "input_message": "a"}},
            {"id": "b", "block_id": COUNTDOWN, "input_default": {"seconds": 1, "input_message": "b"}}
        ],
        "links": []
    });
    let graph_id = id_of(&app.create_graph(owner, graph).await);
    let (_, queued) = execute(&app, owner, &graph_id, json!({})).await;
    let run = ended(&app, owner, &graph_id, queued["id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "COMPLETED", "{run}");
    let time = |n: &Value, field: &str| chrono::DateTime::parse_from_rfc3339(n[field].as_str().unwrap()).unwrap();
    let nodes = run["node_executions"].as_array().unwrap();
    let (a, b) = (&nodes[0], &nodes[1]);
    // Each waited a second; the two waits overlapped.
    assert!(time(a, "start_time") < time(b, "end_time") && time(b, "start_time") < time(a, "end_time"), "{run}");
}

#[tokio::test]
async fn information_persisted_by_one_agent_is_retrieved_by_another_across_agents_only() {
    const PERSIST: &str = "1d055e55-a2b9-4547-8311-907d05b0304d";
    const RETRIEVE: &str = "d8710fc9-6e29-481e-a7d5-165eb16f8471";
    let app = spawn_app().await;
    let owner = user();
    let writer = json!({
        "name": "writer", "description": "",
        "nodes": [
            {"id": "s", "block_id": blocks::STORE_VALUE, "input_default": {"input": "42"}},
            {"id": "p", "block_id": PERSIST, "input_default": {"key": "answer", "scope": "across_agents"}},
            {"id": "q", "block_id": PERSIST, "input_default": {"key": "answer", "scope": "within_agent", "value": "mine"}}
        ],
        "links": [{"source_id": "s", "sink_id": "p", "source_name": "output", "sink_name": "value"}]
    });
    let writer_id = id_of(&app.create_graph(owner, writer).await);
    let (_, queued) = execute(&app, owner, &writer_id, json!({})).await;
    assert_eq!(ended(&app, owner, &writer_id, queued["id"].as_str().unwrap()).await["status"], "COMPLETED");

    let reader = json!({
        "name": "reader", "description": "",
        "nodes": [
            {"id": "g", "block_id": RETRIEVE, "input_default": {"key": "answer", "scope": "across_agents"}},
            {"id": "l", "block_id": RETRIEVE, "input_default": {"key": "answer", "scope": "within_agent", "default_value": "none"}},
            {"id": "o1", "block_id": blocks::AGENT_OUTPUT, "input_default": {"name": "global"}},
            {"id": "o2", "block_id": blocks::AGENT_OUTPUT, "input_default": {"name": "local"}}
        ],
        "links": [
            {"source_id": "g", "sink_id": "o1", "source_name": "value", "sink_name": "value"},
            {"source_id": "l", "sink_id": "o2", "source_name": "value", "sink_name": "value"}
        ]
    });
    let reader_id = id_of(&app.create_graph(owner, reader.clone()).await);
    let (_, queued) = execute(&app, owner, &reader_id, json!({})).await;
    let run = ended(&app, owner, &reader_id, queued["id"].as_str().unwrap()).await;
    assert_eq!(run["outputs"], json!({"global": ["42"], "local": ["none"]}), "{run}");
    // Another user's agents see nothing of it.
    let stranger = user();
    let theirs = id_of(&app.create_graph(stranger, reader).await);
    let (_, queued) = execute(&app, stranger, &theirs, json!({})).await;
    let run = ended(&app, stranger, &theirs, queued["id"].as_str().unwrap()).await;
    assert_eq!(run["outputs"]["global"], json!([null]), "{run}");
}

#[tokio::test]
async fn a_share_token_is_random_and_a_retry_with_its_key_answers_the_same_one() {
    let app = spawn_app().await;
    let owner = user();
    let graph_id = id_of(&app.create_graph(owner, greeting_graph()).await);
    let (_, queued) = execute(&app, owner, &graph_id, json!({"name": "token"})).await;
    let run_id = queued["id"].as_str().unwrap().to_owned();
    ended(&app, owner, &graph_id, &run_id).await;
    let share = format!("/api/graphs/{graph_id}/executions/{run_id}/share");
    let keyed = |key: &'static str| {
        send(app.request(Method::POST, &share, owner).header("Idempotency-Key", key).json(&json!({})))
    };
    let token_of = |body: &Value| Uuid::parse_str(body["share_token"].as_str().unwrap_or_default()).expect("a uuid");

    let (status, first) = keyed("share-key").await;
    assert_eq!(status, 200, "{first}");
    let token = token_of(&first);
    assert_eq!(token.get_version_num(), 4, "random, not derived: {token}");
    for scope in [owner, Uuid::nil()] {
        assert_ne!(token, Uuid::new_v5(&scope, b"share/share-key"), "not derived from the user and the key");
    }
    let (status, again) = keyed("share-key").await;
    assert_eq!((status, token_of(&again)), (200, token), "a retry with the key answers the same token");

    // Unshared, then the key's record gone: sharing again with the same key
    // makes a token nobody could have known before.
    let (status, body) = app.delete(&share, owner).await;
    assert_eq!(status, 204, "{body}");
    sqlx::query("DELETE FROM idempotency_keys WHERE key = 'share-key'").execute(&app.pool).await.unwrap();
    let (status, second) = keyed("share-key").await;
    assert_eq!(status, 200, "{second}");
    let fresh = token_of(&second);
    assert_ne!(fresh, token, "a new share, a new token");
    assert_eq!(fresh.get_version_num(), 4);
    let (status, seen) = send(app.anonymous(Method::GET, &format!("/api/public/shared/{fresh}"))).await;
    assert_eq!(status, 200, "the answered token is the one the log holds: {seen}");
    let (status, _) = send(app.anonymous(Method::GET, &format!("/api/public/shared/{token}"))).await;
    assert_eq!(status, 404, "the old token is gone");
    let (status, again) = keyed("share-key").await;
    assert_eq!((status, token_of(&again)), (200, fresh));
    assert_eq!(events_of_type(&app, "ExecutionShared").await, 2);
}

#[tokio::test]
async fn stopping_or_sharing_a_run_under_another_graphs_id_is_404_and_appends_nothing() {
    let app = crate::helpers::spawn_app_with(|c| c.executor_workers = 0).await;
    let owner = user();
    let graph_id = id_of(&app.create_graph(owner, greeting_graph()).await);
    let other_graph = id_of(&app.create_graph(owner, greeting_graph()).await);
    let (_, queued) = execute(&app, owner, &graph_id, json!({"name": "mismatch"})).await;
    let run_id = queued["id"].as_str().unwrap().to_owned();
    let under = |graph: &str, what: &str| format!("/api/graphs/{graph}/executions/{run_id}/{what}");

    let events = event_count(&app).await;
    let (status, body) = app.post(&under(&other_graph, "stop"), owner, &json!({})).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = app.post(&under(&other_graph, "share"), owner, &json!({})).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(event_count(&app).await, events, "nothing appended");

    let (status, shared) = app.post(&under(&graph_id, "share"), owner, &json!({})).await;
    assert_eq!(status, 200, "{shared}");
    let events = event_count(&app).await;
    let (status, body) = app.delete(&under(&other_graph, "share"), owner).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(event_count(&app).await, events, "nothing appended");
    let public = format!("/api/public/shared/{}", shared["share_token"].as_str().unwrap());
    assert_eq!(send(app.anonymous(Method::GET, &public)).await.0, 200, "still shared");

    let (status, stopped) = app.post(&under(&graph_id, "stop"), owner, &json!({})).await;
    assert_eq!((status, stopped["status"].as_str()), (200, Some("TERMINATED")), "{stopped}");
}

/// The run's events, each with the transaction (commit) that appended it.
async fn run_commits(app: &TestApp, run_id: &str) -> Vec<(i64, String)> {
    sqlx::query_as("SELECT tx_id, event_type FROM events WHERE stream_id = $1 ORDER BY version")
        .bind(format!("execution-{run_id}"))
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_run_of_blocks_that_finish_at_once_is_claimed_and_ended_in_one_commit_and_a_wait_is_started_first() {
    let app = spawn_app().await;
    let owner = user();
    let graph_id = id_of(&app.create_graph(owner, greeting_graph()).await);
    let (_, queued) = execute(&app, owner, &graph_id, json!({"name": "World"})).await;
    let run_id = queued["id"].as_str().unwrap().to_owned();
    let run = ended(&app, owner, &graph_id, &run_id).await;
    assert_eq!(run["outputs"], json!({"greeting": ["Hello, World!"]}), "{run}");
    let events = run_commits(&app, &run_id).await;
    let commits: std::collections::BTreeSet<i64> = events.iter().map(|(tx, _)| *tx).collect();
    assert_eq!(commits.len(), 2, "the queuing, then the rest at once: {events:?}");
    let started = events.iter().filter(|(_, t)| t == "NodeExecutionStarted").count();
    let ended_nodes = events.iter().filter(|(_, t)| t == "NodeExecutionEnded").count();
    assert_eq!((started, ended_nodes), (3, 3), "every node still starts and ends: {events:?}");
    // Each node's start comes before its values, in the one commit.
    let types: Vec<&str> = events.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(types.last(), Some(&"ExecutionEnded"), "{types:?}");

    // A block that waits runs in a task: its start is committed before it
    // ends, in a commit of its own.
    let graph = json!({"name": "wait", "description": "", "nodes": [
        {"id": "w", "block_id": COUNTDOWN, "input_default": {"seconds": 1, "input_message": "w"}}], "links": []});
    let graph_id = id_of(&app.create_graph(owner, graph).await);
    let (_, queued) = execute(&app, owner, &graph_id, json!({})).await;
    let run_id = queued["id"].as_str().unwrap().to_owned();
    let run = ended(&app, owner, &graph_id, &run_id).await;
    assert_eq!(run["status"], "COMPLETED", "{run}");
    let events = run_commits(&app, &run_id).await;
    let tx_of = |kind: &str| events.iter().find(|(_, t)| t == kind).map(|(tx, _)| *tx).unwrap();
    assert!(tx_of("NodeExecutionStarted") < tx_of("NodeExecutionEnded"), "{events:?}");
}
