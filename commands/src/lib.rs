//! The write side: the event store (trait and Postgres backend), tailing,
//! and the command handlers that load aggregates, decide and append.

pub mod error;
mod inflight;
pub mod postgres;
pub mod services;
pub mod store;
pub mod tail;
pub mod uow;
mod writers;

pub use error::{CommandError, StoreError};
pub use postgres::PgEventStore;
pub use store::{AppendResult, EventMetadata, EventStore, GlobalPosition, NewEvent, RecordedEvent, StreamWrite};
pub use uow::{CommandContext, Outcome};
