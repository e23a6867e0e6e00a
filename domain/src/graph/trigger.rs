//! A graph started by a webhook: its trigger node, and what a client needs
//! to set a trigger up (AutoGPT's `GraphTriggerInfo`).

use serde::Serialize;
use serde_json::{Map, Value};

use super::model::{GraphVersion, Node};
use crate::blocks::{self, BlockType};

/// How to set up the webhook that starts a graph.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GraphTriggerInfo {
    /// The provider the webhook belongs to.
    pub provider: String,
    /// The trigger block's input schema without credentials pins: what a
    /// preset's `trigger_config` may hold.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub config_schema: Value,
    /// The trigger block's credentials pin, if it has one.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub credentials_input_name: Option<String>,
}

fn is_trigger(node: &Node) -> bool {
    blocks::find(&node.block_id).is_some_and(|b| matches!(b.block_type, BlockType::Webhook | BlockType::WebhookManual))
}

/// The graph's webhook trigger node, the first as AutoGPT takes it.
pub fn webhook_node(graph: &GraphVersion) -> Option<&Node> {
    graph.nodes.iter().find(|n| is_trigger(n))
}

/// The one trigger node a triggered preset can start, with its webhook's
/// provider and type; why not, when the graph has none or several (a
/// delivery could not say which of them it is for).
pub fn sole_webhook_node(graph: &GraphVersion) -> Result<(&Node, &'static str, &'static str), String> {
    let mut triggers = graph.nodes.iter().filter(|n| is_trigger(n));
    let (Some(node), None) = (triggers.next(), triggers.next()) else {
        let count = graph.nodes.iter().filter(|n| is_trigger(n)).count();
        return Err(match count {
            0 => format!("Graph #{} does not have a webhook node", graph.id),
            n => format!("Graph #{} has {n} webhook nodes; a triggered preset needs exactly one", graph.id),
        });
    };
    let (provider, webhook_type) = blocks::webhook::webhook_config(&node.block_id)
        .ok_or_else(|| format!("Graph #{} has a webhook node of a provider not served here", graph.id))?;
    Ok((node, provider, webhook_type))
}

/// The trigger setup of a graph whose trigger node's block has a webhook
/// configuration, else `None`.
pub fn trigger_setup_info(graph: &GraphVersion) -> Option<GraphTriggerInfo> {
    let node = webhook_node(graph)?;
    let (provider, _) = blocks::webhook::webhook_config(&node.block_id)?;
    let block = blocks::find(&node.block_id)?;
    let is_credentials = |name: &str| name == "credentials" || name.ends_with("_credentials");
    let mut schema = block.input_schema.clone();
    if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        properties.retain(|name, _| !is_credentials(name));
    }
    let required: Vec<Value> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|name| name.as_str().is_some_and(|n| !is_credentials(n)))
        .cloned()
        .collect();
    if let Some(object) = schema.as_object_mut() {
        object.insert("required".into(), Value::Array(required));
    }
    let credentials_input_name = block.input_schema["properties"]
        .as_object()
        .unwrap_or(&Map::new())
        .keys()
        .find(|name| is_credentials(name))
        .cloned();
    Some(GraphTriggerInfo { provider: provider.to_owned(), config_schema: schema, credentials_input_name })
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use uuid::Uuid;

    use super::*;
    use crate::blocks::webhook::GENERIC_WEBHOOK_TRIGGER;

    fn graph(blocks: &[&str]) -> GraphVersion {
        let nodes: Vec<Value> = blocks
            .iter()
            .enumerate()
            .map(|(i, b)| json!({"id": format!("n{i}"), "block_id": b, "input_default": {}, "metadata": {}}))
            .collect();
        serde_json::from_value(json!({"id": Uuid::new_v4(), "version": 1, "is_active": true, "name": "g",
            "description": "", "nodes": nodes, "links": [], "sub_graphs": []}))
        .expect("a graph version")
    }

    #[test]
    fn a_graph_with_one_generic_trigger_needs_a_generic_webhook() {
        let store_value = "1ff065e9-88e8-4358-9d82-8dc91f622ba9";
        let triggered = graph(&[store_value, GENERIC_WEBHOOK_TRIGGER]);
        let (node, provider, kind) = sole_webhook_node(&triggered).expect("one trigger");
        assert_eq!((node.id.as_str(), provider, kind), ("n1", "generic_webhook", "plain"));
        let info = trigger_setup_info(&triggered).expect("setup info");
        assert_eq!(info.provider, "generic_webhook");
        assert_eq!(info.credentials_input_name, None);
        assert_eq!(info.config_schema["required"], json!([]));
        assert!(info.config_schema["properties"]["constants"].is_object());

        let plain = graph(&[store_value]);
        assert!(webhook_node(&plain).is_none() && trigger_setup_info(&plain).is_none());
        assert!(sole_webhook_node(&plain).unwrap_err().contains("does not have a webhook node"));
        let twice = graph(&[GENERIC_WEBHOOK_TRIGGER, GENERIC_WEBHOOK_TRIGGER]);
        assert!(sole_webhook_node(&twice).unwrap_err().contains("2 webhook nodes"));
    }
}
