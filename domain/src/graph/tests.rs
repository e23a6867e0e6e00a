use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::aggregate::Aggregate;

const STORE_VALUE: &str = "1ff065e9-88e8-4358-9d82-8dc91f622ba9";
const FILL_TEMPLATE: &str = "db7d8f02-2f44-4c55-ab7a-eae0941f0c30";
const AGENT_INPUT: &str = "c0a8e994-ebf1-4a9c-a4d8-89d09c86741b";
const AGENT_OUTPUT: &str = "363ae599-353e-4804-937e-b2ee3cef3da4";

fn draft(value: serde_json::Value) -> GraphDraft {
    serde_json::from_value(value).unwrap()
}

fn two_store_values() -> GraphDraft {
    draft(json!({
        "name": "g", "description": "d",
        "nodes": [
            {"id": "a", "block_id": STORE_VALUE, "input_default": {"input": 1}},
            {"id": "b", "block_id": STORE_VALUE}
        ],
        "links": [{"source_id": "a", "sink_id": "b", "source_name": "output", "sink_name": "input"}]
    }))
}

fn created(user: Uuid) -> (Graph, Vec<GraphEvent>) {
    let events = Graph::default()
        .decide(GraphCommand::CreateGraph {
            graph_id: Uuid::new_v4(),
            user_id: user,
            draft: two_store_values(),
            now: Utc::now(),
        })
        .unwrap();
    (Graph::from_events(&events), events)
}

#[test]
fn create_reassigns_ids_and_forces_static_links() {
    let (graph, events) = created(Uuid::new_v4());
    let GraphEvent::GraphCreated { graph: version, .. } = &events[0] else { panic!("{events:?}") };
    assert_eq!(version.version, 1);
    assert!(version.nodes.iter().all(|n| Uuid::parse_str(&n.id).is_ok()));
    let link = &version.links[0];
    assert_eq!(link.source_id, version.nodes[0].id);
    assert_eq!(link.sink_id, version.nodes[1].id);
    assert!(link.is_static, "StoreValue has static output");
    assert_eq!(graph.active_version, Some(1));
}

#[test]
fn new_version_is_max_plus_one_and_checks_owner_and_body_id() {
    let user = Uuid::new_v4();
    let (graph, _) = created(user);
    let mut d = two_store_values();
    d.is_active = false;
    let events =
        graph.decide(GraphCommand::CreateGraphVersion { user_id: user, draft: d.clone(), now: Utc::now() }).unwrap();
    let GraphEvent::GraphVersionCreated { graph: v2, .. } = &events[0] else { panic!() };
    assert_eq!(v2.version, 2);
    let mut after = graph.clone();
    after.evolve(&events[0]);
    assert_eq!(after.active_version, Some(1), "inactive version does not take over");
    let other =
        graph.decide(GraphCommand::CreateGraphVersion { user_id: Uuid::new_v4(), draft: d.clone(), now: Utc::now() });
    assert_eq!(other, Err(GraphError::NotFound));
    d.id = Some(Uuid::new_v4().to_string());
    let mismatch = graph.decide(GraphCommand::CreateGraphVersion { user_id: user, draft: d, now: Utc::now() });
    assert_eq!(mismatch, Err(GraphError::IdMismatch));
}

#[test]
fn unknown_block_and_bad_pins_are_node_errors() {
    let d = draft(json!({
        "name": "g", "description": "d",
        "nodes": [
            {"id": "a", "block_id": STORE_VALUE},
            {"id": "x", "block_id": "00000000-0000-0000-0000-000000000000"},
            {"id": "t", "block_id": FILL_TEMPLATE}
        ],
        "links": [
            {"source_id": "a", "sink_id": "t", "source_name": "nope", "sink_name": "values_#_name"},
            {"source_id": "a", "sink_id": "t", "source_name": "output", "sink_name": "bogus"}
        ]
    }));
    let err = Graph::default()
        .decide(GraphCommand::CreateGraph {
            graph_id: Uuid::new_v4(),
            user_id: Uuid::new_v4(),
            draft: d,
            now: Utc::now(),
        })
        .unwrap_err();
    let GraphError::Validation { node_errors, .. } = err else { panic!("{err:?}") };
    assert!(node_errors["x"].contains_key("block_id"));
    assert!(node_errors["a"].contains_key("nope"));
    assert!(node_errors["t"].contains_key("bogus"));
    assert!(!node_errors["t"].contains_key("values_#_name"), "dynamic dict pin is valid");
}

#[test]
fn io_blocks_need_their_required_inputs_at_save_time() {
    let d = draft(json!({
        "name": "g", "description": "d",
        "nodes": [
            {"id": "in", "block_id": AGENT_INPUT, "input_default": {}},
            {"id": "out", "block_id": AGENT_OUTPUT, "input_default": {"name": "result"}},
            {"id": "cred", "block_id": AGENT_INPUT, "input_default": {"name": "my_credentials"}}
        ],
        "links": []
    }));
    let err = Graph::default()
        .decide(GraphCommand::CreateGraph {
            graph_id: Uuid::new_v4(),
            user_id: Uuid::new_v4(),
            draft: d,
            now: Utc::now(),
        })
        .unwrap_err();
    let GraphError::Validation { node_errors, .. } = err else { panic!("{err:?}") };
    assert_eq!(node_errors["in"]["name"], "This field is required");
    assert!(!node_errors.contains_key("out"));
    assert!(node_errors["cred"].contains_key("name"));
}

#[test]
fn set_active_version_and_delete() {
    let user = Uuid::new_v4();
    let (graph, _) = created(user);
    assert_eq!(
        graph.decide(GraphCommand::SetActiveVersion { user_id: user, version: 7, now: Utc::now() }),
        Err(GraphError::VersionNotFound(7))
    );
    assert_eq!(graph.decide(GraphCommand::SetActiveVersion { user_id: user, version: 1, now: Utc::now() }), Ok(vec![]));
    let deleted = graph.decide(GraphCommand::DeleteGraph { user_id: user, now: Utc::now() }).unwrap();
    let mut after = graph.clone();
    after.evolve(&deleted[0]);
    assert_eq!(after.decide(GraphCommand::DeleteGraph { user_id: user, now: Utc::now() }), Err(GraphError::NotFound));
}

#[test]
fn input_schema_lists_graph_inputs() {
    let d = draft(json!({
        "name": "g", "description": "d",
        "nodes": [{"id": "in", "block_id": AGENT_INPUT, "input_default": {"name": "topic", "title": "Topic"}}],
        "links": []
    }));
    let version = validate::validate_and_normalize(&d, Uuid::new_v4(), 1, true).unwrap();
    let schema = view::input_schema(&version);
    assert_eq!(schema["properties"]["topic"]["title"], "Topic");
    assert_eq!(schema["required"], json!(["topic"]));
}

#[test]
fn base_pin_name_strips_dynamic_suffixes() {
    assert_eq!(model::base_pin_name("values_#_a"), "values");
    assert_eq!(model::base_pin_name("items_$_0"), "items");
    assert_eq!(model::base_pin_name("obj_@_attr"), "obj");
    assert_eq!(model::base_pin_name("plain"), "plain");
}
