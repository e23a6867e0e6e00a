//! (s) store search latency and (l) store listing pages per second, against
//! the real server over HTTP (issue 10 §3).
//!
//! Seeding: [`LISTINGS`] approved listings made through the real command
//! path (a graph, its submission, an admin's approval each, by 100
//! creators) in process, then the store projector catches up, so the rows
//! searched are the ones the projection builds. Titles, sub-headings and
//! descriptions are drawn from a vocabulary of 2,197 made-up words, so one
//! search word matches about 150 listings, as a popular word does.
//!
//! (s): 8 clients loop `GET /api/store/agents?search_query=<word>` (a word
//! of the vocabulary, in turn), each over its own keep-alive connection.
//! (l): 8 clients loop `GET /api/store/agents?sorted_by=runs&page=<n>` over
//! the first 50 pages of 20.

use std::net::SocketAddr;
use std::time::Instant;

use commands::services::Submission;
use commands::CommandContext;
use domain::store::SubmissionDetails;
use futures_util::future::try_join_all;
use uuid::Uuid;

use crate::measure::{caught_up, measure, Settings, Stats};
use crate::{Res, WRITERS};

/// Approved listings searched.
pub const LISTINGS: usize = 10_000;
const CREATORS: usize = 100;

/// Syllables of the vocabulary's made-up words: 13³ = 2,197 words, so a
/// listing's 34 words make one word match about 150 listings, as a
/// popular search word does.
const SYLLABLES: &[&str] = &["ka", "lo", "mi", "ren", "tos", "vu", "bel", "dra", "fin", "gor", "hul", "jep", "nix"];
const VOCABULARY: usize = 13 * 13 * 13;

fn word(n: usize) -> String {
    let n = n % VOCABULARY;
    [n / 169, (n / 13) % 13, n % 13].iter().map(|&i| SYLLABLES[i]).collect()
}

const CATEGORIES: &[&str] =
    &["productivity", "writing", "finance", "lifestyle", "marketing", "education", "research", "social"];

/// `n` words of the vocabulary, spread over it by `seed`.
fn words(seed: usize, n: usize) -> String {
    (0..n).map(|i| word(seed.wrapping_mul(2_654_435_761) / 7 + i * 97)).collect::<Vec<_>>().join(" ")
}

/// Make [`LISTINGS`] approved listings through the commands, 8 at a time.
async fn seed(state: &api::state::AppState) -> Res<()> {
    let creators: Vec<Uuid> = (0..CREATORS).map(|_| Uuid::new_v4()).collect();
    let admin = Uuid::new_v4();
    let draft = crate::workload::graph_draft()?;
    let started = Instant::now();
    let per_task = LISTINGS / WRITERS;
    try_join_all((0..WRITERS).map(|task| {
        let (commands, draft, creators) = (state.commands.clone(), draft.clone(), creators.clone());
        tokio::spawn(async move {
            for n in 0..per_task {
                let i = task * per_task + n;
                let owner = creators[i % CREATORS];
                let ctx = CommandContext::for_user(owner);
                let graph = commands.create_graph(&ctx, owner, draft.clone()).await?;
                let details = SubmissionDetails {
                    name: words(i, 3),
                    sub_heading: words(i + 1, 6),
                    description: words(i + 2, 25),
                    categories: vec![CATEGORIES[i % CATEGORIES.len()].to_owned()],
                    image_urls: vec![format!("https://img.example/{i}.png")],
                    ..SubmissionDetails::default()
                };
                let submission =
                    Submission { graph_id: graph.graph_id, graph_version: 1, slug: format!("agent-{i}"), details };
                let (_, submitted) = commands.submit_to_store(&ctx, owner, submission).await?;
                let verdict = (true, "ok".to_owned(), None);
                let review = CommandContext::for_user(admin);
                commands.review_submission(&review, admin, submitted.listing_id, submitted.version_id, verdict).await?;
            }
            Ok::<_, crate::BoxError>(())
        })
    }))
    .await?
    .into_iter()
    .collect::<Res<Vec<()>>>()?;
    caught_up(&state.projections, state.store(), "(s)").await?;
    let listed: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_store_agents").fetch_one(state.pool()).await?;
    println!(
        "    (s) seeded {listed} approved listings in {:.1} s (commands and projection)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// 8 clients GETting `path(i)` in a loop, each over a keep-alive HTTP/1.1
/// connection (hyper's connection API, as in (d)).
async fn get_loop(settings: &Settings, addr: SocketAddr, path: fn(usize) -> String) -> Res<Stats> {
    use http_body_util::{BodyExt, Empty};
    use hyper::body::Bytes;
    use hyper::client::conn::http1;
    use hyper_util::rt::TokioIo;
    measure(settings, WRITERS, |ctl| async move {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (mut sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        let connection = tokio::spawn(connection);
        let mut latencies = Vec::new();
        let mut i = rand_start();
        while ctl.running() {
            i += 1;
            let started = Instant::now();
            let request = hyper::Request::get(path(i))
                .header(hyper::header::HOST, addr.to_string())
                .body(Empty::<Bytes>::new())?;
            let response = sender.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            if !status.is_success() {
                return Err(format!("GET: {status}: {}", String::from_utf8_lossy(&body)).into());
            }
            ctl.done(started, &mut latencies);
        }
        drop(sender);
        connection.await??;
        Ok(latencies)
    })
    .await
}

fn rand_start() -> usize {
    Uuid::new_v4().as_u128() as usize % VOCABULARY
}

fn search(i: usize) -> String {
    format!("/api/store/agents?search_query={}", word(i * 31))
}

fn page(i: usize) -> String {
    format!("/api/store/agents?sorted_by=runs&page={}&page_size=20", 1 + i % 50)
}

/// (s) then (l) on one server over the seeded store.
pub async fn store_pages(settings: &Settings, url: &str) -> Res<(Stats, Stats)> {
    let (addr, _auth, stop, server, state) = crate::runs::start(url, None).await?;
    let result = async {
        seed(&state).await?;
        let s = get_loop(settings, addr, search).await?;
        let l = get_loop(settings, addr, page).await?;
        Ok((s, l))
    }
    .await;
    let _ = stop.send(());
    server.await??;
    result
}
