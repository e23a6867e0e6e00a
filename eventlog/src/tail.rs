//! Following the log: wait for the next committed events after a position,
//! woken at once by appends in this process, polling for everything else
//! (other processes, and events held back behind an open transaction).

use std::time::Duration;

use tokio::sync::watch;

use crate::error::StoreError;
use crate::store::{EventStore, GlobalPosition, RecordedEvent};

/// How a tailer waits when it has caught up.
#[derive(Debug, Clone, Copy)]
pub struct TailConfig {
    /// Longest wait between two polls when nothing signals.
    pub max_poll: Duration,
    /// First re-poll after a wake that found nothing readable yet (an older
    /// transaction still open); doubles up to `max_poll`.
    pub min_poll: Duration,
    /// Events per read.
    pub batch: i64,
    /// Events per read when replaying the log into a rebuilt read model:
    /// more than live, where a batch is whatever arrived, because each batch
    /// costs a statement (or a transaction) and its planning.
    pub rebuild_batch: i64,
}

impl Default for TailConfig {
    fn default() -> Self {
        Self {
            max_poll: Duration::from_millis(250),
            min_poll: Duration::from_millis(2),
            batch: 500,
            rebuild_batch: 2_000,
        }
    }
}

/// A cursor on the global log.
#[derive(Debug)]
pub struct Tail {
    after: GlobalPosition,
    wake: watch::Receiver<u64>,
    config: TailConfig,
}

impl Tail {
    /// Start after `after` on `store`.
    pub fn new<S: EventStore>(store: &S, after: GlobalPosition, config: TailConfig) -> Self {
        Self { after, wake: store.appended(), config }
    }

    /// Where the cursor is.
    pub fn position(&self) -> GlobalPosition {
        self.after
    }

    /// Move the cursor (after a rebuild, or when another instance moved the
    /// checkpoint).
    pub fn seek(&mut self, after: GlobalPosition) {
        self.after = after;
    }

    /// The next non-empty batch, waiting as long as it takes. The cursor is
    /// advanced past the batch; a caller that fails to apply it seeks back.
    pub async fn next<S: EventStore>(&mut self, store: &S) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut backoff = self.config.min_poll;
        loop {
            // Mark seen before reading, so an append racing the read still wakes us.
            self.wake.borrow_and_update();
            let batch = store.read_all(self.after, self.config.batch).await?;
            if let Some(last) = batch.last() {
                self.after = last.global;
                return Ok(batch);
            }
            tokio::select! {
                changed = self.wake.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep(self.config.max_poll).await;
                    }
                    backoff = self.config.min_poll;
                }
                () = tokio::time::sleep(backoff) => {
                    backoff = (backoff * 2).min(self.config.max_poll);
                }
            }
        }
    }
}
