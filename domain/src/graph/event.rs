use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::model::GraphVersion;
use crate::aggregate::EventType;

/// Facts about a graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum GraphEvent {
    /// A new graph was saved, with its first version (active).
    GraphCreated {
        /// Owner.
        user_id: Uuid,
        /// The first version.
        graph: GraphVersion,
        /// When.
        at: DateTime<Utc>,
    },
    /// A new version was saved.
    GraphVersionCreated {
        /// Owner.
        user_id: Uuid,
        /// The version (its `is_active` says whether it became active).
        graph: GraphVersion,
        /// When.
        at: DateTime<Utc>,
    },
    /// Another version became the active one.
    GraphActiveVersionSet {
        /// Owner.
        user_id: Uuid,
        /// The new active version.
        version: i32,
        /// When.
        at: DateTime<Utc>,
    },
    /// The graph and all its versions were deleted.
    GraphDeleted {
        /// Owner.
        user_id: Uuid,
        /// How many versions were deleted.
        version_count: i32,
        /// When.
        at: DateTime<Utc>,
    },
}

impl EventType for GraphEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::GraphCreated { .. } => "GraphCreated",
            Self::GraphVersionCreated { .. } => "GraphVersionCreated",
            Self::GraphActiveVersionSet { .. } => "GraphActiveVersionSet",
            Self::GraphDeleted { .. } => "GraphDeleted",
        }
    }
}
