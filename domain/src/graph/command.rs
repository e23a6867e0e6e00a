use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::validate::validate_and_normalize;
use super::{Graph, GraphDraft, GraphError, GraphEvent};

/// What a caller may ask of a graph.
#[derive(Debug, Clone, PartialEq)]
pub enum GraphCommand {
    /// Save a new graph under a fresh id (the caller picks the id).
    CreateGraph {
        /// Fresh graph id.
        graph_id: Uuid,
        /// Owner.
        user_id: Uuid,
        /// Submitted graph.
        draft: GraphDraft,
        /// The clock.
        now: DateTime<Utc>,
    },
    /// Save a new version (`PUT /api/graphs/{id}`).
    CreateGraphVersion {
        /// Caller.
        user_id: Uuid,
        /// Submitted graph.
        draft: GraphDraft,
        /// The clock.
        now: DateTime<Utc>,
    },
    /// Make an existing version the active one.
    SetActiveVersion {
        /// Caller.
        user_id: Uuid,
        /// Version to activate.
        version: i32,
        /// The clock.
        now: DateTime<Utc>,
    },
    /// Delete the graph with all versions.
    DeleteGraph {
        /// Caller.
        user_id: Uuid,
        /// The clock.
        now: DateTime<Utc>,
    },
}

impl Graph {
    /// Decide which events a command produces against this state.
    pub fn decide(&self, command: GraphCommand) -> Result<Vec<GraphEvent>, GraphError> {
        match command {
            GraphCommand::CreateGraph { graph_id, user_id, draft, now } => {
                if self.id.is_some() {
                    return Err(GraphError::AlreadyExists);
                }
                let graph = validate_and_normalize(&draft, graph_id, 1, true)?;
                Ok(vec![GraphEvent::GraphCreated { user_id, graph, at: now }])
            }
            GraphCommand::CreateGraphVersion { user_id, draft, now } => {
                let graph_id = self.owned_id(user_id)?;
                if let Some(body_id) = draft.id.as_deref().filter(|id| !id.is_empty()) {
                    if body_id != graph_id.to_string() {
                        return Err(GraphError::IdMismatch);
                    }
                }
                let version = self.latest_version() + 1;
                let graph = validate_and_normalize(&draft, graph_id, version, draft.is_active)?;
                Ok(vec![GraphEvent::GraphVersionCreated { user_id, graph, at: now }])
            }
            GraphCommand::SetActiveVersion { user_id, version, now } => {
                self.owned_id(user_id)?;
                if !self.versions.contains(&version) {
                    return Err(GraphError::VersionNotFound(version));
                }
                if self.active_version == Some(version) {
                    return Ok(vec![]);
                }
                Ok(vec![GraphEvent::GraphActiveVersionSet { user_id, version, at: now }])
            }
            GraphCommand::DeleteGraph { user_id, now } => {
                self.owned_id(user_id)?;
                let version_count = i32::try_from(self.versions.len()).unwrap_or(i32::MAX);
                Ok(vec![GraphEvent::GraphDeleted { user_id, version_count, at: now }])
            }
        }
    }

    fn owned_id(&self, user_id: Uuid) -> Result<Uuid, GraphError> {
        match self.id {
            Some(id) if self.is_owned_by(user_id) => Ok(id),
            _ => Err(GraphError::NotFound),
        }
    }
}
