//! Append throughput and latency, measured side by side in one run on one
//! fresh database: `cargo bench --bench append` (arguments are ignored;
//! `BENCH_PHASES=ad` runs only some phases, by letter, default all
//! (`BENCH_KEEP_DATABASE=1` keeps the database afterwards, to profile):
//! `abcCdefgxwsrv`, where `C` is c' and may also be written `c'`).
//!
//! Method. A database `autogpt_es_bench_<random>` is created on the Postgres
//! server (`BENCH_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432`,
//! given without a database name), migrated, and dropped at the end. The
//! phases run one after another, each after a `CHECKPOINT` (so one phase's
//! WAL does not make the next pay for a checkpoint), a warm-up
//! (`BENCH_WARMUP_SECONDS`, default 1) and then a measured window
//! (`BENCH_SECONDS`, default 5). Except in (g), workers loop without pause;
//! an operation is counted, and its latency kept, when it completes inside
//! the window. They run, and print, in this order:
//!
//! - (a) raw single-row `INSERT` into `bench_raw`, a table with the columns
//!   of `events`, a plain bigserial, a unique `(stream_id, version)` and a
//!   unique `event_id`: 8 dedicated connections, autocommit, one row per
//!   statement. This is the ceiling: one commit (one WAL flush) per event.
//! - (e) the command path of `POST /api/graphs` in process:
//!   `Commands::create_graph` (3 events, graph created, library agent
//!   added and the user's quota place taken, in one append) with a fresh `CommandContext::for_user` each, 8
//!   tasks with a user each, on the draft decoded from (d)'s body; no HTTP,
//!   no waiting for projectors. Right after (a), which it is compared with
//!   by operations (commands/s over inserts/s).
//! - (b) `EventStore::append` of one event per call, 8 writers, each on its
//!   own stream with the expected version of its previous call, on a
//!   `PgEventStore` over an 8-connection pool made by the server's
//!   `db::connect` ((e), (f) and (g) use the same store).
//! - (c) the same with 100 events per call. A call stands for one command,
//!   so its events share one metadata (correlation, causation, user), as a
//!   command's events do; payloads differ per event.
//! - (c') (letter `C`) the raw counterpart of (c): one multi-row `INSERT` of
//!   100 rows per statement into `bench_raw`, rows sharing one metadata,
//!   8 connections.
//! - (f) latency, one writer: one `EventStore::append` of 100 events on one
//!   stream alternating with one autocommitted single-row `INSERT` into
//!   `bench_raw` on a dedicated connection, so both see the same machine,
//!   and, as a reference for what 100 rows cost the server, a raw 100-row
//!   `INSERT` as in (c'). Only the calls are timed (events and rows are
//!   built before the clock starts).
//! - (a') when any of (e), (b), (c), (c'), (f) ran, (a) again right before
//!   (d), after the replay, so (d) is also compared with a raw-insert figure
//!   taken next to it (the machine's speed drifts over a run).
//! - (d) `POST /api/graphs` over HTTP/1.1 (hyper, keep-alive) to the real server
//!   (`App::build` on port 0, same database), 8 clients with a user each, a
//!   graph of two StoreValue nodes and a link. Each request appends 3 events
//!   (graph created, library agent added, quota place taken) in one append, waits for the graphs
//!   and library projections (read-your-writes) and reads the graph back.
//!   The projectors first replay the log of the phases before (they apply
//!   (e)'s graphs and skip the rest); the bench waits for that, then runs a
//!   `CHECKPOINT`, so that (a') and (d) measure the steady state.
//! - (g) lag: all projectors (`Projections::spawn`) on the bench's store,
//!   first caught up with the log; then `Commands::create_graph` paced by a
//!   tokio interval at 500 commands/s (1,000 events/s), each command a task
//!   (at most 64 outstanding; a tick finding 64 is skipped and the pace
//!   reported as not sustained). Lag is the time from the append returning
//!   to both the graphs and library projectors having committed it, read
//!   from their in-memory progress (`Projections::wait_for`), which adds no
//!   queries. Commands issued in the window count.
//!
//! - (x) graph runs end to end: 8 clients, each with a user, the greeting
//!   graph (AgentInput → FillTextTemplate → AgentOutput) and a WebSocket on
//!   its runs, submit a run and wait for its COMPLETED push, in a loop.
//! - (y) an agent (AgentInput → AI text generator → AgentOutput, the model
//!   a local stub answering after `BENCH_MODEL_MS`, default 200) run live by
//!   8 clients, then (y') replayed from a recorded run of each: the replay
//!   calls no model. See `replay.rs`.
//! - (w) append → WebSocket latency with NATS (`NATS_URL`, default
//!   nats://127.0.0.1:4222): runs submitted at a steady 62.5 runs/s (about
//!   1,000 run events/s, counted from the log) by 8 clients that each watch
//!   their graph's runs; latency is a push's arrival minus its event's
//!   `recorded_at` (one clock). See `runs.rs`.
//!
//! - (s) store search latency over 10,000 approved listings and (l) store
//!   listing pages per second, 8 clients each (see `store_pages.rs`; (l)
//!   runs with (s)).
//!
//! - (r) zero-downtime rebuilds of every projection from a log of
//!   1,000,000 events, each twice: alone, then with 4 clients querying the
//!   read model being rebuilt (see `rebuild.rs`). Runs last: it makes the
//!   log a million events long.
//! - (v) `audit verify` over the whole log (after (r), a million events),
//!   after one seal over it.
//!
//! Targets. Issue 3 §5: b ≥ 70% of a; c ≥ 100,000 events/s; d ≥ 30% of a by
//! events/s. Issue 8 §7: c/c' ≥ 0.80 (events/s); e/a ≥ 0.70 by operations
//! (cqrs-es with postgres-es reaches 0.46–0.56 on this kind of machine);
//! (f) the 100-event append's p50 and p99 each ≤ 1.5× the single INSERT's;
//! (g) lag p99 < 50 ms at a sustained 1,000 events/s; d ≥ 30% of a by
//! requests/s (one commit each, like a raw insert). d is also compared with
//! a'. Issue 9 §4: x ≥ 200 runs/s; w p99 < 100 ms at 1,000 events/s.
//! Issue 10 §3: s p99 < 20 ms. Issue 11 §4: r ≥ 50,000 events/s, queries
//! during it p99 < 50 ms (the rebuild beside the queries); v < 30 s over 1,000,000 events. Issue 20 raises
//! them: b/a ≥ 0.85, c/c' ≥ 0.85, e/a ≥ 0.80, d/a by requests ≥ 0.35,
//! x ≥ 400 runs/s, r ≥ 50,000 events/s alone (the report prints these). Issue 23: (y) replays of a
//! recorded 3-node agent run ≥ 2× the runs/s of the same agent live.
//! Client and server share the machine.

