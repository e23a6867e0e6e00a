//! Running one claimed run to its end: each queued node execution in turn,
//! its block's outputs routed by the engine, every step appended at the
//! stream version it was decided against.

use std::time::Duration;

use chrono::Utc;
use commands::services::{Charged, Commands};
use commands::{CommandError, PgEventStore};
use domain::aggregate::Aggregate;
use domain::credit::Usage;
use domain::execution::{engine, ExecutionEvent, ExecutionStatus, GraphExecution};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::blocks::{self, BlockContext, Step};

/// How often a waiting block looks whether its run was stopped.
const STOP_CHECK: Duration = Duration::from_millis(500);

/// How a worker's hold on a run ended.
#[derive(Debug)]
pub enum Finished {
    /// The run reached its end (or was already ended).
    Ended(ExecutionStatus),
    /// Another worker claimed it first.
    NotClaimed,
    /// Another worker took it over (this one was too slow to renew its
    /// lease); this one stood down.
    Lost,
    /// The process is stopping; the run stays RUNNING for a later resume.
    Interrupted,
}

/// One worker's hold on one run.
pub(crate) struct Worker<'a> {
    pub commands: &'a Commands<PgEventStore>,
    pub worker_id: &'a str,
    pub stop: &'a CancellationToken,
    pub pool: &'a sqlx::PgPool,
    pub lease: Duration,
}

