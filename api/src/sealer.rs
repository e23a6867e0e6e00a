//! The sealing loop: every `SEAL_INTERVAL_MS` it seals the events that
//! passed below the horizon since the last seal (see `eventlog::seal`).
//!
//! Each instance may run one; seals chain, and a seal raced by another
//! instance is simply not made (the next tick seals from the winner's end).

use std::time::Duration;

use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Seal every `every` until `stop` is cancelled.
pub fn spawn(pool: PgPool, every: Duration, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        // A slow seal (the first one over a big log) must not be followed by
        // a burst of catch-up ticks.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = ticks.tick() => {}
            }
            match eventlog::seal::seal(&pool).await {
                Ok(Some(seal)) => {
                    tracing::debug!(seq = seal.seq, events = seal.event_count, "sealed the log");
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "sealing the log failed; retrying next tick"),
            }
        }
    })
}
