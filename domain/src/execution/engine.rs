//! What follows each step of a run, with AutoGPT's executor semantics
//! (reference §4): which node executions a run starts with, where a yielded
//! value goes, when a node execution is ready, how static links deliver,
//! and when a run is over. Pure: the executor runs blocks and appends what
//! these functions decide; replaying the same step decides the same events
//! (node execution ids derive from the run's id and their number).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::pins::{merge_dynamic_pins, select_output};
use super::{ExecutionEvent, ExecutionStatus, GraphExecution, StartingNode};
use crate::aggregate::{derived_id, Aggregate};
use crate::blocks::{self, BlockType};
use crate::graph::validate::missing_run_inputs;
use crate::graph::{GraphVersion, Node, NodeErrors};

/// Why a run was refused before anything was queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// Inputs are missing or invalid on these nodes.
    #[error("Graph validation failed")]
    Invalid(NodeErrors),
    /// Nothing in the graph can start.
    #[error("No starting nodes found for the graph")]
    NoStartingNodes,
    /// A run still going has no whole recording to replay or fork.
    #[error("The run has not ended: only an ended run can be replayed or forked")]
    NotEnded,
    /// A fork names a node the graph version does not have.
    #[error("The graph has no node {0}")]
    UnknownNode(String),
}

/// The event that queues a run of `graph`: its starting node executions are
/// the nodes with no inbound link and the graph-input nodes (notes never
/// run), each with its defaults and, for an input node named in `inputs`,
/// `{"value": inputs[name]}`; every one of them must be ready to run, and
/// every node's required inputs must be set or linked (`missing_run_inputs`).
pub fn queue_run(
    graph: &GraphVersion,
    execution_id: Uuid,
    user_id: Uuid,
    inputs: Map<String, Value>,
    preset_id: Option<Uuid>,
    at: DateTime<Utc>,
) -> Result<ExecutionEvent, RunError> {
    let mut starting = Vec::new();
    let mut errors = missing_run_inputs(graph);
    let fed: HashSet<&str> = graph.links.iter().map(|l| l.sink_id.as_str()).collect();
    for node in &graph.nodes {
        let block = blocks::find(&node.block_id);
        let block_type = block.map(|b| b.block_type);
        if block_type == Some(BlockType::Note) {
            continue;
        }
        let has_inbound = fed.contains(node.id.as_str());
        if has_inbound && block_type != Some(BlockType::Input) {
            continue;
        }
        let mut received = Map::new();
        if block_type == Some(BlockType::Input) {
            let name = node.input_default.get("name").and_then(Value::as_str);
            if let Some(value) = name.and_then(|n| inputs.get(n)) {
                received.insert("value".into(), value.clone());
            }
        }
        match readiness(graph, node, &received, false) {
            Ok(input_data) => starting.push(StartingNode {
                node_exec_id: node_exec_id(execution_id, starting.len()),
                node_id: node.id.clone(),
                block_id: node.block_id.clone(),
                input_data,
            }),
            Err(NotReady::Missing(fields)) => {
                let entry = errors.entry(node.id.clone()).or_default();
                for field in fields {
                    entry.insert(field, "This field is required".into());
                }
            }
            Err(NotReady::AwaitingLinks) => {}
        }
    }
    if !errors.is_empty() {
        return Err(RunError::Invalid(errors));
    }
    if starting.is_empty() {
        return Err(RunError::NoStartingNodes);
    }
    Ok(ExecutionEvent::ExecutionQueued {
        replay: None,
        execution_id,
        user_id,
        graph_id: graph.id,
        graph_version: graph.version,
        inputs,
        preset_id,
        starting,
        node_input_masks: Map::new(),
        at,
    })
}

/// The id of a run's `n`-th node execution.
fn node_exec_id(execution_id: Uuid, n: usize) -> Uuid {
    derived_id(execution_id, &format!("node-exec-{n}"))
}

/// Why a node execution cannot run yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReady {
    /// A linked pin has no value yet.
    AwaitingLinks,
    /// Required fields have no value (no default, no link, no input).
    Missing(Vec<String>),
}

/// The input a node execution runs on, if it is ready: every linked pin
/// has received a value (`check_links`), defaults fill the rest, dynamic
/// pins are merged into their fields, and every required field is there.
pub fn readiness(
    graph: &GraphVersion,
    node: &Node,
    received: &Map<String, Value>,
    check_links: bool,
) -> Result<Map<String, Value>, NotReady> {
    let linked = graph.links.iter().filter(|l| l.sink_id == node.id);
    if check_links && linked.clone().any(|l| !received.contains_key(&l.sink_name)) {
        return Err(NotReady::AwaitingLinks);
    }
    let mut data = node.input_default.clone();
    data.extend(received.iter().map(|(k, v)| (k.clone(), v.clone())));
    let data = merge_dynamic_pins(&data);
    // Credentials fields are not among a block's required inputs here:
    // they are checked on their own (`Block::required_inputs`).
    let missing: Vec<String> = blocks::find(&node.block_id)
        .map(|block| block.required_inputs())
        .unwrap_or_default()
        .into_iter()
        .filter(|field| !data.contains_key(*field))
        .map(str::to_owned)
        .collect();
    if missing.is_empty() {
        Ok(data)
    } else {
        Err(NotReady::Missing(missing))
    }
}

