use chrono::{DateTime, Utc};
use domain::graph::{Graph, GraphEvent, GraphVersion};
use domain::library::{LibraryAgent, LibraryAgentCommand, LibraryAgentPatch};
use uuid::Uuid;

use super::execution::usable_versions;
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
            // A store agent is pinned only to a version the store lists.
            let known_versions = match (patch.graph_version, agent.graph_id) {
                (Some(_), Some(graph_id)) => {
                    let (graph, _) = uow.load::<Graph>(graph_id).await?;
                    usable_versions(&mut uow, user_id, &graph).await?
                }
                _ => Default::default(),
            };
            let events = agent.decide(LibraryAgentCommand::UpdateLibraryAgent {
                user_id,
                patch: patch.clone(),
                known_versions,
                now: self.now(),
            })?;
            uow.record::<LibraryAgent>(agent_id, version, &events)?;
            uow.commit().await
        })
        .await
    }

    /// Put a published graph version (from the store) in the user's
    /// library; adding it again re-adds or moves it to that version.
    /// Answers the library agent's id.
    pub async fn add_published_to_library(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        graph_id: Uuid,
        graph_version: i32,
    ) -> Result<(Outcome, Uuid), CommandError> {
        let library_agent_id = domain::library::library_agent_id(user_id, graph_id);
        let (outcome, _) = decide_on::<LibraryAgent, _, _>(&self.store, ctx, library_agent_id, |agent| {
            Ok(agent.decide(LibraryAgentCommand::AddToLibrary {
                library_agent_id,
                user_id,
                graph_id,
                graph_version,
                is_created_by_user: false,
                now: self.now(),
            })?)
        })
        .await?;
        Ok((outcome, library_agent_id))
    }

    /// Remove an agent from the user's library.
    pub async fn delete_library_agent(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        agent_id: Uuid,
    ) -> Result<Outcome, CommandError> {
        let (outcome, _) = decide_on::<LibraryAgent, _, _>(&self.store, ctx, agent_id, |agent| {
            Ok(agent.decide(LibraryAgentCommand::DeleteLibraryAgent { user_id, now: self.now() })?)
        })
        .await?;
        Ok(outcome)
    }

    /// A library agent as the log has it now, with the graph version it runs
    /// (when that version exists): what a response shows when the read
    /// models have not caught up with a command yet.
    pub async fn library_agent_from_log(
        &self,
        user_id: Uuid,
        agent_id: Uuid,
    ) -> Result<Option<AgentFromLog>, CommandError> {
        let ctx = CommandContext::for_user(user_id);
        let mut uow = UnitOfWork::new(&self.store, &ctx);
        let (agent, _) = uow.load::<LibraryAgent>(agent_id).await?;
        let Some(graph_id) = agent.graph_id.filter(|_| agent.is_visible_to(user_id)) else { return Ok(None) };
        let (graph, _, history) = uow.load_with_events::<Graph>(graph_id).await?;
        let version = find_version(&history, agent.graph_version).map(|(v, at)| (v.clone(), at));
        Ok(Some(AgentFromLog { agent, graph, version }))
    }
}

/// A library agent and its graph, read from the log.
#[derive(Debug, Clone)]
pub struct AgentFromLog {
    /// The agent.
    pub agent: LibraryAgent,
    /// Its graph's state (owner, versions).
    pub graph: Graph,
    /// The version the agent runs, with when it was saved.
    pub version: Option<(GraphVersion, DateTime<Utc>)>,
}

/// A saved version of a graph in its history, with when it was saved.
pub(crate) fn find_version(history: &[GraphEvent], version: i32) -> Option<(&GraphVersion, DateTime<Utc>)> {
    history.iter().find_map(|e| match e {
        GraphEvent::GraphCreated { graph, at, .. } | GraphEvent::GraphVersionCreated { graph, at, .. }
            if graph.version == version =>
        {
            Some((graph, *at))
        }
        _ => None,
    })
}
