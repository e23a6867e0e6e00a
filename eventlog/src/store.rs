//! The event store contract, kept small so another backend is one module.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use uuid::Uuid;

use crate::error::StoreError;

/// A place in the global order of the log. Ordered by transaction first:
/// see the migration of the `events` table for why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GlobalPosition {
    /// Id of the transaction that appended the event.
    pub tx_id: i64,
    /// The event's position (unique, increasing within a transaction).
    pub position: i64,
}

impl GlobalPosition {
    /// Before the first event.
    pub const START: Self = Self { tx_id: 0, position: 0 };
}

/// Who and what caused an event: kept in the envelope, not the payload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    /// Groups every event caused by one client request.
    pub correlation_id: Uuid,
    /// The message (request or event) that caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// The acting user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    /// The HTTP request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// A fresh event id. Time-ordered (UUIDv7), so the unique index on event
/// ids grows at its right edge instead of taking random page writes.
pub fn new_event_id() -> Uuid {
    Uuid::now_v7()
}

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Unique id; appending an id that is already stored is a no-op.
    pub event_id: Uuid,
    /// Stable type name.
    pub event_type: String,
    /// Schema version of `data`.
    pub schema_version: i32,
    /// Payload, already encoded: it is stored as this text.
    pub data: Box<serde_json::value::RawValue>,
    /// Envelope metadata.
    pub metadata: EventMetadata,
}

/// Events for one stream, appended only if the stream is at
/// `expected_version` (0: the stream must not exist yet).
#[derive(Debug, Clone)]
pub struct StreamWrite {
    /// Stream name, `<aggregate>-<uuid>`.
    pub stream_id: String,
    /// The version the caller based its decision on.
    pub expected_version: i64,
    /// The events, in order.
    pub events: Vec<NewEvent>,
}

/// A stored event with its envelope.
#[derive(Debug, Clone)]
pub struct RecordedEvent {
    /// Global order key.
    pub global: GlobalPosition,
    /// Stream name.
    pub stream_id: String,
    /// 1-based version within the stream.
    pub version: i64,
    /// Unique id.
    pub event_id: Uuid,
    /// Stable type name.
    pub event_type: String,
    /// Schema version of `data` as stored.
    pub schema_version: i32,
    /// Payload, as stored: decoded only by whoever needs it, into its type.
    pub data: Box<serde_json::value::RawValue>,
    /// Envelope metadata.
    pub metadata: EventMetadata,
    /// Commit-side timestamp.
    pub recorded_at: DateTime<Utc>,
}

/// What an append stored (or, for a repeated append, had stored before).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendResult {
    /// Global position of each event, in the order given.
    pub positions: Vec<GlobalPosition>,
    /// True when every event id was already stored: nothing was appended.
    pub duplicate: bool,
}

impl AppendResult {
    /// Position of the last event appended.
    pub fn last(&self) -> Option<GlobalPosition> {
        self.positions.iter().max().copied()
    }
}

/// An append-only log of streams with a gap-free global order.
pub trait EventStore: Send + Sync + 'static {
    /// Append to one or more streams atomically, each checked against its
    /// expected version; a stale version fails with [`StoreError::Conflict`].
    fn append(&self, writes: &[StreamWrite]) -> impl Future<Output = Result<AppendResult, StoreError>> + Send;

    /// Events of one stream with version > `after_version`, in order.
    fn read_stream(
        &self,
        stream_id: &str,
        after_version: i64,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// Up to `limit` committed events after `after` in global order. Never
    /// returns an event that a later call could place before one returned.
    fn read_all(
        &self,
        after: GlobalPosition,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// The position of the last readable event.
    fn head(&self) -> impl Future<Output = Result<GlobalPosition, StoreError>> + Send;

    /// A signal that changes when an append (or another write) of this
    /// process ended and the log may have become readable further, so
    /// tailers wake at once instead of waiting for their poll.
    fn appended(&self) -> watch::Receiver<u64>;
}
