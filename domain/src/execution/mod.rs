//! The GraphExecution aggregate: one run of a graph version. Every status
//! change of the run and of each node execution, and every node output, is
//! an event on the run's stream; the engine ([`engine`]) decides which
//! events follow a step, as AutoGPT's executor does.

pub mod engine;
mod event;
pub mod pins;
pub mod replay;
pub mod review;
mod status;

pub use event::{ExecutionEvent, StartingNode};
pub use status::ExecutionStatus;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::aggregate::Aggregate;

/// One execution of one graph node, as folded from the run's stream.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NodeExecution {
    /// Its id.
    pub node_exec_id: Uuid,
    /// The graph node.
    pub node_id: String,
    /// The node's block.
    pub block_id: String,
    /// Where it stands.
    pub status: ExecutionStatus,
    /// Pins that received a value so far (links, graph inputs).
    pub received: Map<String, Value>,
    /// The input it runs on, once queued.
    pub input_data: Map<String, Value>,
    /// Yielded values by output pin, in yield order.
    pub output_data: Map<String, Value>,
    /// When it was created.
    pub add_time: DateTime<Utc>,
    /// When it was queued.
    pub queue_time: Option<DateTime<Utc>>,
    /// When it began to run.
    pub start_time: Option<DateTime<Utc>>,
    /// When it ended.
    pub end_time: Option<DateTime<Utc>>,
    /// What its block's requests to the outside world got back, in order.
    pub answers: Vec<Value>,
    /// Those requests, in the same order.
    pub requests: Vec<Value>,
    /// In a replay, the recorded node execution it re-ran.
    pub replayed_from: Option<Uuid>,
    /// The review it waits for, while in REVIEW.
    pub review: Option<review::PendingReview>,
    /// How many times it began to run: more than once only when the worker
    /// running it went away and another took the run over.
    pub starts: u32,
}

/// The tokens (prompt and completion) one answer of a model reports;
/// `None` for an answer that is not a model's.
pub fn tokens_of(answer: &Value) -> Option<u64> {
    let prompt = answer.get("prompt_tokens").and_then(Value::as_u64)?;
    Some(prompt + answer.get("completion_tokens").and_then(Value::as_u64).unwrap_or(0))
}

/// What a node's model calls cost, from the answers it got:
/// `{"llm_call_count", "input_token_count", "output_token_count"}` (the
/// names of AutoGPT's `NodeExecutionStats`), or `None` when it made none.
pub fn llm_stats<'a>(answers: impl IntoIterator<Item = &'a Value>) -> Option<Value> {
    let (mut calls, mut input, mut output) = (0u64, 0u64, 0u64);
    for answer in answers {
        if let Some(prompt) = answer.get("prompt_tokens").and_then(Value::as_u64) {
            calls += 1;
            input += prompt;
            output += answer.get("completion_tokens").and_then(Value::as_u64).unwrap_or(0);
        }
    }
    (calls > 0)
        .then(|| serde_json::json!({"llm_call_count": calls, "input_token_count": input, "output_token_count": output}))
}

impl NodeExecution {
    fn new(node_exec_id: Uuid, node_id: &str, block_id: &str, at: DateTime<Utc>) -> Self {
        Self {
            node_exec_id,
            node_id: node_id.to_owned(),
            block_id: block_id.to_owned(),
            status: ExecutionStatus::Incomplete,
            received: Map::new(),
            input_data: Map::new(),
            output_data: Map::new(),
            add_time: at,
            queue_time: None,
            start_time: None,
            end_time: None,
            answers: Vec::new(),
            requests: Vec::new(),
            replayed_from: None,
            review: None,
            starts: 0,
        }
    }
}

