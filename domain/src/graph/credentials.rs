//! The credentials a graph asks for when it runs: every node whose block
//! has a `credentials` pin left empty in the graph needs one, and nodes
//! needing the same provider and kind share one input (AutoGPT's
//! `credentials_input_schema` / `credentials_inputs`). What the caller
//! names there is handed to those nodes as an input mask of the run.

use serde_json::{json, Map, Value};

use super::model::{GraphVersion, Node};
use super::validate::NodeErrors;
use crate::blocks;

/// One credentials input of a graph.
#[derive(Debug, Clone, PartialEq)]
pub struct CredentialsField {
    /// Its name, e.g. `openai_api_key_credentials`.
    pub key: String,
    /// The provider it must be of.
    pub provider: String,
    /// The kinds it may be of (`api_key`, …).
    pub types: Vec<String>,
    /// The schema the builder shows (the block's pin, narrowed to the
    /// provider).
    pub schema: Value,
    /// The nodes it feeds.
    pub node_ids: Vec<String>,
}

/// The provider a node's credentials pin needs: the one its block names,
/// or, for blocks serving several, the one its discriminator (the model)
/// maps to.
fn provider_of(node: &Node, pin: &Value) -> Option<String> {
    let providers: Vec<&str> = pin["credentials_provider"].as_array()?.iter().filter_map(Value::as_str).collect();
    if let [one] = providers[..] {
        return Some(one.to_owned());
    }
    let discriminator = pin["discriminator"].as_str()?;
    let block = blocks::find(&node.block_id)?;
    let chosen = node
        .input_default
        .get(discriminator)
        .filter(|v| !v.is_null())
        .or_else(|| block.input_schema["properties"][discriminator].get("default"))?;
    pin["discriminator_mapping"][chosen.as_str()?].as_str().map(str::to_owned)
}

/// A node's credentials pin is set in the graph itself.
fn is_set(node: &Node) -> bool {
    node.input_default.get("credentials").is_some_and(|v| v.get("id").is_some_and(Value::is_string))
}

/// The graph's credentials inputs, in node order.
pub fn credentials_fields(graph: &GraphVersion) -> Vec<CredentialsField> {
    let mut fields: Vec<CredentialsField> = Vec::new();
    for node in graph.nodes.iter().filter(|n| !is_set(n)) {
        let Some(block) = blocks::find(&node.block_id) else { continue };
        let Some(pin) = block.input_schema["properties"].get("credentials") else { continue };
        let Some(provider) = provider_of(node, pin) else { continue };
        let types: Vec<String> = pin["credentials_types"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(Into::into)
            .collect();
        let key = format!("{provider}_{}_credentials", types.join("_"));
        if let Some(field) = fields.iter_mut().find(|f| f.key == key) {
            field.node_ids.push(node.id.clone());
            continue;
        }
        let mut schema = pin.clone();
        if let Some(object) = schema.as_object_mut() {
            object.insert("credentials_provider".into(), json!([provider]));
            object.remove("discriminator");
            object.remove("discriminator_mapping");
            object.remove("advanced");
            object.remove("secret");
        }
        schema["properties"]["provider"] = json!({"const": provider, "title": "Provider", "type": "string"});
        fields.push(CredentialsField { key, provider, types, schema, node_ids: vec![node.id.clone()] });
    }
    fields
}

/// JSON schema of the graph's credentials inputs.
pub fn credentials_input_schema(graph: &GraphVersion) -> Value {
    let fields = credentials_fields(graph);
    let properties: Map<String, Value> = fields.iter().map(|f| (f.key.clone(), f.schema.clone())).collect();
    let required: Vec<&str> = fields.iter().map(|f| f.key.as_str()).collect();
    json!({"type": "object", "properties": properties, "required": required})
}

/// The input masks a run's `credentials_inputs` give: for each node a
/// named credential feeds, `{"credentials": {id, provider, type, title}}`.
/// A credentials input that names no credential leaves its nodes to the
/// platform's own key; one of the wrong provider or kind is refused.
pub fn credential_masks(graph: &GraphVersion, given: &Map<String, Value>) -> Result<Map<String, Value>, NodeErrors> {
    let mut masks = Map::new();
    let mut errors = NodeErrors::new();
    for field in credentials_fields(graph) {
        let Some(meta) = given.get(&field.key).filter(|v| !v.is_null()) else { continue };
        let fits = meta["id"].is_string()
            && meta["provider"].as_str() == Some(field.provider.as_str())
            && meta["type"].as_str().is_some_and(|t| field.types.iter().any(|k| k == t));
        for node_id in &field.node_ids {
            if fits {
                let meta = json!({"id": meta["id"], "provider": meta["provider"], "type": meta["type"],
                    "title": meta.get("title").cloned().unwrap_or(Value::Null)});
                masks.insert(node_id.clone(), json!({"credentials": meta}));
            } else {
                let message = format!("Credentials must be {} {}", field.provider, field.types.join(" or "));
                errors.entry(node_id.clone()).or_default().insert("credentials".into(), message);
            }
        }
    }
    if errors.is_empty() {
        Ok(masks)
    } else {
        Err(errors)
    }
}

/// `graph` with a run's input masks laid over its nodes' defaults.
pub fn with_masks(graph: &GraphVersion, masks: &Map<String, Value>) -> GraphVersion {
    let mut masked = graph.clone();
    for node in &mut masked.nodes {
        if let Some(Value::Object(mask)) = masks.get(&node.id) {
            node.input_default.extend(mask.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    masked
}
