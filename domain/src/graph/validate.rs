//! Save-time validation and normalisation of a submitted graph (reference §4):
//! structure, pins (with dynamic suffixes), required inputs of I/O and agent
//! blocks, forced static links, and fresh node and link ids; and the
//! run-time check of every node's required inputs.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;
use uuid::Uuid;

use super::model::{base_pin_name, GraphDraft, GraphVersion, Link, Node};
use super::GraphError;
use crate::aggregate::derived_id;
use crate::blocks::{self, Block, BlockType};

/// Errors per submitted node id, then per field.
pub type NodeErrors = BTreeMap<String, BTreeMap<String, String>>;

/// Tool pins of agent-style blocks bypass schema checks, as AutoGPT allows.
const TOOL_PIN_PREFIX: &str = "tools_^_";

/// Validate a draft against the block catalog; on success return the version
/// to record with node and link ids derived from (graph id, version).
pub fn validate_and_normalize(
    draft: &GraphDraft,
    graph_id: Uuid,
    version: i32,
    is_active: bool,
) -> Result<GraphVersion, GraphError> {
    check_limits(draft)?;
    if draft.name.trim().is_empty() {
        return Err(GraphError::Invalid("Graph name must not be empty".into()));
    }
    let mut errors = NodeErrors::new();
    let mut by_id: HashMap<&str, (&Node, &'static Block)> = HashMap::new();
    for node in &draft.nodes {
        if node.id.is_empty() {
            return Err(GraphError::Invalid("Every node needs an id".into()));
        }
        if by_id.contains_key(node.id.as_str()) {
            add(&mut errors, &node.id, "id", format!("Duplicate node id {}", node.id));
            continue;
        }
        match blocks::find(&node.block_id) {
            Some(block) => {
                by_id.insert(&node.id, (node, block));
            }
            None => {
                add(&mut errors, &node.id, "block_id", format!("Invalid block {} for node #{}", node.block_id, node.id))
            }
        }
    }
    for link in &draft.links {
        check_link_end(&mut errors, &by_id, &link.source_id, &link.source_name, PinSide::Output);
        check_link_end(&mut errors, &by_id, &link.sink_id, &link.sink_name, PinSide::Input);
    }
    let fed = fed_pins(&draft.links);
    for node in &draft.nodes {
        if let Some((_, block)) = by_id.get(node.id.as_str()) {
            check_required(&mut errors, node, block, fed.get(node.id.as_str()));
            check_input_name(&mut errors, node, block);
        }
    }
    if !errors.is_empty() {
        return Err(GraphError::Validation { message: "Graph validation failed".into(), node_errors: errors });
    }
    Ok(normalize(draft, &by_id, graph_id, version, is_active))
}

/// Every count and length of a draft within its limit, checked before
/// anything else looks at it.
fn check_limits(draft: &GraphDraft) -> Result<(), GraphError> {
    use super::model::{MAX_ID_CHARS, MAX_LINKS, MAX_NAME_CHARS, MAX_NODES, MAX_SUB_GRAPHS, MAX_TEXT_CHARS};
    let chars = |text: &str| text.chars().count();
    let over = |field, limit| Err(GraphError::TooLarge { field, limit });
    let counts = [
        ("nodes", draft.nodes.len(), MAX_NODES),
        ("links", draft.links.len(), MAX_LINKS),
        ("sub_graphs", draft.sub_graphs.len(), MAX_SUB_GRAPHS),
        ("name", chars(&draft.name), MAX_NAME_CHARS),
        ("description", chars(&draft.description), MAX_TEXT_CHARS),
        ("instructions", draft.instructions.as_deref().map_or(0, chars), MAX_TEXT_CHARS),
        ("recommended_schedule_cron", draft.recommended_schedule_cron.as_deref().map_or(0, chars), MAX_ID_CHARS),
        ("forked_from_id", draft.forked_from_id.as_deref().map_or(0, chars), MAX_ID_CHARS),
    ];
    if let Some((field, _, limit)) = counts.into_iter().find(|(_, n, limit)| n > limit) {
        return over(field, limit);
    }
    if draft.nodes.iter().any(|n| chars(&n.id) > MAX_ID_CHARS || chars(&n.block_id) > MAX_ID_CHARS) {
        return over("nodes", MAX_ID_CHARS);
    }
    let long_link = |l: &Link| {
        [&l.id, &l.source_id, &l.sink_id, &l.source_name, &l.sink_name].iter().any(|t| chars(t) > MAX_ID_CHARS)
    };
    if draft.links.iter().any(long_link) {
        return over("links", MAX_ID_CHARS);
    }
    Ok(())
}

fn add(errors: &mut NodeErrors, node: &str, field: &str, message: String) {
    errors.entry(node.to_owned()).or_default().insert(field.to_owned(), message);
}

#[derive(Clone, Copy)]
enum PinSide {
    Input,
    Output,
}

fn check_link_end(
    errors: &mut NodeErrors,
    by_id: &HashMap<&str, (&Node, &'static Block)>,
    node_id: &str,
    pin: &str,
    side: PinSide,
) {
    let Some((node, block)) = by_id.get(node_id) else {
        let role = match side {
            PinSide::Input => "sink",
            PinSide::Output => "source",
        };
        add(errors, node_id, pin, format!("Link {role} node #{node_id} does not exist"));
        return;
    };
    if pin.starts_with(TOOL_PIN_PREFIX) || pin_exists(node, block, base_pin_name(pin), side) {
        return;
    }
    let kind = match side {
        PinSide::Input => "input",
        PinSide::Output => "output",
    };
    add(errors, node_id, pin, format!("Block {} has no {kind} pin named '{pin}'", block.name));
}

/// Agent-executor nodes carry their sub-graph's schemas in their defaults;
/// their pins are whatever those schemas declare.
fn pin_exists(node: &Node, block: &Block, pin: &str, side: PinSide) -> bool {
    let (own, schema_key) = match side {
        PinSide::Input => (block.has_input(pin), "input_schema"),
        PinSide::Output => (block.has_output(pin), "output_schema"),
    };
    own || (block.block_type == BlockType::Agent
        && node
            .input_default
            .get(schema_key)
            .and_then(|s| s.get("properties"))
            .and_then(Value::as_object)
            .is_some_and(|props| props.contains_key(pin)))
}

/// The pins each node is fed by a link, by node id: built once, so checks
/// stay linear in nodes and links.
fn fed_pins(links: &[Link]) -> HashMap<&str, HashSet<&str>> {
    let mut fed: HashMap<&str, HashSet<&str>> = HashMap::new();
    for link in links {
        fed.entry(link.sink_id.as_str()).or_default().insert(base_pin_name(&link.sink_name));
    }
    fed
}

fn check_required(errors: &mut NodeErrors, node: &Node, block: &Block, fed: Option<&HashSet<&str>>) {
    if !matches!(block.block_type, BlockType::Input | BlockType::Output | BlockType::Agent) {
        return;
    }
    for field in block.required_inputs() {
        let has_default = node
            .input_default
            .iter()
            .any(|(pin, value)| base_pin_name(pin) == field && !value.is_null() && value.as_str() != Some(""));
        let linked = fed.is_some_and(|pins| pins.contains(field));
        if !has_default && !linked {
            add(errors, &node.id, field, "This field is required".into());
        }
    }
}

/// The required inputs a run of `graph` would leave empty, as AutoGPT's
/// `validate_graph(for_run=True)` finds them before a run is queued: of
/// every node (whatever its block), each required field that is neither
/// set on the node (a default, or a dynamic pin of it, with the run's input
/// masks laid over the defaults first) nor fed by a link. Without it such a
/// node would wait for ever and the run end as if it had nothing to do.
/// Credentials fields are checked on their own. Linear in nodes and links.
pub fn missing_run_inputs(graph: &GraphVersion) -> NodeErrors {
    let fed = fed_pins(&graph.links);
    let mut errors = NodeErrors::new();
    for node in &graph.nodes {
        let Some(block) = blocks::find(&node.block_id) else { continue };
        let set: HashSet<&str> = node.input_default.keys().map(|pin| base_pin_name(pin)).collect();
        let linked = fed.get(node.id.as_str());
        for field in block.required_inputs() {
            if !set.contains(field) && !linked.is_some_and(|pins| pins.contains(field)) {
                add(&mut errors, &node.id, field, "This field is required".into());
            }
        }
    }
    errors
}

fn check_input_name(errors: &mut NodeErrors, node: &Node, block: &Block) {
    if block.block_type != BlockType::Input {
        return;
    }
    if let Some(name) = node.input_default.get("name").and_then(Value::as_str) {
        if name == "credentials" || name.ends_with("_credentials") {
            add(errors, &node.id, "name", format!("'{name}' is a reserved input name"));
        }
    }
}

fn normalize(
    draft: &GraphDraft,
    by_id: &HashMap<&str, (&Node, &'static Block)>,
    graph_id: Uuid,
    version: i32,
    is_active: bool,
) -> GraphVersion {
    let scope = derived_id(graph_id, &format!("version-{version}"));
    let new_node_id = |old: &str| derived_id(scope, &format!("node-{old}")).to_string();
    let nodes = draft.nodes.iter().map(|n| Node { id: new_node_id(&n.id), ..n.clone() }).collect();
    let links = draft
        .links
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let source_static = by_id.get(l.source_id.as_str()).is_some_and(|(_, b)| b.static_output);
            Link {
                id: derived_id(scope, &format!("link-{i}")).to_string(),
                source_id: new_node_id(&l.source_id),
                sink_id: new_node_id(&l.sink_id),
                source_name: l.source_name.clone(),
                sink_name: l.sink_name.clone(),
                is_static: l.is_static || source_static,
            }
        })
        .collect();
    GraphVersion {
        id: graph_id,
        version,
        is_active,
        name: draft.name.clone(),
        description: draft.description.clone(),
        instructions: draft.instructions.clone(),
        recommended_schedule_cron: draft.recommended_schedule_cron.clone(),
        nodes,
        links,
        forked_from_id: draft.forked_from_id.clone(),
        forked_from_version: draft.forked_from_version,
        sub_graphs: draft.sub_graphs.clone(),
    }
}
