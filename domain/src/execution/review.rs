//! Human review of a running node (AutoGPT's HumanInTheLoop block): the
//! block asks, its node waits in REVIEW, the run pauses once nothing else
//! can run, and the owner's decision (or a timeout's) is recorded as the
//! answer the block goes on with, the node queued again and, once no
//! review is left, the run too.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{ExecutionEvent, ExecutionStatus, GraphExecution};
use crate::aggregate::Aggregate;

/// A review a node waits for.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PendingReview {
    /// Which of the block's requests it answers.
    pub seq: u32,
    /// The data under review.
    pub payload: Value,
    /// What the reviewer is told.
    pub instructions: Option<String>,
    /// Whether the reviewer may edit the data.
    pub editable: bool,
    /// When it times out, if it does.
    pub timeout_at: Option<DateTime<Utc>>,
    /// What a timeout decides: `approve`, `reject` or `fail`.
    pub timeout_action: String,
}

/// A decision on one review.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Approved, with the reviewer's edit of the data if any.
    Approve(Option<Value>),
    /// Rejected.
    Reject,
    /// The review failed (a timeout told to fail): the block fails.
    Fail,
}

/// Why a decision was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    /// No such node execution waits for a review in this run.
    #[error("Review not found or already processed: {0}")]
    NotPending(Uuid),
}

/// The events of deciding `node_exec_id`'s review: the answer, the node
/// queued again and, when no review is left, the run queued again.
pub fn decide(
    state: &mut GraphExecution,
    node_exec_id: Uuid,
    verdict: Verdict,
    message: Option<String>,
    by: &str,
    at: DateTime<Utc>,
) -> Result<Vec<ExecutionEvent>, ReviewError> {
    let node = state
        .node_execution(node_exec_id)
        .filter(|n| n.status == ExecutionStatus::Review)
        .ok_or(ReviewError::NotPending(node_exec_id))?;
    let pending = node.review.clone().ok_or(ReviewError::NotPending(node_exec_id))?;
    let (status, data, was_edited) = match verdict {
        Verdict::Approve(Some(edited)) if pending.editable => {
            let edited_differs = edited != pending.payload;
            ("APPROVED", edited, edited_differs)
        }
        Verdict::Approve(_) => ("APPROVED", pending.payload.clone(), false),
        Verdict::Reject => ("REJECTED", pending.payload.clone(), false),
        Verdict::Fail => ("FAILED", pending.payload.clone(), false),
    };
    let answer = json!({"status": status, "data": data, "message": message, "was_edited": was_edited, "by": by});
    let request = json!({"kind": "review", "payload": pending.payload, "instructions": pending.instructions});
    let mut events = vec![
        ExecutionEvent::NodeEffectAnswered { node_exec_id, seq: pending.seq, request, answer, at },
        ExecutionEvent::NodeExecutionQueued { node_exec_id, input_data: node.input_data.clone(), at },
    ];
    for event in &events {
        state.evolve(event);
    }
    if state.status == Some(ExecutionStatus::Review) && !state.awaits_review() {
        let resumed = ExecutionEvent::ExecutionReviewed { at };
        state.evolve(&resumed);
        events.push(resumed);
    }
    Ok(events)
}

/// The verdict and message a timed-out review gets.
pub fn timeout_verdict(pending: &PendingReview) -> (Verdict, String) {
    let verdict = match pending.timeout_action.as_str() {
        "approve" => Verdict::Approve(None),
        "fail" => Verdict::Fail,
        _ => Verdict::Reject,
    };
    (verdict, "The review timed out".to_owned())
}

