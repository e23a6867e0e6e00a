use chrono::Utc;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::engine::{self, RunError};
use super::*;
use crate::graph::{GraphVersion, Link, Node};

pub(crate) const INPUT: &str = "c0a8e994-ebf1-4a9c-a4d8-89d09c86741b";
pub(crate) const OUTPUT: &str = "363ae599-353e-4804-937e-b2ee3cef3da4";
pub(crate) const TEMPLATE: &str = "db7d8f02-2f44-4c55-ab7a-eae0941f0c30";
pub(crate) const STORE: &str = "1ff065e9-88e8-4358-9d82-8dc91f622ba9";

pub(crate) fn node(id: &str, block: &str, defaults: Value) -> Node {
    Node {
        id: id.into(),
        block_id: block.into(),
        input_default: defaults.as_object().cloned().unwrap_or_default(),
        metadata: json!({}),
    }
}

pub(crate) fn link(from: &str, out: &str, to: &str, pin: &str, is_static: bool) -> Link {
    Link {
        id: format!("{from}-{to}-{pin}"),
        source_id: from.into(),
        sink_id: to.into(),
        source_name: out.into(),
        sink_name: pin.into(),
        is_static,
    }
}

pub(crate) fn graph(nodes: Vec<Node>, links: Vec<Link>) -> GraphVersion {
    GraphVersion {
        id: Uuid::new_v4(),
        version: 1,
        is_active: true,
        name: "g".into(),
        description: String::new(),
        instructions: None,
        recommended_schedule_cron: None,
        nodes,
        links,
        forked_from_id: None,
        forked_from_version: None,
        sub_graphs: vec![],
    }
}

pub(crate) fn queued(graph: &GraphVersion, inputs: Value) -> GraphExecution {
    let event = engine::queue_run(
        graph,
        Uuid::new_v4(),
        Uuid::new_v4(),
        inputs.as_object().cloned().unwrap(),
        None,
        Utc::now(),
    )
    .expect("queued");
    let mut state = GraphExecution::from_events([&event]);
    let claim = engine::claim(&state, "w", Utc::now()).expect("claimable");
    state.evolve(&claim);
    state
}

/// The greeting graph: AgentInput(name) → FillTextTemplate(values_#_name) → AgentOutput(greeting).
pub(crate) fn greeting() -> GraphVersion {
    graph(
        vec![
            node("in", INPUT, json!({"name": "name"})),
            node("tpl", TEMPLATE, json!({"format": "Hello, {{name}}!"})),
            node("out", OUTPUT, json!({"name": "greeting"})),
        ],
        vec![link("in", "result", "tpl", "values_#_name", false), link("tpl", "output", "out", "value", false)],
    )
}

#[test]
fn a_run_starts_with_the_input_nodes_and_the_nodes_nothing_feeds() {
    let g = greeting();
    let state = queued(&g, json!({"name": "World"}));
    assert_eq!(state.status, Some(ExecutionStatus::Running));
    let starting: Vec<&str> = state.node_executions.iter().map(|n| n.node_id.as_str()).collect();
    assert_eq!(starting, ["in"], "the template and the output wait for links");
    assert_eq!(
        state.node_executions[0].input_data,
        json!({"name": "name", "value": "World"}).as_object().cloned().unwrap()
    );
}

#[test]
fn missing_required_inputs_of_a_starting_node_are_node_errors_and_an_empty_graph_cannot_run() {
    let g = graph(vec![node("store", STORE, json!({}))], vec![]);
    let err = engine::queue_run(&g, Uuid::new_v4(), Uuid::new_v4(), Map::new(), None, Utc::now()).unwrap_err();
    match err {
        RunError::Invalid(errors) => assert!(errors["store"].contains_key("input"), "{errors:?}"),
        other => panic!("{other:?}"),
    }
    let empty = graph(vec![], vec![]);
    let err = engine::queue_run(&empty, Uuid::new_v4(), Uuid::new_v4(), Map::new(), None, Utc::now()).unwrap_err();
    assert_eq!(err, RunError::NoStartingNodes);
}

