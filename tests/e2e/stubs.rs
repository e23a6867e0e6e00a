//! Stub servers the tests point the platform at, on loopback: an
//! OpenAI-compatible chat-completions API and an HTTP echo. They record
//! what they were sent, so a test sees what left the platform.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::routing::{any, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// What a stub answers a chat completion with.
#[derive(Debug, Clone)]
pub enum Reply {
    /// This content after a pause.
    Slow(Duration, String),
    /// An error status with a short body.
    Status(u16),
    /// This JSON inside the `<json_output id="…">` tag the request's
    /// instructions name, as a structured-response block asks.
    Tagged(Value),
}

/// One request a stub received: its headers (lower-case names) and body.
#[derive(Debug, Clone)]
pub struct Received {
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// The JSON body.
    pub body: Value,
}

impl Received {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct ModelState {
    received: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Reply>>,
}

/// An OpenAI-compatible model server: answers scripted replies in order,
/// then `"stub says: <last user message>"`, with fixed token counts.
#[derive(Clone)]
pub struct ModelStub {
    /// `http://127.0.0.1:<port>/v1`: what `OPENAI_BASE_URL` is set to.
    pub base_url: String,
    state: Arc<ModelState>,
}

/// Tokens the stub reports for every prompt and answer.
pub const PROMPT_TOKENS: u64 = 11;
/// Tokens the stub reports for every answer.
pub const COMPLETION_TOKENS: u64 = 7;

impl ModelStub {
    /// Start one on a free loopback port.
    pub async fn start() -> Self {
        let state = Arc::new(ModelState::default());
        let app = Router::new().route("/v1/chat/completions", post(complete)).with_state(state.clone());
        let port = listen(app).await;
        Self { base_url: format!("http://127.0.0.1:{port}/v1"), state }
    }

    /// Answer the next completions with these replies, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.script.lock().unwrap().extend(replies);
    }

    /// What it received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }
}

async fn complete(
    State(state): State<Arc<ModelState>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (axum::http::StatusCode, Json<Value>) {
    let last_user = body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_owned();
    // The instructions as text, quotes unescaped, to find a tag in.
    let asked = body["messages"].to_string().replace("\\\"", "\"");
    state.received.lock().unwrap().push(Received { headers: pairs(&headers), body });
    let reply = state.script.lock().unwrap().pop_front();
    let content = match reply {
        Some(Reply::Slow(wait, text)) => {
            tokio::time::sleep(wait).await;
            text
        }
        Some(Reply::Status(code)) => {
            let status =
                axum::http::StatusCode::from_u16(code).unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
            return (status, Json(json!({"error": {"message": "stub failure"}})));
        }
        Some(Reply::Tagged(value)) => {
            let tag = asked.find("<json_output id=").map_or("<json_output>", |at| {
                let rest = &asked[at..];
                &rest[..=rest.find('>').unwrap_or(rest.len() - 1)]
            });
            format!("Here it is: {tag}{value}</json_output>")
        }
        None => format!("stub says: {last_user}"),
    };
    let answer = Json(json!({
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "model": "stub",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS},
    }));
    (axum::http::StatusCode::OK, answer)
}

/// An HTTP echo: any method and path is answered 200 with
/// `{method, path, headers, body}` (the body as text), except `/status/<n>`
/// which answers status n.
#[derive(Clone)]
pub struct EchoStub {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl EchoStub {
    /// Start one on a free loopback port.
    pub async fn start() -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new().fallback(any(echo)).with_state(received.clone());
        let port = listen(app).await;
        Self { url: format!("http://127.0.0.1:{port}"), received }
    }

    /// What it received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

async fn echo(
    State(received): State<Arc<Mutex<Vec<Received>>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> (axum::http::StatusCode, Json<Value>) {
    let headers = pairs(&headers);
    received.lock().unwrap().push(Received { headers: headers.clone(), body: Value::String(body.clone()) });
    let status = uri
        .path()
        .strip_prefix("/status/")
        .and_then(|s| s.parse::<u16>().ok())
        .and_then(|s| axum::http::StatusCode::from_u16(s).ok())
        .unwrap_or(axum::http::StatusCode::OK);
    let headers: serde_json::Map<String, Value> = headers.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    (status, Json(json!({"method": method.as_str(), "path": uri.path(), "headers": headers, "body": body})))
}

fn pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())).collect()
}

async fn listen(app: Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a stub");
    let port = listener.local_addr().expect("stub address").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}
