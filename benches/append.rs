//! Append throughput, measured side by side in one run on one fresh database:
//! `cargo bench --bench append` (arguments are ignored; `BENCH_PHASES=ad` runs
//! only some phases, default all).
//!
//! Method. A database `autogpt_es_bench_<random>` is created on the Postgres
//! server (`BENCH_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432`,
//! given without a database name), migrated, and dropped at the end. Four
//! phases run one after another, each after a `CHECKPOINT` (so one phase's
//! WAL does not make the next pay for a checkpoint), a warm-up
//! (`BENCH_WARMUP_SECONDS`, default 1) and then a measured window
//! (`BENCH_SECONDS`, default 5). Workers loop without pause; an operation is
//! counted, and its latency kept, when it completes inside the window:
//!
//! - (a) raw single-row `INSERT` into `bench_raw`, a table with the columns
//!   of `events`, a plain bigserial, a unique `(stream_id, version)` and a
//!   unique `event_id`: 8 dedicated connections, autocommit, one row per
//!   statement. This is the ceiling: one commit (one WAL flush) per event.
//! - (b) `EventStore::append` of one event per call, 8 writers, each on its
//!   own stream with the expected version of its previous call, on a
//!   `PgEventStore` over an 8-connection pool made by the server's
//!   `db::connect`.
//! - (c) the same with 100 events per call. A call stands for one command,
//!   so its events share one metadata (correlation, causation, user), as a
//!   command's events do; payloads differ per event.
//! - (d) `POST /api/graphs` over HTTP/1.1 (hyper, keep-alive) to the real server
//!   (`App::build` on port 0, same database), 8 clients with a user each, a
//!   graph of two StoreValue nodes and a link. Each request appends 2 events
//!   (graph created, library agent added) in one append, waits for the graphs
//!   and library projections (read-your-writes) and reads the graph back.
//!   The projectors first replay the log of (b) and (c) (they skip those
//!   streams); the bench waits for that so (d) measures the steady state.
//!
//! - (a') when (b) or (c) ran, (a) again right before (d), after the
//!   replay, so (d) is also compared with a raw-insert figure taken next to
//!   it (the machine's speed drifts over a run).
//!
//! Targets (issue 3 §5): b ≥ 70% of a; c ≥ 100,000 events/s; d ≥ 30% of a.
//! The issue compares the phases by the events/s it has printed, so d/a is
//! judged by events/s; the stricter ratio by requests/s (one commit each, like
//! a raw insert) is printed beside it. Client and server share the machine.

use std::error::Error;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::auth::{sign, Claims, AUDIENCE};
use api::config::AuthConfig;
use api::{db, App, Config};
use commands::{EventMetadata, EventStore, NewEvent, PgEventStore, StreamWrite};
use eventlog::store::new_event_id;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper::header::{self, HeaderValue};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use uuid::Uuid;

/// The server's allocator, since (d) runs the server in this process.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type BoxError = Box<dyn Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

const WRITERS: usize = 8;
const BATCH: usize = 100;
const EVENTS_PER_REQUEST: f64 = 2.0;
const JWT_KEY: &str = "autogpt-es-bench-key";
const STORE_VALUE_BLOCK: &str = "1ff065e9-88e8-4358-9d82-8dc91f622ba9";

const RAW_TABLE: &str = "CREATE TABLE bench_raw (
    position bigserial PRIMARY KEY,
    tx_id bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    stream_id text NOT NULL, version bigint NOT NULL, event_id uuid NOT NULL UNIQUE,
    event_type text NOT NULL, schema_version integer NOT NULL, data json NOT NULL,
    metadata json NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream_id, version))";

const RAW_INSERT: &str =
    "INSERT INTO bench_raw (stream_id, version, event_id, event_type, schema_version, data, metadata) \
     VALUES ($1, $2, $3, $4, $5, $6::text::json, $7::text::json) RETURNING tx_id, position";

struct Settings {
    server: String,
    /// Which phases run (`BENCH_PHASES`, e.g. `ad`; default all four).
    phases: String,
    warmup: Duration,
    window: Duration,
}

impl Settings {
    fn from_env() -> Res<Self> {
        let seconds = |name: &str, default: f64| -> Res<Duration> {
            let value = std::env::var(name).ok().filter(|v| !v.is_empty());
            let secs =
                value.map_or(Ok(default), |v| v.parse::<f64>().map_err(|_| format!("{name}: not a number: {v}")))?;
            Duration::try_from_secs_f64(secs).map_err(|e| format!("{name}: {e}").into())
        };
        let server =
            std::env::var("BENCH_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        Ok(Self {
            server: server.trim_end_matches('/').to_owned(),
            phases: std::env::var("BENCH_PHASES").unwrap_or_else(|_| "abcd".into()),
            warmup: seconds("BENCH_WARMUP_SECONDS", 1.0)?,
            window: seconds("BENCH_SECONDS", 5.0)?,
        })
    }
}

