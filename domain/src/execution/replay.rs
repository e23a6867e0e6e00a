//! Replaying a run from its recording, and forking it from a node. Every
//! answer a run got from outside (HTTP, a model, a review) is an event of
//! its stream, so a new run can re-run each block on those answers instead
//! of calling out: a replay re-runs every node so, a fork every node but the
//! chosen one and those downstream of it, which run live. A replayed node
//! that stops agreeing with its recording (other inputs, another request,
//! other outputs) ends the run where it diverged.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{engine, ExecutionEvent, ExecutionStatus, GraphExecution, NodeExecution};
use crate::aggregate::Aggregate;
use crate::graph::GraphVersion;

/// The recorded run a new run re-uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayOf {
    /// The recorded run.
    pub execution_id: Uuid,
    /// For a fork: where it runs live again, and on what.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fork: Option<ForkAt>,
}

/// The node a fork runs live from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForkAt {
    /// The graph node.
    pub node_id: String,
    /// Values for its input pins, taking the place of the recorded ones.
    pub inputs: Map<String, Value>,
}

/// Where a replay stopped agreeing with its recording.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Divergence {
    /// The node execution.
    pub node_exec_id: Uuid,
    /// Its graph node.
    pub node_id: String,
    /// What differed.
    pub reason: String,
}

impl ReplayOf {
    /// The graph the new run runs: for a fork, its node takes the fork's
    /// values on the pins they name, and the links into those pins are
    /// dropped, so the values win over what upstream delivers.
    pub fn graph(&self, graph: &GraphVersion) -> GraphVersion {
        let Some(fork) = &self.fork else { return graph.clone() };
        let mut forked = graph.clone();
        if let Some(node) = forked.nodes.iter_mut().find(|n| n.id == fork.node_id) {
            node.input_default.extend(fork.inputs.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        forked.links.retain(|l| !(l.sink_id == fork.node_id && fork.inputs.contains_key(&l.sink_name)));
        forked
    }

    /// The nodes that run live: a fork's node and every node downstream of
    /// it; none in a replay.
    pub fn live_nodes(&self, graph: &GraphVersion) -> HashSet<String> {
        let Some(fork) = &self.fork else { return HashSet::new() };
        let mut live = HashSet::from([fork.node_id.clone()]);
        let mut frontier = vec![fork.node_id.as_str()];
        while let Some(node) = frontier.pop() {
            for link in graph.links.iter().filter(|l| l.source_id == node) {
                if live.insert(link.sink_id.clone()) {
                    frontier.push(&link.sink_id);
                }
            }
        }
        live
    }
}

/// How a node execution of a replay or fork starts.
#[derive(Debug, PartialEq)]
pub enum Start<'a> {
    /// Live: it calls out and is charged as in any run.
    Live,
    /// On the answers of this recorded node execution.
    Replay(&'a NodeExecution),
    /// It cannot: the recording holds no such execution.
    Diverged(String),
}

/// Which node of the recorded graph version each node of `graph` stands
/// for, when a replay runs another version: a saved version gets new node
/// ids, so nodes pair by block, in the order the versions list them.
pub fn node_map(graph: &GraphVersion, recorded: &GraphVersion) -> HashMap<String, String> {
    let mut unpaired: Vec<&crate::graph::Node> = recorded.nodes.iter().collect();
    let mut map = HashMap::new();
    for node in &graph.nodes {
        if let Some(at) = unpaired.iter().position(|r| r.block_id == node.block_id) {
            map.insert(node.id.clone(), unpaired.remove(at).id.clone());
        }
    }
    map
}

/// What a replay or fork re-runs: the recorded run, the nodes that run
/// live, and which recorded node each node stands for (the same id when
/// none is named).
#[derive(Debug, Clone, Default)]
pub struct Recording {
    /// The recorded run.
    pub run: GraphExecution,
    /// Nodes that run live.
    pub live: HashSet<String>,
    /// Recorded node ids by node id, for a replay of another version.
    pub nodes: HashMap<String, String>,
}

/// How `node_exec_id` of `run` starts, given the `recording` it replays:
/// the n-th execution of a node re-runs the n-th recorded execution of the
/// node it stands for, on the same input.
pub fn plan_start<'a>(recording: &'a Recording, run: &GraphExecution, node_exec_id: Uuid) -> Start<'a> {
    let Some(node) = run.node_execution(node_exec_id) else { return Start::Live };
    if recording.live.contains(&node.node_id) {
        return Start::Live;
    }
    let recorded_id = recording.nodes.get(&node.node_id).unwrap_or(&node.node_id);
    let earlier = run
        .node_executions
        .iter()
        .take_while(|n| n.node_exec_id != node_exec_id)
        .filter(|n| n.node_id == node.node_id)
        .count();
    let Some(recorded) = recording.run.node_executions.iter().filter(|n| &n.node_id == recorded_id).nth(earlier) else {
        return Start::Diverged(format!("the recording has no execution {} of this node", earlier + 1));
    };
    if recorded.input_data != node.input_data {
        return Start::Diverged("its input differs from the recording".into());
    }
    Start::Replay(recorded)
}

/// Whether a replayed node execution ended as its recording did: `None`
/// when it did, else what differs.
pub fn check_end(recorded: &NodeExecution, node: &NodeExecution) -> Option<String> {
    let failed = |status: ExecutionStatus| status == ExecutionStatus::Failed;
    if failed(recorded.status) != failed(node.status) {
        return Some(format!(
            "it ended {} where the recording ended {}",
            node.status.as_str(),
            recorded.status.as_str()
        ));
    }
    (recorded.output_data != node.output_data).then(|| "its outputs differ from the recording".to_owned())
}

/// A replay diverged at `node_exec_id`: say so, and end the run FAILED
/// with where and why.
pub fn diverge(
    state: &mut GraphExecution,
    node_exec_id: Uuid,
    reason: String,
    at: DateTime<Utc>,
) -> Vec<ExecutionEvent> {
    if state.status.is_none_or(ExecutionStatus::is_final) {
        return vec![];
    }
    let node_id = state.node_execution(node_exec_id).map(|n| n.node_id.clone()).unwrap_or_default();
    let error = format!("Replay diverged at node {node_id}: {reason}");
    let event = ExecutionEvent::ExecutionDiverged { node_exec_id, node_id, reason, at };
    state.evolve(&event);
    let mut events = vec![event];
    events.extend(engine::end_run(state, ExecutionStatus::Failed, Some(error), at));
    events
}

#[cfg(test)]
mod tests;
