//! The event store: the [`EventStore`] trait and its Postgres backend,
//! gap-free tailing, the event codec and consistency tokens. Both the write
//! side (`commands`) and the read side (`projections`) build on it; neither
//! depends on the other.

pub mod audit;
pub mod audit_verify;
mod chain;
pub mod codec;
pub mod error;
pub mod horizon;
mod inflight;
pub mod postgres;
pub mod seal;
pub mod store;
pub mod tail;
pub mod token;
mod writers;

pub use error::StoreError;
pub use postgres::{PgEventStore, Wanted, Writing};
pub use store::{AppendResult, EventMetadata, EventStore, GlobalPosition, NewEvent, RecordedEvent, StreamWrite};
pub use token::ConsistencyToken;
