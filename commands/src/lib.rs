//! The write side: command handlers that load aggregates from the event
//! store, let the pure domain decide, and append what it decided.

mod cache;
pub mod clock;
pub mod context;
pub mod error;
pub mod services;
pub mod uow;
pub mod vault;

pub use context::CommandContext;
pub use error::{CommandError, StoreError};
pub use eventlog::{
    AppendResult, EventMetadata, EventStore, GlobalPosition, NewEvent, PgEventStore, RecordedEvent, StreamWrite,
};
pub use uow::Outcome;
