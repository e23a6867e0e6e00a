//! Agents that do real work (issue 18, part 2): an LLM block against an
//! OpenAI-compatible stub and SendWebRequest against an echo, with stored
//! credentials, every answer recorded in the run's stream, the SSRF guard
//! in force, and a takeover that reuses what was answered before.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{fresh_database, serve, spawn_app_on, spawn_app_with, TestApp};
use crate::stubs::{EchoStub, ModelStub, Reply, COMPLETION_TOKENS, PROMPT_TOKENS};
use crate::support::{id_of, user};

pub(crate) const TEXT_GENERATOR: &str = "1f292d4a-41a4-4977-9684-7c8d560b9f91";
const SEND_WEB_REQUEST: &str = "6595ae1f-b924-42cb-9a41-551a0611c4b4";
const AGENT_INPUT: &str = "c0a8e994-ebf1-4a9c-a4d8-89d09c86741b";
const AGENT_OUTPUT: &str = "363ae599-353e-4804-937e-b2ee3cef3da4";
const KEY: &str = "sk-agent-test-9d8c7b6a5f4e3d2c1b0a";

/// AgentInput(topic) → AI text generator → SendWebRequest(echo) → AgentOutput(result).
pub(crate) fn agent_graph(echo_url: &str) -> Value {
    json!({
        "name": "researcher", "description": "asks a model, posts the answer",
        "nodes": [
            {"id": "in", "block_id": AGENT_INPUT, "input_default": {"name": "topic"}},
            {"id": "llm", "block_id": TEXT_GENERATOR, "input_default": {"model": "gpt-4o", "retry": 1}},
            {"id": "web", "block_id": SEND_WEB_REQUEST,
                "input_default": {"url": format!("{echo_url}/hook"), "method": "POST"}},
            {"id": "out", "block_id": AGENT_OUTPUT, "input_default": {"name": "result"}}
        ],
        "links": [
            {"source_id": "in", "sink_id": "llm", "source_name": "result", "sink_name": "prompt"},
            {"source_id": "llm", "sink_id": "web", "source_name": "response", "sink_name": "body"},
            {"source_id": "web", "sink_id": "out", "source_name": "response", "sink_name": "value"}
        ]
    })
}

pub(crate) async fn store_key(app: &TestApp, owner: uuid::Uuid) -> Value {
    let body = json!({"type": "api_key", "provider": "openai", "title": "stub", "api_key": KEY});
    let (status, created) = app.post("/api/integrations/openai/credentials", owner, &body).await;
    assert_eq!(status, 201, "{created}");
    json!({"id": created["id"], "provider": "openai", "type": "api_key", "title": "stub"})
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.expect(sql)
}

/// A model stub, an echo and a server calling them (loopback allowed).
pub(crate) async fn with_stubs() -> (ModelStub, EchoStub, TestApp) {
    let (model, echo) = (ModelStub::start().await, EchoStub::start().await);
    let base_url = model.base_url.clone();
    let app = spawn_app_with(|c| {
        c.outbound.openai_base_url = base_url;
        c.outbound.allow = "127.0.0.1/32".into();
    })
    .await;
    (model, echo, app)
}