/// State of one run.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct GraphExecution {
    /// Set once queued.
    pub id: Option<Uuid>,
    /// Who runs it.
    pub user_id: Uuid,
    /// The graph.
    pub graph_id: Uuid,
    /// Its version.
    pub graph_version: i32,
    /// The graph inputs.
    pub inputs: Map<String, Value>,
    /// The preset it came from.
    pub preset_id: Option<Uuid>,
    /// Where the run stands (QUEUED before its first event is folded, too).
    pub status: Option<ExecutionStatus>,
    /// The worker that claimed it.
    pub worker: Option<String>,
    /// When it was queued.
    pub created_at: Option<DateTime<Utc>>,
    /// When a worker started it.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// Why it failed.
    pub error: Option<String>,
    /// Its node executions, in the order they were created.
    pub node_executions: Vec<NodeExecution>,
    /// Deleted by its owner.
    pub deleted: bool,
    /// The public share token, while shared.
    pub share_token: Option<Uuid>,
    /// Values laid over nodes' defaults for this run, by node id.
    pub node_input_masks: Map<String, Value>,
    /// The recorded run it replays or forks.
    pub replay: Option<replay::ReplayOf>,
    /// Where, as a replay, it stopped agreeing with its recording.
    pub diverged: Option<replay::Divergence>,
}

impl GraphExecution {
    /// A node execution by id.
    pub fn node_execution(&self, id: Uuid) -> Option<&NodeExecution> {
        self.node_executions.iter().find(|n| n.node_exec_id == id)
    }

    fn node_execution_mut(&mut self, id: Uuid) -> Option<&mut NodeExecution> {
        self.node_executions.iter_mut().find(|n| n.node_exec_id == id)
    }

    /// The next node execution waiting to run, oldest first.
    pub fn next_queued(&self) -> Option<&NodeExecution> {
        self.node_executions.iter().find(|n| n.status == ExecutionStatus::Queued)
    }

    /// Whether any node execution is queued or running.
    pub fn has_work(&self) -> bool {
        self.node_executions.iter().any(|n| matches!(n.status, ExecutionStatus::Queued | ExecutionStatus::Running))
    }

    /// Whether a node execution waits for a review.
    pub fn awaits_review(&self) -> bool {
        self.node_executions.iter().any(|n| n.status == ExecutionStatus::Review)
    }

    /// How many node executions failed.
    pub fn node_error_count(&self) -> usize {
        self.node_executions.iter().filter(|n| n.status == ExecutionStatus::Failed).count()
    }

    /// The run's outputs: by AgentOutput `name`, every value its output
    /// nodes were given, in order (AutoGPT's `GraphExecution.outputs`).
    pub fn outputs(&self, is_output_block: impl Fn(&str) -> bool) -> Map<String, Value> {
        let mut outputs = Map::new();
        for node in self.node_executions.iter().filter(|n| is_output_block(&n.block_id)) {
            let (Some(Value::String(name)), Some(value)) = (node.input_data.get("name"), node.input_data.get("value"))
            else {
                continue;
            };
            if let Value::Array(values) = outputs.entry(name.clone()).or_insert_with(|| Value::Array(vec![])) {
                values.push(value.clone());
            }
        }
        outputs
    }
}

impl Aggregate for GraphExecution {
    type Event = ExecutionEvent;
    const STREAM_PREFIX: &'static str = "execution";

