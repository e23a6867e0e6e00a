use chrono::{DateTime, Utc};
use domain::aggregate::stream_name;
use domain::graph::{Graph, GraphCommand, GraphDraft, GraphError, GraphEvent, GraphVersion};
use domain::library::{
    library_agent_id, GraphSettings, LibraryAgent, LibraryAgentCommand, LibraryAgentPatch, LibraryError,
};
use domain::quota::QuotaKind;
use uuid::Uuid;

use super::execution::usable_versions;
use super::library::find_version;
use super::quota::Place;
use super::Commands;
use crate::error::{CommandError, StoreError};
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
    /// The version as saved, with when: the response is built from it, so it
    /// never waits for a read model. For a retried request, the version the
    /// first attempt saved, read back from the log.
    pub saved: (GraphVersion, DateTime<Utc>),
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
        let now = self.now();
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
            now: self.now(),
        })?;
        let outcome = retry_on_conflict(|| async {
            let mut uow = UnitOfWork::new(&self.store, ctx);
            // A retried request (the id comes from its idempotency key) finds
            // its graph saved and takes no second place; without a key the
            // id is fresh and there is nothing to look for.
            let saved = match ctx.idempotency_key {
                Some(_) => uow.load::<Graph>(graph_id).await?.1 > 0,
                None => false,
            };
            if !saved {
                self.move_place(&mut uow, user_id, (QuotaKind::Graph, graph_id), Place::Take).await?;
                uow.record::<Graph>(graph_id, 0, &events)?;
                uow.record::<LibraryAgent>(library_agent_id, 0, &added)?;
            }
            uow.commit().await
        })
        .await?;
        let decided = events.into_iter().find_map(|e| match e {
            GraphEvent::GraphCreated { graph, at, .. } => Some((graph, at)),
            _ => None,
        });
        let saved = match decided {
            Some(saved) if outcome.appended > 0 => saved,
            _ => self.saved_by(ctx, graph_id).await?,
        };
        Ok(CreatedGraph { outcome, graph_id, version: saved.0.version, library_agent_id, saved })
    }

    /// Save a new version (max + 1); an active one also moves the owner's
    /// library agent to it.
    pub async fn create_graph_version(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        graph_id: Uuid,
        draft: GraphDraft,
    ) -> Result<CreatedGraph, CommandError> {
        retry_on_conflict(|| async {
            let mut uow = UnitOfWork::new(&self.store, ctx);
            let (graph, version) = uow.load::<Graph>(graph_id).await?;
            let events =
                graph.decide(GraphCommand::CreateGraphVersion { user_id, draft: draft.clone(), now: self.now() })?;
            let new_version = graph.latest_version() + 1;
            uow.record::<Graph>(graph_id, version, &events)?;
            if draft.is_active {
                self.follow_active_version(&mut uow, user_id, graph_id, new_version).await?;
            }
            let outcome = uow.commit().await?;
            let decided = events.into_iter().find_map(|e| match e {
                GraphEvent::GraphVersionCreated { graph, at, .. } => Some((graph, at)),
                _ => None,
            });
            let saved = match decided {
                Some(saved) if outcome.appended > 0 => saved,
                // A retried request: answer with the version it saved first.
                _ => self.saved_by(ctx, graph_id).await?,
            };
            let library_agent_id = library_agent_id(user_id, graph_id);
            Ok(CreatedGraph { outcome, graph_id, version: saved.0.version, library_agent_id, saved })
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
            let events = graph.decide(GraphCommand::SetActiveVersion { user_id, version: active, now: self.now() })?;
            uow.record::<Graph>(graph_id, version, &events)?;
            self.follow_active_version(&mut uow, user_id, graph_id, active).await?;
            uow.commit().await
        })
        .await
    }

    /// The version a (retried) request saved, found by its derived event id.
    async fn saved_by(
        &self,
        ctx: &CommandContext,
        graph_id: Uuid,
    ) -> Result<(GraphVersion, DateTime<Utc>), CommandError> {
        let stream = stream_name::<Graph>(graph_id);
        let wanted = ctx.event_id(&stream, 0);
        for recorded in self.store.read_stream(&stream, 0).await? {
            if recorded.event_id == wanted {
                if let GraphEvent::GraphCreated { graph, at, .. } | GraphEvent::GraphVersionCreated { graph, at, .. } =
                    decode::<Graph>(&recorded)?
                {
                    return Ok((graph, at));
                }
            }
        }
        // Only an append that stored this request's events leads here.
        Err(CommandError::Store(StoreError::Decode {
            event_id: wanted,
            event_type: "GraphCreated".into(),
            reason: "the repeated request's graph version is not in its stream".into(),
        }))
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
            now: self.now(),
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
            let events = graph.decide(GraphCommand::DeleteGraph { user_id, now: self.now() })?;
            let count = graph.versions.len();
            uow.record::<Graph>(graph_id, version, &events)?;
            self.move_place(&mut uow, user_id, (QuotaKind::Graph, graph_id), Place::GiveBack).await?;
            let library_agent_id = library_agent_id(user_id, graph_id);
            let (agent, agent_version) = uow.load::<LibraryAgent>(library_agent_id).await?;
            if agent.is_visible_to(user_id) {
                let deleted = agent.decide(LibraryAgentCommand::DeleteLibraryAgent { user_id, now: self.now() })?;
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
        let (graph, _, history) = uow.load_with_events::<Graph>(source_id).await?;
        // The pinned version may have left the store since it was pinned.
        let not_found = GraphError::VersionNotFound(agent.graph_version);
        if !usable_versions(&mut uow, user_id, &graph).await?.contains(&agent.graph_version) {
            return Err(not_found.into());
        }
        let (source, _) = find_version(&history, agent.graph_version).ok_or(not_found)?;
        let mut draft = source.to_draft();
        draft.name = format!("{} (Copy)", source.name);
        draft.forked_from_id = Some(source.id.to_string());
        draft.forked_from_version = Some(i64::from(source.version));
        draft.is_active = true;
        let graph_id = ctx.new_id("fork");
        let events =
            Graph::default().decide(GraphCommand::CreateGraph { graph_id, user_id, draft, now: self.now() })?;
        self.save_new_graph(ctx, user_id, graph_id, events).await
    }
}
