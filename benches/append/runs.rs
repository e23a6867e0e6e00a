//! (x) graph runs end to end and (w) append-to-WebSocket latency, against
//! the real server on the bench's database (issue 9 §4).
//!
//! (x): 8 clients, each with a user, the greeting graph (AgentInput →
//! FillTextTemplate → AgentOutput) and a WebSocket subscribed to its runs;
//! each loops: `POST .../execute`, then wait for the run's COMPLETED push.
//! An operation is a run from submission to COMPLETED seen by its client.
//!
//! (w): the server with NATS (`NATS_URL`, default nats://127.0.0.1:4222);
//! runs submitted at a steady pace of [`RUNS_PER_SEC`] (about 1,000 run
//! events/s, counted) by one client while 8 WebSocket clients watch; the
//! latency of every push is the time from its event's `recorded_at` to its
//! arrival at the client (one clock: same machine).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use api::config::AuthConfig;
use api::{App, Config};
use chrono::{DateTime, Utc};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::measure::{caught_up, measure, Settings, Stats};
use crate::{Res, WRITERS};

const JWT_KEY: &str = "autogpt-es-bench-key";

/// (w)'s pace: runs of about 16 events each, so about 1,000 events/s.
pub const RUNS_PER_SEC: f64 = 62.5;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub fn greeting() -> Value {
    json!({"graph": {
        "name": "greeting", "description": "bench",
        "nodes": [
            {"id": "in", "block_id": "c0a8e994-ebf1-4a9c-a4d8-89d09c86741b", "input_default": {"name": "name"}},
            {"id": "tpl", "block_id": "db7d8f02-2f44-4c55-ab7a-eae0941f0c30", "input_default": {"format": "Hello, {{name}}!"}},
            {"id": "out", "block_id": "363ae599-353e-4804-937e-b2ee3cef3da4", "input_default": {"name": "greeting"}}
        ],
        "links": [
            {"source_id": "in", "sink_id": "tpl", "source_name": "result", "sink_name": "values_#_name"},
            {"source_id": "tpl", "sink_id": "out", "source_name": "output", "sink_name": "value"}
        ]
    }})
}

/// Submits runs of one user's graph.
#[derive(Clone)]
pub struct Submitter {
    http: reqwest::Client,
    base: String,
    bearer: String,
    graph_id: String,
    inputs: Value,
}

impl Submitter {
    /// Start a run; its id.
    pub async fn execute(&self) -> Res<String> {
        let url = format!("{}/api/graphs/{}/execute/1", self.base, self.graph_id);
        self.post(url, &json!({"inputs": self.inputs})).await
    }

    /// Replay a run; the replay's id.
    pub async fn replay(&self, run: &str) -> Res<String> {
        self.post(format!("{}/api/graphs/{}/executions/{run}/replay", self.base, self.graph_id), &json!({})).await
    }

    async fn post(&self, url: String, body: &Value) -> Res<String> {
        let run: Value = self.http.post(url).bearer_auth(&self.bearer).json(body).send().await?.json().await?;
        Ok(run["id"].as_str().ok_or_else(|| format!("no run: {run}"))?.to_owned())
    }
}

/// A client: a user with a graph of its own and a socket on its runs.
pub struct Client {
    pub submitter: Submitter,
    socket: Socket,
}

impl Client {
    /// A new user with `graph` (the body of a create) run on `inputs`.
    pub async fn new(addr: SocketAddr, auth: &AuthConfig, graph: &Value, inputs: Value) -> Res<Self> {
        let user = Uuid::new_v4();
        let bearer = crate::workload::token(auth, user)?;
        let http = reqwest::Client::builder().no_proxy().build()?;
        let base = format!("http://{addr}");
        let graph: Value =
            http.post(format!("{base}/api/graphs")).bearer_auth(&bearer).json(graph).send().await?.json().await?;
        let graph_id = graph["id"].as_str().ok_or("no graph id")?.to_owned();
        let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws?token={bearer}")).await?;
        let subscribe = json!({"method": "subscribe_graph_executions", "data": {"graph_id": graph_id}});
        socket.send(Message::Text(subscribe.to_string().into())).await?;
        socket.next().await.ok_or("no ack")??;
        Ok(Self { submitter: Submitter { http, base, bearer, graph_id, inputs }, socket })
    }

    /// Wait for `run`'s COMPLETED push (an error if it ends otherwise); the
    /// push.
    pub async fn completed(&mut self, run: &str) -> Res<Value> {
        loop {
            let push = self.push().await?;
            if push["data"]["id"] != run {
                continue;
            }
            match push["data"]["status"].as_str() {
                Some("COMPLETED") => return Ok(push),
                Some("FAILED" | "TERMINATED") => return Err(format!("run {run} ended: {push}").into()),
                _ => {}
            }
        }
    }

    /// The next push, as JSON.
    async fn push(&mut self) -> Res<Value> {
        loop {
            match tokio::time::timeout(Duration::from_secs(30), self.socket.next()).await? {
                Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text)?),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
                None => return Err("socket closed".into()),
            }
        }
    }
}

/// A server started by the bench: its address, token config, stop switch,
/// task and state.
pub type Started = (
    SocketAddr,
    AuthConfig,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
    api::state::AppState,
);

