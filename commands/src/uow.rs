//! Load → decide → append, for one or more aggregates at once, retried on
//! optimistic-concurrency conflicts.

use std::future::Future;

use domain::aggregate::{stream_name, Aggregate, EventType};
use serde::de::value::BorrowedStrDeserializer;
use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::error::{CommandError, StoreError};
use crate::store::{EventMetadata, EventStore, GlobalPosition, NewEvent, RecordedEvent, StreamWrite};

/// How many times a command is re-decided after a conflict before giving up.
pub const MAX_ATTEMPTS: usize = 5;

/// Who is asking, and how to correlate what follows.
#[derive(Debug, Clone, Default)]
pub struct CommandContext {
    /// The acting user.
    pub user_id: Option<Uuid>,
    /// Correlation id shared by everything this request causes.
    pub correlation_id: Uuid,
    /// HTTP request id.
    pub request_id: Option<String>,
    /// Client-supplied idempotency key: event ids are derived from it, so a
    /// repeated request appends nothing new.
    pub idempotency_key: Option<String>,
}

impl CommandContext {
    /// A context for `user` with a fresh correlation id.
    pub fn for_user(user: Uuid) -> Self {
        Self { user_id: Some(user), correlation_id: Uuid::new_v4(), ..Self::default() }
    }

    /// A fresh id for a new aggregate: derived from the idempotency key when
    /// there is one, so a retried create lands on the same stream. Otherwise
    /// time-ordered (v7), so new streams, and the read-model rows keyed by
    /// the id, are added at the right edge of their indexes instead of on a
    /// random page each.
    pub fn new_id(&self, purpose: &str) -> Uuid {
        match &self.idempotency_key {
            Some(key) => Uuid::new_v5(&self.idempotency_scope(), format!("{purpose}/{key}").as_bytes()),
            None => Uuid::now_v7(),
        }
    }

    fn idempotency_scope(&self) -> Uuid {
        self.user_id.unwrap_or(Uuid::nil())
    }

    /// The id of the `index`th event a command appends to `stream`.
    pub(crate) fn event_id(&self, stream: &str, index: usize) -> Uuid {
        match &self.idempotency_key {
            Some(key) => Uuid::new_v5(&self.idempotency_scope(), format!("event/{key}/{stream}/{index}").as_bytes()),
            None => crate::store::new_event_id(),
        }
    }

    fn metadata(&self) -> EventMetadata {
        EventMetadata {
            correlation_id: self.correlation_id,
            causation_id: Some(self.correlation_id),
            user_id: self.user_id,
            request_id: self.request_id.clone(),
        }
    }
}

/// What a command did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Position of the last event the command appended, or of the last event
    /// it read when it appended nothing: the point a client's next query must
    /// see.
    pub position: GlobalPosition,
    /// How many events were appended.
    pub appended: usize,
}

/// Decode a stored event into an aggregate's event type, upcasting old
/// schema versions first.
pub fn decode<A: Aggregate>(event: &RecordedEvent) -> Result<A::Event, StoreError> {
    let upcast = A::upcast(&event.event_type, event.schema_version, &event.data);
    let data = match &upcast {
        Some(value) => Payload::Tree(value),
        None => Payload::Stored(&event.data),
    };
    // Events are adjacently tagged (`{"type", "data"}`); presenting type and
    // payload as that map, without building it, decodes without a copy.
    let tagged =
        serde::de::value::MapAccessDeserializer::new(Tagged { event_type: Some(&event.event_type), data: Some(data) });
    A::Event::deserialize(tagged).map_err(|e| StoreError::Decode {
        event_id: event.event_id,
        event_type: event.event_type.clone(),
        reason: e.to_string(),
    })
}

/// The `data` of an adjacently tagged event (`{"type", "data"}`), encoded
/// once: serialized to text and the payload's slice copied out, where a
/// JSON tree built, split and serialized again cost several times as much.
fn encode_payload<E: serde::Serialize>(event: &E) -> Result<Box<RawValue>, serde_json::Error> {
    #[derive(Deserialize)]
    struct Content<'a> {
        #[serde(borrow, default)]
        data: Option<&'a RawValue>,
    }
    let tagged = serde_json::to_string(event)?;
    match serde_json::from_str::<Content<'_>>(&tagged)?.data {
        Some(data) => Ok(data.to_owned()),
        // A variant without fields has no `data`.
        None => serde_json::value::to_raw_value(&()),
    }
}

/// An event's payload: its stored text, or the tree an upcast made of it.
#[derive(Clone, Copy)]
enum Payload<'a> {
    Stored(&'a RawValue),
    Tree(&'a serde_json::Value),
}

/// The map `{"type": event_type, "data": data}`, read field by field.
struct Tagged<'a> {
    event_type: Option<&'a str>,
    data: Option<Payload<'a>>,
}