fn node<'a>(run: &'a Value, block_id: &str) -> &'a Value {
    run["node_executions"].as_array().unwrap().iter().find(|n| n["block_id"] == block_id).expect("node execution")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_asks_a_model_with_stored_credentials_and_posts_the_answer() {
    let (model, echo, app) = with_stubs().await;
    let owner = user();
    let credentials = store_key(&app, owner).await;
    let graph = app.create_graph(owner, agent_graph(&echo.url)).await;
    let schema = &graph["credentials_input_schema"];
    assert_eq!(schema["required"], json!(["openai_api_key_credentials"]), "{schema}");
    assert_eq!(schema["properties"]["openai_api_key_credentials"]["credentials_provider"], json!(["openai"]));
    let graph_id = id_of(&graph);

    let body = json!({"inputs": {"topic": "owls"}, "credentials_inputs": {"openai_api_key_credentials": credentials}});
    let (status, queued) = app.post(&format!("/api/graphs/{graph_id}/execute/1"), owner, &body).await;
    assert_eq!(status, 200, "{queued}");
    let run_id = queued["id"].as_str().unwrap();
    let run = app.run_ended(owner, &graph_id, run_id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "COMPLETED", "{run}");
    let posted = &run["outputs"]["result"][0];
    assert_eq!(posted["method"], "POST", "{run}");
    assert_eq!(posted["path"], "/hook");
    let said = posted["body"].as_str().unwrap();
    assert!(said.starts_with("stub says:") && said.contains("owls"), "{said}");

    let asked = model.received();
    assert_eq!(asked.len(), 1, "one call to the model");
    assert_eq!(asked[0].header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    assert_eq!(asked[0].body["model"], "gpt-4o");
    assert_eq!(echo.received().len(), 1);
    let llm = node(&run, TEXT_GENERATOR);
    assert_eq!(llm["status"], "COMPLETED");
    assert_eq!(
        llm["stats"],
        json!({"llm_call_count": 1, "input_token_count": PROMPT_TOKENS, "output_token_count": COMPLETION_TOKENS})
    );
    assert_eq!(node(&run, SEND_WEB_REQUEST)["stats"], Value::Null, "no model call, no stats");

    // Both answers are in the run's stream; the key is nowhere in the log.
    assert_eq!(count(&app, "SELECT count(*) FROM events WHERE event_type = 'NodeEffectAnswered'").await, 2);
    assert_eq!(count(&app, &format!("SELECT count(*) FROM events WHERE data::text LIKE '%{KEY}%'")).await, 0);
}

#[tokio::test]
async fn a_run_naming_someone_elses_or_the_wrong_credentials_is_refused() {
    let echo = EchoStub::start().await;
    let app = spawn_app_with(|_| {}).await;
    let (owner, stranger) = (user(), user());
    let theirs = store_key(&app, stranger).await;
    let graph_id = id_of(&app.create_graph(owner, agent_graph(&echo.url)).await);
    let path = format!("/api/graphs/{graph_id}/execute/1");
    let named = |c: Value| json!({"inputs": {"topic": "x"}, "credentials_inputs": {"openai_api_key_credentials": c}});
    let (status, body) = app.post(&path, owner, &named(theirs)).await;
    assert_eq!(status, 400, "{body}");
    // Node ids are the server's: the one error is on the model's node.
    let errors: Vec<&Value> = body["detail"]["node_errors"].as_object().unwrap().values().collect();
    assert_eq!(errors, [&json!({"credentials": "Credentials not found"})], "{body}");
    let wrong = json!({"id": uuid::Uuid::new_v4(), "provider": "anthropic", "type": "api_key"});
    let (status, body) = app.post(&path, owner, &named(wrong)).await;
    assert_eq!(status, 400, "{body}");
    let error = body["detail"]["node_errors"].as_object().unwrap().values().next().unwrap()["credentials"].clone();
    assert_eq!(error, "Credentials must be openai api_key", "{body}");
    assert_eq!(count(&app, "SELECT count(*) FROM events WHERE event_type = 'ExecutionQueued'").await, 0);
}

#[tokio::test]
async fn a_model_call_without_any_key_fails_its_node_with_the_reason() {
    let (model, echo, app) = with_stubs().await;
    let owner = user();
    let graph_id = id_of(&app.create_graph(owner, agent_graph(&echo.url)).await);
    let body = json!({"inputs": {"topic": "owls"}});
    let (_, queued) = app.post(&format!("/api/graphs/{graph_id}/execute/1"), owner, &body).await;
    let run = app.run_ended(owner, &graph_id, queued["id"].as_str().unwrap(), Duration::from_secs(30)).await;
    let llm = node(&run, TEXT_GENERATOR);
    assert_eq!(llm["status"], "FAILED", "{run}");
    let error = llm["output_data"]["error"][0].as_str().unwrap();
    assert!(error.contains("API key"), "{error}");
    assert!(model.received().is_empty() && echo.received().is_empty());
}

#[tokio::test]
async fn the_ssrf_guard_refuses_loopback_unless_allowed_and_nothing_is_sent() {
    let echo = EchoStub::start().await;
    let app = spawn_app_with(|_| {}).await;
    let owner = user();
    let graph = json!({
        "name": "fetch", "description": "",
        "nodes": [
            {"id": "web", "block_id": SEND_WEB_REQUEST, "input_default": {"url": format!("{}/x", echo.url), "method": "GET"}},
            {"id": "out", "block_id": AGENT_OUTPUT, "input_default": {"name": "result"}}
        ],
        "links": [{"source_id": "web", "sink_id": "out", "source_name": "error", "sink_name": "value"}]
    });
    let graph_id = id_of(&app.create_graph(owner, graph).await);
    let (_, queued) = app.post(&format!("/api/graphs/{graph_id}/execute/1"), owner, &json!({})).await;
    let run = app.run_ended(owner, &graph_id, queued["id"].as_str().unwrap(), Duration::from_secs(30)).await;
    let web = node(&run, SEND_WEB_REQUEST);
    assert_eq!(web["status"], "FAILED", "{run}");
    let error = web["output_data"]["error"][0].as_str().unwrap().to_lowercase();
    assert!(error.contains("refused") && error.contains("127.0.0.1"), "{error}");
    assert!(echo.received().is_empty(), "a refused request reached the server");
    assert_eq!(run["outputs"]["result"].as_array().map(Vec::len), Some(1), "the error is routed like any output");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_takeover_reuses_the_answers_recorded_before_and_calls_the_model_once_more() {
    let (model, echo) = (ModelStub::start().await, EchoStub::start().await);
    // The first call fails (recorded, then retried), the retry hangs while
    // its worker is killed; the instance taking over calls once more.
    model.script([Reply::Status(500), Reply::Slow(Duration::from_secs(60), "never".into())]);
    let url = fresh_database().await;
    let env = [
        ("EXECUTOR_LEASE_MS", "1000"),
        ("OPENAI_BASE_URL", model.base_url.as_str()),
        ("OPENAI_API_KEY", KEY),
        ("OUTBOUND_ALLOW", "127.0.0.1/32"),
        ("OUTBOUND_RETRIES", "0"),
    ];
    let mut first = serve(&url, &env);
    let a = TestApp::at(first.port, url.clone()).await;
    let owner = user();
    let mut graph = agent_graph(&echo.url);
    graph["nodes"][1]["input_default"]["retry"] = json!(3);
    let graph_id = id_of(&a.create_graph(owner, graph).await);
    let (status, queued) =
        a.post(&format!("/api/graphs/{graph_id}/execute/1"), owner, &json!({"inputs": {"topic": "bats"}})).await;
    assert_eq!(status, 200, "{queued}");
    let run_id = queued["id"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while model.received().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "the retry never reached the model");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(&a, "SELECT count(*) FROM events WHERE event_type = 'NodeEffectAnswered'").await, 1);
    first.child.kill().expect("kill -9");
    first.child.wait().unwrap();

    let key = KEY.to_owned();
    let b = spawn_app_on(url, move |c| {
        c.executor_lease = Duration::from_millis(1000);
        c.outbound.openai_base_url = model.base_url.clone();
        c.outbound.openai_api_key = Some(api::config::Secret::new(key));
        c.outbound.allow = "127.0.0.1/32".into();
    })
    .await;
    let run = b.run_ended(owner, &graph_id, &run_id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "COMPLETED", "{run}");
    assert!(run["outputs"]["result"][0]["body"].as_str().unwrap().contains("bats"), "{run}");
    let answers: Vec<(i64, Value)> = sqlx::query_as(
        "SELECT (data->>'seq')::bigint, (data->'answer')::jsonb FROM events \
         WHERE event_type = 'NodeEffectAnswered' ORDER BY position",
    )
    .fetch_all(&b.pool)
    .await
    .unwrap();
    let llm_answers: Vec<&(i64, Value)> = answers.iter().filter(|(_, a)| a.get("body").is_none()).collect();
    assert_eq!(llm_answers.len(), 2, "{answers:?}");
    assert!(llm_answers[0].1.get("error").is_some(), "the failed call was recorded: {answers:?}");
    assert_eq!(llm_answers[1].0, 1, "the takeover went on from the recorded answer");
}

#[tokio::test]
async fn a_block_run_alone_calls_out_through_the_same_guarded_client() {
    let (_model, echo, app) = with_stubs().await;
    let owner = user();
    let body = json!({"url": format!("{}/direct", echo.url), "method": "PUT", "body": {"a": 1}});
    let (status, outputs) = app.post(&format!("/api/blocks/{SEND_WEB_REQUEST}/execute"), owner, &body).await;
    assert_eq!(status, 200, "{outputs}");
    assert_eq!(outputs["response"][0]["method"], "PUT");
    assert_eq!(outputs["response"][0]["body"], r#"{"a":1}"#);
    let (status, outputs) = app
        .post(
            &format!("/api/blocks/{SEND_WEB_REQUEST}/execute"),
            owner,
            &json!({"url": format!("{}/status/404", echo.url)}),
        )
        .await;
    assert_eq!(status, 200, "{outputs}");
    assert_eq!(outputs["client_error"][0]["path"], "/status/404");
    // The review block needs a run and a person.
    let (status, body) = app
        .post("/api/blocks/8b2a7b3c-6e9d-4a5f-8c1b-2e3f4a5b6c7d/execute", owner, &json!({"data": 1, "name": "n"}))
        .await;
    assert_eq!(status, 400, "{body}");
}
