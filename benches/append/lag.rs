//! (g): how long after an append the read models show it, at a steady rate
//! with the projectors running.

use std::sync::Arc;
use std::time::{Duration, Instant};

use commands::services::Commands;
use commands::{CommandContext, PgEventStore};
use projections::Projections;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::measure::{caught_up, micros, Settings, Stats};
use crate::workload::graph_draft;
use crate::{Res, EVENTS_PER_GRAPH, WRITERS};

/// (g)'s pace: 500 graphs, 1,000 events, per second.
pub const COMMANDS_PER_SEC: f64 = 500.0;
/// Commands outstanding (appending or waiting to be visible) beyond which a
/// tick is skipped: the rate is then not sustained.
pub const MAX_IN_FLIGHT: usize = 64;
/// Longer than this and an event counts as not visible.
pub const VISIBLE_TIMEOUT: Duration = Duration::from_secs(10);
/// The read models a created graph lands in.
const READ_MODELS: [&str; 2] = [projections::graphs::NAME, projections::library::NAME];

/// What (g) measured.
pub struct Lag {
    /// Commands per second issued in the window; latencies: append returned
    /// → visible in both read models.
    pub lag: Stats,
    /// The commands' own latency (until the append returned).
    pub commands: Stats,
    /// Ticks of the window skipped because [`MAX_IN_FLIGHT`] commands were
    /// outstanding.
    pub skipped: u64,
    /// Commands of the window not visible within [`VISIBLE_TIMEOUT`].
    pub invisible: u64,
}

impl Lag {
    /// Whether the pace held: every tick issued, every command visible, and
    /// at least 98% of the intended rate completed in the window.
    pub fn sustained(&self) -> bool {
        self.skipped == 0 && self.invisible == 0 && self.lag.ops_per_sec >= 0.98 * COMMANDS_PER_SEC
    }

    pub fn events_per_sec(&self) -> f64 {
        self.lag.ops_per_sec * EVENTS_PER_GRAPH
    }
}

/// (g): start every projector on `store`, let them catch up, then create
/// graphs at [`COMMANDS_PER_SEC`] and time each from its append returning
/// to both read models having applied it. Visibility is read from the
/// projectors' in-memory progress (published after their transaction
/// commits), so measuring it adds no queries.
pub async fn lag(settings: &Settings, store: &PgEventStore) -> Res<Lag> {
    let stop = CancellationToken::new();
    let projections = Projections::new(store.clone(), projections::all());
    let handles = projections.spawn(stop.clone()).await?;
    let lag = async {
        caught_up(&projections, store, "(g)").await?;
        paced(settings, store, &projections).await
    }
    .await;
    stop.cancel();
    for handle in handles {
        handle.await?;
    }
    lag
}

/// One command of the pace.
struct Sample {
    /// Issued in the measured window.
    in_window: bool,
    /// Seen in both read models within [`VISIBLE_TIMEOUT`].
    visible: bool,
    /// Until the append returned, µs.
    command: u32,
    /// From the append returning until visible, µs.
    lag: u32,
}

async fn paced(settings: &Settings, store: &PgEventStore, projections: &Projections) -> Res<Lag> {
    let commands = Commands::new(store.clone()).with_quotas(domain::quota::QuotaLimits::UNLIMITED);
    let draft = graph_draft()?;
    let users: Vec<Uuid> = (0..WRITERS).map(|_| Uuid::new_v4()).collect();
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tasks: JoinSet<Res<Sample>> = JoinSet::new();
    let mut samples = Vec::new();
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / COMMANDS_PER_SEC));
    // A late tick fires at once: the average rate holds through a stall.
    interval.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let start = tokio::time::Instant::now();
    let (window_from, window_to) = (start + settings.warmup, start + settings.warmup + settings.window);
    let mut skipped = 0;
    for user in users.iter().cycle() {
        let tick = interval.tick().await;
        if tick >= window_to {
            break;
        }
        let in_window = tick >= window_from;
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            skipped += u64::from(in_window);
            continue;
        };
        let (commands, projections, draft, user) = (commands.clone(), projections.clone(), draft.clone(), *user);
        tasks.spawn(async move {
            let ctx = CommandContext::for_user(user);
            let started = Instant::now();
            let created = commands.create_graph(&ctx, user, draft).await?;
            let appended = Instant::now();
            let visible =
                projections.wait_for(&READ_MODELS, created.outcome.position, VISIBLE_TIMEOUT).await?.is_empty();
            let lag = appended.elapsed();
            drop(slot);
            Ok(Sample { in_window, visible, command: micros(appended - started), lag: micros(lag) })
        });
        while let Some(done) = tasks.try_join_next() {
            samples.push(done??);
        }
    }
    while let Some(done) = tasks.join_next().await {
        samples.push(done??);
    }
    let measured = samples.into_iter().filter(|s| s.in_window);
    let (visible, invisible): (Vec<Sample>, Vec<Sample>) = measured.partition(|s| s.visible);
    Ok(Lag {
        lag: Stats::of(visible.iter().map(|s| s.lag).collect(), settings.window),
        commands: Stats::of(visible.iter().map(|s| s.command).collect(), settings.window),
        skipped,
        invisible: invisible.len() as u64,
    })
}