#[test]
fn a_required_input_nothing_can_fill_refuses_the_run_even_past_the_starting_nodes() {
    let run = |g: &GraphVersion| engine::queue_run(g, Uuid::new_v4(), Uuid::new_v4(), Map::new(), None, Utc::now());
    // The template is reached only through a link, and nothing sets its format.
    let mut g = graph(
        vec![node("a", STORE, json!({"input": "x"})), node("tpl", TEMPLATE, json!({}))],
        vec![link("a", "output", "tpl", "values_#_a", false)],
    );
    match run(&g) {
        Err(RunError::Invalid(errors)) => {
            assert_eq!(errors.len(), 1, "only the template: {errors:?}");
            let fields: Vec<(&str, &str)> = errors["tpl"].iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            assert_eq!(fields, [("format", "This field is required")], "values is fed by its dynamic pin");
        }
        other => panic!("{other:?}"),
    }
    g.nodes[1].input_default.insert("format".into(), json!("{{a}}"));
    assert!(run(&g).is_ok(), "a default fills it");
    g.nodes[1].input_default.clear();
    g.links.push(link("a", "output", "tpl", "format", false));
    assert!(run(&g).is_ok(), "a link fills it");
    g.nodes.push(node("note", "cc10ff7b-7753-4ff2-9af6-9399b1a7eddc", json!({})));
    let Err(RunError::Invalid(errors)) = run(&g) else { panic!("a note without its text") };
    assert!(errors["note"].contains_key("text"), "AutoGPT checks every node, notes too: {errors:?}");
}

#[test]
fn an_output_travels_its_links_and_readies_the_sink_with_merged_pins() {
    let g = greeting();
    let mut state = queued(&g, json!({"name": "World"}));
    let first = state.node_executions[0].node_exec_id;
    engine::start_node(&mut state, first, Utc::now());
    let events = engine::record_output(&g, &mut state, first, "result", json!("World"), Utc::now());
    let kinds: Vec<&str> = events.iter().map(crate::EventType::event_type).collect();
    assert_eq!(kinds, ["NodeOutputProduced", "NodeInputReceived", "NodeExecutionQueued"]);
    let tpl = state.next_queued().expect("template queued");
    assert_eq!(tpl.node_id, "tpl");
    assert_eq!(tpl.input_data["values"], json!({"name": "World"}));
    assert_eq!(tpl.input_data["format"], "Hello, {{name}}!");
    let ended = engine::end_node(&mut state, first, ExecutionStatus::Completed, Utc::now());
    assert_eq!(ended.len(), 1, "the template is still queued: the run goes on");
}

#[test]
fn a_node_waits_for_every_linked_pin_then_a_second_value_starts_another_execution() {
    // Two stores feed one template on two pins.
    let g = graph(
        vec![
            node("a", STORE, json!({"input": "Hello"})),
            node("b", STORE, json!({"input": "World"})),
            node("tpl", TEMPLATE, json!({"format": "{{a}}, {{b}}"})),
        ],
        vec![link("a", "output", "tpl", "values_#_a", false), link("b", "output", "tpl", "values_#_b", false)],
    );
    let mut state = queued(&g, json!({}));
    let (a, b) = (state.node_executions[0].node_exec_id, state.node_executions[1].node_exec_id);
    engine::record_output(&g, &mut state, a, "output", json!("Hello"), Utc::now());
    let tpl = state.node_executions.iter().find(|n| n.node_id == "tpl").unwrap();
    assert_eq!(tpl.status, ExecutionStatus::Incomplete, "waiting for values_#_b");
    engine::record_output(&g, &mut state, b, "output", json!("World"), Utc::now());
    let tpl: Vec<&NodeExecution> = state.node_executions.iter().filter(|n| n.node_id == "tpl").collect();
    assert_eq!(tpl.len(), 1, "b completes the waiting execution");
    assert_eq!(tpl[0].status, ExecutionStatus::Queued);
    // A second value from a: a new execution, waiting again.
    engine::record_output(&g, &mut state, a, "output", json!("Again"), Utc::now());
    let tpl: Vec<&NodeExecution> = state.node_executions.iter().filter(|n| n.node_id == "tpl").collect();
    assert_eq!(tpl.len(), 2);
    assert_eq!(tpl[1].status, ExecutionStatus::Incomplete);
}

#[test]
fn a_static_link_is_reused_by_later_executions_and_completes_waiting_ones() {
    // `a` feeds the template statically; `b` yields twice.
    let g = graph(
        vec![
            node("a", STORE, json!({"input": "A"})),
            node("b", STORE, json!({"input": "B"})),
            node("tpl", TEMPLATE, json!({"format": "{{a}}{{b}}"})),
        ],
        vec![link("a", "output", "tpl", "values_#_a", true), link("b", "output", "tpl", "values_#_b", false)],
    );
    let mut state = queued(&g, json!({}));
    let (a, b) = (state.node_executions[0].node_exec_id, state.node_executions[1].node_exec_id);
    engine::record_output(&g, &mut state, b, "output", json!("1"), Utc::now());
    engine::record_output(&g, &mut state, b, "output", json!("2"), Utc::now());
    let waiting =
        state.node_executions.iter().filter(|n| n.node_id == "tpl" && n.status == ExecutionStatus::Incomplete);
    assert_eq!(waiting.count(), 2, "both wait for the static pin");
    engine::record_output(&g, &mut state, a, "output", json!("A"), Utc::now());
    let tpl: Vec<&NodeExecution> = state.node_executions.iter().filter(|n| n.node_id == "tpl").collect();
    assert_eq!(tpl.len(), 2, "the static value completed the other waiting execution, no third one");
    assert!(tpl.iter().all(|n| n.status == ExecutionStatus::Queued), "{tpl:?}");
    // A later value of b reuses the static value from the latest execution.
    engine::record_output(&g, &mut state, b, "output", json!("3"), Utc::now());
    let third = state.node_executions.iter().filter(|n| n.node_id == "tpl").nth(2).unwrap();
    assert_eq!(third.status, ExecutionStatus::Queued);
    assert_eq!(third.input_data["values"], json!({"a": "A", "b": "3"}));
}

