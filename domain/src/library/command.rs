use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{GraphSettings, KnownVersions, LibraryAgent, LibraryAgentEvent, LibraryError};

/// A partial update of a library agent; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = LibraryAgentUpdateRequest))]
pub struct LibraryAgentPatch {
    /// Follow the graph's active version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_update_version: Option<bool>,
    /// Pin a graph version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_version: Option<i32>,
    /// Favourite flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_favorite: Option<bool>,
    /// Archived flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_archived: Option<bool>,
    /// Per-user settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<GraphSettings>,
}

impl LibraryAgentPatch {
    /// Keep only the fields that differ from the current state.
    fn changes_against(mut self, agent: &LibraryAgent) -> Self {
        fn keep<T: PartialEq>(field: &mut Option<T>, current: &T) {
            if field.as_ref() == Some(current) {
                *field = None;
            }
        }
        keep(&mut self.auto_update_version, &agent.auto_update_version);
        keep(&mut self.graph_version, &agent.graph_version);
        keep(&mut self.is_favorite, &agent.is_favorite);
        keep(&mut self.is_archived, &agent.is_archived);
        keep(&mut self.settings, &agent.settings);
        self
    }

    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// What a caller may ask of a library agent.
#[derive(Debug, Clone, PartialEq)]
pub enum LibraryAgentCommand {
    /// Put a graph version in the user's library (idempotent; re-adds a
    /// deleted agent, moves an existing one to the given version if it
    /// follows the active version).
    AddToLibrary {
        /// Derived with [`super::library_agent_id`].
        library_agent_id: Uuid,
        /// Whose library.
        user_id: Uuid,
        /// The graph.
        graph_id: Uuid,
        /// The version.
        graph_version: i32,
        /// The user created the graph.
        is_created_by_user: bool,
        /// The clock.
        now: DateTime<Utc>,
    },
    /// Change flags, settings or pinned version.
    UpdateLibraryAgent {
        /// Caller.
        user_id: Uuid,
        /// The change.
        patch: LibraryAgentPatch,
        /// Versions the graph has, to check a pinned version.
        known_versions: KnownVersions,
        /// The clock.
        now: DateTime<Utc>,
    },
    /// Remove the agent from the library.
    DeleteLibraryAgent {
        /// Caller.
        user_id: Uuid,
        /// The clock.
        now: DateTime<Utc>,
    },
}

impl LibraryAgent {
    /// Decide which events a command produces against this state.
    pub fn decide(&self, command: LibraryAgentCommand) -> Result<Vec<LibraryAgentEvent>, LibraryError> {
        match command {
            LibraryAgentCommand::AddToLibrary {
                library_agent_id,
                user_id,
                graph_id,
                graph_version,
                is_created_by_user,
                now,
            } => {
                if self.id.is_none() || self.is_deleted {
                    return Ok(vec![LibraryAgentEvent::LibraryAgentAdded {
                        library_agent_id,
                        user_id,
                        graph_id,
                        graph_version,
                        is_created_by_user,
                        at: now,
                    }]);
                }
                if !self.auto_update_version {
                    return Ok(vec![]);
                }
                let patch = LibraryAgentPatch { graph_version: Some(graph_version), ..Default::default() };
                Ok(self.updated(user_id, patch, now))
            }
            LibraryAgentCommand::UpdateLibraryAgent { user_id, patch, known_versions, now } => {
                self.ensure_visible(user_id)?;
                if let Some(version) = patch.graph_version {
                    if !known_versions.contains(&version) {
                        return Err(LibraryError::VersionNotFound(version));
                    }
                }
                Ok(self.updated(user_id, patch, now))
            }
            LibraryAgentCommand::DeleteLibraryAgent { user_id, now } => {
                self.ensure_visible(user_id)?;
                Ok(vec![LibraryAgentEvent::LibraryAgentDeleted { user_id, at: now }])
            }
        }
    }

    /// Refuse unless the agent exists, is not deleted, and is `user`'s.
    pub fn ensure_visible(&self, user: Uuid) -> Result<(), LibraryError> {
        if self.is_visible_to(user) {
            Ok(())
        } else {
            Err(LibraryError::NotFound)
        }
    }

    fn updated(&self, user_id: Uuid, patch: LibraryAgentPatch, now: DateTime<Utc>) -> Vec<LibraryAgentEvent> {
        let patch = patch.changes_against(self);
        if patch.is_empty() {
            return vec![];
        }
        vec![LibraryAgentEvent::LibraryAgentUpdated { user_id, patch, at: now }]
    }
}
