//! The LibraryAgent aggregate: a user's entry for a graph in its library,
//! with per-user flags and settings.

mod command;
mod event;

use std::collections::BTreeSet;

pub use command::{LibraryAgentCommand, LibraryAgentPatch};
pub use event::LibraryAgentEvent;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::{derived_id, Aggregate};

/// Per-user execution settings of a library agent (AutoGPT's GraphSettings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "SettingsObject")]
pub struct GraphSettings {
    /// Ask a human before human-in-the-loop blocks proceed.
    #[serde(default = "yes")]
    pub human_in_the_loop_safe_mode: bool,
    /// Ask a human before sensitive actions.
    #[serde(default)]
    pub sensitive_action_safe_mode: bool,
}

/// Settings as sent. Serde's derive would also read a struct whose fields
/// all have defaults from `[]`; the schema says object, so only a map is read.
#[derive(Deserialize)]
struct SettingsObject(serde_json::Map<String, serde_json::Value>);

impl TryFrom<SettingsObject> for GraphSettings {
    type Error = serde_json::Error;

    fn try_from(SettingsObject(map): SettingsObject) -> Result<Self, Self::Error> {
        #[derive(Deserialize)]
        struct Fields {
            #[serde(default = "yes")]
            human_in_the_loop_safe_mode: bool,
            #[serde(default)]
            sensitive_action_safe_mode: bool,
        }
        let f: Fields = serde_json::from_value(serde_json::Value::Object(map))?;
        Ok(Self {
            human_in_the_loop_safe_mode: f.human_in_the_loop_safe_mode,
            sensitive_action_safe_mode: f.sensitive_action_safe_mode,
        })
    }
}

fn yes() -> bool {
    true
}

impl Default for GraphSettings {
    fn default() -> Self {
        Self { human_in_the_loop_safe_mode: true, sensitive_action_safe_mode: false }
    }
}

/// Why a library command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LibraryError {
    /// No such library agent for this user.
    #[error("Library agent not found")]
    NotFound,
    /// The requested graph version does not exist.
    #[error("Graph version #{0} not found")]
    VersionNotFound(i32),
}

/// One user has at most one library agent per graph: its id is derived from
/// both, so adding twice (or retrying) lands on the same stream.
pub fn library_agent_id(user_id: Uuid, graph_id: Uuid) -> Uuid {
    derived_id(user_id, &format!("library-agent-{graph_id}"))
}

/// State of one library agent, folded from its stream.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LibraryAgent {
    /// Set once added.
    pub id: Option<Uuid>,
    /// The user whose library it is in.
    pub user_id: Option<Uuid>,
    /// The graph.
    pub graph_id: Option<Uuid>,
    /// The graph version the agent runs.
    pub graph_version: i32,
    /// Follow the graph's active version automatically.
    pub auto_update_version: bool,
    /// Favourite flag.
    pub is_favorite: bool,
    /// Archived flag.
    pub is_archived: bool,
    /// Soft-deleted.
    pub is_deleted: bool,
    /// Per-user settings.
    pub settings: GraphSettings,
    /// When it was (last) added.
    pub created_at: Option<DateTime<Utc>>,
    /// When it last changed.
    pub updated_at: Option<DateTime<Utc>>,
}

impl LibraryAgent {
    /// The agent exists, is not deleted and belongs to `user`.
    pub fn is_visible_to(&self, user: Uuid) -> bool {
        self.id.is_some() && !self.is_deleted && self.user_id == Some(user)
    }
}

impl Aggregate for LibraryAgent {
    type Event = LibraryAgentEvent;
    const STREAM_PREFIX: &'static str = "library_agent";

    fn evolve(&mut self, event: &LibraryAgentEvent) {
        match event {
            LibraryAgentEvent::LibraryAgentAdded { library_agent_id, user_id, graph_id, graph_version, at, .. } => {
                *self = Self {
                    id: Some(*library_agent_id),
                    user_id: Some(*user_id),
                    graph_id: Some(*graph_id),
                    graph_version: *graph_version,
                    auto_update_version: true,
                    created_at: Some(*at),
                    updated_at: Some(*at),
                    ..Self::default()
                };
            }
            LibraryAgentEvent::LibraryAgentUpdated { patch, at, .. } => {
                self.updated_at = Some(*at);
                if let Some(v) = patch.auto_update_version {
                    self.auto_update_version = v;
                }
                if let Some(v) = patch.graph_version {
                    self.graph_version = v;
                }
                if let Some(v) = patch.is_favorite {
                    self.is_favorite = v;
                }
                if let Some(v) = patch.is_archived {
                    self.is_archived = v;
                }
                if let Some(v) = patch.settings {
                    self.settings = v;
                }
            }
            LibraryAgentEvent::LibraryAgentDeleted { at, .. } => {
                self.is_deleted = true;
                self.updated_at = Some(*at);
            }
        }
    }
}

/// Versions a graph has, passed in by the handler to validate a version pin.
pub type KnownVersions = BTreeSet<i32>;

#[cfg(test)]
mod tests;