impl Worker<'_> {
    /// Claim the run (or take it over from a silent worker) and run it to
    /// its end.
    pub async fn run(&self, execution_id: Uuid, takeover: bool) -> Result<Finished, CommandError> {
        let (mut state, mut version) = self.commands.load_execution(execution_id).await?;
        let claim = if takeover {
            engine::resume(&state, self.worker_id, Utc::now())
        } else {
            engine::claim(&state, self.worker_id, Utc::now())
        };
        let Some(claim) = claim else { return Ok(Finished::NotClaimed) };
        match self.commands.append_run_step(&state, version, std::slice::from_ref(&claim)).await {
            Ok(v) => version = v,
            Err(CommandError::Conflict) => return Ok(Finished::NotClaimed),
            Err(e) => return Err(e),
        }
        state.evolve(&claim);
        if !takeover {
            // Ours by the claim; the lease only tells others we are alive.
            let _ = crate::lease::acquire(self.pool, execution_id, self.worker_id, self.lease).await;
        } else {
            tracing::info!(%execution_id, worker = self.worker_id, "took over a run whose worker went silent");
        }
        let Some(graph) = self.commands.graph_of_run(&state).await? else {
            let events = engine::end_run(
                &mut state,
                ExecutionStatus::Failed,
                Some("Graph version not found".into()),
                Utc::now(),
            );
            self.commands.append_run_step(&state, version, &events).await?;
            return Ok(Finished::Ended(ExecutionStatus::Failed));
        };
        loop {
            if let Some(status) = state.status.filter(|s| s.is_final()) {
                return Ok(Finished::Ended(status));
            }
            if state.worker.as_deref() != Some(self.worker_id) {
                return Ok(Finished::Lost);
            }
            if self.stop.is_cancelled() {
                return Ok(Finished::Interrupted);
            }
            let Some(next) = state.next_queued().map(|n| (n.node_exec_id, n.block_id.clone(), n.input_data.clone()))
            else {
                // Nothing queued or running: the run is over.
                let end =
                    ExecutionEvent::ExecutionEnded { status: ExecutionStatus::Completed, error: None, at: Utc::now() };
                version = self.append(&mut state, version, vec![end]).await?;
                continue;
            };
            let (node_exec_id, block_id, input) = next;
            if let Some(refused) = self.charge(&state, node_exec_id, &block_id, &input).await? {
                // AutoGPT fails the node with the error and the run with it.
                let mut working = state.clone();
                let at = Utc::now();
                let mut events = engine::start_node(&mut working, node_exec_id, at);
                events.push(ExecutionEvent::NodeOutputProduced {
                    node_exec_id,
                    pin: "error".into(),
                    value: Value::String(refused.clone()),
                    at,
                });
                events.push(ExecutionEvent::NodeExecutionEnded { node_exec_id, status: ExecutionStatus::Failed, at });
                for event in &events {
                    working.evolve(event);
                }
                events.extend(engine::end_run(&mut working, ExecutionStatus::Failed, Some(refused), at));
                version = match self.append(&mut state, version, events).await {
                    Ok(v) => v,
                    Err(CommandError::Conflict) => {
                        (state, version) = self.commands.load_execution(execution_id).await?;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                continue;
            }
            let started = engine::start_node(&mut state.clone(), node_exec_id, Utc::now());
            version = match self.append(&mut state, version, started).await {
                Ok(v) => v,
                Err(CommandError::Conflict) => {
                    (state, version) = self.commands.load_execution(execution_id).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let ctx = BlockContext { user_id: state.user_id, execution_id, now: Utc::now() };
            let outcome = blocks::run(&block_id, &input, &ctx);
            let mut pending: Vec<ExecutionEvent> = Vec::new();
            let mut working = state.clone();
            for step in outcome.steps {
                match step {
                    Step::Yield(pin, value) => pending.extend(engine::record_output(
                        &graph,
                        &mut working,
                        node_exec_id,
                        &pin,
                        without_nul(value),
                        Utc::now(),
                    )),
                    Step::Sleep(wait) => {
                        version = self.append(&mut state, version, std::mem::take(&mut pending)).await?;
                        working = state.clone();
                        if !self.wait(execution_id, &mut state, &mut version, wait).await? {
                            break;
                        }
                        working = state.clone();
                    }
                }
            }
            if state.status.is_some_and(ExecutionStatus::is_final) {
                continue;
            }
            if self.stop.is_cancelled() {
                return Ok(Finished::Interrupted);
            }
            let status = match outcome.error {
                Some(error) => {
                    pending.extend(engine::record_output(
                        &graph,
                        &mut working,
                        node_exec_id,
                        "error",
                        Value::String(error),
                        Utc::now(),
                    ));
                    ExecutionStatus::Failed
                }
                None => ExecutionStatus::Completed,
            };
            pending.extend(engine::end_node(&mut working, node_exec_id, status, Utc::now()));
            version = match self.append(&mut state, version, pending).await {
                Ok(v) => v,
                Err(CommandError::Conflict) => {
                    (state, version) = self.commands.load_execution(execution_id).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
        }
    }

    /// Charge the node execution before it runs; the refusal's text when
    /// the user's balance does not cover it.
    async fn charge(
        &self,
        state: &GraphExecution,
        node_exec_id: Uuid,
        block_id: &str,
        input: &serde_json::Map<String, Value>,
    ) -> Result<Option<String>, CommandError> {
        let node_id = state.node_execution(node_exec_id).map(|n| n.node_id.clone()).unwrap_or_default();
        let usage = Usage {
            graph_exec_id: state.id.unwrap_or_default(),
            graph_id: state.graph_id,
            node_exec_id,
            node_id,
            block_id: block_id.to_owned(),
        };
        let cost = domain::blocks::find(block_id).map_or(0, |b| b.run_cost(input));
        Ok(match self.commands.charge_node(state.user_id, cost, usage).await? {
            Charged::Paid(_) => None,
            Charged::Refused(refused) => Some(refused.to_string()),
        })
    }

    /// Append `events` and fold them into `state`.
    async fn append(
        &self,
        state: &mut GraphExecution,
        version: i64,
        events: Vec<ExecutionEvent>,
    ) -> Result<i64, CommandError> {
        let next = self.commands.append_run_step(state, version, &events).await?;
        for event in &events {
            state.evolve(event);
        }
        Ok(next)
    }

    /// Wait as a block asked, looking for a stop now and then; false when
    /// the run ended meanwhile (or the process is stopping).
    async fn wait(
        &self,
        execution_id: Uuid,
        state: &mut GraphExecution,
        version: &mut i64,
        wait: Duration,
    ) -> Result<bool, CommandError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(true);
            }
            tokio::select! {
                _ = self.stop.cancelled() => return Ok(false),
                _ = tokio::time::sleep((deadline - now).min(STOP_CHECK)) => {}
            }
            let (latest, latest_version) = self.commands.load_execution(execution_id).await?;
            if latest_version != *version {
                (*state, *version) = (latest, latest_version);
                if state.status.is_some_and(ExecutionStatus::is_final) {
                    return Ok(false);
                }
            }
        }
    }
}

/// Postgres text cannot hold NUL: a block output carrying one would stall
/// every projector copying it, so it becomes U+FFFD.
fn without_nul(value: Value) -> Value {
    match value {
        Value::String(s) if s.contains('\0') => Value::String(s.replace('\0', "\u{FFFD}")),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nul).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k.replace('\0', "\u{FFFD}"), without_nul(v))).collect())
        }
        other => other,
    }
}
