//! (y) a recorded run replayed against the same run live (issue 23): the
//! 3-node agent AgentInput → AI text generator → AgentOutput, its model a
//! local OpenAI-compatible stub that answers after `BENCH_MODEL_MS`
//! (default 200 ms, a quick model's answer). 8 clients, each a user with the
//! agent and a WebSocket on its runs. Live: each loops `execute` → its
//! COMPLETED push. Replay: each runs the agent once live, then loops
//! `replay` of that run → its COMPLETED push, calling no model.

use std::time::{Duration, Instant};

use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::measure::{caught_up, measure, Settings, Stats};
use crate::runs::{start_with, Client};
use crate::{Res, WRITERS};

/// The live run and its replays.
pub struct Replayed {
    /// Runs per second, live.
    pub live: Stats,
    /// Replays per second.
    pub replay: Stats,
    /// The stub model's answer time.
    pub model: Duration,
}

fn agent() -> Value {
    json!({"graph": {
        "name": "asker", "description": "bench",
        "nodes": [
            {"id": "in", "block_id": "c0a8e994-ebf1-4a9c-a4d8-89d09c86741b", "input_default": {"name": "topic"}},
            {"id": "llm", "block_id": "1f292d4a-41a4-4977-9684-7c8d560b9f91", "input_default": {"model": "gpt-4o"}},
            {"id": "out", "block_id": "363ae599-353e-4804-937e-b2ee3cef3da4", "input_default": {"name": "answer"}}
        ],
        "links": [
            {"source_id": "in", "sink_id": "llm", "source_name": "result", "sink_name": "prompt"},
            {"source_id": "llm", "sink_id": "out", "source_name": "response", "sink_name": "value"}
        ]
    }})
}

/// A chat-completions stub answering every request after `delay`; its
/// base URL.
async fn model_stub(delay: Duration) -> Res<String> {
    let answer = move |Json(body): Json<Value>| async move {
        tokio::time::sleep(delay).await;
        let asked = body["messages"][0]["content"].as_str().unwrap_or_default().to_owned();
        Json(json!({
            "choices": [{"index": 0, "message": {"role": "assistant", "content": format!("about {asked}")}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 30},
        }))
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let app = Router::new().route("/v1/chat/completions", post(answer));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://127.0.0.1:{port}/v1"))
}

/// (y): the agent's runs per second live, then replayed, side by side.
pub async fn replay(settings: &Settings, url: &str) -> Res<Replayed> {
    let millis = std::env::var("BENCH_MODEL_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let model = Duration::from_millis(millis);
    let base_url = model_stub(model).await?;
    let (addr, auth, stop, server, state) = start_with(url, |config| {
        config.outbound.openai_base_url = base_url;
        config.outbound.openai_api_key = Some(api::config::Secret::new("sk-bench"));
        config.outbound.allow = "127.0.0.1/32".into();
    })
    .await?;
    caught_up(&state.projections, state.store(), "(y)").await?;
    let client = || {
        let auth = auth.clone();
        async move { Client::new(addr, &auth, &agent(), json!({"topic": "owls"})).await }
    };
    let live = measure(settings, WRITERS, |ctl| {
        let client = client();
        async move {
            let mut client = client.await?;
            let mut latencies = Vec::new();
            while ctl.running() {
                let started = Instant::now();
                let run = client.submitter.execute().await?;
                client.completed(&run).await?;
                ctl.done(started, &mut latencies);
            }
            Ok(latencies)
        }
    })
    .await?;
    let replay = measure(settings, WRITERS, |ctl| {
        let client = client();
        async move {
            let mut client = client.await?;
            let recorded = client.submitter.execute().await?;
            client.completed(&recorded).await?;
            let mut latencies = Vec::new();
            while ctl.running() {
                let started = Instant::now();
                let run = client.submitter.replay(&recorded).await?;
                client.completed(&run).await?;
                ctl.done(started, &mut latencies);
            }
            Ok(latencies)
        }
    })
    .await?;
    let _ = stop.send(());
    server.await??;
    Ok(Replayed { live, replay, model })
}
