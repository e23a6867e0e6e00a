//! The contract every aggregate fulfils, so the write side can load, decide
//! and append for any of them with one generic handler.

use serde::{de::DeserializeOwned, Serialize};

/// An event's stable wire identity: its `type` name and schema version.
pub trait EventType {
    /// The stable type name stored in the log (past tense, e.g. `GraphCreated`).
    fn event_type(&self) -> &'static str;
    /// The schema version this code writes for that type.
    fn schema_version(&self) -> i32 {
        1
    }
}

/// An event-sourced aggregate: state folded from its own stream.
pub trait Aggregate: Default + Sized {
    /// The events of this aggregate's stream.
    type Event: EventType + Serialize + DeserializeOwned + Clone + std::fmt::Debug + Send + Sync;
    /// Stream name prefix; streams are named `<prefix>-<uuid>`.
    const STREAM_PREFIX: &'static str;

    /// Fold one event into the state.
    fn evolve(&mut self, event: &Self::Event);

    /// Turn an older schema version of an event into the current one before
    /// it is deserialized; the log itself is never rewritten. `None` means
    /// the payload is current as stored: it is then decoded straight from
    /// its stored text, and only an upcast pays for a JSON tree.
    fn upcast(
        _event_type: &str,
        _schema_version: i32,
        _data: &serde_json::value::RawValue,
    ) -> Option<serde_json::Value> {
        None
    }

    /// Fold a sequence of events from the default state.
    fn from_events<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self
    where
        Self::Event: 'a,
    {
        let mut state = Self::default();
        for event in events {
            state.evolve(event);
        }
        state
    }
}

/// The stream name of an aggregate instance.
pub fn stream_name<A: Aggregate>(id: uuid::Uuid) -> String {
    format!("{}-{}", A::STREAM_PREFIX, id)
}

/// A deterministic id derived from a parent id and a discriminator, so that a
/// retried command produces the same ids (and so the same event ids).
pub fn derived_id(parent: uuid::Uuid, discriminator: &str) -> uuid::Uuid {
    uuid::Uuid::new_v5(&parent, discriminator.as_bytes())
}
