//! Starting and stopping graph runs. The executor appends the steps in
//! between; these handlers only queue a run and end one on request.

use std::collections::BTreeSet;

use domain::aggregate::Aggregate;
use domain::execution::engine;
use domain::execution::{ExecutionEvent, ExecutionStatus, GraphExecution};
use domain::graph::{Graph, GraphError, GraphVersion};
use domain::store::StoreListing;
use eventlog::EventStore;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::library::find_version;
use super::Commands;
use crate::context::CommandContext;
use crate::error::CommandError;
use crate::uow::{retry_on_conflict, Outcome, UnitOfWork};

/// What to run: a graph version with its inputs, for a user.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// Who runs it (and is charged).
    pub user_id: Uuid,
    /// The graph.
    pub graph_id: Uuid,
    /// The version; `None` runs the active one (else the latest).
    pub version: Option<i32>,
    /// Graph inputs by name.
    pub inputs: Map<String, Value>,
    /// The preset it comes from, if any.
    pub preset_id: Option<Uuid>,
    /// Credentials named for the graph's credentials inputs, by input name
    /// (`CredentialsMetaInput`s).
    pub credentials: Map<String, Value>,
}

/// A graph a user may run, with its history and the versions open to it.
pub(crate) struct RunnableGraph {
    /// The graph's events, every version's.
    pub history: Vec<domain::graph::GraphEvent>,
    /// The versions the user may run (see [`usable_versions`]).
    pub versions: BTreeSet<i32>,
    /// The version run when none is named: of the user's own graph the
    /// active one (else the latest); of a store agent, the one its library
    /// agent pins.
    pub default_version: i32,
}

/// A graph `user_id` may run, with its history: one it owns, or one in its
/// library (added from the store) of which some version is still approved.
pub(crate) async fn runnable_graph<S: EventStore>(
    uow: &mut UnitOfWork<'_, S>,
    user_id: Uuid,
    graph_id: Uuid,
) -> Result<RunnableGraph, CommandError> {
    let (graph, _, history) = uow.load_with_events::<Graph>(graph_id).await?;
    if graph.id.is_none() || graph.deleted {
        return Err(GraphError::NotFound.into());
    }
    if graph.is_owned_by(user_id) {
        let default_version = graph.active_version.unwrap_or_else(|| graph.latest_version());
        return Ok(RunnableGraph { versions: graph.versions, default_version, history });
    }
    let agent_id = domain::library::library_agent_id(user_id, graph_id);
    let (agent, _) = uow.load::<domain::library::LibraryAgent>(agent_id).await?;
    if !agent.is_visible_to(user_id) {
        return Err(GraphError::NotFound.into());
    }
    let versions = usable_versions(uow, user_id, &graph).await?;
    if versions.is_empty() {
        return Err(GraphError::NotFound.into());
    }
    Ok(RunnableGraph { versions, default_version: agent.graph_version, history })
}

/// The versions of `graph` that `user_id` may read, run, pin or copy: every
/// version of its own graph; of another's, only those an admin approved
/// that the store still lists. Adding a store agent to a library opens the
/// creator's graph no further than that: a version saved since, or
/// submitted but not approved, or rejected, is as if absent.
pub(crate) async fn usable_versions<S: EventStore>(
    uow: &mut UnitOfWork<'_, S>,
    user_id: Uuid,
    graph: &Graph,
) -> Result<BTreeSet<i32>, CommandError> {
    if graph.is_owned_by(user_id) {
        return Ok(graph.versions.clone());
    }
    let Some(graph_id) = graph.id.filter(|_| !graph.deleted) else { return Ok(BTreeSet::new()) };
    let (listing, _) = uow.load::<StoreListing>(domain::store::listing_id(graph_id)).await?;
    Ok(listing.approved_agent_versions().intersection(&graph.versions).copied().collect())
}

impl<S: EventStore> Commands<S> {
    /// Queue a run of a graph the user owns or has in its library. Answers
    /// the run as queued.
    pub async fn execute_graph(
        &self,
        ctx: &CommandContext,
        request: RunRequest,
    ) -> Result<(Outcome, GraphExecution), CommandError> {
        let mut uow = UnitOfWork::new(&self.store, ctx);
        let queued = self.queue_run(&mut uow, request).await?;
        let outcome = uow.commit().await?;
        let state = self.queued_run(&outcome, &queued, ctx.new_id("execution")).await?;
        Ok((outcome, state))
    }

    /// The run a commit that queued `queued` left: that one, or, when a
    /// retried request with the same idempotency key appended nothing, the
    /// run it queued first, as the log has it.
    pub(super) async fn queued_run(
        &self,
        outcome: &Outcome,
        queued: &ExecutionEvent,
        execution_id: Uuid,
    ) -> Result<GraphExecution, CommandError> {
        if outcome.appended > 0 {
            return Ok(GraphExecution::from_events(std::slice::from_ref(queued)));
        }
        Ok(self.load_execution(execution_id).await?.0)
    }

