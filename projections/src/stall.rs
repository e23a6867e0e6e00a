//! Watching the log's horizon: when an older open transaction holds back
//! committed events, say so once per stall, naming the blocker.

use std::time::Duration;

use eventlog::horizon::horizon;
use eventlog::PgEventStore;
use tokio_util::sync::CancellationToken;

use crate::runner::sleep_or_stop;

/// How often the horizon is measured.
const EVERY: Duration = Duration::from_secs(1);

/// How long events must have been held back before it counts as a stall.
const STALLED_AFTER_MS: i64 = 2_000;

/// Measure the horizon every second until `stop`; log a warning once per
/// stall (per blocking transaction), and once more when it clears.
pub async fn watch(store: PgEventStore, stop: CancellationToken) {
    let mut warned: Option<String> = None;
    loop {
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