#[test]
fn the_run_completes_when_nothing_is_queued_or_running_even_with_failed_nodes() {
    let g = graph(vec![node("a", STORE, json!({"input": 1}))], vec![]);
    let mut state = queued(&g, json!({}));
    let a = state.node_executions[0].node_exec_id;
    engine::start_node(&mut state, a, Utc::now());
    engine::record_output(&g, &mut state, a, "error", json!("boom"), Utc::now());
    let events = engine::end_node(&mut state, a, ExecutionStatus::Failed, Utc::now());
    assert!(matches!(events.last(), Some(ExecutionEvent::ExecutionEnded { status: ExecutionStatus::Completed, .. })));
    assert_eq!(state.node_error_count(), 1);
    assert_eq!(state.node_executions[0].output_data, json!({"error": ["boom"]}).as_object().cloned().unwrap());
}

#[test]
fn ending_a_run_ends_its_open_node_executions_and_happens_once() {
    let g = greeting();
    let mut state = queued(&g, json!({"name": "x"}));
    let events = engine::end_run(&mut state, ExecutionStatus::Terminated, None, Utc::now());
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(state.node_executions.iter().all(|n| n.status == ExecutionStatus::Terminated));
    assert!(engine::end_run(&mut state, ExecutionStatus::Terminated, None, Utc::now()).is_empty());
    assert!(engine::claim(&state, "w2", Utc::now()).is_none(), "a finished run cannot be claimed");
}

#[test]
fn outputs_collect_each_output_nodes_value_by_name() {
    let mut state = GraphExecution::default();
    let id = Uuid::new_v4();
    state.evolve(&ExecutionEvent::NodeInputReceived {
        node_exec_id: id,
        node_id: "out".into(),
        block_id: OUTPUT.into(),
        pin: "value".into(),
        value: json!("Hello, World!"),
        at: Utc::now(),
    });
    state.evolve(&ExecutionEvent::NodeExecutionQueued {
        node_exec_id: id,
        input_data: json!({"name": "greeting", "value": "Hello, World!"}).as_object().cloned().unwrap(),
        at: Utc::now(),
    });
    assert_eq!(Value::Object(state.outputs(|b| b == OUTPUT)), json!({"greeting": ["Hello, World!"]}));
}

#[test]
fn node_execution_ids_are_the_same_when_a_step_is_decided_again() {
    let g = greeting();
    let state = queued(&g, json!({"name": "W"}));
    let first = state.node_executions[0].node_exec_id;
    let (mut one, mut two) = (state.clone(), state);
    let a = engine::record_output(&g, &mut one, first, "result", json!("W"), Utc::now());
    let b = engine::record_output(&g, &mut two, first, "result", json!("W"), Utc::now());
    let ids = |events: &[ExecutionEvent]| -> Vec<Uuid> {
        events
            .iter()
            .filter_map(|e| match e {
                ExecutionEvent::NodeInputReceived { node_exec_id, .. } => Some(*node_exec_id),
                _ => None,
            })
            .collect()
    };
    assert_eq!(ids(&a), ids(&b));
}

#[test]
fn a_resumed_run_queues_again_what_was_running_and_keeps_what_completed() {
    let g = greeting();
    let mut state = queued(&g, json!({"name": "W"}));
    let first = state.node_executions[0].node_exec_id;
    engine::start_node(&mut state, first, Utc::now());
    assert!(engine::resume(&state, "w", Utc::now()).is_none(), "the worker holding it does not resume it");
    let resumed = engine::resume(&state, "w2", Utc::now()).expect("another worker may");
    state.evolve(&resumed);
    assert_eq!(state.worker.as_deref(), Some("w2"));
    assert_eq!(state.node_executions[0].status, ExecutionStatus::Queued);
    engine::end_run(&mut state, ExecutionStatus::Terminated, None, Utc::now());
    assert!(engine::resume(&state, "w3", Utc::now()).is_none(), "an ended run is not resumed");
}
