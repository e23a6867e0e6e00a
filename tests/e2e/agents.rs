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
const COUNTDOWN: &str = "d67a9c52-5e4e-11e2-bcfd-0800200c9a71";
const STRUCTURED_RESPONSE: &str = "ed55ac19-356e-4243-a6cb-bc599e9b716f";
const CONVERSATION: &str = "32a87eab-381e-4dd4-bdb8-4c47151be35a";
const SEND_AUTHENTICATED_WEB_REQUEST: &str = "fff86bcd-e001-4bad-a7f6-2eae4720c8dc";
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

    // The model's price at the start (gpt-4o: 3) and, once it answered, its
    // 18 tokens at the default 1 credit per 1,000, rounded up: 1.
    let tokens = PROMPT_TOKENS + COMPLETION_TOKENS;
    let charged = format!(
        "SELECT count(*) FROM events WHERE event_type = 'TokensCharged' \
         AND (data->>'tokens')::bigint = {tokens} AND (data->>'amount')::bigint = 1"
    );
    assert_eq!(count(&app, &charged).await, 1, "the tokens charged once, with their answer");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, balance) = app.get("/api/credits", owner).await;
        if balance["credits"] == 1500 - 3 - 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{balance}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_sends_its_key_unlogged_and_one_whose_key_was_deleted_fails_loudly() {
    let (model, echo) = (ModelStub::start().await, EchoStub::start().await);
    let url = fresh_database().await;
    let env = [("RUST_LOG", "debug"), ("OPENAI_BASE_URL", model.base_url.as_str()), ("OUTBOUND_ALLOW", "127.0.0.1/32")];
    let mut server = serve(&url, &env);
    let app = TestApp::at(server.port, url.clone()).await;
    let owner = user();
    let credentials = store_key(&app, owner).await;
    // A pause before the model: time to delete the key under a queued run.
    let mut graph = agent_graph(&echo.url);
    graph["nodes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "wait", "block_id": COUNTDOWN, "input_default": {"seconds": 1}}));
    graph["links"][0] =
        json!({"source_id": "in", "sink_id": "wait", "source_name": "result", "sink_name": "input_message"});
    graph["links"]
        .as_array_mut()
        .unwrap()
        .push(json!({"source_id": "wait", "sink_id": "llm", "source_name": "output_message", "sink_name": "prompt"}));
    let graph_id = id_of(&app.create_graph(owner, graph).await);
    let path = format!("/api/graphs/{graph_id}/execute/1");
    let body = json!({"inputs": {"topic": "moths"}, "credentials_inputs": {"openai_api_key_credentials": credentials}});

    let (_, queued) = app.post(&path, owner, &body).await;
    let run = app.run_ended(owner, &graph_id, queued["id"].as_str().unwrap(), Duration::from_secs(30)).await;
    assert_eq!(run["status"], "COMPLETED", "{run}");
    assert_eq!(model.received()[0].header("authorization"), Some(format!("Bearer {KEY}").as_str()), "the key was sent");

    let (status, queued) = app.post(&path, owner, &body).await;
    assert_eq!(status, 200, "{queued}");
    let id = credentials["id"].as_str().unwrap();
    let (status, deleted) = app.delete(&format!("/api/integrations/openai/credentials/{id}"), owner).await;
    assert_eq!(status, 200, "{deleted}");
    let run = app.run_ended(owner, &graph_id, queued["id"].as_str().unwrap(), Duration::from_secs(30)).await;
    let llm = node(&run, TEXT_GENERATOR);
    assert_eq!(llm["status"], "FAILED", "{run}");
    let error = llm["output_data"]["error"][0].as_str().unwrap_or_default();
    assert!(error.contains(&format!("Credentials {id} could not be used")), "a loud error, never an empty key: {run}");
    assert_eq!(model.received().len(), 1, "nothing was sent without the key");

    let _ = server.child.kill();
    let _ = server.child.wait();
    let logged: Vec<String> = server.lines.try_iter().collect();
    assert!(logged.iter().any(|l| l.contains("credential could not be opened")), "the failure is logged: {logged:?}");
    assert!(!logged.iter().any(|l| l.contains(KEY)), "the key is in the server's log");
}

#[tokio::test]
async fn host_scoped_headers_reach_their_host_and_an_echo_of_them_is_recorded_masked() {
    let (_model, echo, app) = with_stubs().await;
    let owner = user();
    let token = "hst-4b1d9e0f7a2c6e8d";
    let body = json!({"type": "host_scoped", "provider": "http", "host": "127.0.0.1", "title": "echo",
        "headers": {"X-Api-Token": token}});
    let (status, created) = app.post("/api/integrations/http/credentials", owner, &body).await;
    assert_eq!(status, 201, "{created}");
    let credential = json!({"id": created["id"], "provider": "http", "type": "host_scoped", "title": "echo"});
    let graph = json!({
        "name": "authenticated", "description": "",
        "nodes": [
            {"id": "web", "block_id": SEND_AUTHENTICATED_WEB_REQUEST,
                "input_default": {"url": format!("{}/private", echo.url), "method": "GET"}},
            {"id": "out", "block_id": AGENT_OUTPUT, "input_default": {"name": "result"}}
        ],
        "links": [{"source_id": "web", "sink_id": "out", "source_name": "response", "sink_name": "value"}]
    });
    let graph = app.create_graph(owner, graph).await;
    let fields: Vec<String> =
        graph["credentials_input_schema"]["properties"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(fields.len(), 1, "{graph}");
    let graph_id = id_of(&graph);
    let body = json!({"credentials_inputs": {fields[0].clone(): credential}});
    let (status, queued) = app.post(&format!("/api/graphs/{graph_id}/execute/1"), owner, &body).await;
    assert_eq!(status, 200, "{queued}");
    let run = app.run_ended(owner, &graph_id, queued["id"].as_str().unwrap(), Duration::from_secs(30)).await;
    assert_eq!(run["status"], "COMPLETED", "{run}");
    let received = echo.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].header("x-api-token"), Some(token), "the header reached its host");
    // The echo sent it back; the run recorded it masked.
    assert_eq!(run["outputs"]["result"][0]["headers"]["x-api-token"], "**********", "{run}");
    assert_eq!(count(&app, &format!("SELECT count(*) FROM events WHERE data::text LIKE '%{token}%'")).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_sealed_under_an_encryption_key_open_only_under_it_or_with_it_named_old() {
    let (model, echo) = (ModelStub::start().await, EchoStub::start().await);
    let url = fresh_database().await;
    let (first, second) = ("11".repeat(32), "22".repeat(32));
    let base = [("OPENAI_BASE_URL", model.base_url.as_str()), ("OUTBOUND_ALLOW", "127.0.0.1/32")];
    let with = |keys: &[(&'static str, &str)]| serve(&url, &[&base[..], keys].concat());
    let owner = user();
    let mut sealing = with(&[("ENCRYPTION_KEY", &first)]);
    let app = TestApp::at(sealing.port, url.clone()).await;
    let credentials = store_key(&app, owner).await;
    let graph_id = id_of(&app.create_graph(owner, agent_graph(&echo.url)).await);
    let _ = sealing.child.kill();
    let _ = sealing.child.wait();
    let path = format!("/api/graphs/{graph_id}/execute/1");
    let body = json!({"inputs": {"topic": "keys"}, "credentials_inputs": {"openai_api_key_credentials": credentials}});
    let run_under = |keys: Vec<(&'static str, String)>| {
        let (url, path, body) = (url.clone(), path.clone(), body.clone());
        let graph_id = graph_id.clone();
        let keys: Vec<(&str, String)> = keys;
        async move {
            let env: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let mut server = serve(&url, &[&base[..], &env].concat());
            let app = TestApp::at(server.port, url.clone()).await;
            let (status, queued) = app.post(&path, owner, &body).await;
            assert_eq!(status, 200, "{queued}");
            let run = app.run_ended(owner, &graph_id, queued["id"].as_str().unwrap(), Duration::from_secs(30)).await;
            let _ = server.child.kill();
            let _ = server.child.wait();
            run
        }
    };

    // Another key alone cannot open it: the node fails loudly.
    let run = run_under(vec![("ENCRYPTION_KEY", second.clone())]).await;
    let llm = node(&run, TEXT_GENERATOR);
    assert_eq!(llm["status"], "FAILED", "{run}");
    assert!(llm["output_data"]["error"][0].as_str().unwrap().contains("could not be used"), "{run}");
    assert!(model.received().is_empty(), "nothing was sent");
    // The new key with the first named old: it opens.
    let run = run_under(vec![("ENCRYPTION_KEY", second.clone()), ("ENCRYPTION_OLD_KEYS", first.clone())]).await;
    assert_eq!(run["status"], "COMPLETED", "{run}");
    assert_eq!(model.received()[0].header("authorization"), Some(format!("Bearer {KEY}").as_str()));

    // A key that is no key stops the server at its start, saying which.
    let output = std::process::Command::new(crate::helpers::BIN)
        .arg("serve")
        .env("DATABASE_URL", &url)
        .env("PORT", "0")
        .env("HOST", "127.0.0.1")
        .env("ENCRYPTION_KEY", "not-a-key")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("ENCRYPTION_KEY"), "{output:?}");
}

#[tokio::test]
async fn a_conversation_feeds_a_structured_response_and_both_ask_the_model_with_the_stored_key() {
    let (model, _echo, app) = with_stubs().await;
    model.script([
        Reply::Slow(Duration::ZERO, "Ada Lovelace wrote it.".into()),
        Reply::Tagged(json!({"name": "Ada Lovelace", "born": "1815"})),
    ]);
    let owner = user();
    let credentials = store_key(&app, owner).await;
    let graph = json!({
        "name": "who", "description": "a conversation, then its answer as fields",
        "nodes": [
            {"id": "talk", "block_id": CONVERSATION, "input_default": {"model": "gpt-4o",
                "messages": [{"role": "user", "content": "Who wrote the first program?"}]}},
            {"id": "fields", "block_id": STRUCTURED_RESPONSE, "input_default": {"model": "gpt-4o",
                "expected_format": {"name": "their name", "born": "the year they were born"}}},
            {"id": "said", "block_id": AGENT_OUTPUT, "input_default": {"name": "said"}},
            {"id": "person", "block_id": AGENT_OUTPUT, "input_default": {"name": "person"}}
        ],
        "links": [
            {"source_id": "talk", "sink_id": "fields", "source_name": "response", "sink_name": "prompt"},
            {"source_id": "talk", "sink_id": "said", "source_name": "response", "sink_name": "value"},
            {"source_id": "fields", "sink_id": "person", "source_name": "response", "sink_name": "value"}
        ]
    });
    let graph = app.create_graph(owner, graph).await;
    let graph_id = id_of(&graph);
    let body = json!({"credentials_inputs": {"openai_api_key_credentials": credentials}});
    let (status, queued) = app.post(&format!("/api/graphs/{graph_id}/execute/1"), owner, &body).await;
    assert_eq!(status, 200, "{queued}");
    let run = app.run_ended(owner, &graph_id, queued["id"].as_str().unwrap(), Duration::from_secs(30)).await;
    assert_eq!(run["status"], "COMPLETED", "{run}");
    assert_eq!(run["outputs"]["said"], json!(["Ada Lovelace wrote it."]), "{run}");
    assert_eq!(run["outputs"]["person"], json!([{"name": "Ada Lovelace", "born": "1815"}]), "{run}");
    let asked = model.received();
    assert_eq!(asked.len(), 2);
    assert!(asked.iter().all(|a| a.header("authorization") == Some(format!("Bearer {KEY}").as_str())));
    assert_eq!(asked[0].body["messages"], json!([{"role": "user", "content": "Who wrote the first program?"}]));
    let instructions = asked[1].body["messages"][0]["content"].as_str().unwrap();
    assert!(instructions.contains("\"born\": \"the year they were born\""), "{instructions}");
    assert!(asked[1].body["messages"].to_string().contains("Ada Lovelace wrote it."), "the prompt came along the link");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_never_answers_holds_up_only_its_own_run() {
    let (model, echo, app) = with_stubs().await;
    model.script([Reply::Slow(Duration::from_secs(60), "too late".into())]);
    let (owner, other) = (user(), user());
    let credentials = store_key(&app, owner).await;
    let graph_id = id_of(&app.create_graph(owner, agent_graph(&echo.url)).await);
    let body = json!({"inputs": {"topic": "slow"}, "credentials_inputs": {"openai_api_key_credentials": credentials}});
    let (status, hung) = app.post(&format!("/api/graphs/{graph_id}/execute/1"), owner, &body).await;
    assert_eq!(status, 200, "{hung}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while model.received().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the model was never asked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // While that call waits on the model, other runs go through, each in
    // well under the call's minute: the wait blocks no runtime thread.
    let quick = id_of(&app.create_graph(other, crate::helpers::echo_graph()).await);
    for n in 0..5 {
        let (status, queued) =
            app.post(&format!("/api/graphs/{quick}/execute/1"), other, &json!({"inputs": {"n": n}})).await;
        assert_eq!(status, 200, "{queued}");
        let run = app.run_ended(other, &quick, queued["id"].as_str().unwrap(), Duration::from_secs(10)).await;
        assert_eq!(run["outputs"]["echo"], json!([n]), "{run}");
    }
    let (_, still) =
        app.get(&format!("/api/graphs/{graph_id}/executions/{}", hung["id"].as_str().unwrap()), owner).await;
    assert_eq!(still["status"], "RUNNING", "{still}");
}
