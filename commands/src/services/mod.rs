//! Command handlers, one module per area. Each loads what it needs, lets the
//! pure domain decide, and appends everything a request changes atomically.

mod graph;
mod library;
mod user;

pub use graph::CreatedGraph;

use eventlog::EventStore;

/// The command side of the application, over any event store.
#[derive(Debug, Clone)]
pub struct Commands<S> {
    store: S,
}

impl<S: EventStore> Commands<S> {
    /// Handlers appending to `store`.
    pub fn new(store: S) -> Self {
        Self { store }
    }

    /// The underlying store.
    pub fn store(&self) -> &S {
        &self.store
    }
}