    /// Decide the queuing of a run inside `uow` (so a caller may append it
    /// together with events of its own, as a schedule's fire does): the run's
    /// id is `ctx.new_id("execution")`. Answers the queuing event.
    pub async fn queue_run(
        &self,
        uow: &mut UnitOfWork<'_, S>,
        request: RunRequest,
    ) -> Result<domain::execution::ExecutionEvent, CommandError> {
        let RunRequest { user_id, graph_id, version, inputs, preset_id, credentials } = request;
        let saved = runnable_version(uow, user_id, graph_id, version).await?;
        let masks = self.credential_masks(&saved, user_id, &credentials).await?;
        let execution_id = uow.context().new_id("execution");
        let masked = domain::graph::credentials::with_masks(&saved, &masks);
        let mut queued = engine::queue_run(&masked, execution_id, user_id, inputs, preset_id, self.now())
            .map_err(CommandError::Run)?;
        if let ExecutionEvent::ExecutionQueued { node_input_masks, .. } = &mut queued {
            *node_input_masks = masks;
        }
        uow.record::<GraphExecution>(execution_id, 0, std::slice::from_ref(&queued))?;
        Ok(queued)
    }

    /// Stop one of the user's runs of `graph_id`: its open node executions
    /// and the run end TERMINATED. Answers the run as it stands (`None`,
    /// with nothing appended, when it is not the user's or not of that
    /// graph) and whether it was still open; a run that had already ended
    /// is left as it was.
    pub async fn stop_execution(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        graph_id: Uuid,
        execution_id: Uuid,
    ) -> Result<(Outcome, Option<GraphExecution>, bool), CommandError> {
        retry_on_conflict(|| async {
            let mut uow = UnitOfWork::new(&self.store, ctx);
            let (mut state, version) = uow.load::<GraphExecution>(execution_id).await?;
            if state.id.is_none() || state.user_id != user_id || state.graph_id != graph_id {
                return Ok((uow.commit().await?, None, false));
            }
            let events = engine::end_run(&mut state, ExecutionStatus::Terminated, None, self.now());
            let was_open = !events.is_empty();
            uow.record::<GraphExecution>(execution_id, version, &events)?;
            Ok((uow.commit().await?, Some(state), was_open))
        })
        .await
    }

    /// The input masks of a run's named credentials: each must be the
    /// user's and fit the input it is named for, else the run is refused
    /// with the nodes it would have fed.
    pub(super) async fn credential_masks(
        &self,
        graph: &GraphVersion,
        user_id: Uuid,
        given: &Map<String, Value>,
    ) -> Result<Map<String, Value>, CommandError> {
        let invalid = |errors| CommandError::Run(engine::RunError::Invalid(errors));
        let masks = domain::graph::credentials::credential_masks(graph, given).map_err(invalid)?;
        let mut errors = domain::graph::NodeErrors::new();
        for (node_id, mask) in &masks {
            let id = mask["credentials"]["id"].as_str().and_then(|id| Uuid::parse_str(id).ok());
            let owned = match id {
                Some(id) => self.credential_meta(user_id, id).await?.is_some(),
                None => false,
            };
            if !owned {
                errors.entry(node_id.clone()).or_default().insert("credentials".into(), "Credentials not found".into());
            }
        }
        if errors.is_empty() {
            Ok(masks)
        } else {
            Err(invalid(errors))
        }
    }

    /// The graph version a run runs, with the run's input masks laid over
    /// it, for the executor.
    pub async fn graph_of_run(&self, state: &GraphExecution) -> Result<Option<GraphVersion>, CommandError> {
        let ctx = CommandContext::default();
        let mut uow = UnitOfWork::new(&self.store, &ctx);
        let (_, _, history) = uow.load_with_events::<Graph>(state.graph_id).await?;
        let masked = find_version(&history, state.graph_version)
            .map(|(g, _)| domain::graph::credentials::with_masks(g, &state.node_input_masks));
        // A fork's node takes the fork's values over what its links bring.
        Ok(match &state.replay {
            Some(replay) => masked.map(|g| replay.graph(&g)),
            None => masked,
        })
    }
}

impl<S: EventStore> Commands<S> {
    /// A run's state and the version of its stream.
    pub async fn load_execution(&self, execution_id: Uuid) -> Result<(GraphExecution, i64), CommandError> {
        self.read::<GraphExecution>(execution_id).await
    }

    /// Bring a run's state up to its stream: fold the events after
    /// `version` (the stream only grows, so what `state` holds stays true).
    /// Answers whether anything was new.
    pub async fn catch_up_execution(
        &self,
        state: &mut GraphExecution,
        version: &mut i64,
    ) -> Result<bool, CommandError> {
        let Some(execution_id) = state.id else { return Ok(false) };
        let stream = domain::aggregate::stream_name::<GraphExecution>(execution_id);
        let newer = self.store.read_stream(&stream, *version).await?;
        for recorded in &newer {
            state.evolve(&eventlog::codec::decode::<GraphExecution>(recorded)?);
            *version = recorded.version;
        }
        Ok(!newer.is_empty())
    }
}

