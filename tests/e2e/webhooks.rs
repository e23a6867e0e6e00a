//! Webhook-triggered presets (issue 18, part 3): a preset set up on a graph
//! with a webhook trigger, and a "webhook sender" (this test's client)
//! delivering signed payloads to its ingress. Each delivery id starts one
//! run, however often and however concurrently it is delivered.

use std::time::Duration;

use commands::services::webhook_signature;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{blocks, send, spawn_app, TestApp};
use crate::support::{assert_error, event_count, events_of_type, user};

const TRIGGER: &str = "8fa8c167-2002-47ce-aba8-97572fc5d387";

/// Trigger(payload) → AgentOutput(payload).
fn triggered_graph() -> Value {
    json!({
        "name": "on delivery", "description": "",
        "nodes": [
            {"id": "hook", "block_id": TRIGGER},
            {"id": "out", "block_id": blocks::AGENT_OUTPUT, "input_default": {"name": "payload"}}
        ],
        "links": [{"source_id": "hook", "sink_id": "out", "source_name": "payload", "sink_name": "value"}]
    })
}

/// A triggered preset of a fresh triggered graph of `owner`.
struct Trigger {
    graph_id: String,
    preset: Value,
    webhook_id: String,
    secret: String,
}

impl Trigger {
    async fn set_up(app: &TestApp, owner: Uuid) -> Self {
        let graph = app.create_graph(owner, triggered_graph()).await;
        let graph_id = graph["id"].as_str().unwrap().to_owned();
        let body = json!({"name": "on hook", "graph_id": graph_id, "graph_version": 1,
            "trigger_config": {"constants": {"source": "test"}}});
        let (status, preset) = app.post("/api/library/presets/setup-trigger", owner, &body).await;
        assert_eq!(status, 200, "{preset}");
        let webhook_id = preset["webhook_id"].as_str().expect("webhook_id").to_owned();
        let secret = preset["webhook"]["secret"].as_str().expect("the secret, this once").to_owned();
        Self { graph_id, preset, webhook_id, secret }
    }

    fn ingress(&self) -> String {
        format!("/api/integrations/generic_webhook/webhooks/{}/ingress", self.webhook_id)
    }

    /// Deliver `body` signed with `secret`, naming `delivery_id` if given.
    async fn deliver_as(&self, app: &TestApp, secret: &str, body: &str, delivery_id: Option<&str>) -> (u16, Value) {
        let mut request = app
            .anonymous(Method::POST, &self.ingress())
            .header("content-type", "application/json")
            .header("x-webhook-signature", webhook_signature(secret, body.as_bytes()))
            .body(body.to_owned());
        if let Some(id) = delivery_id {
            request = request.header("x-delivery-id", id);
        }
        send(request).await
    }

    async fn deliver(&self, app: &TestApp, body: &str, delivery_id: Option<&str>) -> (u16, Value) {
        self.deliver_as(app, &self.secret, body, delivery_id).await
    }
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.expect(sql)
}

#[tokio::test]
async fn a_signed_delivery_starts_one_run_that_outputs_its_payload() {
    let app = spawn_app().await;
    let owner = user();
    let trigger = Trigger::set_up(&app, owner).await;
    let (_, graph) = app.get(&format!("/api/graphs/{}", trigger.graph_id), owner).await;
    assert_eq!(graph["has_external_trigger"], true);
    assert_eq!(graph["trigger_setup_info"]["provider"], "generic_webhook");
    assert_eq!(graph["trigger_setup_info"]["credentials_input_name"], Value::Null);

    let webhook = &trigger.preset["webhook"];
    assert_eq!(trigger.secret.len(), 64, "32 random bytes in hex");
    assert_eq!(
        (webhook["provider"].as_str(), webhook["webhook_type"].as_str()),
        (Some("generic_webhook"), Some("plain"))
    );
    assert!(webhook["url"].as_str().unwrap().ends_with(&trigger.ingress()), "{webhook}");
    assert_eq!(trigger.preset["inputs"], json!({"constants": {"source": "test"}}));
    let preset_id = trigger.preset["id"].as_str().unwrap().to_owned();
    let (status, read) = app.get(&format!("/api/library/presets/{preset_id}"), owner).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["webhook_id"].as_str(), Some(trigger.webhook_id.as_str()));
    assert_eq!(read["webhook"]["secret"], "**********", "shown once, at setup");
    let (_, page) = app.get(&format!("/api/library/presets?graph_id={}", trigger.graph_id), owner).await;
    assert_eq!(page["presets"][0]["webhook"]["id"].as_str(), Some(trigger.webhook_id.as_str()));

    let (status, answer) = trigger.deliver(&app, r#"{"message": "Hello, World!"}"#, Some("evt-1")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!((answer["delivery_id"].as_str(), answer["duplicate"].as_bool()), (Some("evt-1"), Some(false)));
    let run_id = answer["graph_exec_id"].as_str().expect("a run").to_owned();
    let run = app.run_ended(owner, &trigger.graph_id, &run_id, Duration::from_secs(20)).await;
    assert_eq!(run["status"], "COMPLETED", "{run}");
    assert_eq!(run["outputs"], json!({"payload": [{"message": "Hello, World!"}]}));
    assert_eq!(run["preset_id"].as_str(), Some(preset_id.as_str()));

    let secret_in_log = format!("SELECT count(*) FROM events WHERE data::text LIKE '%{}%'", trigger.secret);
    assert_eq!(count(&app, &secret_in_log).await, 0, "the webhook's secret is in the log");
    assert_eq!(events_of_type(&app, "WebhookCreated").await, 1);
    assert_eq!(events_of_type(&app, "WebhookDeliveryAccepted").await, 1);
}

