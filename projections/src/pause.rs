//! How the background loops (feed, projectors, watchers) pause after a
//! failure and stop on the shared shutdown signal.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// First pause after a failed batch or read; see [`next_backoff`].
pub(crate) const INITIAL_BACKOFF: Duration = Duration::from_millis(50);

/// The pause after another failure: double the last, at most 5 s.
pub(crate) fn next_backoff(pause: Duration) -> Duration {
    (pause * 2).min(Duration::from_secs(5))
}

/// Sleep, unless asked to stop first; true when stopping.
pub(crate) async fn sleep_or_stop(stop: &CancellationToken, pause: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(pause) => false,
        () = stop.cancelled() => true,
    }
}