mod command;
mod http;
mod lag;
mod latency;
mod measure;
mod raw;
mod rebuild;
mod replay;
mod report;
mod runs;
mod store;
mod store_pages;
mod workload;

use std::error::Error;

use api::db;
use commands::PgEventStore;
use sqlx::{Connection, Executor, PgConnection, PgPool};
use uuid::Uuid;

use measure::{checkpoint, Settings};
use report::{report, report_lag, report_latency, Results};

/// The server's allocator, since (d) runs the server in this process.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type BoxError = Box<dyn Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

/// Every phase, by letter (`C` is c').
const ALL_PHASES: &str = "abcCdefgxywsrv";
const WRITERS: usize = 8;
const BATCH: usize = 100;
/// Events a created graph appends: graph created, library agent added,
/// quota place taken.
const EVENTS_PER_GRAPH: f64 = 3.0;

async fn run_phases(settings: &Settings, url: &str, pool: &PgPool) -> Res<Results> {
    let wanted = |phase: char| settings.wanted(phase);
    let mut r = Results::default();
    if "aCf".chars().any(wanted) {
        raw::create_table(pool).await?;
    }
    if wanted('a') {
        checkpoint(pool).await;
        let a = raw::raw_insert(settings, url, false).await?;
        r.a = Some(report("(a) raw INSERT, 1 row/stmt, 8 connections", a, 1.0));
    }
    let store = PgEventStore::new(db::connect(url, WRITERS as u32).await?);
    if wanted('e') {
        checkpoint(pool).await;
        let e = command::create_graphs(settings, &store).await?;
        r.e = Some(report("(e) Commands::create_graph, 8 tasks, 3 ev/cmd", e, EVENTS_PER_GRAPH));
    }
    if wanted('b') {
        checkpoint(pool).await;
        let b = store::append(settings, &store, WRITERS, 1).await?;
        r.b = Some(report("(b) append, 1 event/call, 8 writers", b, 1.0));
    }
    if wanted('c') {
        checkpoint(pool).await;
        let c = store::append(settings, &store, WRITERS, BATCH).await?;
        r.c = Some(report("(c) append, 100 events/call, 8 writers", c, BATCH as f64));
    }
    if wanted('C') {
        checkpoint(pool).await;
        let c_raw = raw::raw_insert(settings, url, true).await?;
        r.c_raw = Some(report("(c') raw INSERT, 100 rows/stmt, 8 connections", c_raw, BATCH as f64));
    }
    if wanted('f') {
        checkpoint(pool).await;
        r.f = Some(report_latency(latency::alternate(settings, &store, url).await?));
    }
    if wanted('d') {
        checkpoint(pool).await;
        let again = wanted('a') && "ebcCf".chars().any(wanted);
        let (a_again, d) = http::http(settings, url, again).await?;
        r.a_again = a_again;
        r.d = Some(report("(d) POST /api/graphs, 8 clients, 3 ev/req", d, EVENTS_PER_GRAPH));
    }
    if wanted('g') {
        checkpoint(pool).await;
        r.g = Some(report_lag(lag::lag(settings, &store).await?));
    }
    if wanted('x') {
        checkpoint(pool).await;
        r.x =
            Some(report("(x) graph runs, submit -> COMPLETED push, 8 clients", runs::runs(settings, url).await?, 1.0));
    }
    if wanted('y') {
        checkpoint(pool).await;
        r.y = Some(report::report_replay(replay::replay(settings, url).await?));
    }
    if wanted('w') {
        checkpoint(pool).await;
        r.w = Some(report::report_delivery(runs::delivery(settings, url).await?));
    }
    if wanted('s') {
        checkpoint(pool).await;
        let (s, l) = store_pages::store_pages(settings, url).await?;
        r.s = Some(report("(s) store search, 10,000 listings, 8 clients", s, 1.0));
        r.l = Some(report("(l) store listing pages, 8 clients", l, 1.0));
    }
    if wanted('r') {
        checkpoint(pool).await;
        r.r = rebuild::rebuild(url, &store).await?;
    }
    if wanted('v') {
        checkpoint(pool).await;
        r.v = Some(rebuild::verify(&store).await?);
    }
    store.pool().close().await;
    Ok(r)
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
        "each phase: CHECKPOINT, {:.1} s warm-up, {:.1} s measured; phases {}\n",
        settings.warmup.as_secs_f64(),
        settings.window.as_secs_f64(),
        settings.phases
    );
    report::header();
    let results = run_phases(&settings, &url, &pool).await;
    pool.close().await;
    // `BENCH_KEEP_DATABASE=1` leaves it for profiling (the next run drops it).
    if std::env::var("BENCH_KEEP_DATABASE").is_ok_and(|v| v == "1") {
        println!("database {name} kept");
    } else {
        admin.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str()).await?;
    }
    report::summarize(&results?);
    Ok(())
}
