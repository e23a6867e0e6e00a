//! The relay: a projector with no read model that turns every event of a
//! run's stream, in log order, into the pushes WebSocket clients receive.
//! It keeps the state of open runs in memory (a run it has not seen yet is
//! read from its stream), and its checkpoint moves only after the pushes of
//! a batch are handed on: after a crash the same pushes go out again, with
//! the same event ids and tokens, and subscribers drop what they have seen.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use domain::aggregate::Aggregate;
use domain::blocks::{self, BlockType};
use domain::execution::{ExecutionEvent, GraphExecution};
use eventlog::codec::decode;
use eventlog::store::RecordedEvent;
use eventlog::{ConsistencyToken, EventStore, PgEventStore};
use projections::execution_views::{GraphExecutionMeta, NodeExecutionResult};
use projections::{BoxFuture, ProjectionError, Projector};
use serde_json::{json, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use super::bus::{Bus, Push, PushKind};
use super::nats::Nats;

/// Name of the relay's checkpoint.
pub const NAME: &str = "relay";

const PREFIX: &str = "execution-";

/// Where the relay hands pushes: the local bus, or NATS (from which every
/// instance's bus is fed).
#[derive(Clone)]
pub enum Outlet {
    /// This process only.
    Local(Bus),
    /// Every instance, through JetStream.
    Nats(Box<Nats>),
}

/// Relays run events to the bus.
pub struct Relay {
    outlet: Outlet,
    store: PgEventStore,
    /// Open runs' state and the stream version it is at.
    runs: Mutex<HashMap<Uuid, (GraphExecution, i64)>>,
}

impl Relay {
    /// A relay reading runs from `store`, publishing to `outlet`.
    pub fn new(store: PgEventStore, outlet: Outlet) -> Self {
        Self { outlet, store, runs: Mutex::default() }
    }

    async fn relay(&self, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let Some(id) = event.stream_id.strip_prefix(PREFIX).and_then(|s| Uuid::parse_str(s).ok()) else {
            return Ok(());
        };
        let decoded = decode::<GraphExecution>(event)?;
        // Another instance's relay may have relayed the events in between
        // (they share the checkpoint): use the copy only when it is just
        // one event behind.
        let cached = self.runs.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
        let mut state = match cached {
            Some((state, version)) if version + 1 == event.version => state,
            _ => state_before(&self.store, &event.stream_id, event.version).await?,
        };
        state.evolve(&decoded);
        for push in pushes(&state, &decoded, event) {
            match &self.outlet {
                Outlet::Local(bus) => bus.publish(push),
                Outlet::Nats(nats) => {
                    if let Err(e) = nats.publish(&push).await {
                        // The batch is retried from the checkpoint, so what
                        // memory holds is ahead of it: forget it all, the
                        // retry reads each run's state from its stream.
                        self.runs.lock().unwrap_or_else(PoisonError::into_inner).clear();
                        return Err(ProjectionError::Downstream(format!("NATS: {e}")));
                    }
                }
            }
        }
        if !state.status.is_some_and(domain::execution::ExecutionStatus::is_final) {
            self.runs.lock().unwrap_or_else(PoisonError::into_inner).insert(id, (state, event.version));
        }
        Ok(())
    }
}

/// A run's state just before the event at `version`, from its stream.
pub(crate) async fn state_before(
    store: &PgEventStore,
    stream_id: &str,
    version: i64,
) -> Result<GraphExecution, ProjectionError> {
    let mut state = GraphExecution::default();
    if version > 1 {
        for recorded in store.read_stream(stream_id, 0).await?.iter().take_while(|r| r.version < version) {
            state.evolve(&decode::<GraphExecution>(recorded)?);
        }
    }
    Ok(state)
}

impl Projector for Relay {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    /// No command waits for a push: it is no read model.
    fn categories(&self) -> &'static [&'static str] {
        &[]
    }

    fn wants(&self, event: &RecordedEvent) -> bool {
        event.stream_id.starts_with(PREFIX)
    }

    fn handle<'a>(
        &'a self,
        event: &'a RecordedEvent,
        _conn: &'a mut PgConnection,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(self.relay(event))
    }
}

/// The pushes an event of a run makes, with the run's state after it:
/// AutoGPT's `graph_execution_event` for changes of the run, and
/// `node_execution_event` for changes of a node execution.
pub(crate) fn pushes(state: &GraphExecution, event: &ExecutionEvent, recorded: &RecordedEvent) -> Vec<Push> {
    let push = |kind, data| Push {
        user_id: state.user_id,
        graph_id: state.graph_id,
        execution_id: state.id.unwrap_or_default(),
        event_id: recorded.event_id,
        token: ConsistencyToken(recorded.global),
        recorded_at: recorded.recorded_at,
        kind,
        data,
    };
    let node = |id: &Uuid| {
        state.node_execution(*id).map(|n| {
            let mut data = serde_json::to_value(NodeExecutionResult::of_state(state, n)).unwrap_or(Value::Null);
            data["event_type"] = json!("node_execution_update");
            push(PushKind::Node, data)
        })
    };
    let graph = || {
        let mut data = serde_json::to_value(GraphExecutionMeta::of_state(state)).unwrap_or(Value::Null);
        data["outputs"] =
            Value::Object(state.outputs(|b| blocks::find(b).is_some_and(|b| b.block_type == BlockType::Output)));
        data["event_type"] = json!("graph_execution_update");
        push(PushKind::Graph, data)
    };
    match event {
        ExecutionEvent::ExecutionQueued { starting, .. } => {
            std::iter::once(graph()).chain(starting.iter().filter_map(|s| node(&s.node_exec_id))).collect()
        }
        ExecutionEvent::ExecutionStarted { .. }
        | ExecutionEvent::ExecutionResumed { .. }
        | ExecutionEvent::ExecutionPaused { .. }
        | ExecutionEvent::ExecutionReviewed { .. }
        | ExecutionEvent::ExecutionEnded { .. } => {
            vec![graph()]
        }
        ExecutionEvent::NodeInputReceived { node_exec_id, .. }
        | ExecutionEvent::NodeExecutionQueued { node_exec_id, .. }
        | ExecutionEvent::NodeExecutionStarted { node_exec_id, .. }
        | ExecutionEvent::NodeOutputProduced { node_exec_id, .. }
        | ExecutionEvent::NodeReviewRequested { node_exec_id, .. }
        | ExecutionEvent::NodeExecutionEnded { node_exec_id, .. } => node(node_exec_id).into_iter().collect(),
        ExecutionEvent::ExecutionDeleted { .. }
        | ExecutionEvent::ExecutionDiverged { .. }
        | ExecutionEvent::NodeEffectAnswered { .. }
        | ExecutionEvent::ExecutionShared { .. }
        | ExecutionEvent::ExecutionUnshared { .. } => {
            vec![]
        }
    }
}
