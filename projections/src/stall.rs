//! Watching the database: when an older open transaction holds back
//! committed events, say so once per stall, naming the blocker; when the
//! server restarted underneath (or another took over), keep the log's order
//! correct and make every loop forget what it holds in memory.

use std::sync::Arc;
use std::time::Duration;

use eventlog::horizon::horizon;
use eventlog::PgEventStore;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::pause::sleep_or_stop;

/// How often the horizon is measured.
const EVERY: Duration = Duration::from_secs(1);

/// How long events must have been held back before it counts as a stall.
const STALLED_AFTER_MS: i64 = 2_000;

/// Measure the horizon every second until `stop`; log a warning once per
/// stall (per blocking transaction), and once more when it clears.
pub async fn watch(store: PgEventStore, restarts: Arc<watch::Sender<u64>>, stop: CancellationToken) {
    let mut warned: Option<String> = None;
    let mut started = store.server_started_at().await.ok();
    loop {
        check_restart(&store, &restarts, &mut started).await;
        match horizon(store.pool()).await {
            Ok(h) if h.held_back_events > 0 && h.held_back_ms >= STALLED_AFTER_MS => {
                let blocker = h.oldest_transaction.as_ref();
                let key = blocker.map_or_else(String::new, |b| b.xid.clone());
                if warned.as_ref() != Some(&key) {
                    tracing::warn!(
                        held_back_events = h.held_back_events,
                        held_back_ms = h.held_back_ms,
                        blocker_pid = blocker.and_then(|b| b.pid),
                        blocker_database = blocker.and_then(|b| b.database.as_deref()),
                        blocker_application = blocker.and_then(|b| b.application_name.as_deref()),
                        blocker_state = blocker.and_then(|b| b.state.as_deref()),
                        blocker_prepared_gid = blocker.and_then(|b| b.prepared_gid.as_deref()),
                        blocker_age_ms = blocker.map(|b| b.age_ms),
                        "the log's horizon is stalled: an older open transaction holds back committed events"
                    );
                    warned = Some(key);
                }
            }
            Ok(_) => {
                if warned.take().is_some() {
                    tracing::info!("the log's horizon moves again");
                }
            }
            Err(e) => tracing::debug!(error = %e, "measuring the horizon failed"),
        }
        if sleep_or_stop(&stop, EVERY).await {
            return;
        }
    }
}

/// When the server's start time changed since last seen, make sure the
/// log's order still holds on it, then tell every loop.
async fn check_restart(
    store: &PgEventStore,
    restarts: &watch::Sender<u64>,
    started: &mut Option<chrono::DateTime<chrono::Utc>>,
) {
    let Ok(now) = store.server_started_at().await else { return };
    if started.is_some_and(|seen| seen == now) {
        return;
    }
    if started.is_some() {
        tracing::warn!(server_started_at = %now, "the database restarted underneath: re-reading checkpoints");
        if let Err(e) = store.ensure_order().await {
            // Checked again on the next tick: the start time is not yet recorded.
            tracing::warn!(error = %e, "checking the log's order after a restart failed");
            return;
        }
        restarts.send_modify(|n| *n = n.wrapping_add(1));
    }
    *started = Some(now);
}
