//! Deciding human reviews: the owner's decisions on a paused run's nodes,
//! and the timeouts that decide for them.

use domain::execution::review::{self, Verdict};
use domain::execution::GraphExecution;
use eventlog::EventStore;
use serde_json::Value;
use uuid::Uuid;

use super::Commands;
use crate::context::CommandContext;
use crate::error::CommandError;
use crate::uow::{retry_on_conflict, Outcome, UnitOfWork};

/// The owner's decision on one review.
#[derive(Debug, Clone)]
pub struct ReviewDecision {
    /// The node execution under review.
    pub node_exec_id: Uuid,
    /// Approved (else rejected).
    pub approved: bool,
    /// The reviewer's message.
    pub message: Option<String>,
    /// The edited data, for an approval of an editable review.
    pub reviewed_data: Option<Value>,
}

impl<S: EventStore> Commands<S> {
    /// Decide reviews of one of the user's runs, all or none: a decision on
    /// a node that does not wait for one refuses the lot. Once no review is
    /// left the run is queued again.
    pub async fn review_run(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        execution_id: Uuid,
        decisions: &[ReviewDecision],
    ) -> Result<Outcome, CommandError> {
        retry_on_conflict(|| async {
            let mut uow = UnitOfWork::new(&self.store, ctx);
            let (mut state, version) = uow.load::<GraphExecution>(execution_id).await?;
            if state.id.is_none() || state.user_id != user_id || state.deleted {
                return Err(CommandError::NotFound("Graph execution"));
            }
            let at = self.now();
            let mut events = Vec::new();
            for decision in decisions {
                let verdict =
                    if decision.approved { Verdict::Approve(decision.reviewed_data.clone()) } else { Verdict::Reject };
                let decided =
                    review::decide(&mut state, decision.node_exec_id, verdict, decision.message.clone(), "owner", at)
                        .map_err(|_| CommandError::NotFound("Review"))?;
                events.extend(decided);
            }
            uow.record::<GraphExecution>(execution_id, version, &events)?;
            uow.commit().await
        })
        .await
    }

    /// Decide the run's reviews whose time is up by their timeout action.
    /// Answers how many were decided (none when another instance was first).
    pub async fn time_out_reviews(&self, execution_id: Uuid) -> Result<usize, CommandError> {
        let ctx = CommandContext::default();
        retry_on_conflict(|| async {
            let mut uow = UnitOfWork::new(&self.store, &ctx);
            let (mut state, version) = uow.load::<GraphExecution>(execution_id).await?;
            let at = self.now();
            let mut events = Vec::new();
            let due = review::timed_out(&state, at);
            for (node_exec_id, pending) in &due {
                let (verdict, message) = review::timeout_verdict(pending);
                if let Ok(decided) = review::decide(&mut state, *node_exec_id, verdict, Some(message), "timeout", at) {
                    events.extend(decided);
                }
            }
            uow.record::<GraphExecution>(execution_id, version, &events)?;
            uow.commit().await.map(|_| due.len())
        })
        .await
    }
}