/// The real server on the bench's database (with NATS when `nats` is set),
/// with the default limits.
pub async fn start(url: &str, nats: Option<String>) -> Res<Started> {
    start_with(url, |config| config.nats_url = nats).await
}

/// The real server on the bench's database, configured by `adjust`.
pub async fn start_with(url: &str, adjust: impl FnOnce(&mut Config)) -> Res<Started> {
    let mut config = Config::local(url, JWT_KEY);
    adjust(&mut config);
    let auth = config.auth.clone();
    let app = App::build(config).await?;
    let addr = SocketAddr::from(([127, 0, 0, 1], app.port()));
    let state = app.state().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    Ok((addr, auth, stop, server, state))
}

/// Where a run's time goes, as its client sees it (µs each, one clock):
/// submission to the run's start (the POST, the queuing, the claim), start
/// to end (the nodes), end to its COMPLETED push arriving.
#[derive(Default)]
struct Split([Vec<u32>; 3]);

impl Split {
    fn add(&mut self, submitted: DateTime<Utc>, push: &Value) {
        let at = |key: &str| push["data"][key].as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok());
        let (Some(started), Some(ended)) = (at("started_at"), at("ended_at")) else { return };
        let (started, ended) = (started.with_timezone(&Utc), ended.with_timezone(&Utc));
        let micros = |from: DateTime<Utc>, to: DateTime<Utc>| {
            u32::try_from((to - from).num_microseconds().unwrap_or(0).max(0)).unwrap_or(u32::MAX)
        };
        for (part, (from, to)) in self.0.iter_mut().zip([(submitted, started), (started, ended), (ended, Utc::now())]) {
            part.push(micros(from, to));
        }
    }

    fn print(self) {
        let p50 = |mut v: Vec<u32>| {
            v.sort_unstable();
            v.get(v.len() / 2).map_or(0.0, |&us| f64::from(us) / 1000.0)
        };
        let [start, nodes, push] = self.0;
        println!(
            "    (x) of which, p50: submit -> start {:.2} ms, start -> end {:.2} ms, end -> push {:.2} ms",
            p50(start),
            p50(nodes),
            p50(push)
        );
    }
}

/// (x): runs per second, submission to COMPLETED, 8 clients.
pub async fn runs(settings: &Settings, url: &str) -> Res<Stats> {
    let (addr, auth, stop, server, state) = start(url, None).await?;
    caught_up(&state.projections, state.store(), "(x)").await?;
    let split = Arc::new(Mutex::new(Split::default()));
    let stats = measure(settings, WRITERS, |ctl| {
        let (auth, split) = (auth.clone(), Arc::clone(&split));
        async move {
            let mut client = Client::new(addr, &auth, &greeting(), json!({"name": "bench"})).await?;
            let mut latencies = Vec::new();
            while ctl.running() {
                let (started, submitted) = (Instant::now(), Utc::now());
                let run = client.submitter.execute().await?;
                let push = client.completed(&run).await?;
                ctl.done(started, &mut latencies);
                split.lock().unwrap_or_else(PoisonError::into_inner).add(submitted, &push);
            }
            Ok(latencies)
        }
    })
    .await;
    let _ = stop.send(());
    server.await??;
    std::mem::take(&mut *split.lock().unwrap_or_else(PoisonError::into_inner)).print();
    stats
}

/// (w)'s figures: the push latencies and the pace of events they carried.
pub struct Delivery {
    /// Push latency, `recorded_at` to arrival (ops/s = pushes/s).
    pub pushes: Stats,
    /// Run events appended per second during the window.
    pub events_per_sec: f64,
}

/// (w): append → WebSocket latency with NATS at about 1,000 events/s.
pub async fn delivery(settings: &Settings, url: &str) -> Res<Delivery> {
    let nats = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let (addr, auth, stop, server, state) = start(url, Some(nats)).await?;
    caught_up(&state.projections, state.store(), "(w)").await?;
    let count = |pool: sqlx::PgPool| async move {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events WHERE stream_id LIKE 'execution-%'")
            .fetch_one(&pool)
            .await
    };
    let before = count(state.pool().clone()).await?;
    let began = Instant::now();
    let pushes = measure(settings, WRITERS, |ctl| {
        let auth = auth.clone();
        async move {
            let mut client = Client::new(addr, &auth, &greeting(), json!({"name": "bench"})).await?;
            let submitter = client.submitter.clone();
            let pace = Duration::from_secs_f64(WRITERS as f64 / RUNS_PER_SEC);
            let submitting = tokio::spawn(async move {
                let mut tick = tokio::time::interval(pace);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    tick.tick().await;
                    if submitter.execute().await.is_err() {
                        break;
                    }
                }
            });
            let mut latencies = Vec::new();
            while ctl.running() {
                let push = client.push().await?;
                let Some(at) = push["recorded_at"].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                else {
                    continue;
                };
                let age = (chrono::Utc::now() - at.with_timezone(&chrono::Utc)).to_std().unwrap_or_default();
                ctl.record(age, &mut latencies);
            }
            submitting.abort();
            Ok(latencies)
        }
    })
    .await?;
    let events = count(state.pool().clone()).await? - before;
    let _ = stop.send(());
    server.await??;
    Ok(Delivery { pushes, events_per_sec: events as f64 / began.elapsed().as_secs_f64() })
}