    fn evolve(&mut self, event: &ExecutionEvent) {
        match event {
            ExecutionEvent::ExecutionQueued {
                execution_id,
                user_id,
                graph_id,
                graph_version,
                inputs,
                preset_id,
                starting,
                node_input_masks,
                replay,
                at,
            } => {
                self.node_input_masks.clone_from(node_input_masks);
                self.replay.clone_from(replay);
                self.id = Some(*execution_id);
                self.user_id = *user_id;
                self.graph_id = *graph_id;
                self.graph_version = *graph_version;
                self.inputs.clone_from(inputs);
                self.preset_id = *preset_id;
                self.status = Some(ExecutionStatus::Queued);
                self.created_at = Some(*at);
                for node in starting {
                    let mut exec = NodeExecution::new(node.node_exec_id, &node.node_id, &node.block_id, *at);
                    exec.status = ExecutionStatus::Queued;
                    exec.input_data.clone_from(&node.input_data);
                    exec.queue_time = Some(*at);
                    self.node_executions.push(exec);
                }
            }
            ExecutionEvent::ExecutionStarted { worker, at } => {
                self.status = Some(ExecutionStatus::Running);
                self.worker = Some(worker.clone());
                self.started_at.get_or_insert(*at);
            }
            ExecutionEvent::ExecutionResumed { worker, .. } => {
                self.worker = Some(worker.clone());
                for node in self.node_executions.iter_mut().filter(|n| n.status == ExecutionStatus::Running) {
                    node.status = ExecutionStatus::Queued;
                    node.start_time = None;
                }
            }
            ExecutionEvent::NodeInputReceived { node_exec_id, node_id, block_id, pin, value, at } => {
                if self.node_execution(*node_exec_id).is_none() {
                    self.node_executions.push(NodeExecution::new(*node_exec_id, node_id, block_id, *at));
                }
                if let Some(exec) = self.node_execution_mut(*node_exec_id) {
                    exec.received.insert(pin.clone(), value.clone());
                }
            }
            ExecutionEvent::NodeExecutionQueued { node_exec_id, input_data, at } => {
                if let Some(exec) = self.node_execution_mut(*node_exec_id) {
                    exec.status = ExecutionStatus::Queued;
                    exec.input_data.clone_from(input_data);
                    exec.queue_time = Some(*at);
                }
            }
            ExecutionEvent::NodeExecutionStarted { node_exec_id, replayed_from, at } => {
                if let Some(exec) = self.node_execution_mut(*node_exec_id) {
                    exec.replayed_from = *replayed_from;
                    exec.status = ExecutionStatus::Running;
                    exec.start_time = Some(*at);
                    exec.starts += 1;
                }
            }
            ExecutionEvent::NodeOutputProduced { node_exec_id, pin, value, .. } => {
                if let Some(exec) = self.node_execution_mut(*node_exec_id) {
                    if let Value::Array(values) =
                        exec.output_data.entry(pin.clone()).or_insert_with(|| Value::Array(vec![]))
                    {
                        values.push(value.clone());
                    }
                }
            }
            ExecutionEvent::NodeEffectAnswered { node_exec_id, seq, request, answer, .. } => {
                if let Some(exec) = self.node_execution_mut(*node_exec_id) {
                    // A second worker's answer to a request already answered
                    // is not the one the block went on with.
                    if *seq as usize == exec.answers.len() {
                        exec.answers.push(answer.clone());
                        exec.requests.push(request.clone());
                    }
                    if exec.review.as_ref().is_some_and(|r| r.seq == *seq) {
                        exec.review = None;
                    }
                }
            }
            ExecutionEvent::NodeReviewRequested {
                node_exec_id,
                seq,
                payload,
                instructions,
                editable,
                timeout_at,
                timeout_action,
                ..
            } => {
                if let Some(exec) = self.node_execution_mut(*node_exec_id) {
                    exec.status = ExecutionStatus::Review;
                    exec.review = Some(review::PendingReview {
                        seq: *seq,
                        payload: payload.clone(),
                        instructions: instructions.clone(),
                        editable: *editable,
                        timeout_at: *timeout_at,
                        timeout_action: timeout_action.clone(),
                    });
                }
            }
            ExecutionEvent::ExecutionPaused { .. } => {
                self.status = Some(ExecutionStatus::Review);
                self.worker = None;
            }
            ExecutionEvent::ExecutionReviewed { .. } => {
                self.status = Some(ExecutionStatus::Queued);
                self.worker = None;
            }
            ExecutionEvent::NodeExecutionEnded { node_exec_id, status, at } => {
                if let Some(exec) = self.node_execution_mut(*node_exec_id) {
                    exec.status = *status;
                    exec.end_time = Some(*at);
                }
            }
            ExecutionEvent::ExecutionDiverged { node_exec_id, node_id, reason, .. } => {
                self.diverged = Some(replay::Divergence {
                    node_exec_id: *node_exec_id,
                    node_id: node_id.clone(),
                    reason: reason.clone(),
                });
            }
            ExecutionEvent::ExecutionEnded { status, error, at } => {
                self.status = Some(*status);
                self.error.clone_from(error);
                self.ended_at = Some(*at);
            }
            ExecutionEvent::ExecutionDeleted { .. } => self.deleted = true,
            ExecutionEvent::ExecutionShared { share_token, .. } => self.share_token = Some(*share_token),
            ExecutionEvent::ExecutionUnshared { .. } => self.share_token = None,
        }
    }
}

#[cfg(test)]
mod tests;
