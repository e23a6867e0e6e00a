//! The WebSocket hub at `/ws`, speaking AutoGPT's protocol (reference §6):
//! subscribe to one run (`<uid>|graph_exec#E`) or to every run of a graph
//! (`<uid>|graph#G|executions`), unsubscribe, heartbeat. A user only ever
//! receives pushes of its own runs. Beyond AutoGPT: each push carries the
//! `token` of its event, and a subscription to a run may name the last one
//! seen (`data.after`): the missed events are sent from the log first, then
//! live ones, with nothing twice.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use domain::aggregate::{stream_name, Aggregate};
use domain::execution::{ExecutionEvent, GraphExecution};
use eventlog::codec::decode;
use eventlog::ConsistencyToken;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use super::bus::{Push, PushKind};
use super::relay::pushes;
use crate::error::ApiError;
use crate::extract::Query;
use crate::state::AppState;

/// Close codes of AutoGPT's hub, and ours for a subscriber too far behind.
const MISSING_TOKEN: u16 = 4001;
const NO_SUBJECT: u16 = 4002;
const INVALID_TOKEN: u16 = 4003;
const TOO_SLOW: u16 = 4008;

/// `/ws`.
pub fn router() -> Router<AppState> {
    Router::new().route("/ws", get(upgrade))
}

/// The query of `/ws`.
#[derive(Debug, Deserialize)]
pub(crate) struct WsQuery {
    token: Option<String>,
}

/// AutoGPT's WebSocket protocol (see the module's documentation): upgrade
/// with the token as `?token=` or as `Authorization: Bearer`.
#[utoipa::path(get, path = "/ws", operation_id = "websocket", tag = "live",
    params(("token" = Option<String>, Query, description = "The JWT (or send it as Authorization)")),
    responses((status = 101, description = "Switching Protocols: the WebSocket session"),
        (status = 400, description = "Not a WebSocket upgrade", body = crate::error::ErrorBody),
        (status = 422, description = "The query does not fit its schema", body = crate::error::ErrorBody)))]
pub(crate) async fn upgrade(
    State(state): State<AppState>,
    Query(query): Query<WsQuery>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(_) => return ApiError::bad_request("Expected a WebSocket upgrade").into_response(),
    };
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::to_owned);
    let user = match query.token.or(bearer) {
        None => Err((MISSING_TOKEN, "Missing token")),
        Some(token) => match state.auth.verify(token.trim()) {
            Err(_) => Err((INVALID_TOKEN, "Invalid token")),
            Ok(claims) => Uuid::parse_str(&claims.sub)
                .map(|user| (user, claims.exp))
                .map_err(|_| (NO_SUBJECT, "Invalid token: no user")),
        },
    };
    ws.on_upgrade(move |socket| async move {
        match user {
            Ok((user, expires)) => Session::new(state, user, expires).run(socket).await,
            Err((code, reason)) => close(socket, code, reason).await,
        }
    })
}

