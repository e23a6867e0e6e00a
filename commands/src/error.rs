//! Errors of the write path.

use domain::graph::GraphError;
use domain::library::LibraryError;
use domain::user::UserError;

/// Failures of the event store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A stream was not at the expected version (someone else appended).
    #[error("stream {stream_id} was modified concurrently")]
    Conflict {
        /// The stream, if known.
        stream_id: String,
    },
    /// A stored event could not be decoded into the current schema.
    #[error("event {event_id} of type {event_type} could not be decoded: {reason}")]
    Decode {
        /// The event.
        event_id: uuid::Uuid,
        /// Its type.
        event_type: String,
        /// What went wrong.
        reason: String,
    },
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Failures of a command.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// A user rule refused it.
    #[error(transparent)]
    User(#[from] UserError),
    /// A graph rule refused it.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A library rule refused it.
    #[error(transparent)]
    Library(#[from] LibraryError),
    /// Still conflicting after the bounded retries.
    #[error("the resource was modified concurrently; retry")]
    Conflict,
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for CommandError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { .. } => Self::Conflict,
            other => Self::Store(other),
        }
    }
}