/// Shared between a phase and its workers: whether to keep going, and
/// whether completions count.
#[derive(Default)]
struct Ctl {
    measuring: AtomicBool,
    stop: AtomicBool,
}

impl Ctl {
    fn running(&self) -> bool {
        !self.stop.load(Relaxed)
    }

    /// An operation begun at `started` completed.
    fn done(&self, started: Instant, latencies: &mut Vec<u32>) {
        if self.measuring.load(Relaxed) {
            latencies.push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX));
        }
    }
}

struct Stats {
    ops_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Run `workers` copies of a worker through warm-up and the window.
async fn measure<F, Fut>(settings: &Settings, workers: usize, worker: F) -> Res<Stats>
where
    F: Fn(Arc<Ctl>) -> Fut,
    Fut: Future<Output = Res<Vec<u32>>> + Send + 'static,
{
    let ctl = Arc::new(Ctl::default());
    let handles: Vec<_> = (0..workers).map(|_| tokio::spawn(worker(Arc::clone(&ctl)))).collect();
    tokio::time::sleep(settings.warmup).await;
    ctl.measuring.store(true, Relaxed);
    let started = Instant::now();
    tokio::time::sleep(settings.window).await;
    ctl.measuring.store(false, Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    ctl.stop.store(true, Relaxed);
    let mut latencies = Vec::new();
    for handle in handles {
        latencies.extend(handle.await??);
    }
    latencies.sort_unstable();
    let pct = |q: f64| {
        latencies.get(((latencies.len().max(1) - 1) as f64 * q) as usize).map_or(0.0, |&us| us as f64 / 1000.0)
    };
    Ok(Stats { ops_per_sec: latencies.len() as f64 / elapsed, p50_ms: pct(0.5), p99_ms: pct(0.99) })
}

/// The payload every phase writes: about the size of a small domain event,
/// encoded as a command encodes its events.
fn payload(seq: i64) -> Box<RawValue> {
    let value = json!({ "seq": seq, "name": "bench", "description": "an event of a typical size for this log", "tags": ["a", "b"] });
    serde_json::value::to_raw_value(&value).expect("a JSON value always encodes")
}

fn metadata() -> EventMetadata {
    let correlation_id = Uuid::new_v4();
    EventMetadata {
        correlation_id,
        causation_id: Some(correlation_id),
        user_id: Some(Uuid::new_v4()),
        request_id: None,
    }
}

/// (a) one autocommitted single-row INSERT per operation.
async fn raw_insert(settings: &Settings, url: &str) -> Res<Stats> {
    measure(settings, WRITERS, |ctl| {
        let url = url.to_owned();
        async move {
            let mut conn = PgConnection::connect(&url).await?;
            let stream = format!("bench_raw-{}", Uuid::new_v4());
            let (mut version, mut latencies) = (0i64, Vec::new());
            while ctl.running() {
                let started = Instant::now();
                version += 1;
                sqlx::query(RAW_INSERT)
                    .bind(&stream)
                    .bind(version)
                    .bind(new_event_id())
                    .bind("BenchEvent")
                    .bind(1i32)
                    // Sent as text, as the event store sends payloads.
                    .bind(payload(version).get())
                    .bind(serde_json::to_string(&metadata())?)
                    .fetch_one(&mut conn)
                    .await?;
                ctl.done(started, &mut latencies);
            }
            conn.close().await?;
            Ok(latencies)
        }
    })
    .await
}

/// (b), (c) `EventStore::append` of `per_call` events per call.
async fn append(settings: &Settings, store: &PgEventStore, writers: usize, per_call: usize) -> Res<Stats> {
    measure(settings, writers, |ctl| {
        let store = store.clone();
        async move {
            let stream_id = format!("bench-{}", Uuid::new_v4());
            let (mut version, mut latencies) = (0i64, Vec::new());
            while ctl.running() {
                let started = Instant::now();
                // One call is one command: its events share their metadata.
                let metadata = metadata();
                let events = (1..=per_call as i64)
                    .map(|i| NewEvent {
                        event_id: new_event_id(),
                        event_type: "BenchEvent".into(),
                        schema_version: 1,
                        data: payload(version + i),
                        metadata: metadata.clone(),
                    })
                    .collect();
                let write = StreamWrite { stream_id: stream_id.clone(), expected_version: version, events };
                store.append(&[write]).await?;
                version += per_call as i64;
                ctl.done(started, &mut latencies);
            }
            Ok(latencies)
        }
    })
    .await
}

/// A small valid graph: two StoreValue nodes, the first feeding the second.
fn graph_body() -> Value {
    json!({ "graph": {
        "name": "bench", "description": "two StoreValue nodes and a link",
        "nodes": [
            {"id": "a", "block_id": STORE_VALUE_BLOCK, "input_default": {"input": "Hello"}},
            {"id": "b", "block_id": STORE_VALUE_BLOCK}
        ],
        "links": [{"source_id": "a", "sink_id": "b", "source_name": "output", "sink_name": "input"}]
    }})
}

/// (d) `POST /api/graphs` against the real server on the same database;
/// with `again`, (a) is measured once more right before it (see [`Results`]).
async fn http(settings: &Settings, url: &str, again: bool) -> Res<(Option<Stats>, Stats)> {
    let config = Config::local(url, JWT_KEY);
    let auth = config.auth.clone();
    let app = App::build(config).await?;
    let addr = SocketAddr::from(([127, 0, 0, 1], app.port()));
    let state = app.state().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));

