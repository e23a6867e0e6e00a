//! (r): zero-downtime rebuilds from a log of 1,000,000 events
//! (`BENCH_REBUILD_EVENTS`), and the latency of queries on the read model
//! being rebuilt while it is.
//!
//! The log is made from what the real server records for one user: a
//! greeting graph (graph and library streams), one completed run of it (the
//! run's stream, credits) and, in one copy of every [`LISTED_EVERY`], the
//! graph's store listing (submitted and approved). Those streams are copied,
//! every id in them (except block ids) replaced by a fresh one per copy, and
//! appended in batches until the log holds the wanted number of events. A
//! fresh server then replays it (its projectors' catch-up is printed), and
//! every projection is rebuilt in turn with
//! `Projections::begin_rebuild(..).run(..)` while 4 clients query the read
//! model being rebuilt over HTTP as the template's user, where a route
//! reads it (see [`ROUTES`]); each one's rate is printed
//! (`BENCH_REBUILD_ONLY`, a comma list of names, rebuilds only those).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use commands::{EventStore, NewEvent, PgEventStore, StreamWrite};
use eventlog::store::{new_event_id, EventMetadata, RecordedEvent};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::measure::{caught_up, Stats};
use crate::runs::{greeting, start, start_with};
use crate::Res;

/// The route that reads each projection during its rebuild, where one does.
const ROUTES: [(&str, &str); 10] = [
    ("users", "/api/auth/user/timezone"),
    ("graphs", "/api/graphs"),
    ("library_agents", "/api/library/agents"),
    ("executions", "/api/executions"),
    ("credits", "/api/credits"),
    ("store", "/api/store/agents"),
    ("api_keys", "/api/api-keys"),
    ("schedules", "/api/schedules"),
    ("credentials", "/api/integrations/credentials"),
    ("onboarding", "/api/onboarding"),
];
const QUERY_CLIENTS: usize = 4;
/// Events per append while generating.
const APPEND_EVENTS: usize = 2_000;
/// One copy in this many lists its graph in the store.
const LISTED_EVERY: usize = 20;

/// One projection's rebuild, measured twice: alone on the machine (the
/// rate issue 20 asks for), then again while 4 clients query the model
/// (issue 11's latency during a rebuild; they take about half the cores).
pub struct Rebuilt {
    pub name: &'static str,
    /// Events/s with nothing else running.
    pub alone: f64,
    /// Events/s with the query clients running, where a route reads it.
    pub beside: f64,
    /// Queries on it during the second rebuild, where a route reads it.
    pub queries: Option<Stats>,
}

/// Clients to run on a projection's route during its rebuild.
struct Load {
    addr: SocketAddr,
    route: &'static str,
    token: String,
}

/// Rebuild `name`, with [`QUERY_CLIENTS`] clients on `load`'s route if
/// given: events, events/s and the queries' figures; `None` when it has no
/// read model to rebuild.
async fn rebuild_one(
    projections: &projections::Projections,
    name: &'static str,
    load: Option<Load>,
) -> Res<Option<(u64, f64, Option<Stats>)>> {
    let querying = Arc::new(AtomicBool::new(true));
    let clients: Vec<_> = load
        .iter()
        .flat_map(|load| std::iter::repeat_n(load, QUERY_CLIENTS))
        .map(|load| tokio::spawn(query(load.addr, load.route, load.token.clone(), Arc::clone(&querying))))
        .collect();
    let began = Instant::now();
    let job = match projections.begin_rebuild(name).await {
        Err(projections::ProjectionError::NotRebuildable(_)) => None,
        job => Some(job?),
    };
    let report = match job {
        Some(job) => Some(job.run(|_| {}).await?),
        None => None,
    };
    let elapsed = began.elapsed();
    querying.store(false, Relaxed);
    let mut latencies = Vec::new();
    for c in clients {
        latencies.extend(c.await??);
    }
    let queries = load.map(|_| Stats::of(latencies, elapsed));
    Ok(report.map(|report| (report.events, report.events as f64 / elapsed.as_secs_f64(), queries)))
}

