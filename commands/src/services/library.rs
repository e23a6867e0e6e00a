use chrono::Utc;
use domain::graph::Graph;
use domain::library::{LibraryAgent, LibraryAgentCommand, LibraryAgentPatch};
use uuid::Uuid;

use super::Commands;
use crate::context::CommandContext;
use crate::error::CommandError;
use crate::uow::{decide_on, retry_on_conflict, Outcome, UnitOfWork};
use eventlog::EventStore;

impl<S: EventStore> Commands<S> {
    /// Change a library agent's flags, settings or pinned version.
    pub async fn update_library_agent(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        agent_id: Uuid,
        patch: LibraryAgentPatch,
    ) -> Result<Outcome, CommandError> {
        retry_on_conflict(|| async {
            let mut uow = UnitOfWork::new(&self.store, ctx);
            let (agent, version) = uow.load::<LibraryAgent>(agent_id).await?;
            agent.ensure_visible(user_id)?;
            let known_versions = match (patch.graph_version, agent.graph_id) {
                (Some(_), Some(graph_id)) => uow.load::<Graph>(graph_id).await?.0.versions,
                _ => Default::default(),
            };
            let events = agent.decide(LibraryAgentCommand::UpdateLibraryAgent {
                user_id,
                patch: patch.clone(),
                known_versions,
                now: Utc::now(),
            })?;
            uow.record::<LibraryAgent>(agent_id, version, &events)?;
            uow.commit().await
        })
        .await
    }

    /// Remove an agent from the user's library.
    pub async fn delete_library_agent(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        agent_id: Uuid,
    ) -> Result<Outcome, CommandError> {
        decide_on::<LibraryAgent, _, _>(&self.store, ctx, agent_id, |agent| {
            Ok(agent.decide(LibraryAgentCommand::DeleteLibraryAgent { user_id, now: Utc::now() })?)
        })
        .await
    }
}