#[tokio::test]
async fn bad_or_missing_signatures_and_bad_deliveries_are_refused_and_start_nothing() {
    let app = spawn_app().await;
    let trigger = Trigger::set_up(&app, user()).await;
    let before = event_count(&app).await;
    let body = r#"{"message": "hi"}"#;

    let unsigned = app.anonymous(Method::POST, &trigger.ingress()).body(body);
    let (status, answer) = send(unsigned).await;
    assert_eq!(status, 401, "{answer}");
    assert_error(&answer, "unauthorized");
    let (status, _) = trigger.deliver_as(&app, "not-the-secret", body, Some("a")).await;
    assert_eq!(status, 401);
    let forged = app
        .anonymous(Method::POST, &trigger.ingress())
        .header("x-webhook-signature", webhook_signature(&trigger.secret, b"{\"message\": \"other\"}"))
        .body(body);
    assert_eq!(send(forged).await.0, 401, "a signature of another body");
    let garbled =
        app.anonymous(Method::POST, &trigger.ingress()).header("x-webhook-signature", "sha256=xyz").body(body);
    assert_eq!(send(garbled).await.0, 401);

    let elsewhere = trigger.ingress().replace("generic_webhook", "github");
    let (status, answer) = send(app.anonymous(Method::POST, &elsewhere).body(body)).await;
    assert_eq!(status, 404, "{answer}");
    assert_error(&answer, "not_found");
    let unknown = format!("/api/integrations/generic_webhook/webhooks/{}/ingress", Uuid::new_v4());
    assert_eq!(send(app.anonymous(Method::POST, &unknown).body(body)).await.0, 404);

    let (status, answer) = trigger.deliver(&app, "not json", Some("b")).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(trigger.deliver(&app, "[1, 2]", Some("c")).await.0, 422, "a payload is a JSON object");
    assert_eq!(trigger.deliver(&app, body, Some("has space")).await.0, 422, "a malformed delivery id");
    let large = format!(r#"{{"blob": "{}"}}"#, "x".repeat(1 << 20));
    let (status, answer) = trigger.deliver(&app, &large, Some("d")).await;
    assert_eq!(status, 413, "{answer}");

    assert_eq!(event_count(&app).await, before, "a refused delivery appends nothing");
}

#[tokio::test]
async fn concurrent_deliveries_of_one_id_start_one_run_and_distinct_ids_distinct_runs() {
    let app = spawn_app().await;
    let owner = user();
    let trigger = Trigger::set_up(&app, owner).await;
    let body = r#"{"n": 1}"#;

    let answers = futures_util::future::join_all((0..20).map(|_| trigger.deliver(&app, body, Some("same-id")))).await;
    let runs: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|(status, answer)| {
            assert_eq!(*status, 200, "{answer}");
            answer["graph_exec_id"].as_str().expect("the run").to_owned()
        })
        .collect();
    assert_eq!(runs.len(), 1, "every answer names the one run");
    let fresh = answers.iter().filter(|(_, a)| a["duplicate"] == false).count();
    assert_eq!(fresh, 1, "exactly one answer started it: {answers:?}");
    assert_eq!(events_of_type(&app, "ExecutionQueued").await, 1);
    let (_, again) = trigger.deliver(&app, body, Some("same-id")).await;
    assert_eq!(
        (again["graph_exec_id"].as_str(), again["duplicate"].as_bool()),
        (runs.first().map(String::as_str), Some(true))
    );

    let distinct =
        futures_util::future::join_all(["a", "b", "c"].map(|id| trigger.deliver(&app, body, Some(id)))).await;
    let mut distinct_runs: Vec<&str> = distinct.iter().map(|(_, a)| a["graph_exec_id"].as_str().unwrap()).collect();
    distinct_runs.sort();
    distinct_runs.dedup();
    assert_eq!(distinct_runs.len(), 3, "{distinct:?}");
    assert!(!distinct_runs.contains(&runs.first().unwrap().as_str()));

    // Without a delivery id, the body's hash names the delivery.
    let (_, first) = trigger.deliver(&app, r#"{"n": 2}"#, None).await;
    let (_, second) = trigger.deliver(&app, r#"{"n": 2}"#, None).await;
    assert_eq!(first["graph_exec_id"], second["graph_exec_id"]);
    assert_eq!(second["duplicate"], true);
    assert_eq!(events_of_type(&app, "ExecutionQueued").await, 5);
    for run in distinct_runs {
        let ended = app.run_ended(owner, &trigger.graph_id, run, Duration::from_secs(20)).await;
        assert_eq!(ended["outputs"], json!({"payload": [{"n": 1}]}));
    }
}

#[tokio::test]
async fn ping_works_for_the_owner_and_is_not_found_for_anyone_else() {
    let app = spawn_app().await;
    let (owner, stranger) = (user(), user());
    let trigger = Trigger::set_up(&app, owner).await;
    let ping = format!("/api/integrations/webhooks/{}/ping", trigger.webhook_id);
    assert_eq!(app.post(&ping, owner, &json!({})).await, (200, json!(true)));
    let (status, answer) = app.post(&ping, stranger, &json!({})).await;
    assert_eq!(status, 404, "{answer}");
    assert_error(&answer, "not_found");
    assert_eq!(send(app.anonymous(Method::POST, &ping)).await.0, 401);
    let unknown = format!("/api/integrations/webhooks/{}/ping", Uuid::new_v4());
    assert_eq!(app.post(&unknown, owner, &json!({})).await.0, 404);
    assert_eq!(events_of_type(&app, "WebhookPinged").await, 1);
}

#[tokio::test]
async fn setup_needs_one_trigger_in_a_graph_of_the_callers_and_deleting_the_preset_ends_the_webhook() {
    let app = spawn_app().await;
    let (owner, stranger) = (user(), user());
    let plain = app.create_graph(owner, crate::helpers::echo_graph()).await;
    let before = event_count(&app).await;
    let body = |graph_id: &Value| json!({"name": "t", "graph_id": graph_id, "graph_version": 1, "trigger_config": {}});
    let (status, answer) = app.post("/api/library/presets/setup-trigger", owner, &body(&plain["id"])).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["detail"].as_str().unwrap().contains("does not have a webhook node"), "{answer}");
    let (status, _) = app.post("/api/library/presets/setup-trigger", stranger, &body(&plain["id"])).await;
    assert_eq!(status, 404);
    let missing = json!({"name": "t", "graph_id": plain["id"], "graph_version": 1});
    assert_eq!(app.post("/api/library/presets/setup-trigger", owner, &missing).await.0, 422);
    assert_eq!(event_count(&app).await, before, "a refused setup appends nothing");

    let trigger = Trigger::set_up(&app, owner).await;
    let preset_id = trigger.preset["id"].as_str().unwrap();
    assert_eq!(app.delete(&format!("/api/library/presets/{preset_id}"), stranger).await.0, 404);
    assert_eq!(app.delete(&format!("/api/library/presets/{preset_id}"), owner).await.0, 204);
    let (status, answer) = trigger.deliver(&app, "{}", Some("late")).await;
    assert_eq!(status, 410, "{answer}");
    let ping = format!("/api/integrations/webhooks/{}/ping", trigger.webhook_id);
    assert_eq!(app.post(&ping, owner, &json!({})).await.0, 404);
    assert_eq!(events_of_type(&app, "WebhookDeleted").await, 1);
    let key = format!("SELECT count(*) FROM credential_keys WHERE credential_id = '{}'", trigger.webhook_id);
    assert_eq!(count(&app, &key).await, 0, "the secret's key is destroyed");
}