    let stats = async {
        let started = Instant::now();
        let head = state.store().head().await?;
        if !state.projections.wait_for(&state.projections.names(), head, Duration::from_secs(600)).await?.is_empty() {
            return Err("projectors did not catch up with the log within 600 s".into());
        }
        let replay = started.elapsed().as_secs_f64();
        println!("    (projectors replayed the log up to position {}, {replay:.1} s, before (d))", head.position);
        let a = if again {
            Some(report("(a') raw INSERT again, right before (d)", raw_insert(settings, url).await?, 1.0))
        } else {
            None
        };
        Ok((a, post_graphs(settings, &auth, addr).await?))
    }
    .await;
    let _ = stop.send(());
    server.await??;
    stats
}

/// (d)'s clients: one keep-alive HTTP/1.1 connection, a user and a token
/// each. They use hyper's connection API directly, as a load generator
/// would: a pooled, redirect-following client cost a few percent of the CPU
/// that client and server share.
async fn post_graphs(settings: &Settings, auth: &AuthConfig, addr: SocketAddr) -> Res<Stats> {
    // Encoded once, as a load generator sends fixed bytes.
    let body = Bytes::from(serde_json::to_vec(&graph_body())?);
    let host = HeaderValue::from_str(&addr.to_string())?;
    measure(settings, WRITERS, |ctl| {
        let (body, host) = (body.clone(), host.clone());
        let user = Uuid::new_v4();
        let claims = Claims {
            sub: user.to_string(),
            aud: AUDIENCE.into(),
            exp: chrono::Utc::now().timestamp() + 3600,
            role: Some("authenticated".into()),
            email: Some(format!("{}@example.com", user.simple())),
            user_metadata: None,
        };
        let token = sign(auth, &claims);
        async move {
            let bearer = HeaderValue::from_str(&format!("Bearer {}", token?))?;
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (mut sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
            let connection = tokio::spawn(connection);
            let mut latencies = Vec::new();
            while ctl.running() {
                let started = Instant::now();
                let request = Request::post("/api/graphs")
                    .header(header::HOST, host.clone())
                    .header(header::AUTHORIZATION, bearer.clone())
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Full::new(body.clone()))?;
                let response = sender.send_request(request).await?;
                let status = response.status();
                let text = response.into_body().collect().await?.to_bytes();
                if !status.is_success() {
                    return Err(format!("POST /api/graphs: {status}: {}", String::from_utf8_lossy(&text)).into());
                }
                ctl.done(started, &mut latencies);
            }
            drop(sender);
            connection.await??;
            Ok(latencies)
        }
    })
    .await
}

async fn checkpoint(pool: &PgPool) {
    // Needs superuser (or pg_checkpoint); without it the phases just share WAL.
    let _ = pool.execute("CHECKPOINT").await;
}

/// The phases that ran.
#[derive(Default)]
struct Results {
    a: Option<Stats>,
    /// (a) measured again right before (d), when (b) or (c) ran between
    /// them: the machine's speed drifts over a run (and a minute of full load
    /// slows it), so (d) is also compared with the (a) measured next to it.
    a_again: Option<Stats>,
    b: Option<Stats>,
    c: Option<Stats>,
    d: Option<Stats>,
}

