//! Command handlers, one module per area. Each loads what it needs, lets the
//! pure domain decide, and appends everything a request changes atomically.

mod execution;
mod graph;
mod library;
mod user;

pub use graph::CreatedGraph;
pub use library::AgentFromLog;

use eventlog::EventStore;

use crate::clock::Clock;

/// The command side of the application, over any event store.
#[derive(Debug, Clone)]
pub struct Commands<S> {
    store: S,
    clock: Clock,
}

impl<S: EventStore> Commands<S> {
    /// Handlers appending to `store`, on the system clock.
    pub fn new(store: S) -> Self {
        Self::with_clock(store, Clock::system())
    }

    /// Handlers appending to `store`, reading the time from `clock`.
    pub fn with_clock(store: S, clock: Clock) -> Self {
        Self { store, clock }
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// The underlying store.
    pub fn store(&self) -> &S {
        &self.store
    }
}
