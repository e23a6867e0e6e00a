//! Replaying an ended run from its recording, or forking it from a node:
//! a new run of the same graph, inputs and credentials whose queuing says
//! which run it re-uses; the executor does the rest.

use domain::execution::engine::{self, RunError};
use domain::execution::replay::{ForkAt, ReplayOf};
use domain::execution::{ExecutionEvent, ExecutionStatus, GraphExecution};
use eventlog::EventStore;
use uuid::Uuid;

use super::execution::runnable_version;
use super::Commands;
use crate::context::CommandContext;
use crate::error::CommandError;
use crate::uow::{Outcome, UnitOfWork};

/// A replay or fork asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayRequest {
    /// Who asks: the run's owner, or an admin.
    pub caller: Uuid,
    /// Whether the caller is an admin.
    pub admin: bool,
    /// The graph the run is of, as the route names it.
    pub graph_id: Uuid,
    /// The recorded run.
    pub execution_id: Uuid,
    /// The graph version to run; `None`: the recorded run's. Another one
    /// shows where the recording stops fitting it.
    pub graph_version: Option<i32>,
    /// For a fork: the node from which it runs live, and on what.
    pub fork: Option<ForkAt>,
}

impl<S: EventStore> Commands<S> {
    /// Queue a replay or fork of an ended run, as its owner's run; answers
    /// the new run as queued. `NotFound` when the caller may not see the
    /// run.
    pub async fn replay_run(
        &self,
        ctx: &CommandContext,
        request: ReplayRequest,
    ) -> Result<(Outcome, GraphExecution), CommandError> {
        let mut uow = UnitOfWork::new(&self.store, ctx);
        let (recorded, _) = uow.load::<GraphExecution>(request.execution_id).await?;
        let visible = request.admin || recorded.user_id == request.caller;
        if recorded.id.is_none() || recorded.deleted || recorded.graph_id != request.graph_id || !visible {
            return Err(CommandError::NotFound("Execution"));
        }
        if !recorded.status.is_some_and(ExecutionStatus::is_final) {
            return Err(RunError::NotEnded.into());
        }
        let owner = recorded.user_id;
        let version = request.graph_version.unwrap_or(recorded.graph_version);
        let saved = runnable_version(&mut uow, owner, request.graph_id, Some(version)).await?;
        if let Some(fork) = &request.fork {
            if !saved.nodes.iter().any(|n| n.id == fork.node_id) {
                return Err(RunError::UnknownNode(fork.node_id.clone()).into());
            }
        }
        let replay = ReplayOf { execution_id: request.execution_id, fork: request.fork };
        let masked = domain::graph::credentials::with_masks(&saved, &recorded.node_input_masks);
        let execution_id = ctx.new_id("execution");
        let mut queued = engine::queue_run(
            &replay.graph(&masked),
            execution_id,
            owner,
            recorded.inputs.clone(),
            recorded.preset_id,
            self.now(),
        )?;
        if let ExecutionEvent::ExecutionQueued { node_input_masks, replay: replay_of, .. } = &mut queued {
            node_input_masks.clone_from(&recorded.node_input_masks);
            *replay_of = Some(replay);
        }
        uow.record::<GraphExecution>(execution_id, 0, std::slice::from_ref(&queued))?;
        let outcome = uow.commit().await?;
        let state = self.queued_run(&outcome, &queued, execution_id).await?;
        Ok((outcome, state))
    }
}
