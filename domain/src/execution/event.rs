//! Facts about one graph execution, every step of it on its own stream.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::ExecutionStatus;
use crate::aggregate::EventType;

/// A node execution a run starts with: its node and the input it runs on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartingNode {
    /// The node execution's id.
    pub node_exec_id: Uuid,
    /// The graph node it runs.
    pub node_id: String,
    /// The node's block.
    pub block_id: String,
    /// The input it runs on: defaults, graph inputs, merged dynamic pins.
    pub input_data: Map<String, Value>,
}

/// Facts about a graph execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum ExecutionEvent {
    /// A run of a graph version was requested; its starting node executions
    /// are queued with it.
    ExecutionQueued {
        /// The run's id.
        execution_id: Uuid,
        /// Who runs it.
        user_id: Uuid,
        /// The graph.
        graph_id: Uuid,
        /// Its version.
        graph_version: i32,
        /// The graph inputs, by input name.
        inputs: Map<String, Value>,
        /// The preset it was started from.
        preset_id: Option<Uuid>,
        /// The node executions it starts with, all queued.
        starting: Vec<StartingNode>,
        /// Values laid over nodes' defaults for this run, by node id (the
        /// credentials named at the start); absent in older events.
        #[serde(default, skip_serializing_if = "Map::is_empty")]
        node_input_masks: Map<String, Value>,
        /// The recorded run it replays or forks; absent for a live run.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replay: Option<super::replay::ReplayOf>,
        /// When.
        at: DateTime<Utc>,
    },
    /// A worker claimed the run: only one claim can follow the queueing.
    ExecutionStarted {
        /// Which worker.
        worker: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Another worker took over a run whose worker stopped renewing its
    /// lease (it died or lost its connection); node executions that were
    /// running when it went are queued again.
    ExecutionResumed {
        /// The worker taking over.
        worker: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// A value arrived on an input pin of a node execution; the first one
    /// creates it, waiting for the rest (INCOMPLETE).
    NodeInputReceived {
        /// The node execution.
        node_exec_id: Uuid,
        /// Its node.
        node_id: String,
        /// The node's block.
        block_id: String,
        /// The input pin.
        pin: String,
        /// The value.
        value: Value,
        /// When.
        at: DateTime<Utc>,
    },
    /// A node execution has every input it needs and waits to run.
    NodeExecutionQueued {
        /// The node execution.
        node_exec_id: Uuid,
        /// The input it runs on.
        input_data: Map<String, Value>,
        /// When.
        at: DateTime<Utc>,
    },
    /// A node execution began to run.
    NodeExecutionStarted {
        /// The node execution.
        node_exec_id: Uuid,
        /// In a replay, the recorded node execution it re-runs on the
        /// recorded answers (nothing is called out or charged); absent when
        /// it runs live.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replayed_from: Option<Uuid>,
        /// When.
        at: DateTime<Utc>,
    },
    /// A running node yielded a value on an output pin.
    NodeOutputProduced {
        /// The node execution.
        node_exec_id: Uuid,
        /// The output pin.
        pin: String,
        /// The value.
        value: Value,
        /// When.
        at: DateTime<Utc>,
    },
    /// A running node's block asked the outside world for something (an
    /// HTTP exchange, a chat completion) and this came back. Kept so that a
    /// takeover or a replay gives the block the same answer instead of
    /// calling out again; it names credentials by id, never their secret.
    NodeEffectAnswered {
        /// The node execution.
        node_exec_id: Uuid,
        /// Which of the block's requests (0 for its first).
        seq: u32,
        /// What was asked.
        request: Value,
        /// What came back (`{"error": …}` when nothing could).
        answer: Value,
        /// When.
        at: DateTime<Utc>,
    },
    /// A running node's block asked a human to review data (the
    /// HumanInTheLoop block): the node waits in REVIEW for the owner's
    /// decision, which comes back as its `NodeEffectAnswered`.
    NodeReviewRequested {
        /// The node execution.
        node_exec_id: Uuid,
        /// Which of the block's requests it is.
        seq: u32,
        /// The data to review.
        payload: Value,
        /// What the reviewer is told (the block's `name`).
        instructions: Option<String>,
        /// Whether the reviewer may edit the data.
        editable: bool,
        /// When the review times out, if it does.
        timeout_at: Option<DateTime<Utc>>,
        /// What a timeout decides: `approve`, `reject` or `fail`.
        timeout_action: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Nothing can run until reviews are decided: the run waits in REVIEW,
    /// held by no worker.
    ExecutionPaused {
        /// When.
        at: DateTime<Utc>,
    },
    /// Every pending review of the run was decided: it is queued again for
    /// a worker to carry on.
    ExecutionReviewed {
        /// When.
        at: DateTime<Utc>,
    },
    /// A node execution ended: COMPLETED, FAILED (its block failed or
    /// yielded `error`) or TERMINATED.
    NodeExecutionEnded {
        /// The node execution.
        node_exec_id: Uuid,
        /// How.
        status: ExecutionStatus,
        /// When.
        at: DateTime<Utc>,
    },
    /// A replay stopped agreeing with its recording at this node: the
    /// graph or the block's behaviour changed since (its inputs, a request
    /// it made, or its outputs differ). The run ends FAILED with it.
    ExecutionDiverged {
        /// The node execution where it diverged.
        node_exec_id: Uuid,
        /// Its graph node.
        node_id: String,
        /// What differed.
        reason: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The run ended: COMPLETED (failed nodes included), TERMINATED or
    /// FAILED.
    ExecutionEnded {
        /// How.
        status: ExecutionStatus,
        /// Why it failed, when it did.
        error: Option<String>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The owner deleted the run (it is hidden, not erased).
    ExecutionDeleted {
        /// When.
        at: DateTime<Utc>,
    },
    /// The owner shared the run publicly under a token.
    ExecutionShared {
        /// The public token.
        share_token: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// The owner stopped sharing the run.
    ExecutionUnshared {
        /// When.
        at: DateTime<Utc>,
    },
}

impl EventType for ExecutionEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::ExecutionQueued { .. } => "ExecutionQueued",
            Self::ExecutionStarted { .. } => "ExecutionStarted",
            Self::ExecutionResumed { .. } => "ExecutionResumed",
            Self::NodeInputReceived { .. } => "NodeInputReceived",
            Self::NodeExecutionQueued { .. } => "NodeExecutionQueued",
            Self::NodeExecutionStarted { .. } => "NodeExecutionStarted",
            Self::NodeOutputProduced { .. } => "NodeOutputProduced",
            Self::NodeEffectAnswered { .. } => "NodeEffectAnswered",
            Self::NodeReviewRequested { .. } => "NodeReviewRequested",
            Self::ExecutionPaused { .. } => "ExecutionPaused",
            Self::ExecutionReviewed { .. } => "ExecutionReviewed",
            Self::NodeExecutionEnded { .. } => "NodeExecutionEnded",
            Self::ExecutionDiverged { .. } => "ExecutionDiverged",
            Self::ExecutionEnded { .. } => "ExecutionEnded",
            Self::ExecutionDeleted { .. } => "ExecutionDeleted",
            Self::ExecutionShared { .. } => "ExecutionShared",
            Self::ExecutionUnshared { .. } => "ExecutionUnshared",
        }
    }
}
