//! Settings, the warm-up/window driver every closed-loop phase runs through,
//! the latency statistics, and what a phase waits for before it starts.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use commands::{EventStore, PgEventStore};
use projections::Projections;
use sqlx::{Executor, PgPool};

use crate::Res;

pub struct Settings {
    pub server: String,
    /// Which phases run (`BENCH_PHASES`; `c'` may be spelled `C`).
    pub phases: String,
    pub warmup: Duration,
    pub window: Duration,
}

impl Settings {
    pub fn from_env() -> Res<Self> {
        let seconds = |name: &str, default: f64| -> Res<Duration> {
            let value = std::env::var(name).ok().filter(|v| !v.is_empty());
            let secs =
                value.map_or(Ok(default), |v| v.parse::<f64>().map_err(|_| format!("{name}: not a number: {v}")))?;
            Duration::try_from_secs_f64(secs).map_err(|e| format!("{name}: {e}").into())
        };
        let server =
            std::env::var("BENCH_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        let phases = std::env::var("BENCH_PHASES").unwrap_or_else(|_| crate::ALL_PHASES.into());
        Ok(Self {
            server: server.trim_end_matches('/').to_owned(),
            phases: phases.replace("c'", "C"),
            warmup: seconds("BENCH_WARMUP_SECONDS", 1.0)?,
            window: seconds("BENCH_SECONDS", 5.0)?,
        })
    }

    /// Whether the phase of this letter runs (`C` is c').
    pub fn wanted(&self, phase: char) -> bool {
        self.phases.contains(phase)
    }
}

/// Shared between a phase and its workers: whether to keep going, and
/// whether completions count.
#[derive(Default)]
pub struct Ctl {
    measuring: AtomicBool,
    stop: AtomicBool,
}

impl Ctl {
    pub fn running(&self) -> bool {
        !self.stop.load(Relaxed)
    }

    /// An operation that took `took` completed.
    pub fn record(&self, took: Duration, latencies: &mut Vec<u32>) {
        if self.measuring.load(Relaxed) {
            latencies.push(micros(took));
        }
    }

    /// An operation begun at `started` completed.
    pub fn done(&self, started: Instant, latencies: &mut Vec<u32>) {
        if self.measuring.load(Relaxed) {
            latencies.push(micros(started.elapsed()));
        }
    }
}

pub fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

pub struct Stats {
    pub ops_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Stats {
    /// Statistics of the operations (latencies in µs) completed in `elapsed`.
    pub fn of(mut latencies: Vec<u32>, elapsed: Duration) -> Self {
        latencies.sort_unstable();
        let pct = |q: f64| {
            latencies.get(((latencies.len().max(1) - 1) as f64 * q) as usize).map_or(0.0, |&us| us as f64 / 1000.0)
        };
        let ops_per_sec = latencies.len() as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
        Self { ops_per_sec, p50_ms: pct(0.5), p99_ms: pct(0.99) }
    }
}

/// Run `workers` copies of a worker through warm-up and the window; each
/// worker returns the latencies of one or more kinds of operation (a
/// "series" each, in a fixed order), and one [`Stats`] per series comes back.
pub async fn measure_series<F, Fut>(settings: &Settings, workers: usize, worker: F) -> Res<Vec<Stats>>
where
    F: Fn(Arc<Ctl>) -> Fut,
    Fut: Future<Output = Res<Vec<Vec<u32>>>> + Send + 'static,
{
    let ctl = Arc::new(Ctl::default());
    let handles: Vec<_> = (0..workers).map(|_| tokio::spawn(worker(Arc::clone(&ctl)))).collect();
    tokio::time::sleep(settings.warmup).await;
    ctl.measuring.store(true, Relaxed);
    let started = Instant::now();
    tokio::time::sleep(settings.window).await;
    ctl.measuring.store(false, Relaxed);
    let elapsed = started.elapsed();
    ctl.stop.store(true, Relaxed);
    let mut series: Vec<Vec<u32>> = Vec::new();
    for handle in handles {
        for (i, latencies) in handle.await??.into_iter().enumerate() {
            match series.get_mut(i) {
                Some(all) => all.extend(latencies),
                None => series.push(latencies),
            }
        }
    }
    Ok(series.into_iter().map(|latencies| Stats::of(latencies, elapsed)).collect())
}

/// [`measure_series`] for workers doing one kind of operation.
pub async fn measure<F, Fut>(settings: &Settings, workers: usize, worker: F) -> Res<Stats>
where
    F: Fn(Arc<Ctl>) -> Fut,
    Fut: Future<Output = Res<Vec<u32>>> + Send + 'static,
{
    let series = measure_series(settings, workers, |ctl| {
        let work = worker(ctl);
        async move { Ok(vec![work.await?]) }
    })
    .await?;
    series.into_iter().next().ok_or_else(|| "no worker ran".into())
}

pub async fn checkpoint(pool: &PgPool) {
    // Needs superuser (or pg_checkpoint); without it the phases just share WAL.
    let _ = pool.execute("CHECKPOINT").await;
}

/// Wait until every projector has applied the log up to its head, say how
/// long it took (`before` names the phase that waits), then `CHECKPOINT`:
/// the replay's writes are not the next phase's to pay for.
pub async fn caught_up(projections: &Projections, store: &PgEventStore, before: &str) -> Res<()> {
    let started = Instant::now();
    let head = store.head().await?;
    if !projections.wait_for(&projections.names(), head, Duration::from_secs(600)).await?.is_empty() {
        let errors: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, last_error FROM projection_checkpoints WHERE last_error IS NOT NULL ORDER BY name",
        )
        .fetch_all(store.pool())
        .await?;
        return Err(
            format!("projectors did not catch up with the log within 600 s; their last errors: {errors:?}").into()
        );
    }
    let replay = started.elapsed().as_secs_f64();
    println!("    (projectors replayed the log up to position {}, {replay:.1} s, before {before})", head.position);
    checkpoint(store.pool()).await;
    Ok(())
}