async fn close(mut socket: WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame { code, reason: Utf8Bytes::from_static(reason) };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// One client's connection.
struct Session {
    state: AppState,
    user: Uuid,
    channels: HashSet<String>,
    /// Per channel, the last token sent: older or equal pushes are dropped.
    sent: HashMap<String, ConsistencyToken>,
    /// When the token the session was opened with expires (Unix seconds):
    /// the session ends then, as a request with that token would fail.
    expires: i64,
}

fn message(method: &str, data: Value, success: Option<bool>, channel: Option<&str>, error: Option<&str>) -> Value {
    json!({"method": method, "data": data, "success": success, "channel": channel, "error": error})
}

impl Session {
    fn new(state: AppState, user: Uuid, expires: i64) -> Self {
        Self { state, user, channels: HashSet::new(), sent: HashMap::new(), expires }
    }

    async fn run(mut self, mut socket: WebSocket) {
        let mut live = self.state.bus.subscribe();
        let left = u64::try_from(self.expires.saturating_sub(chrono::Utc::now().timestamp())).unwrap_or(0);
        let expiry = tokio::time::sleep(std::time::Duration::from_secs(left));
        tokio::pin!(expiry);
        loop {
            tokio::select! {
                _ = &mut expiry => {
                    close(socket, INVALID_TOKEN, "Token has expired").await;
                    return;
                }
                incoming = socket.recv() => match incoming {
                    Some(Ok(Message::Text(text))) => {
                        for reply in self.handle(text.as_str()).await {
                            if send(&mut socket, &reply).await.is_err() {
                                return;
                            }
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => {}
                },
                push = live.recv() => match push {
                    Ok(push) => {
                        for out in self.deliver(&push) {
                            if send(&mut socket, &out).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        let text = format!("Too far behind ({missed} events missed): reconnect and subscribe with the last token seen");
                        let _ = send(&mut socket, &message("error", Value::Null, Some(false), None, Some(&text))).await;
                        close(socket, TOO_SLOW, "Too far behind").await;
                        return;
                    }
                    Err(RecvError::Closed) => return,
                },
            }
        }
    }

    /// The messages a push becomes for this client: one per subscribed
    /// channel it belongs to, unless that channel already had it.
    fn deliver(&mut self, push: &Arc<Push>) -> Vec<Value> {
        if push.user_id != self.user {
            return vec![];
        }
        let mut channels = vec![format!("{}|graph_exec#{}", self.user, push.execution_id)];
        let method = match push.kind {
            PushKind::Graph => {
                channels.push(format!("{}|graph#{}|executions", self.user, push.graph_id));
                "graph_execution_event"
            }
            PushKind::Node => "node_execution_event",
        };
        let mut out = Vec::new();
        for channel in channels.into_iter().filter(|c| self.channels.contains(c)) {
            if self.sent.get(&channel).is_some_and(|last| *last >= push.token) {
                continue;
            }
            self.sent.insert(channel.clone(), push.token);
            let mut msg = message(method, push.data.clone(), None, Some(&channel), None);
            msg["token"] = json!(push.token.to_string());
            msg["recorded_at"] = json!(push.recorded_at);
            out.push(msg);
        }
        out
    }

    async fn handle(&mut self, text: &str) -> Vec<Value> {
        let Ok(request) = serde_json::from_str::<Value>(text) else {
            return vec![error("Invalid message format. Review the schema and retry")];
        };
        let method = request["method"].as_str().unwrap_or_default().to_owned();
        let data = &request["data"];
        match method.as_str() {
            "heartbeat" => vec![message("heartbeat", json!("pong"), Some(true), None, None)],
            "subscribe_graph_execution" | "unsubscribe" => {
                let Some(run) = data["graph_exec_id"].as_str() else { return vec![error("Subscription data missing")] };
                let channel = format!("{}|graph_exec#{run}", self.user);
                if method == "unsubscribe" {
                    self.channels.remove(&channel);
                    return vec![message("unsubscribe", Value::Null, Some(true), Some(&channel), None)];
                }
                if !self.subscribe(&channel) {
                    return vec![error("Too many subscriptions on this connection")];
                }
                let mut out = vec![message(&method, Value::Null, Some(true), Some(&channel), None)];
                if let Some(after) = data["after"].as_str() {
                    match after.parse::<ConsistencyToken>() {
                        Ok(after) => out.extend(self.missed(run, after).await),
                        Err(_) => out.push(error("Invalid token in data.after")),
                    }
                }
                out
            }
            "subscribe_graph_executions" => {
                let Some(graph) = data["graph_id"].as_str() else { return vec![error("Subscription data missing")] };
                let channel = format!("{}|graph#{graph}|executions", self.user);
                if !self.subscribe(&channel) {
                    return vec![error("Too many subscriptions on this connection")];
                }
                vec![message(&method, Value::Null, Some(true), Some(&channel), None)]
            }
            _ => vec![error("Message type is not processed by the server")],
        }
    }

    /// Hold `channel`, unless the connection holds [`MAX_CHANNELS`] others
    /// already; answers whether it is held.
    fn subscribe(&mut self, channel: &str) -> bool {
        if !self.channels.contains(channel) && self.channels.len() >= MAX_CHANNELS {
            return false;
        }
        self.channels.insert(channel.to_owned());
        true
    }

    /// The pushes of one of the user's runs after `after`, from the log.
    async fn missed(&mut self, run: &str, after: ConsistencyToken) -> Vec<Value> {
        let Ok(id) = Uuid::parse_str(run) else { return vec![] };
        let stream = stream_name::<GraphExecution>(id);
        // Whose run it is, from its first event alone, before its history
        // is read; and no more history than a resume may replay.
        let store = self.state.store();
        let origin = match store.stream_origin(&stream).await {
            Ok(origin) => origin,
            Err(_) => return vec![error("The run's history could not be read; try again")],
        };
        let owner = origin.as_ref().and_then(|e| decode::<GraphExecution>(e).ok()).and_then(|e| match e {
            ExecutionEvent::ExecutionQueued { user_id, .. } => Some(user_id),
            _ => None,
        });
        if owner != Some(self.user) {
            return vec![];
        }
        let Ok(recorded) = store.read_stream_page(&stream, 0, None, MAX_RESUMED + 1, None).await else {
            return vec![error("The run's history could not be read; try again")];
        };
        if recorded.len() as i64 > MAX_RESUMED {
            return vec![error("The run's history is too long to resume here; read it over REST")];
        }
        let mut state = GraphExecution::default();
        let mut out = Vec::new();
        for event in &recorded {
            let Ok(decoded) = decode::<GraphExecution>(event) else { continue };
            state.evolve(&decoded);
            if state.user_id != self.user {
                return vec![];
            }
            if ConsistencyToken(event.global) <= after {
                continue;
            }
            for push in pushes(&state, &decoded, event) {
                out.extend(self.deliver(&Arc::new(push)));
            }
        }
        out
    }
}

/// Most channels one connection may subscribe to.
const MAX_CHANNELS: usize = 1000;

/// Most events of one run a resume replays from the log.
const MAX_RESUMED: i64 = 50_000;

fn error(text: &str) -> Value {
    message("error", Value::Null, Some(false), None, Some(text))
}

/// How long one message may wait for a client that reads nothing before it
/// is dropped: a stalled peer must not pin a session forever.
const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

async fn send(socket: &mut WebSocket, value: &Value) -> Result<(), ()> {
    match tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(value.to_string().into()))).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}