impl<'de> serde::de::MapAccess<'de> for Tagged<'de> {
    type Error = serde_json::Error;

    fn next_key_seed<K: serde::de::DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Self::Error> {
        let key = match (self.event_type, self.data) {
            (Some(_), _) => "type",
            (None, Some(_)) => "data",
            (None, None) => return Ok(None),
        };
        seed.deserialize(BorrowedStrDeserializer::new(key)).map(Some)
    }

    fn next_value_seed<V: serde::de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Self::Error> {
        if let Some(event_type) = self.event_type.take() {
            return seed.deserialize(BorrowedStrDeserializer::new(event_type));
        }
        match self.data.take() {
            Some(Payload::Stored(raw)) => seed.deserialize(&mut serde_json::Deserializer::from_str(raw.get())),
            Some(Payload::Tree(value)) => seed.deserialize(value),
            None => Err(serde::de::Error::custom("no value left")),
        }
    }
}

/// One attempt at a command: the streams it read and the events it decided.
pub struct UnitOfWork<'a, S> {
    store: &'a S,
    ctx: &'a CommandContext,
    writes: Vec<StreamWrite>,
    read_position: GlobalPosition,
}

impl<'a, S: EventStore> UnitOfWork<'a, S> {
    /// Start an attempt.
    pub fn new(store: &'a S, ctx: &'a CommandContext) -> Self {
        Self { store, ctx, writes: Vec::new(), read_position: GlobalPosition::START }
    }

    /// Load an aggregate's state and the version it is at.
    pub async fn load<A: Aggregate>(&mut self, id: Uuid) -> Result<(A, i64), CommandError> {
        let (state, version, _) = self.load_with_events::<A>(id).await?;
        Ok((state, version))
    }

    /// Load an aggregate with its decoded history (for commands that need
    /// past payloads, such as forking a graph version).
    pub async fn load_with_events<A: Aggregate>(&mut self, id: Uuid) -> Result<(A, i64, Vec<A::Event>), CommandError> {
        let stream = stream_name::<A>(id);
        let recorded = self.store.read_stream(&stream, 0).await?;
        let mut state = A::default();
        let mut events = Vec::with_capacity(recorded.len());
        for r in &recorded {
            let event = decode::<A>(r)?;
            state.evolve(&event);
            events.push(event);
            self.read_position = self.read_position.max(r.global);
        }
        let version = recorded.last().map_or(0, |r| r.version);
        Ok((state, version, events))
    }

    /// Queue events for an aggregate decided against `expected_version`.
    pub fn record<A: Aggregate>(
        &mut self,
        id: Uuid,
        expected_version: i64,
        events: &[A::Event],
    ) -> Result<(), CommandError> {
        if events.is_empty() {
            return Ok(());
        }
        let stream_id = stream_name::<A>(id);
        let mut new_events = Vec::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            let data = encode_payload(event).map_err(|e| StoreError::Decode {
                event_id: Uuid::nil(),
                event_type: event.event_type().to_owned(),
                reason: e.to_string(),
            })?;
            // Independent of the stream version: a retried request decides
            // against a newer version but must produce the same ids.
            new_events.push(NewEvent {
                event_id: self.ctx.event_id(&stream_id, i),
                event_type: event.event_type().to_owned(),
                schema_version: event.schema_version(),
                data,
                metadata: self.ctx.metadata(),
            });
        }
        self.writes.push(StreamWrite { stream_id, expected_version, events: new_events });
        Ok(())
    }

    /// Append everything recorded, atomically.
    pub async fn commit(self) -> Result<Outcome, CommandError> {
        let appended: usize = self.writes.iter().map(|w| w.events.len()).sum();
        if appended == 0 {
            return Ok(Outcome { position: self.read_position, appended: 0 });
        }
        let result = self.store.append(&self.writes).await?;
        let position = result.last().unwrap_or(self.read_position);
        Ok(Outcome { position, appended: if result.duplicate { 0 } else { appended } })
    }
}

/// Run one attempt of a command, re-running it from scratch after a
/// conflict, at most [`MAX_ATTEMPTS`] times; then answer `Conflict`.
pub async fn retry_on_conflict<T, F, Fut>(mut attempt: F) -> Result<T, CommandError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CommandError>>,
{
    for _ in 1..MAX_ATTEMPTS {
        match attempt().await {
            Err(CommandError::Conflict) => {
                tracing::debug!("conflict, re-deciding");
                continue;
            }
            other => return other,
        }
    }
    attempt().await
}