/// Make the log, then rebuild each projection with queries running.
pub async fn rebuild(url: &str, store: &PgEventStore) -> Res<Vec<Rebuilt>> {
    let wanted: u64 = std::env::var("BENCH_REBUILD_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let (user, templates) = record_templates(url, store).await?;
    let started = Instant::now();
    let total = generate(store, &templates, wanted).await?;
    println!("    (r) log of {total} events made in {:.1} s", started.elapsed().as_secs_f64());
    // The query clients loop without pause as one user, to measure latency
    // during rebuilds, not to be throttled by that user's rate limit.
    let (addr, auth, stop, server, state) = start_with(url, |c| c.rate_limit_per_user = 0).await?;
    caught_up(&state.projections, store, "(r)").await?;
    let token = crate::workload::token(&auth, user)?;
    // `BENCH_REBUILD_ONLY=store,executions` rebuilds only those (profiling one).
    let only = std::env::var("BENCH_REBUILD_ONLY").ok().filter(|v| !v.is_empty());
    let mut results = Vec::new();
    for name in state.projections.names() {
        if only.as_deref().is_some_and(|only| !only.split(',').any(|n| n.trim() == name)) {
            continue;
        }
        // A projector that hands events on (the NATS relay) has no read model.
        let Some((events, alone, _)) = rebuild_one(&state.projections, name, None).await? else { continue };
        let route = ROUTES.iter().find(|(n, _)| *n == name).map(|(_, route)| *route);
        let load = route.map(|route| Load { addr, route, token: token.clone() });
        let Some((_, beside, queries)) = rebuild_one(&state.projections, name, load).await? else { continue };
        let rebuilt = Rebuilt { name, alone, beside, queries };
        let queries = rebuilt.queries.as_ref().map_or_else(
            || "no route reads it alone".to_owned(),
            |q| format!("queries during it: {:>7.1}/s p50 {:.2} ms p99 {:.2} ms", q.ops_per_sec, q.p50_ms, q.p99_ms),
        );
        println!(
            "(r) rebuild {name:<15} {events:>9} events {alone:>9.0} ev/s alone, {beside:>9.0} ev/s beside queries; \
             {queries}",
        );
        results.push(rebuilt);
    }
    let _ = stop.send(());
    server.await??;
    Ok(results)
}

/// (v): `audit verify` over the whole log (a million events after (r)),
/// after sealing it; seconds and events.
pub async fn verify(store: &PgEventStore) -> Res<(f64, u64)> {
    let sealed = Instant::now();
    eventlog::seal::seal(store.pool()).await?;
    let sealing = sealed.elapsed().as_secs_f64();
    let began = Instant::now();
    let report = eventlog::audit_verify::verify(store.pool(), |_| {}).await?;
    let took = began.elapsed().as_secs_f64();
    if !report.ok {
        return Err(format!("verify found a problem in the bench's own log: {:?}", report.first_problem).into());
    }
    println!(
        "(v) audit verify: {} events, {} streams, {} seals in {took:.1} s ({:.0} events/s; sealing took {sealing:.1} s)",
        report.events_checked,
        report.streams,
        report.seals_checked,
        report.events_checked as f64 / took
    );
    Ok((took, report.events_checked))
}

/// One client querying `route` until told to stop; its latencies (µs).
async fn query(addr: SocketAddr, route: &str, token: String, running: Arc<AtomicBool>) -> Res<Vec<u32>> {
    let http = reqwest::Client::builder().no_proxy().build()?;
    let url = format!("http://{addr}{route}");
    let mut latencies = Vec::new();
    while running.load(Relaxed) {
        let began = Instant::now();
        let response = http.get(&url).bearer_auth(&token).send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        if !status.is_success() {
            return Err(format!("GET {route} during a rebuild: {status}: {}", String::from_utf8_lossy(&body)).into());
        }
        latencies.push(crate::measure::micros(began.elapsed()));
    }
    Ok(latencies)
}

/// Streams of one user (a graph and a completed run), as the server records them.
async fn record_templates(url: &str, store: &PgEventStore) -> Res<(Uuid, Templates)> {
    let before = store.head().await?;
    let (addr, auth, stop, server, _state) = start(url, None).await?;
    let user = Uuid::new_v4();
    let bearer = crate::workload::token(&auth, user)?;
    let http = reqwest::Client::builder().no_proxy().build()?;
    let base = format!("http://{addr}");
    let graph: Value =
        http.post(format!("{base}/api/graphs")).bearer_auth(&bearer).json(&greeting()).send().await?.json().await?;
    let graph_id = graph["id"].as_str().ok_or_else(|| format!("create graph: {graph}"))?.to_owned();
    let run: Value = http
        .post(format!("{base}/api/graphs/{graph_id}/execute/1"))
        .bearer_auth(&bearer)
        .json(&json!({"inputs": {"name": "bench"}}))
        .send()
        .await?
        .json()
        .await?;
    let run_id = run["id"].as_str().ok_or_else(|| format!("execute: {run}"))?.to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got: Value = http
            .get(format!("{base}/api/graphs/{graph_id}/executions/{run_id}"))
            .bearer_auth(&bearer)
            .send()
            .await?
            .json()
            .await?;
        if got["status"] == "COMPLETED" {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("the template run did not complete: {got}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let listing_from = store.head().await?;
    list(&http, &base, &auth, &bearer, &graph_id).await?;
    let _ = stop.send(());
    server.await??;
    let mut streams: Vec<Vec<RecordedEvent>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut at = before;
    loop {
        let batch = store.read_all(at, 1_000).await?;
        let Some(last) = batch.last() else { break };
        at = last.global;
        for e in batch {
            let i = *index.entry(e.stream_id.clone()).or_insert_with(|| {
                streams.push(Vec::new());
                streams.len() - 1
            });
            streams[i].push(e);
        }
    }
    // A stream copies only when its id holds an id the copy replaces; the
    // profile a submission makes holds a username, which copies would share.
    streams.retain(|s| {
        let id = &s[0].stream_id;
        s[0].version == 1
            && uuids(id).next().is_some()
            && !id.starts_with("store_profile")
            && !id.starts_with("store_name")
    });
    let (listing, common) = streams.into_iter().partition(|s| s[0].global > listing_from);
    Ok((user, Templates { common, listing }))
}

/// Streams to copy: `common` in every copy, `listing` in one of every
/// [`LISTED_EVERY`].
struct Templates {
    common: Vec<Vec<RecordedEvent>>,
    listing: Vec<Vec<RecordedEvent>>,
}

/// Submit the graph to the store and approve it as an admin.
async fn list(
    http: &reqwest::Client,
    base: &str,
    auth: &api::config::AuthConfig,
    bearer: &str,
    graph_id: &str,
) -> Res<()> {
    let submission = json!({"agent_id": graph_id, "agent_version": 1, "slug": "greeter", "name": "Greeter",
        "sub_heading": "says hello", "description": "greets whoever it is given", "categories": ["tools"],
        "image_urls": []});
    let submitted: Value = http
        .post(format!("{base}/api/store/submissions"))
        .bearer_auth(bearer)
        .json(&submission)
        .send()
        .await?
        .json()
        .await?;
    let version = submitted["store_listing_version_id"].as_str().ok_or_else(|| format!("submit: {submitted}"))?;
    let admin = crate::workload::token_as(auth, Uuid::new_v4(), "admin")?;
    let review = json!({"store_listing_version_id": version, "is_approved": true, "comments": "ok"});
    let reviewed = http
        .post(format!("{base}/api/store/admin/submissions/{version}/review"))
        .bearer_auth(admin)
        .json(&review)
        .send()
        .await?;
    if !reviewed.status().is_success() {
        return Err(format!("approve: {}", reviewed.text().await?).into());
    }
    Ok(())
}

/// The 36-character UUIDs in a text, with their offsets.
fn uuids(text: &str) -> impl Iterator<Item = (usize, &str)> + '_ {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(35)).filter_map(move |i| {
        let w = &bytes[i..i + 36];
        let shaped =
            w.iter().enumerate().all(
                |(j, &b)| {
                    if matches!(j, 8 | 13 | 18 | 23) {
                        b == b'-'
                    } else {
                        b.is_ascii_hexdigit()
                    }
                },
            );
        shaped.then(|| (i, &text[i..i + 36]))
    })
}