/// The events of one step, applied to the run's state as they are decided
/// so that later decisions of the step see earlier ones.
struct Step<'a> {
    graph: &'a GraphVersion,
    state: &'a mut GraphExecution,
    events: Vec<ExecutionEvent>,
    at: DateTime<Utc>,
}

impl<'a> Step<'a> {
    fn new(graph: &'a GraphVersion, state: &'a mut GraphExecution, at: DateTime<Utc>) -> Self {
        Self { graph, state, events: Vec::new(), at }
    }

    fn emit(&mut self, event: ExecutionEvent) {
        self.state.evolve(&event);
        self.events.push(event);
    }

    fn receive(&mut self, node_exec_id: Uuid, node: &Node, pin: &str, value: Value) {
        self.emit(ExecutionEvent::NodeInputReceived {
            node_exec_id,
            node_id: node.id.clone(),
            block_id: node.block_id.clone(),
            pin: pin.to_owned(),
            value,
            at: self.at,
        });
    }

    /// Queue the node execution if it is ready now.
    fn try_queue(&mut self, node_exec_id: Uuid, node: &Node) {
        let Some(exec) = self.state.node_execution(node_exec_id) else { return };
        if exec.status != ExecutionStatus::Incomplete {
            return;
        }
        if let Ok(input_data) = readiness(self.graph, node, &exec.received, true) {
            self.emit(ExecutionEvent::NodeExecutionQueued { node_exec_id, input_data, at: self.at });
        }
    }

    /// Static pins of `node` that `node_exec_id` lacks, taken from the
    /// input of the node's latest execution that got past waiting.
    fn fill_static_pins(&mut self, node_exec_id: Uuid, node: &Node) {
        let latest = self
            .state
            .node_executions
            .iter()
            .rev()
            .find(|e| e.node_id == node.id && e.node_exec_id != node_exec_id && e.status != ExecutionStatus::Incomplete)
            .map(|e| e.input_data.clone());
        let Some(latest) = latest else { return };
        let missing: Vec<(String, Value)> = self
            .graph
            .links
            .iter()
            .filter(|l| l.sink_id == node.id && l.is_static)
            .filter(|l| self.state.node_execution(node_exec_id).is_some_and(|e| !e.received.contains_key(&l.sink_name)))
            .filter_map(|l| latest.get(&l.sink_name).map(|v| (l.sink_name.clone(), v.clone())))
            .collect();
        for (pin, value) in missing {
            self.receive(node_exec_id, node, &pin, value);
        }
    }

    /// Deliver `value` along one link into its sink node: to the oldest
    /// waiting execution of the sink that lacks the pin, else to a new one.
    /// A static link's value also completes every other waiting execution.
    fn deliver(&mut self, sink: &Node, sink_pin: &str, is_static: bool, value: Value) {
        let waiting = self
            .state
            .node_executions
            .iter()
            .find(|e| {
                e.node_id == sink.id && e.status == ExecutionStatus::Incomplete && !e.received.contains_key(sink_pin)
            })
            .map(|e| e.node_exec_id);
        let target = waiting
            .unwrap_or_else(|| node_exec_id(self.state.id.unwrap_or_default(), self.state.node_executions.len()));
        self.receive(target, sink, sink_pin, value.clone());
        self.fill_static_pins(target, sink);
        self.try_queue(target, sink);
        if !is_static {
            return;
        }
        let others: Vec<Uuid> = self
            .state
            .node_executions
            .iter()
            .filter(|e| e.node_id == sink.id && e.node_exec_id != target && e.status == ExecutionStatus::Incomplete)
            .filter(|e| !e.received.contains_key(sink_pin))
            .map(|e| e.node_exec_id)
            .collect();
        for other in others {
            self.receive(other, sink, sink_pin, value.clone());
            self.try_queue(other, sink);
        }
    }
}

/// A worker claims a queued run (the event is appended with the stream's
/// expected version, so only one claim wins). AutoGPT's table would let a
/// TERMINATED run become RUNNING again; a stopped run stays stopped here.
pub fn claim(state: &GraphExecution, worker: &str, at: DateTime<Utc>) -> Option<ExecutionEvent> {
    (state.status? == ExecutionStatus::Queued)
        .then(|| ExecutionEvent::ExecutionStarted { worker: worker.to_owned(), at })
}

/// A worker takes over a running run whose worker is gone (its lease
/// lapsed): the nodes it was running are queued again; completed ones stay
/// completed. Appended with the expected version, so a worker that was only
/// slow finds the stream moved and stands down.
pub fn resume(state: &GraphExecution, worker: &str, at: DateTime<Utc>) -> Option<ExecutionEvent> {
    (state.status? == ExecutionStatus::Running && state.worker.as_deref() != Some(worker))
        .then(|| ExecutionEvent::ExecutionResumed { worker: worker.to_owned(), at })
}