/// Who appends a run's step at `expected_version`: event ids derive from
/// the run and the version, so a step appended twice (a worker retrying
/// after a lost answer) is stored once.
pub(crate) fn run_step_context(state: &GraphExecution, execution_id: Uuid, expected_version: i64) -> CommandContext {
    CommandContext {
        user_id: Some(state.user_id),
        correlation_id: execution_id,
        request_id: None,
        idempotency_key: Some(format!("run/{execution_id}/{expected_version}")),
    }
}

/// The graph version `user_id` may run: the graph exists, is the user's or
/// in its library, and has that version open to the user (`None`: the
/// [default](RunnableGraph::default_version) one).
pub(crate) async fn runnable_version<S: EventStore>(
    uow: &mut UnitOfWork<'_, S>,
    user_id: Uuid,
    graph_id: Uuid,
    version: Option<i32>,
) -> Result<GraphVersion, CommandError> {
    let runnable = runnable_graph(uow, user_id, graph_id).await?;
    let version = version.unwrap_or(runnable.default_version);
    if !runnable.versions.contains(&version) {
        return Err(GraphError::VersionNotFound(version).into());
    }
    let (saved, _) = find_version(&runnable.history, version).ok_or(GraphError::VersionNotFound(version))?;
    Ok(saved.clone())
}

/// What the owner does to a run outside its course.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunChange {
    /// Hide it.
    Delete,
    /// Share it publicly (kept when already shared).
    Share,
    /// Stop sharing it.
    Unshare,
}

impl<S: EventStore> Commands<S> {
    /// Delete, share or unshare one of the user's runs; answers the run after
    /// (`None`, with nothing appended, when it is not the user's, is
    /// deleted, or is not of `graph_id` when the caller names a graph).
    pub async fn change_run(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        graph_id: Option<Uuid>,
        execution_id: Uuid,
        change: RunChange,
    ) -> Result<(Outcome, Option<GraphExecution>), CommandError> {
        use domain::execution::ExecutionEvent;
        retry_on_conflict(|| async {
            let mut uow = UnitOfWork::new(&self.store, ctx);
            let (mut state, version) = uow.load::<GraphExecution>(execution_id).await?;
            let other_graph = graph_id.is_some_and(|g| g != state.graph_id);
            if state.id.is_none() || state.user_id != user_id || state.deleted || other_graph {
                return Ok((uow.commit().await?, None));
            }
            let at = self.now();
            let event = match change {
                RunChange::Delete => Some(ExecutionEvent::ExecutionDeleted { at }),
                // Random, never derived from the request: whoever knows the
                // user and the idempotency key must not know the token.
                RunChange::Share if state.share_token.is_none() => {
                    Some(ExecutionEvent::ExecutionShared { share_token: Uuid::new_v4(), at })
                }
                RunChange::Unshare if state.share_token.is_some() => Some(ExecutionEvent::ExecutionUnshared { at }),
                _ => None,
            };
            let events: Vec<ExecutionEvent> = event.into_iter().collect();
            // Sharing and unsharing alternate: the same key may share again
            // after an unshare, which is a new decision, not a repeat.
            uow.record_once_per_version::<GraphExecution>(execution_id, version, &events)?;
            let outcome = uow.commit().await?;
            if outcome.appended == 0 && !events.is_empty() {
                // A racing repeat of this request appended first: its token,
                // as the log has it, not the one decided here.
                return Ok((outcome, Some(self.load_execution(execution_id).await?.0)));
            }
            for event in &events {
                state.evolve(event);
            }
            Ok((outcome, Some(state)))
        })
        .await
    }
}

impl<S: EventStore> Commands<S> {
    /// Store a value for a user (PersistInformationBlock); the same node
    /// execution stores it once, however often asked.
    pub async fn persist_information(
        &self,
        user_id: Uuid,
        storage_key: String,
        value: Value,
        node_exec_id: Uuid,
    ) -> Result<(), CommandError> {
        use domain::memory::{AgentMemory, MemoryEvent};
        let ctx = CommandContext::keyed(user_id, format!("persist/{node_exec_id}"));
        retry_on_conflict(|| async {
            let mut uow = UnitOfWork::new(&self.store, &ctx);
            let (_, version) = uow.load::<AgentMemory>(user_id).await?;
            let event = MemoryEvent::InformationPersisted {
                storage_key: storage_key.clone(),
                value: value.clone(),
                node_exec_id,
                at: self.now(),
            };
            uow.record::<AgentMemory>(user_id, version, &[event])?;
            uow.commit().await.map(|_| ())
        })
        .await
    }

    /// A value stored for a user (RetrieveInformationBlock), if any.
    pub async fn recall_information(&self, user_id: Uuid, storage_key: &str) -> Result<Option<Value>, CommandError> {
        let (memory, _) = self.read::<domain::memory::AgentMemory>(user_id).await?;
        Ok(memory.values.get(storage_key).cloned())
    }
}