/// The common command shape: load one aggregate, decide, append what it
/// decided, re-deciding on conflict.
pub async fn decide_on<A, S, F>(store: &S, ctx: &CommandContext, id: Uuid, decide: F) -> Result<Outcome, CommandError>
where
    A: Aggregate,
    S: EventStore,
    F: Fn(&A) -> Result<Vec<A::Event>, CommandError>,
{
    retry_on_conflict(|| async {
        let mut uow = UnitOfWork::new(store, ctx);
        let (state, version) = uow.load::<A>(id).await?;
        let events = decide(&state)?;
        uow.record::<A>(id, version, &events)?;
        uow.commit().await
    })
    .await
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    use super::*;

    /// A toy aggregate whose `Renamed` event changed shape in version 2.
    #[derive(Default)]
    struct Toy {
        name: String,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[serde(tag = "type", content = "data")]
    enum ToyEvent {
        Renamed { display_name: String },
    }

    impl EventType for ToyEvent {
        fn event_type(&self) -> &'static str {
            "Renamed"
        }
        fn schema_version(&self) -> i32 {
            2
        }
    }

    impl Aggregate for Toy {
        type Event = ToyEvent;
        const STREAM_PREFIX: &'static str = "toy";

        fn evolve(&mut self, event: &ToyEvent) {
            let ToyEvent::Renamed { display_name } = event;
            self.name.clone_from(display_name);
        }

        /// Version 1 called the field `name`.
        fn upcast(event_type: &str, schema_version: i32, data: &RawValue) -> Option<serde_json::Value> {
            if event_type != "Renamed" || schema_version >= 2 {
                return None;
            }
            let mut data: serde_json::Value = serde_json::from_str(data.get()).ok()?;
            if let Some(name) = data.as_object_mut().and_then(|o| o.remove("name")) {
                data["display_name"] = name;
            }
            Some(data)
        }
    }

    fn recorded(schema_version: i32, data: serde_json::Value) -> RecordedEvent {
        RecordedEvent {
            global: GlobalPosition::START,
            stream_id: "toy-1".into(),
            version: 1,
            event_id: Uuid::new_v4(),
            event_type: "Renamed".into(),
            schema_version,
            data: serde_json::value::to_raw_value(&data).unwrap(),
            metadata: EventMetadata::default(),
            recorded_at: Utc::now(),
        }
    }

    #[test]
    fn old_schema_versions_are_upcast_on_read() {
        let old = decode::<Toy>(&recorded(1, json!({"name": "old"}))).unwrap();
        let new = decode::<Toy>(&recorded(2, json!({"display_name": "new"}))).unwrap();
        let state = Toy::from_events([&old, &new]);
        assert_eq!(state.name, "new");
        assert!(matches!(old, ToyEvent::Renamed { display_name } if display_name == "old"));
    }

    #[test]
    fn payloads_are_the_data_of_the_tagged_event() {
        #[derive(Serialize)]
        #[serde(tag = "type", content = "data")]
        enum Mixed {
            Nested { inner: serde_json::Value },
            Reset,
        }
        let nested = Mixed::Nested { inner: json!({"data": [1, {"type": "x"}], "s": "}\"{"}) };
        assert_eq!(encode_payload(&nested).unwrap().get(), r#"{"inner":{"data":[1,{"type":"x"}],"s":"}\"{"}}"#);
        assert_eq!(encode_payload(&Mixed::Reset).unwrap().get(), "null");
        let renamed = ToyEvent::Renamed { display_name: "n".into() };
        let stored = recorded(2, serde_json::from_str(encode_payload(&renamed).unwrap().get()).unwrap());
        assert!(matches!(decode::<Toy>(&stored).unwrap(), ToyEvent::Renamed { display_name } if display_name == "n"));
    }

    #[test]
    fn undecodable_events_are_typed_errors() {
        let err = decode::<Toy>(&recorded(2, json!({"unexpected": 1}))).unwrap_err();
        assert!(matches!(err, StoreError::Decode { ref event_type, .. } if event_type == "Renamed"), "{err}");
    }

    #[test]
    fn idempotency_keys_derive_stable_ids() {
        let user = Uuid::new_v4();
        let ctx = CommandContext { idempotency_key: Some("k1".into()), ..CommandContext::for_user(user) };
        assert_eq!(ctx.new_id("graph"), ctx.new_id("graph"));
        assert_eq!(ctx.event_id("s", 0), ctx.event_id("s", 0));
        assert_ne!(ctx.event_id("s", 0), ctx.event_id("s", 1));
        let plain = CommandContext::for_user(user);
        assert_ne!(plain.new_id("graph"), plain.new_id("graph"));
    }
}
