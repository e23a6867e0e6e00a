//! What agents remember between runs: a user's key-value store, written by
//! PersistInformationBlock and read by RetrieveInformationBlock. One stream
//! per user; a value is kept per storage key (AutoGPT's `get_storage_key`:
//! `agent#<graph>#<key>` within one agent, `global#<key>` across agents).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::aggregate::{Aggregate, EventType};

/// Facts about a user's stored information.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum MemoryEvent {
    /// A value was stored under a key (replacing what was there).
    InformationPersisted {
        /// The storage key (scope and key).
        storage_key: String,
        /// The value.
        value: Value,
        /// The node execution that stored it.
        node_exec_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
}

impl EventType for MemoryEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::InformationPersisted { .. } => "InformationPersisted",
        }
    }
}

/// A user's stored information.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct AgentMemory {
    /// The latest value of each storage key.
    pub values: HashMap<String, Value>,
}

impl Aggregate for AgentMemory {
    type Event = MemoryEvent;
    const STREAM_PREFIX: &'static str = "memory";

    fn evolve(&mut self, event: &MemoryEvent) {
        match event {
            MemoryEvent::InformationPersisted { storage_key, value, .. } => {
                self.values.insert(storage_key.clone(), value.clone());
            }
        }
    }
}

/// The storage key of `key` in `scope` (`across_agents` or, by default,
/// `within_agent` of `graph_id`).
pub fn storage_key(scope: &str, key: &str, graph_id: Uuid) -> String {
    if scope == "across_agents" {
        format!("global#{key}")
    } else {
        format!("agent#{graph_id}#{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_kept_per_scope_and_the_latest_wins() {
        let graph = Uuid::new_v4();
        let (mine, everyone) = (storage_key("within_agent", "k", graph), storage_key("across_agents", "k", graph));
        assert_ne!(mine, everyone);
        let put = |key: &str, value: i64| MemoryEvent::InformationPersisted {
            storage_key: key.to_owned(),
            value: value.into(),
            node_exec_id: Uuid::nil(),
            at: Utc::now(),
        };
        let memory = AgentMemory::from_events(&[put(&mine, 1), put(&everyone, 2), put(&mine, 3)]);
        assert_eq!((memory.values[&mine].as_i64(), memory.values[&everyone].as_i64()), (Some(3), Some(2)));
    }
}
