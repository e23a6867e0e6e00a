//! How a saved graph version is served: AutoGPT's `GraphModel` with its
//! computed input/output schemas, and (in the read model's queries) `GraphMeta`, the
//! same without nodes, links and creation time.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::model::{GraphVersion, Link, Node};
use crate::blocks::{self, BlockType};

/// The PrintToConsole block is flagged by AutoGPT as a sensitive action.
const SENSITIVE_BLOCK_IDS: &[&str] = &["f3b1c1b2-4c4f-4f0d-8d2f-4c4f0d8d2f4c"];

/// Timestamps as AutoGPT serves them (RFC 3339, UTC).
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// AutoGPT's `GraphModel` of one version, borrowing from it: serialized
/// straight to the response or the read model, with no JSON tree built first.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GraphModel<'a> {
    id: Uuid,
    version: i32,
    /// Left out where it is kept apart (the read model's own column).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = bool))]
    is_active: Option<bool>,
    name: &'a str,
    description: &'a str,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    instructions: &'a Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    recommended_schedule_cron: &'a Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    forked_from_id: &'a Option<String>,
    forked_from_version: Option<i64>,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<serde_json::Value>))]
    sub_graphs: &'a [Value],
    /// Blank in an export.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    user_id: Uuid,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    input_schema: Value,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    output_schema: Value,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    credentials_input_schema: Value,
    has_external_trigger: bool,
    has_human_in_the_loop: bool,
    has_sensitive_action: bool,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    trigger_setup_info: Option<super::trigger::GraphTriggerInfo>,
    created_at: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<NodeModel>))]
    nodes: Vec<NodeModel<'a>>,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Link>))]
    links: &'a [Link],
}

/// AutoGPT's `GraphMeta`: a `GraphModel` without nodes, links and creation
/// time, as the graph list serves it (the read model trims the stored model).
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct GraphMeta {
    id: Uuid,
    version: i32,
    is_active: bool,
    name: String,
    description: String,
    instructions: Option<String>,
    recommended_schedule_cron: Option<String>,
    forked_from_id: Option<String>,
    forked_from_version: Option<i64>,
    #[schema(value_type = Vec<serde_json::Value>)]
    sub_graphs: Vec<Value>,
    user_id: String,
    #[schema(value_type = Object)]
    input_schema: Value,
    #[schema(value_type = Object)]
    output_schema: Value,
    #[schema(value_type = Object)]
    credentials_input_schema: Value,
    has_external_trigger: bool,
    has_human_in_the_loop: bool,
    has_sensitive_action: bool,
    #[schema(required = true)]
    trigger_setup_info: Option<super::trigger::GraphTriggerInfo>,
}

impl<'a> GraphModel<'a> {
    /// The model of `graph`, created by `user_id` at `created_at`.
    pub fn new(graph: &'a GraphVersion, user_id: Uuid, created_at: DateTime<Utc>, is_active: Option<bool>) -> Self {
        Self {
            id: graph.id,
            version: graph.version,
            is_active,
            name: &graph.name,
            description: &graph.description,
            instructions: &graph.instructions,
            recommended_schedule_cron: &graph.recommended_schedule_cron,
            forked_from_id: &graph.forked_from_id,
            forked_from_version: graph.forked_from_version,
            sub_graphs: &graph.sub_graphs,
            user_id,
            input_schema: input_schema(graph),
            output_schema: output_schema(graph),
            credentials_input_schema: super::credentials::credentials_input_schema(graph),
            has_external_trigger: super::trigger::webhook_node(graph).is_some(),
            has_human_in_the_loop: graph
                .nodes
                .iter()
                .any(|n| blocks::find(&n.block_id).is_some_and(|b| b.block_type == BlockType::HumanInTheLoop)),
            has_sensitive_action: graph.nodes.iter().any(|n| SENSITIVE_BLOCK_IDS.contains(&n.block_id.as_str())),
            trigger_setup_info: super::trigger::trigger_setup_info(graph),
            created_at: timestamp(created_at),
            nodes: graph.nodes.iter().map(|n| NodeModel::new(graph, n)).collect(),
            links: &graph.links,
        }
    }
}

/// A node as served inside a `GraphModel`, with its links on either side.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeModel<'a> {
    id: &'a str,
    block_id: &'a str,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    input_default: &'a Map<String, Value>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    metadata: &'a Value,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Link>))]
    input_links: Vec<&'a Link>,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Link>))]
    output_links: Vec<&'a Link>,
    graph_id: Uuid,
    graph_version: i32,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    webhook_id: Option<()>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    webhook: Option<()>,
}