/// The reviews of the run whose time is up at `now`.
pub fn timed_out(state: &GraphExecution, now: DateTime<Utc>) -> Vec<(Uuid, PendingReview)> {
    state
        .node_executions
        .iter()
        .filter(|n| n.status == ExecutionStatus::Review)
        .filter_map(|n| n.review.clone().map(|r| (n.node_exec_id, r)))
        .filter(|(_, r)| r.timeout_at.is_some_and(|t| t <= now))
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, Utc};
    use serde_json::{json, Map};
    use uuid::Uuid;

    use super::*;
    use crate::execution::StartingNode;

    /// A run paused on reviews of nodes `a` and `b` (given), a timeout on `b`.
    fn paused(editable: bool) -> (GraphExecution, Uuid, Uuid) {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let now = Utc::now();
        let starting = [a, b].map(|id| StartingNode {
            node_exec_id: id,
            node_id: id.to_string(),
            block_id: "x".into(),
            input_data: Map::new(),
        });
        let mut events = vec![
            ExecutionEvent::ExecutionQueued {
                execution_id: Uuid::new_v4(),
                user_id: Uuid::new_v4(),
                graph_id: Uuid::new_v4(),
                graph_version: 1,
                inputs: Map::new(),
                preset_id: None,
                starting: starting.to_vec(),
                node_input_masks: Map::new(),
                replay: None,
                at: now,
            },
            ExecutionEvent::ExecutionStarted { worker: "w".into(), at: now },
        ];
        for (id, timeout) in [(a, None), (b, Some(now - TimeDelta::seconds(1)))] {
            events.push(ExecutionEvent::NodeExecutionStarted { node_exec_id: id, replayed_from: None, at: now });
            events.push(ExecutionEvent::NodeReviewRequested {
                node_exec_id: id,
                seq: 0,
                payload: json!("draft"),
                instructions: Some("check".into()),
                editable,
                timeout_at: timeout,
                timeout_action: "approve".into(),
                at: now,
            });
        }
        events.push(ExecutionEvent::ExecutionPaused { at: now });
        (GraphExecution::from_events(&events), a, b)
    }

    #[test]
    fn an_edited_approval_answers_with_the_edit_and_the_last_decision_queues_the_run() {
        let (mut run, a, b) = paused(true);
        assert_eq!(run.status, Some(ExecutionStatus::Review));
        let first = decide(&mut run, a, Verdict::Approve(Some(json!("final"))), None, "owner", Utc::now()).unwrap();
        assert!(
            matches!(&first[..], [ExecutionEvent::NodeEffectAnswered { answer, .. }, ExecutionEvent::NodeExecutionQueued { .. }]
            if answer["status"] == "APPROVED" && answer["data"] == "final" && answer["was_edited"] == true)
        );
        assert_eq!(run.status, Some(ExecutionStatus::Review), "b still waits");
        let second = decide(&mut run, b, Verdict::Reject, Some("no".into()), "owner", Utc::now()).unwrap();
        assert!(matches!(second.last(), Some(ExecutionEvent::ExecutionReviewed { .. })));
        assert_eq!(run.status, Some(ExecutionStatus::Queued));
        assert_eq!(run.node_execution(b).unwrap().answers[0]["data"], "draft", "a rejection keeps the data");
    }

    #[test]
    fn an_edit_of_a_locked_review_is_ignored_and_a_decision_is_taken_once() {
        let (mut run, a, _) = paused(false);
        let events = decide(&mut run, a, Verdict::Approve(Some(json!("edited"))), None, "owner", Utc::now()).unwrap();
        assert!(matches!(&events[0], ExecutionEvent::NodeEffectAnswered { answer, .. } if answer["data"] == "draft"));
        assert_eq!(decide(&mut run, a, Verdict::Reject, None, "owner", Utc::now()), Err(ReviewError::NotPending(a)));
        let stranger = Uuid::new_v4();
        assert_eq!(
            decide(&mut run, stranger, Verdict::Reject, None, "owner", Utc::now()),
            Err(ReviewError::NotPending(stranger))
        );
    }

    #[test]
    fn only_reviews_past_their_time_are_due_and_their_action_decides() {
        let (run, _, b) = paused(true);
        let due = timed_out(&run, Utc::now());
        assert_eq!(due.iter().map(|(id, _)| *id).collect::<Vec<_>>(), vec![b]);
        assert_eq!(timeout_verdict(&due[0].1).0, Verdict::Approve(None));
        let fail = PendingReview { timeout_action: "fail".into(), ..due[0].1.clone() };
        assert_eq!(timeout_verdict(&fail).0, Verdict::Fail);
        let other = PendingReview { timeout_action: "whatever".into(), ..due[0].1.clone() };
        assert_eq!(timeout_verdict(&other).0, Verdict::Reject);
    }
}