/// `text` with every UUID `map` names replaced.
fn remap(text: &str, map: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (i, id) in uuids(text) {
        if i < last {
            continue;
        }
        if let Some(new) = map.get(id) {
            out.push_str(&text[last..i]);
            out.push_str(new);
            last = i + 36;
        }
    }
    out.push_str(&text[last..]);
    out
}

/// Append copies of the templates until the log holds `wanted` events;
/// answers how many it holds.
async fn generate(store: &PgEventStore, templates: &Templates, wanted: u64) -> Res<u64> {
    let texts = |e: &RecordedEvent| -> Res<[String; 3]> {
        Ok([e.stream_id.clone(), e.data.get().to_owned(), serde_json::to_string(&e.metadata)?])
    };
    let mut all = Vec::new();
    for e in templates.common.iter().chain(&templates.listing).flatten() {
        all.push(texts(e)?);
    }
    // Block ids stay: the copies run the same blocks.
    let blocks: HashSet<String> = all
        .iter()
        .flat_map(|[_, data, _]| {
            data.match_indices("\"block_id\":\"")
                .map(|(i, m)| data[i + m.len()..].chars().take(36).collect())
                .collect::<Vec<_>>()
        })
        .collect();
    let ids: HashSet<String> =
        all.iter().flatten().flat_map(|t| uuids(t).map(|(_, id)| id.to_owned()).collect::<Vec<_>>()).collect();
    let ids: Vec<String> = ids.into_iter().filter(|id| !blocks.contains(id)).collect();
    let mut copies = 0usize;
    let mut count: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(store.pool()).await?;
    let mut writes = Vec::new();
    let mut pending = 0usize;
    let mut appends = tokio::task::JoinSet::new();
    while (count as u64) < wanted {
        let map: HashMap<String, String> = ids.iter().map(|id| (id.clone(), Uuid::new_v4().to_string())).collect();
        let listed = copies.is_multiple_of(LISTED_EVERY);
        copies += 1;
        let mut per_copy = 0;
        for stream in templates.common.iter().chain(templates.listing.iter().filter(|_| listed)) {
            per_copy += stream.len();
            let mut events = Vec::with_capacity(stream.len());
            for e in stream {
                let metadata: EventMetadata = serde_json::from_str(&remap(&serde_json::to_string(&e.metadata)?, &map))?;
                events.push(NewEvent {
                    event_id: new_event_id(),
                    event_type: e.event_type.clone(),
                    schema_version: e.schema_version,
                    data: serde_json::value::RawValue::from_string(remap(e.data.get(), &map))?,
                    metadata,
                });
            }
            writes.push(StreamWrite { stream_id: remap(&stream[0].stream_id, &map), expected_version: 0, events });
        }
        pending += per_copy;
        count += per_copy as i64;
        if pending >= APPEND_EVENTS || count as u64 >= wanted {
            let store = store.clone();
            let batch = std::mem::take(&mut writes);
            appends.spawn(async move { store.append(&batch).await.map(|_| ()) });
            pending = 0;
            // Two appends in flight: the generator keeps one core, Postgres the other.
            while appends.len() >= 2 {
                appends.join_next().await.ok_or("no append")???;
            }
        }
    }
    while let Some(done) = appends.join_next().await {
        done??;
    }
    Ok(count as u64)
}
