use chrono::Utc;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::*;
use crate::execution::tests::{graph, link, node, queued, INPUT, OUTPUT, STORE};

/// in → a → b → out, and a → side.
fn chain() -> GraphVersion {
    graph(
        vec![
            node("in", INPUT, json!({"name": "x"})),
            node("a", STORE, json!({})),
            node("b", STORE, json!({})),
            node("side", STORE, json!({})),
            node("out", OUTPUT, json!({"name": "y"})),
        ],
        vec![
            link("in", "result", "a", "input", false),
            link("a", "output", "b", "input", false),
            link("a", "output", "side", "input", false),
            link("b", "output", "out", "value", false),
        ],
    )
}

fn fork(node_id: &str, inputs: Value) -> ReplayOf {
    let inputs: Map<String, Value> = inputs.as_object().cloned().unwrap_or_default();
    ReplayOf { execution_id: Uuid::new_v4(), fork: Some(ForkAt { node_id: node_id.into(), inputs }) }
}

#[test]
fn a_fork_runs_its_node_and_what_is_downstream_live_and_its_values_win_over_links() {
    let g = chain();
    let at_b = fork("b", json!({"input": "new"}));
    assert_eq!(at_b.live_nodes(&g), HashSet::from(["b".to_owned(), "out".to_owned()]));
    let forked = at_b.graph(&g);
    assert!(!forked.links.iter().any(|l| l.sink_id == "b"), "the link into the forked pin is dropped");
    assert_eq!(forked.nodes.iter().find(|n| n.id == "b").unwrap().input_default["input"], "new");
    assert_eq!(forked.links.len(), 3, "the other links stay");
    let replay = ReplayOf { execution_id: Uuid::new_v4(), fork: None };
    assert!(replay.live_nodes(&g).is_empty());
    assert_eq!(replay.graph(&g), g);
}

#[test]
fn the_nth_execution_of_a_node_replays_the_nth_recorded_one_on_the_same_input() {
    let g = chain();
    let recording = Recording { run: queued(&g, json!({"x": 1})), ..Recording::default() };
    let run = queued(&g, json!({"x": 1}));
    let (first, recorded) = (&run.node_executions[0], &recording.run.node_executions[0]);
    assert_eq!(plan_start(&recording, &run, first.node_exec_id), Start::Replay(recorded));
    let live = Recording { live: HashSet::from([first.node_id.clone()]), ..recording.clone() };
    assert_eq!(plan_start(&live, &run, first.node_exec_id), Start::Live);
    let other = queued(&g, json!({"x": 2}));
    let Start::Diverged(why) = plan_start(&recording, &other, other.node_executions[0].node_exec_id) else {
        panic!("another input replayed")
    };
    assert!(why.contains("input differs"), "{why}");
    assert!(matches!(plan_start(&Recording::default(), &run, first.node_exec_id), Start::Diverged(_)));
}

#[test]
fn another_versions_nodes_stand_for_the_recorded_ones_of_the_same_block_in_order() {
    let recorded = chain();
    let mut saved = chain();
    for node in &mut saved.nodes {
        node.id = format!("v2-{}", node.id);
    }
    for link in &mut saved.links {
        (link.source_id, link.sink_id) = (format!("v2-{}", link.source_id), format!("v2-{}", link.sink_id));
    }
    saved.nodes.swap(1, 3);
    let map = node_map(&saved, &recorded);
    assert_eq!(map["v2-in"], "in");
    assert_eq!(map["v2-out"], "out");
    // Three StoreValue nodes pair in the order each version lists them.
    assert_eq!((map["v2-side"].as_str(), map["v2-b"].as_str(), map["v2-a"].as_str()), ("a", "b", "side"));
    let run = queued(&saved, json!({"x": 1}));
    let recording = Recording { run: queued(&recorded, json!({"x": 1})), nodes: map, ..Recording::default() };
    let first = &run.node_executions[0];
    assert_eq!(plan_start(&recording, &run, first.node_exec_id), Start::Replay(&recording.run.node_executions[0]));
}

#[test]
fn a_replayed_node_agrees_only_with_the_same_outputs_and_the_same_failure() {
    let mut recorded = queued(&chain(), json!({"x": 1})).node_executions[0].clone();
    recorded.status = ExecutionStatus::Completed;
    recorded.output_data.insert("result".into(), json!([1]));
    let mut node = recorded.clone();
    assert_eq!(check_end(&recorded, &node), None);
    node.output_data.insert("result".into(), json!([2]));
    assert!(check_end(&recorded, &node).is_some_and(|why| why.contains("outputs differ")));
    node.output_data = recorded.output_data.clone();
    node.status = ExecutionStatus::Failed;
    assert!(check_end(&recorded, &node).is_some_and(|why| why.contains("FAILED")));
}

#[test]
fn a_divergence_is_recorded_and_ends_the_run_failed_saying_where() {
    let mut run = queued(&chain(), json!({"x": 1}));
    run.evolve(&ExecutionEvent::ExecutionStarted { worker: "w".into(), at: Utc::now() });
    let id = run.node_executions[0].node_exec_id;
    let events = diverge(&mut run, id, "its outputs differ from the recording".into(), Utc::now());
    assert!(matches!(events[0], ExecutionEvent::ExecutionDiverged { .. }));
    assert_eq!(run.status, Some(ExecutionStatus::Failed));
    assert_eq!(run.error.as_deref(), Some("Replay diverged at node in: its outputs differ from the recording"));
    assert_eq!(run.diverged.as_ref().map(|d| d.node_id.as_str()), Some("in"));
    assert!(diverge(&mut run, id, "again".into(), Utc::now()).is_empty(), "an ended run diverges no more");
}