/// A node execution begins to run.
pub fn start_node(state: &mut GraphExecution, node_exec_id: Uuid, at: DateTime<Utc>) -> Vec<ExecutionEvent> {
    start_replayed(state, node_exec_id, None, at)
}

/// A node execution begins to run, in a replay on the answers of the
/// recorded node execution `replayed_from`.
pub fn start_replayed(
    state: &mut GraphExecution,
    node_exec_id: Uuid,
    replayed_from: Option<Uuid>,
    at: DateTime<Utc>,
) -> Vec<ExecutionEvent> {
    let event = ExecutionEvent::NodeExecutionStarted { node_exec_id, replayed_from, at };
    state.evolve(&event);
    vec![event]
}

/// A running node yielded `value` on `pin`: record it and deliver it along
/// every link from the node whose `source_name` selects it.
pub fn record_output(
    graph: &GraphVersion,
    state: &mut GraphExecution,
    node_exec_id: Uuid,
    pin: &str,
    value: Value,
    at: DateTime<Utc>,
) -> Vec<ExecutionEvent> {
    let Some(node_id) = state.node_execution(node_exec_id).map(|e| e.node_id.clone()) else { return vec![] };
    let mut step = Step::new(graph, state, at);
    step.emit(ExecutionEvent::NodeOutputProduced { node_exec_id, pin: pin.to_owned(), value: value.clone(), at });
    for link in graph.links.iter().filter(|l| l.source_id == node_id) {
        let Some(selected) = select_output(&link.source_name, pin, &value) else { continue };
        let Some(sink) = graph.nodes.iter().find(|n| n.id == link.sink_id) else { continue };
        step.deliver(sink, &link.sink_name, link.is_static, selected);
    }
    step.events
}

/// A running node failed with `error`: the error is its `error` output
/// (delivered along links from that pin, as any output) and it ends FAILED.
pub fn fail_node(
    graph: &GraphVersion,
    state: &mut GraphExecution,
    node_exec_id: Uuid,
    error: String,
    at: DateTime<Utc>,
) -> Vec<ExecutionEvent> {
    let mut events = record_output(graph, state, node_exec_id, "error", Value::String(error), at);
    events.extend(end_node(state, node_exec_id, ExecutionStatus::Failed, at));
    events
}

/// A queued node execution that began to run `max_starts` times and never
/// ended: each time, the process running it went away (a crash, a kill, a
/// block that takes the process down). Starting it again would take the
/// next worker down too, so it fails instead, and the run goes on as after
/// any failed node.
pub fn give_up_on(
    graph: &GraphVersion,
    state: &mut GraphExecution,
    node_exec_id: Uuid,
    max_starts: u32,
    at: DateTime<Utc>,
) -> Option<Vec<ExecutionEvent>> {
    let node = state.node_execution(node_exec_id)?;
    if node.status != ExecutionStatus::Queued || node.starts < max_starts {
        return None;
    }
    // Not started again: a fourth start would be one more than it had.
    let error = format!("the process stopped {} times while running this node", node.starts);
    Some(fail_node(graph, state, node_exec_id, error, at))
}

/// A node execution ended; when nothing is queued or running any more, the
/// run is COMPLETED too (a failed node does not fail the run).
pub fn end_node(
    state: &mut GraphExecution,
    node_exec_id: Uuid,
    status: ExecutionStatus,
    at: DateTime<Utc>,
) -> Vec<ExecutionEvent> {
    let mut events = vec![ExecutionEvent::NodeExecutionEnded { node_exec_id, status, at }];
    state.evolve(&events[0]);
    if let Some(end) = settle(state, at) {
        state.evolve(&end);
        events.push(end);
    }
    events
}

/// What a running run with nothing queued or running becomes: paused in
/// REVIEW while a node waits for a human, else COMPLETED.
pub fn settle(state: &GraphExecution, at: DateTime<Utc>) -> Option<ExecutionEvent> {
    if state.has_work() || state.status != Some(ExecutionStatus::Running) {
        return None;
    }
    Some(if state.awaits_review() {
        ExecutionEvent::ExecutionPaused { at }
    } else {
        ExecutionEvent::ExecutionEnded { status: ExecutionStatus::Completed, error: None, at }
    })
}

/// End the run as `status` (TERMINATED on a stop, FAILED on an executor
/// error): every node execution not yet ended ends with it.
pub fn end_run(
    state: &mut GraphExecution,
    status: ExecutionStatus,
    error: Option<String>,
    at: DateTime<Utc>,
) -> Vec<ExecutionEvent> {
    if state.status.is_none_or(ExecutionStatus::is_final) {
        return vec![];
    }
    let open: Vec<Uuid> =
        state.node_executions.iter().filter(|n| !n.status.is_final()).map(|n| n.node_exec_id).collect();
    let node_status = if status == ExecutionStatus::Failed { ExecutionStatus::Terminated } else { status };
    let mut events: Vec<ExecutionEvent> = open
        .into_iter()
        .map(|node_exec_id| ExecutionEvent::NodeExecutionEnded { node_exec_id, status: node_status, at })
        .collect();
    events.push(ExecutionEvent::ExecutionEnded { status, error, at });
    for event in &events {
        state.evolve(event);
    }
    events
}
