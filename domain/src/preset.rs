//! The LibraryAgentPreset aggregate: a named set of inputs for a graph
//! version, which a user can run again and again.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::aggregate::{Aggregate, EventType};

/// A partial update of a preset; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = LibraryAgentPresetUpdatable))]
pub struct PresetPatch {
    /// New inputs (replace the old ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub inputs: Option<Map<String, Value>>,
    /// New credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub credentials: Option<Map<String, Value>>,
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Active flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
}

/// Facts about a preset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum PresetEvent {
    /// A preset was saved.
    PresetCreated {
        /// Whose.
        user_id: Uuid,
        /// The graph.
        graph_id: Uuid,
        /// Its version.
        graph_version: i32,
        /// Name.
        name: String,
        /// Description.
        description: String,
        /// Graph inputs by name.
        inputs: Map<String, Value>,
        /// Credentials by field.
        credentials: Map<String, Value>,
        /// Active flag.
        is_active: bool,
        /// The webhook whose deliveries run it (a triggered preset); absent
        /// in events written before triggers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        webhook_id: Option<Uuid>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Some fields changed.
    PresetUpdated {
        /// What changed.
        patch: PresetPatch,
        /// When.
        at: DateTime<Utc>,
    },
    /// The preset was deleted (soft).
    PresetDeleted {
        /// When.
        at: DateTime<Utc>,
    },
}

impl EventType for PresetEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::PresetCreated { .. } => "PresetCreated",
            Self::PresetUpdated { .. } => "PresetUpdated",
            Self::PresetDeleted { .. } => "PresetDeleted",
        }
    }
}

/// State of a preset, folded from its stream.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Preset {
    /// Whose, once created.
    pub user_id: Option<Uuid>,
    /// The graph.
    pub graph_id: Uuid,
    /// Its version.
    pub graph_version: i32,
    /// Graph inputs by name.
    pub inputs: Map<String, Value>,
    /// Credentials by credentials input name.
    pub credentials: Map<String, Value>,
    /// Whether deliveries to its webhook start runs.
    pub is_active: bool,
    /// The webhook that triggers it, if any.
    pub webhook_id: Option<Uuid>,
    /// Deleted.
    pub is_deleted: bool,
}

impl Preset {
    /// The preset exists, is not deleted and is `user`'s.
    pub fn is_visible_to(&self, user: Uuid) -> bool {
        self.user_id == Some(user) && !self.is_deleted
    }

    /// The events of a change by `user`, or `None` when the preset is not
    /// the user's (a 404). An empty change appends nothing.
    pub fn update(&self, user: Uuid, patch: PresetPatch, now: DateTime<Utc>) -> Option<Vec<PresetEvent>> {
        self.is_visible_to(user).then(|| {
            if patch == PresetPatch::default() {
                vec![]
            } else {
                vec![PresetEvent::PresetUpdated { patch, at: now }]
            }
        })
    }

    /// The events of a deletion by `user`, or `None` when not the user's.
    pub fn delete(&self, user: Uuid, now: DateTime<Utc>) -> Option<Vec<PresetEvent>> {
        self.is_visible_to(user).then(|| vec![PresetEvent::PresetDeleted { at: now }])
    }

    /// The inputs a run of the preset gets: `overrides` over the preset's.
    pub fn inputs_with(&self, overrides: Map<String, Value>) -> Map<String, Value> {
        let mut inputs = self.inputs.clone();
        inputs.extend(overrides);
        inputs
    }
}

impl Aggregate for Preset {
    type Event = PresetEvent;
    const STREAM_PREFIX: &'static str = "preset";

    fn evolve(&mut self, event: &PresetEvent) {
        match event {
            PresetEvent::PresetCreated {
                user_id,
                graph_id,
                graph_version,
                inputs,
                credentials,
                is_active,
                webhook_id,
                ..
            } => {
                *self = Self {
                    user_id: Some(*user_id),
                    graph_id: *graph_id,
                    graph_version: *graph_version,
                    inputs: inputs.clone(),
                    credentials: credentials.clone(),
                    is_active: *is_active,
                    webhook_id: *webhook_id,
                    is_deleted: false,
                };
            }
            PresetEvent::PresetUpdated { patch, .. } => {
                if let Some(inputs) = &patch.inputs {
                    self.inputs = inputs.clone();
                }
                if let Some(credentials) = &patch.credentials {
                    self.credentials = credentials.clone();
                }
                if let Some(is_active) = patch.is_active {
                    self.is_active = is_active;
                }
            }
            PresetEvent::PresetDeleted { .. } => self.is_deleted = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn run_inputs_are_the_overrides_over_the_presets_and_strangers_change_nothing() {
        let owner = Uuid::new_v4();
        let mut preset = Preset::default();
        let created = PresetEvent::PresetCreated {
            user_id: owner,
            graph_id: Uuid::new_v4(),
            graph_version: 1,
            name: "p".into(),
            description: String::new(),
            inputs: json!({"a": 1, "b": 2}).as_object().unwrap().clone(),
            credentials: Map::new(),
            is_active: true,
            webhook_id: None,
            at: Utc::now(),
        };
        preset.evolve(&created);
        let merged = preset.inputs_with(json!({"b": 3}).as_object().unwrap().clone());
        assert_eq!(Value::Object(merged), json!({"a": 1, "b": 3}));
        assert!(preset.update(Uuid::new_v4(), PresetPatch::default(), Utc::now()).is_none());
        assert_eq!(preset.update(owner, PresetPatch::default(), Utc::now()), Some(vec![]));
        preset.evolve(&preset.delete(owner, Utc::now()).unwrap()[0]);
        assert!(!preset.is_visible_to(owner));
    }
}
