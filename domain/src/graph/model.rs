//! The graph as clients submit it and as the log stores it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// Most nodes in one graph version.
pub const MAX_NODES: usize = 2000;
/// Most links in one graph version.
pub const MAX_LINKS: usize = 10_000;
/// Most sub-graphs kept with one version.
pub const MAX_SUB_GRAPHS: usize = 50;
/// Longest graph name.
pub const MAX_NAME_CHARS: usize = 500;
/// Longest description or instructions.
pub const MAX_TEXT_CHARS: usize = 20_000;
/// Longest id, block id, pin name or cron expression.
pub const MAX_ID_CHARS: usize = 200;

/// A link between an output pin of one node and an input pin of another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Link {
    /// Link id; reassigned on save.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub id: String,
    /// Node the value comes from.
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub source_id: String,
    /// Node the value goes to.
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub sink_id: String,
    /// Output pin of the source node.
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub source_name: String,
    /// Input pin of the sink node.
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub sink_name: String,
    /// A static link keeps delivering its last value.
    #[serde(default)]
    pub is_static: bool,
}

/// One block instance in a graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Node {
    /// Node id; reassigned on save.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub id: String,
    /// The block this node runs.
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub block_id: String,
    /// Constant inputs, pin name to value.
    #[serde(default)]
    pub input_default: Map<String, Value>,
    /// Free-form UI data (position, …).
    #[serde(default = "empty_object")]
    pub metadata: Value,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

fn default_true() -> bool {
    true
}

/// A graph as a client submits it (`POST /api/graphs`, `PUT /api/graphs/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Graph))]
pub struct GraphDraft {
    /// Ignored on create; must match the path on update.
    #[serde(default)]
    pub id: Option<String>,
    /// Ignored: the server assigns versions.
    #[serde(default)]
    pub version: Option<i64>,
    /// Whether this version becomes the active one.
    #[serde(default = "default_true")]
    pub is_active: bool,
    /// Display name: not blank.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 500, pattern = r"\S"))]
    pub name: String,
    /// Description.
    #[cfg_attr(feature = "openapi", schema(max_length = 20000))]
    pub description: String,
    /// Instructions for the user running the agent.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 20000))]
    pub instructions: Option<String>,
    /// Suggested schedule.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub recommended_schedule_cron: Option<String>,
    /// The nodes.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 2000))]
    pub nodes: Vec<Node>,
    /// The links.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 10000))]
    pub links: Vec<Link>,
    /// The graph this one was forked from.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub forked_from_id: Option<String>,
    /// The version it was forked from.
    #[serde(default)]
    pub forked_from_version: Option<i64>,
    /// Sub-graphs, kept as submitted.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 50))]
    pub sub_graphs: Vec<Value>,
}

/// One saved version of a graph, as recorded in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphVersion {
    /// Graph id, shared by all versions.
    pub id: Uuid,
    /// Version number, 1-based.
    pub version: i32,
    /// Whether it was saved as the active version.
    pub is_active: bool,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Instructions.
    pub instructions: Option<String>,
    /// Suggested schedule.
    pub recommended_schedule_cron: Option<String>,
    /// Nodes with server-assigned ids.
    pub nodes: Vec<Node>,
    /// Links with server-assigned ids, remapped to the new node ids.
    pub links: Vec<Link>,
    /// Fork origin.
    pub forked_from_id: Option<String>,
    /// Fork origin version.
    pub forked_from_version: Option<i64>,
    /// Sub-graphs, as submitted.
    pub sub_graphs: Vec<Value>,
}

impl GraphVersion {
    /// The submitted draft this version was saved from, for forking.
    pub fn to_draft(&self) -> GraphDraft {
        GraphDraft {
            id: Some(self.id.to_string()),
            version: Some(i64::from(self.version)),
            is_active: self.is_active,
            name: self.name.clone(),
            description: self.description.clone(),
            instructions: self.instructions.clone(),
            recommended_schedule_cron: self.recommended_schedule_cron.clone(),
            nodes: self.nodes.clone(),
            links: self.links.clone(),
            forked_from_id: self.forked_from_id.clone(),
            forked_from_version: self.forked_from_version,
            sub_graphs: self.sub_graphs.clone(),
        }
    }
}

/// Strip a dynamic-pin suffix (`_#_key`, `_$_idx`, `_@_attr`) to get the
/// field the pin belongs to.
pub fn base_pin_name(pin: &str) -> &str {
    ["_#_", "_$_", "_@_"].iter().filter_map(|sep| pin.find(sep)).min().map_or(pin, |at| &pin[..at])
}
