//! The Graph aggregate: an agent's versions, which one is active, and who
//! owns it.

mod command;
pub mod credentials;
mod event;
pub mod model;
pub mod trigger;
pub mod validate;
pub mod view;

use std::collections::BTreeSet;

pub use command::GraphCommand;
pub use event::GraphEvent;
pub use model::{GraphDraft, GraphVersion, Link, Node};
pub use validate::NodeErrors;

use uuid::Uuid;

use crate::aggregate::Aggregate;

/// Why a graph command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// No such graph for this user (also when it belongs to someone else).
    #[error("Graph not found")]
    NotFound,
    /// No such version of the graph.
    #[error("Graph version #{0} not found")]
    VersionNotFound(i32),
    /// A graph with this id already exists.
    #[error("Graph already exists")]
    AlreadyExists,
    /// The body's id does not match the path's.
    #[error("Graph ID does not match ID of graph")]
    IdMismatch,
    /// The graph failed validation, per node and field.
    #[error("{message}")]
    Validation {
        /// Summary.
        message: String,
        /// Errors per submitted node id and field.
        node_errors: NodeErrors,
    },
    /// The graph as a whole is malformed.
    #[error("{0}")]
    Invalid(String),
    /// A count or a length is over its limit.
    #[error("{field}: at most {limit}")]
    TooLarge {
        /// The field, e.g. `nodes` or `name`.
        field: &'static str,
        /// Its limit (items or characters).
        limit: usize,
    },
}

/// State of one graph, folded from its stream.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Graph {
    /// The graph id, once created.
    pub id: Option<Uuid>,
    /// The owner.
    pub owner: Option<Uuid>,
    /// Versions saved so far.
    pub versions: BTreeSet<i32>,
    /// The active version.
    pub active_version: Option<i32>,
    /// Hard-deleted: the id is gone for good.
    pub deleted: bool,
}

impl Graph {
    /// The highest saved version (0 before the first).
    pub fn latest_version(&self) -> i32 {
        self.versions.last().copied().unwrap_or(0)
    }

    /// The graph exists, is not deleted and belongs to `user`.
    pub fn is_owned_by(&self, user: Uuid) -> bool {
        self.id.is_some() && !self.deleted && self.owner == Some(user)
    }
}

impl Aggregate for Graph {
    type Event = GraphEvent;
    const STREAM_PREFIX: &'static str = "graph";

    fn evolve(&mut self, event: &GraphEvent) {
        match event {
            GraphEvent::GraphCreated { user_id, graph, .. } => {
                self.id = Some(graph.id);
                self.owner = Some(*user_id);
                self.versions.insert(graph.version);
                self.active_version = Some(graph.version);
            }
            GraphEvent::GraphVersionCreated { graph, .. } => {
                self.versions.insert(graph.version);
                if graph.is_active {
                    self.active_version = Some(graph.version);
                }
            }
            GraphEvent::GraphActiveVersionSet { version, .. } => self.active_version = Some(*version),
            GraphEvent::GraphDeleted { .. } => self.deleted = true,
        }
    }
}

#[cfg(test)]
mod tests;