async fn run_phases(settings: &Settings, url: &str, pool: &PgPool) -> Res<Results> {
    let wanted = |phase: char| settings.phases.contains(phase);
    let mut r = Results::default();
    if wanted('a') {
        pool.execute(RAW_TABLE).await?;
        checkpoint(pool).await;
        r.a = Some(report("(a) raw INSERT, 1 row/stmt, 8 connections", raw_insert(settings, url).await?, 1.0));
    }
    let store = PgEventStore::new(db::connect(url, WRITERS as u32).await?);
    if wanted('b') {
        checkpoint(pool).await;
        r.b = Some(report("(b) append, 1 event/call, 8 writers", append(settings, &store, WRITERS, 1).await?, 1.0));
    }
    if wanted('c') {
        checkpoint(pool).await;
        let c = append(settings, &store, WRITERS, BATCH).await?;
        r.c = Some(report("(c) append, 100 events/call, 8 writers", c, BATCH as f64));
    }
    store.pool().close().await;
    if wanted('d') {
        checkpoint(pool).await;
        let again = wanted('a') && (wanted('b') || wanted('c'));
        let (a_again, d) = http(settings, url, again).await?;
        r.a_again = a_again;
        r.d = Some(report("(d) POST /api/graphs, 8 clients, 2 ev/req", d, EVENTS_PER_REQUEST));
    }
    Ok(r)
}

fn report(name: &str, stats: Stats, events_per_op: f64) -> Stats {
    println!(
        "{name:<44} {:>10.1} {:>11.1} {:>8.2} {:>8.2}",
        stats.ops_per_sec,
        stats.ops_per_sec * events_per_op,
        stats.p50_ms,
        stats.p99_ms
    );
    stats
}

fn summarize(r: &Results) {
    let line = |figure: String, target: &str, met: bool| {
        println!("{figure:<44} target {target:<20} {}", if met { "met" } else { "MISSED" });
    };
    println!();
    if let Some(c) = &r.c {
        let c = c.ops_per_sec * BATCH as f64;
        line(format!("c   = {c:.0} events/s"), ">= 100000 events/s", c >= 100_000.0);
    }
    let Some(a) = &r.a else { return };
    let a = a.ops_per_sec.max(f64::MIN_POSITIVE);
    if let Some(b) = &r.b {
        let b_a = 100.0 * b.ops_per_sec / a;
        line(format!("b/a = {b_a:.1}%"), ">= 70%", b_a >= 70.0);
    }
    let Some(d) = &r.d else { return };
    let d_over = |name: &str, a: f64| {
        let by_requests = 100.0 * d.ops_per_sec / a.max(f64::MIN_POSITIVE);
        let by_events = by_requests * EVENTS_PER_REQUEST;
        line(
            format!("{name} = {by_events:.1}% by events/s ({by_requests:.1}% by requests/s)"),
            ">= 30%",
            by_events >= 30.0,
        );
    };
    d_over("d/a", a);
    if let Some(again) = &r.a_again {
        d_over("d/a'", again.ops_per_sec);
    }
}

async fn server_info(pool: &PgPool) -> Res<String> {
    let show = |setting: &'static str| sqlx::query_scalar::<_, String>(setting).fetch_one(pool);
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    Ok(format!(
        "PostgreSQL {}, synchronous_commit={}, fsync={}, {cpus} CPUs shared by client and server",
        show("SHOW server_version").await?,
        show("SHOW synchronous_commit").await?,
        show("SHOW fsync").await?
    ))
}

#[tokio::main]
async fn main() -> Res<()> {
    // Arguments (`--bench`, a filter such as `append`) are accepted and ignored.
    let settings = Settings::from_env()?;
    let name = format!("autogpt_es_bench_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&format!("{}/postgres", settings.server)).await?;
    // Databases of interrupted earlier runs, unless someone is still on them.
    let stale: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname LIKE 'autogpt\\_es\\_bench\\_%' \
         AND datname NOT IN (SELECT datname FROM pg_stat_activity WHERE datname IS NOT NULL)",
    )
    .fetch_all(&mut admin)
    .await?;
    for db in stale {
        let _ = admin.execute(format!("DROP DATABASE IF EXISTS \"{db}\"").as_str()).await;
    }
    let url = format!("{}/{name}", settings.server);
    let pool = db::connect(&url, 2).await?;
    db::migrate(&pool).await?;

    println!("append benchmark on database {name}: {}", server_info(&pool).await?);
    println!(
        "each phase: CHECKPOINT, {:.1} s warm-up, {:.1} s measured\n",
        settings.warmup.as_secs_f64(),
        settings.window.as_secs_f64()
    );
    println!("{:<44} {:>10} {:>11} {:>8} {:>8}", "phase", "ops/s", "events/s", "p50 ms", "p99 ms");
    let results = run_phases(&settings, &url, &pool).await;
    pool.close().await;
    admin.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str()).await?;
    summarize(&results?);
    Ok(())
}
