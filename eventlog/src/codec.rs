//! The event codec: payloads are stored as the `data` of adjacently tagged
//! events (`{"type", "data"}`), encoded once and decoded straight into
//! their type, old schema versions upcast on the way.

use domain::aggregate::Aggregate;
use serde::de::value::BorrowedStrDeserializer;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::StoreError;
use crate::store::RecordedEvent;

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
pub fn encode_payload<E: serde::Serialize>(event: &E) -> Result<Box<RawValue>, serde_json::Error> {
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

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    use super::*;
    use crate::store::{EventMetadata, GlobalPosition};
    use domain::aggregate::{Aggregate, EventType};
    use uuid::Uuid;

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
}
