//! Which of this process's appends are under way, to wake tailers only when
//! waking them can help.
//!
//! The log is readable only below the oldest open writing transaction. When
//! several appends run at once and a younger one commits first, its events
//! stay unreadable until the older ones end: waking the tailers then only
//! buys them an empty read. So an append that ends wakes them only if no
//! append that started before it is still under way; that older one wakes
//! them when it ends. (Start order approximates transaction id order; where
//! they differ the older append's wake still covers both, and the tailers'
//! polling covers anything else.)

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

/// The appends under way and the signal tailers wait on.
#[derive(Debug)]
pub(crate) struct InFlight {
    /// Next ticket number, and the tickets of appends under way.
    state: Mutex<(u64, BTreeSet<u64>)>,
    wake: watch::Sender<u64>,
}

/// One append under way; dropping it (done, failed or cancelled) ends it.
pub(crate) struct Ticket<'a> {
    number: u64,
    owner: &'a InFlight,
}

impl InFlight {
    pub(crate) fn new() -> Self {
        Self { state: Mutex::new((0, BTreeSet::new())), wake: watch::Sender::new(0) }
    }

    fn state(&self) -> MutexGuard<'_, (u64, BTreeSet<u64>)> {
        // Each change is a single insert or remove: a panic cannot leave the
        // set half-changed, so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Mark an append as started.
    pub(crate) fn start(&self) -> Ticket<'_> {
        let mut state = self.state();
        let number = state.0;
        state.0 += 1;
        state.1.insert(number);
        Ticket { number, owner: self }
    }

    /// What tailers wait on.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let oldest = {
            let mut state = self.owner.state();
            state.1.remove(&self.number);
            state.1.first().is_none_or(|&first| first > self.number)
        };
        if oldest {
            self.owner.wake.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_oldest_append_ending_wakes() {
        let inflight = InFlight::new();
        let mut rx = inflight.subscribe();
        rx.borrow_and_update();
        let (first, second, third) = (inflight.start(), inflight.start(), inflight.start());
        drop(second);
        assert!(!rx.has_changed().unwrap(), "an older append is still under way");
        drop(first);
        assert!(rx.has_changed().unwrap(), "the oldest ended");
        rx.borrow_and_update();
        drop(third);
        assert!(rx.has_changed().unwrap(), "the last one ended");
    }
}
