use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::LibraryAgentPatch;
use crate::aggregate::EventType;

/// Facts about a library agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum LibraryAgentEvent {
    /// A graph entered (or re-entered) the user's library.
    LibraryAgentAdded {
        /// The agent id.
        library_agent_id: Uuid,
        /// Whose library.
        user_id: Uuid,
        /// The graph.
        graph_id: Uuid,
        /// The version.
        graph_version: i32,
        /// The user created the graph (rather than adding someone else's).
        is_created_by_user: bool,
        /// When.
        at: DateTime<Utc>,
    },
    /// Flags, settings or the pinned version changed; absent fields did not.
    LibraryAgentUpdated {
        /// Whose library.
        user_id: Uuid,
        /// What changed.
        patch: LibraryAgentPatch,
        /// When.
        at: DateTime<Utc>,
    },
    /// The agent was removed from the library (soft delete).
    LibraryAgentDeleted {
        /// Whose library.
        user_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
}

impl EventType for LibraryAgentEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::LibraryAgentAdded { .. } => "LibraryAgentAdded",
            Self::LibraryAgentUpdated { .. } => "LibraryAgentUpdated",
            Self::LibraryAgentDeleted { .. } => "LibraryAgentDeleted",
        }
    }
}
