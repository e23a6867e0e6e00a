//! What a block's report decides for its run: the events it appends, folded
//! into the worker's working state as they are. The worker decides its
//! tasks' reports here, and the reports of the blocks it runs itself.

use chrono::Utc;
use domain::aggregate::Aggregate;
use domain::execution::replay;
use domain::execution::{engine, ExecutionEvent, ExecutionStatus, GraphExecution};

use uuid::Uuid;

use crate::blocks::Effect;
use crate::task::Report;

/// The events one report decides, folded into `working` as they are.
pub(crate) fn decide_report(
    graph: &domain::graph::GraphVersion,
    working: &mut GraphExecution,
    report: &Report,
    recording: Option<&GraphExecution>,
    at: chrono::DateTime<Utc>,
) -> Vec<ExecutionEvent> {
    let recorded = match report {
        Report::Done { node_exec_id, .. } => replayed_node(working, *node_exec_id, recording),
        _ => None,
    };
    match report {
        Report::Done { node_exec_id, error } if recorded.is_some() => {
            // A replayed node must end as its recording did: decided on a
            // copy, kept only if it agrees.
            let mut ended = working.clone();
            let events = end_of(graph, &mut ended, *node_exec_id, error.clone(), at);
            let disagrees =
                recorded.zip(ended.node_execution(*node_exec_id)).and_then(|(r, n)| replay::check_end(r, n));
            match disagrees {
                Some(reason) => replay::diverge(working, *node_exec_id, reason, at),
                None => {
                    *working = ended;
                    events
                }
            }
        }
        Report::Diverged { node_exec_id, reason } => replay::diverge(working, *node_exec_id, reason.clone(), at),
        Report::Outputs { node_exec_id, outputs } => outputs
            .iter()
            .flat_map(|(pin, value)| engine::record_output(graph, working, *node_exec_id, pin, value.clone(), at))
            .collect(),
        Report::Answered { node_exec_id, seq, request, answer, .. } => {
            let event = ExecutionEvent::NodeEffectAnswered {
                node_exec_id: *node_exec_id,
                seq: *seq,
                request: request.clone(),
                answer: answer.clone(),
                at,
            };
            working.evolve(&event);
            vec![event]
        }
        Report::Review { node_exec_id, seq, effect } => {
            let Effect::Review { payload, instructions, editable, timeout_seconds, timeout_action } = effect else {
                return vec![];
            };
            let timeout_at = timeout_seconds
                .and_then(|s| i64::try_from(s).ok())
                .and_then(chrono::TimeDelta::try_seconds)
                .and_then(|d| at.checked_add_signed(d));
            let event = ExecutionEvent::NodeReviewRequested {
                node_exec_id: *node_exec_id,
                seq: *seq,
                payload: payload.clone(),
                instructions: instructions.clone(),
                editable: *editable,
                timeout_at,
                timeout_action: timeout_action.clone(),
                at,
            };
            working.evolve(&event);
            vec![event]
        }
        Report::Done { node_exec_id, error } => end_of(graph, working, *node_exec_id, error.clone(), at),
    }
}

/// The events a node's end decides: FAILED with its error, or COMPLETED.
fn end_of(
    graph: &domain::graph::GraphVersion,
    working: &mut GraphExecution,
    node_exec_id: Uuid,
    error: Option<String>,
    at: chrono::DateTime<Utc>,
) -> Vec<ExecutionEvent> {
    match error {
        Some(error) => engine::fail_node(graph, working, node_exec_id, error, at),
        None => engine::end_node(working, node_exec_id, ExecutionStatus::Completed, at),
    }
}

/// The recorded node execution that `node_exec_id` re-runs, in a replay.
fn replayed_node<'a>(
    state: &GraphExecution,
    node_exec_id: Uuid,
    recording: Option<&'a GraphExecution>,
) -> Option<&'a domain::execution::NodeExecution> {
    let from = state.node_execution(node_exec_id)?.replayed_from?;
    recording?.node_execution(from)
}
