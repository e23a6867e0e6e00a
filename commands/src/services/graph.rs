use chrono::{DateTime, Utc};
use domain::aggregate::stream_name;
use domain::graph::{Graph, GraphCommand, GraphDraft, GraphError, GraphEvent, GraphVersion};
use domain::library::{
    library_agent_id, GraphSettings, LibraryAgent, LibraryAgentCommand, LibraryAgentPatch, LibraryError,
};
use uuid::Uuid;

use super::Commands;
use crate::error::CommandError;
use eventlog::codec::decode;
use eventlog::EventStore;

use crate::context::CommandContext;
use crate::uow::{retry_on_conflict, Outcome, UnitOfWork};

/// What creating a graph produced.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatedGraph {
    /// Where its events landed.
    pub outcome: Outcome,
    /// The new graph's id.
    pub graph_id: Uuid,
    /// Its version.
    pub version: i32,
    /// Its entry in the creator's library.
    pub library_agent_id: Uuid,
    /// The version as this call saved it, so the response needs no read-back;
    /// `None` for a retried request, whose first attempt's version stands.
    pub saved: Option<(GraphVersion, DateTime<Utc>)>,
}

impl<S: EventStore> Commands<S> {
    /// Save a new graph and put it in the creator's library, in one append.
    /// A fresh graph id means both streams are new, so nothing is loaded.
    pub async fn create_graph(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        draft: GraphDraft,
    ) -> Result<CreatedGraph, CommandError> {
        let graph_id = ctx.new_id("graph");
        let now = Utc::now();
        let events = Graph::default().decide(GraphCommand::CreateGraph { graph_id, user_id, draft, now })?;
        self.save_new_graph(ctx, user_id, graph_id, events).await
    }

    async fn save_new_graph(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        graph_id: Uuid,
        events: Vec<GraphEvent>,
    ) -> Result<CreatedGraph, CommandError> {
        let library_agent_id = library_agent_id(user_id, graph_id);
        let added = LibraryAgent::default().decide(LibraryAgentCommand::AddToLibrary {
            library_agent_id,
            user_id,
            graph_id,
            graph_version: 1,
            is_created_by_user: true,
            now: Utc::now(),
        })?;
        let mut uow = UnitOfWork::new(&self.store, ctx);
        uow.record::<Graph>(graph_id, 0, &events)?;
        uow.record::<LibraryAgent>(library_agent_id, 0, &added)?;
        let outcome = uow.commit().await?;
        let saved = (outcome.appended > 0)
            .then(|| {
                events.into_iter().find_map(|e| match e {
                    GraphEvent::GraphCreated { graph, at, .. } => Some((graph, at)),
                    _ => None,
                })
            })
            .flatten();
        Ok(CreatedGraph { outcome, graph_id, version: 1, library_agent_id, saved })
    }

    /// Save a new version (max + 1); an active one also moves the owner's
    /// library agent to it.
    pub async fn create_graph_version(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        graph_id: Uuid,
        draft: GraphDraft,
    ) -> Result<(Outcome, i32), CommandError> {
        retry_on_conflict(|| async {
            let mut uow = UnitOfWork::new(&self.store, ctx);
            let (graph, version) = uow.load::<Graph>(graph_id).await?;
            let events =
                graph.decide(GraphCommand::CreateGraphVersion { user_id, draft: draft.clone(), now: Utc::now() })?;
            let new_version = graph.latest_version() + 1;
            uow.record::<Graph>(graph_id, version, &events)?;
            if draft.is_active {
                self.follow_active_version(&mut uow, user_id, graph_id, new_version).await?;
            }
            let outcome = uow.commit().await?;
            if outcome.appended == 0 {
                // A retried request: answer with the version it saved first.
                return Ok((outcome, self.version_saved_by(ctx, graph_id).await?.unwrap_or(new_version)));
            }
            Ok((outcome, new_version))
        })
        .await
    }

    /// Make another version active and move the owner's library agent along.
    pub async fn set_active_version(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        graph_id: Uuid,
        active: i32,
    ) -> Result<Outcome, CommandError> {
        retry_on_conflict(|| async {
            let mut uow = UnitOfWork::new(&self.store, ctx);
            let (graph, version) = uow.load::<Graph>(graph_id).await?;
            let events = graph.decide(GraphCommand::SetActiveVersion { user_id, version: active, now: Utc::now() })?;
            uow.record::<Graph>(graph_id, version, &events)?;
            self.follow_active_version(&mut uow, user_id, graph_id, active).await?;
            uow.commit().await
        })
        .await
    }

