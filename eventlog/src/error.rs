//! Errors of the event store.

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
