//! One reader of the log shared by all projectors of a process.
//!
//! Every projector needs the same events in the same order; reading them
//! once per projector multiplied the log queries, the payload decoding and
//! the empty polls while an older transaction holds the horizon. The feed
//! follows the log with a single [`Tail`] and keeps the most recent events
//! in memory; a projector whose checkpoint lies inside that window is served
//! from memory, one further behind (catching up, or rebuilt) reads the
//! database itself until it reaches the window.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use eventlog::store::{EventStore, GlobalPosition, RecordedEvent};
use eventlog::tail::{Tail, TailConfig};
use eventlog::{PgEventStore, StoreError};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::pause::{next_backoff, sleep_or_stop, INITIAL_BACKOFF};

/// Events kept in memory: enough for projectors that fall briefly behind,
/// small enough not to matter (a few MiB of typical events).
const DEFAULT_CAPACITY: usize = 4096;

/// The shared reader and its window on the log.
#[derive(Clone)]
pub struct Feed {
    shared: Arc<Shared>,
}

struct Shared {
    store: PgEventStore,
    window: Mutex<Window>,
    /// The position of the newest event in the window.
    advanced: watch::Sender<GlobalPosition>,
    tail: TailConfig,
    capacity: usize,
}

/// The complete log after `base`, in order, up to the newest event read.
struct Window {
    base: GlobalPosition,
    events: VecDeque<Arc<RecordedEvent>>,
}

impl Window {
    fn last(&self) -> GlobalPosition {
        self.events.back().map_or(self.base, |e| e.global)
    }

    /// Up to `limit` events after `after`, or `None` when `after` is older
    /// than the window (the caller must read the database).
    fn after(&self, after: GlobalPosition, limit: usize) -> Option<Vec<Arc<RecordedEvent>>> {
        if after < self.base {
            return None;
        }
        let start = self.events.partition_point(|e| e.global <= after);
        Some(self.events.iter().skip(start).take(limit).cloned().collect())
    }
}

impl Feed {
    /// A feed that will follow the log after `from` once [`Self::run`] runs.
    pub fn new(store: PgEventStore, from: GlobalPosition, tail: TailConfig) -> Self {
        Self::with_capacity(store, from, tail, DEFAULT_CAPACITY)
    }

    /// The same, keeping at most `capacity` events in memory.
    pub fn with_capacity(store: PgEventStore, from: GlobalPosition, tail: TailConfig, capacity: usize) -> Self {
        let window = Window { base: from, events: VecDeque::with_capacity(capacity.min(1024)) };
        let shared = Shared {
            store,
            window: Mutex::new(window),
            advanced: watch::Sender::new(from),
            tail,
            capacity: capacity.max(1),
        };
        Self { shared: Arc::new(shared) }
    }

    fn window(&self) -> MutexGuard<'_, Window> {
        // Only pushes and reads happen under the lock; a panic cannot leave
        // the window half-updated, so a poisoned lock is still consistent.
        self.shared.window.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Follow the log until `stop`, appending what committed to the window.
    /// A failed read is retried after a pause; the waiting projectors just
    /// see no progress meanwhile.
    /// When `restarts` changes (the database restarted underneath), the
    /// window is emptied and the feed follows the log from its head again:
    /// events it held may be gone, and new ones may sort before them.
    pub async fn run(&self, mut restarts: watch::Receiver<u64>, stop: CancellationToken) {
        let shared = &self.shared;
        let from = self.window().last();
        let mut tail = Tail::new(&shared.store, from, shared.tail);
        let mut pause = INITIAL_BACKOFF;
        restarts.borrow_and_update();
        loop {
            let batch = tokio::select! {
                batch = tail.next(&shared.store) => batch,
                Ok(()) = restarts.changed() => {
                    match shared.store.head().await {
                        Ok(head) => {
                            self.reset(head);
                            tail.seek(head);
                        }
                        Err(e) => tracing::warn!(error = %e, "reading the log's head after a restart failed"),
                    }
                    continue;
                }
                () = stop.cancelled() => return,
            };
            match batch {
                Ok(batch) => {
                    pause = INITIAL_BACKOFF;
                    self.push(batch);
                }
                Err(e) => {
                    // The tail stays where it was: the failed read moved nothing.
                    tracing::warn!(error = %e, "reading the log failed; retrying");
                    if sleep_or_stop(&stop, pause).await {
                        return;
                    }
                    pause = next_backoff(pause);
                }
            }
        }
    }

    /// Forget the window: the log is followed from `head` on.
    fn reset(&self, head: GlobalPosition) {
        {
            let mut window = self.window();
            window.events.clear();
            window.base = head;
        }
        self.shared.advanced.send_replace(head);
    }

    fn push(&self, batch: Vec<RecordedEvent>) {
        let last = {
            let mut window = self.window();
            window.events.extend(batch.into_iter().map(Arc::new));
            let excess = window.events.len().saturating_sub(self.shared.capacity);
            if excess > 0 {
                window.base = window.events[excess - 1].global;
                window.events.drain(..excess);
            }
            window.last()
        };
        self.shared.advanced.send_replace(last);
    }

    /// The next non-empty batch after `after` (at most the tail's batch
    /// size), waiting as long as it takes.
    pub async fn next(&self, after: GlobalPosition) -> Result<Vec<Arc<RecordedEvent>>, StoreError> {
        let limit = usize::try_from(self.shared.tail.batch).unwrap_or(usize::MAX).max(1);
        let mut advanced = self.shared.advanced.subscribe();
        loop {
            // Mark seen before looking, so a push racing the look wakes us.
            advanced.borrow_and_update();
            let served = self.window().after(after, limit);
            match served {
                Some(events) if !events.is_empty() => return Ok(events),
                Some(_) => {}
                None => {
                    let events = self.shared.store.read_all(after, self.shared.tail.batch).await?;
                    if !events.is_empty() {
                        return Ok(events.into_iter().map(Arc::new).collect());
                    }
                }
            }
            // Cannot fail: `self` holds the sender.
            let _ = advanced.changed().await;
        }
    }
}