    /// The version a (retried) request saved, found by its derived event id.
    async fn version_saved_by(&self, ctx: &CommandContext, graph_id: Uuid) -> Result<Option<i32>, CommandError> {
        let stream = stream_name::<Graph>(graph_id);
        let wanted = ctx.event_id(&stream, 0);
        for recorded in self.store.read_stream(&stream, 0).await? {
            if recorded.event_id == wanted {
                if let GraphEvent::GraphVersionCreated { graph, .. } = decode::<Graph>(&recorded)? {
                    return Ok(Some(graph.version));
                }
            }
        }
        Ok(None)
    }

    async fn follow_active_version(
        &self,
        uow: &mut UnitOfWork<'_, S>,
        user_id: Uuid,
        graph_id: Uuid,
        graph_version: i32,
    ) -> Result<(), CommandError> {
        let library_agent_id = library_agent_id(user_id, graph_id);
        let (agent, version) = uow.load::<LibraryAgent>(library_agent_id).await?;
        // An agent the user removed from the library stays removed.
        if agent.id.is_some() && !agent.is_visible_to(user_id) {
            return Ok(());
        }
        let events = agent.decide(LibraryAgentCommand::AddToLibrary {
            library_agent_id,
            user_id,
            graph_id,
            graph_version,
            is_created_by_user: true,
            now: Utc::now(),
        })?;
        uow.record::<LibraryAgent>(library_agent_id, version, &events)
    }

    /// Delete every version of a graph, and its owner's library agent.
    pub async fn delete_graph(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        graph_id: Uuid,
    ) -> Result<(Outcome, i32), CommandError> {
        retry_on_conflict(|| async {
            let mut uow = UnitOfWork::new(&self.store, ctx);
            let (graph, version) = uow.load::<Graph>(graph_id).await?;
            let events = graph.decide(GraphCommand::DeleteGraph { user_id, now: Utc::now() })?;
            let count = graph.versions.len();
            uow.record::<Graph>(graph_id, version, &events)?;
            let library_agent_id = library_agent_id(user_id, graph_id);
            let (agent, agent_version) = uow.load::<LibraryAgent>(library_agent_id).await?;
            if agent.is_visible_to(user_id) {
                let deleted = agent.decide(LibraryAgentCommand::DeleteLibraryAgent { user_id, now: Utc::now() })?;
                uow.record::<LibraryAgent>(library_agent_id, agent_version, &deleted)?;
            }
            Ok((uow.commit().await?, i32::try_from(count).unwrap_or(i32::MAX)))
        })
        .await
    }

    /// Change the per-user settings kept on the library agent of a graph.
    pub async fn update_graph_settings(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        graph_id: Uuid,
        settings: GraphSettings,
    ) -> Result<(Outcome, Uuid), CommandError> {
        let library_agent_id = library_agent_id(user_id, graph_id);
        let patch = LibraryAgentPatch { settings: Some(settings), ..Default::default() };
        let outcome = self.update_library_agent(ctx, user_id, library_agent_id, patch).await.map_err(|e| match e {
            CommandError::Library(LibraryError::NotFound) => GraphError::NotFound.into(),
            other => other,
        })?;
        Ok((outcome, library_agent_id))
    }

    /// Copy a library agent's graph version into a new graph of the user's
    /// own (new ids, `forked_from_*` set), added to the library.
    pub async fn fork_library_agent(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        agent_id: Uuid,
    ) -> Result<CreatedGraph, CommandError> {
        let mut uow = UnitOfWork::new(&self.store, ctx);
        let (agent, _) = uow.load::<LibraryAgent>(agent_id).await?;
        agent.ensure_visible(user_id)?;
        let source_id = agent.graph_id.ok_or(LibraryError::NotFound)?;
        let (_, _, history) = uow.load_with_events::<Graph>(source_id).await?;
        let source = history
            .iter()
            .find_map(|e| match e {
                GraphEvent::GraphCreated { graph, .. } | GraphEvent::GraphVersionCreated { graph, .. }
                    if graph.version == agent.graph_version =>
                {
                    Some(graph)
                }
                _ => None,
            })
            .ok_or(GraphError::VersionNotFound(agent.graph_version))?;
        let mut draft = source.to_draft();
        draft.name = format!("{} (Copy)", source.name);
        draft.forked_from_id = Some(source.id.to_string());
        draft.forked_from_version = Some(i64::from(source.version));
        draft.is_active = true;
        let graph_id = ctx.new_id("fork");
        let events =
            Graph::default().decide(GraphCommand::CreateGraph { graph_id, user_id, draft, now: Utc::now() })?;
        self.save_new_graph(ctx, user_id, graph_id, events).await
    }
}