impl<'a> NodeModel<'a> {
    fn new(graph: &'a GraphVersion, node: &'a Node) -> Self {
        Self {
            id: &node.id,
            block_id: &node.block_id,
            input_default: &node.input_default,
            metadata: &node.metadata,
            input_links: graph.links.iter().filter(|l| l.sink_id == node.id).collect(),
            output_links: graph.links.iter().filter(|l| l.source_id == node.id).collect(),
            graph_id: graph.id,
            graph_version: graph.version,
            webhook_id: None,
            webhook: None,
        }
    }
}

/// Strip what must not leave the owner's account when exporting: user ids
/// and credential inputs, in the graph and in every sub-graph it carries
/// (they are the owner's too).
pub fn for_export(mut model: Value) -> Value {
    if let Some(obj) = model.as_object_mut() {
        obj.insert("user_id".into(), json!(""));
    }
    strip_for_export(&mut model);
    model
}

fn strip_for_export(model: &mut Value) {
    let Some(obj) = model.as_object_mut() else { return };
    if obj.contains_key("user_id") {
        obj.insert("user_id".into(), json!(""));
    }
    if let Some(nodes) = obj.get_mut("nodes").and_then(Value::as_array_mut) {
        for node in nodes {
            if let Some(defaults) = node.get_mut("input_default").and_then(Value::as_object_mut) {
                defaults.retain(|k, _| !k.contains("credentials"));
                if defaults.contains_key("user_id") {
                    defaults.insert("user_id".into(), json!(""));
                }
            }
        }
    }
    if let Some(sub_graphs) = obj.get_mut("sub_graphs").and_then(Value::as_array_mut) {
        sub_graphs.iter_mut().for_each(strip_for_export);
    }
}

/// JSON schema of the graph's inputs, one property per input-type node.
pub fn input_schema(graph: &GraphVersion) -> Value {
    io_schema(graph, BlockType::Input, true)
}

/// JSON schema of the graph's outputs, one property per output node.
pub fn output_schema(graph: &GraphVersion) -> Value {
    io_schema(graph, BlockType::Output, false)
}

fn io_schema(graph: &GraphVersion, kind: BlockType, typed_value: bool) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for node in &graph.nodes {
        let Some(block) = blocks::find(&node.block_id).filter(|b| b.block_type == kind) else {
            continue;
        };
        let Some(name) = node.input_default.get("name").and_then(Value::as_str) else {
            continue;
        };
        let mut prop = if typed_value {
            block.input_schema["properties"]["value"].as_object().cloned().unwrap_or_default()
        } else {
            Map::new()
        };
        prop.remove("default");
        prop.remove("title");
        prop.remove("description");
        for key in ["title", "description"] {
            if let Some(v) = node.input_default.get(key).filter(|v| !v.is_null()) {
                prop.insert(key.into(), v.clone());
            }
        }
        for flag in ["secret", "advanced"] {
            let on = node.input_default.get(flag).and_then(Value::as_bool).unwrap_or(false);
            prop.insert(flag.into(), json!(on));
        }
        match node.input_default.get("value").filter(|v| !v.is_null()) {
            Some(value) if typed_value => {
                prop.insert("default".into(), value.clone());
            }
            _ => required.push(json!(name)),
        }
        properties.insert(name.to_owned(), Value::Object(prop));
    }
    json!({"type": "object", "properties": properties, "required": required})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_carries_no_user_id_or_credentials_at_any_depth() {
        let owner = "0b8e3c4e-0000-4000-8000-000000000001";
        let node = json!({"id": "n", "input_default": {"user_id": owner, "credentials": {"id": "c"},
                          "openai_credentials": {"id": "c"}, "input": "kept"}});
        let model = json!({"user_id": owner, "nodes": [node.clone()],
                           "sub_graphs": [{"user_id": owner, "nodes": [node], "sub_graphs": []}]});
        let exported = for_export(model);
        assert!(!exported.to_string().contains(owner), "{exported}");
        assert!(!exported.to_string().contains("credentials"), "{exported}");
        assert_eq!(exported["sub_graphs"][0]["nodes"][0]["input_default"]["input"], "kept");
        assert_eq!(exported["sub_graphs"][0]["user_id"], "");
    }
}
