//! Running one claimed run to its end. Every node execution starts as soon
//! as it is queued, its block in a task of its own (so branches run side by
//! side, and waits overlap); the worker alone appends: each block's outputs
//! and end are routed by the engine and appended at the stream version they
//! were decided against.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use commands::services::{Charged, Commands};
use commands::{CommandError, PgEventStore};
use domain::aggregate::Aggregate;
use domain::credit::Usage;
use domain::execution::{engine, ExecutionEvent, ExecutionStatus, GraphExecution};
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::blocks::{self, BlockContext, Effect, Step};
use crate::outside::Outside;
use crate::MAX_REQUESTS;

/// How often a worker with blocks running looks whether its run was
/// stopped.
const STOP_CHECK: Duration = Duration::from_millis(500);

/// Node executions of one run running at once.
const MAX_PARALLEL_NODES: usize = 16;

/// How often a block's report is decided again after the stream moved.
const MAX_REDECIDE: usize = 5;

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
    /// Not started: its user already has as many runs going as allowed.
    Deferred,
    /// It waits for reviews; a decision queues it again.
    Paused,
}

/// One worker's hold on one run.
pub(crate) struct Worker<'a> {
    pub commands: &'a Arc<Commands<PgEventStore>>,
    pub worker_id: &'a str,
    pub stop: &'a CancellationToken,
    pub outside: &'a Outside,
    /// Starts after which a node that never ended is failed, not started.
    pub max_starts: u32,
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
        if takeover {
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
        let user_timezone = self.commands.user_timezone(state.user_id).await?;
        let (reports, mut inbox) = mpsc::channel::<Report>(64);
        let blocks_stop = self.stop.child_token();
        let mut in_flight: HashSet<Uuid> = HashSet::new();
        let finished = loop {
            if let Some(status) = state.status.filter(|s| s.is_final()) {
                break Finished::Ended(status);
            }
            if state.status == Some(ExecutionStatus::Review) {
                break Finished::Paused;
            }
            if state.worker.as_deref() != Some(self.worker_id) {
                break Finished::Lost;
            }
            if self.stop.is_cancelled() {
                break Finished::Interrupted;
            }
            // Every queued node execution starts as soon as it is queued.
            let ready: Vec<(Uuid, String, Map<String, Value>)> = state
                .node_executions
                .iter()
                .filter(|n| n.status == ExecutionStatus::Queued && !in_flight.contains(&n.node_exec_id))
                .take(MAX_PARALLEL_NODES.saturating_sub(in_flight.len()))
                .map(|n| (n.node_exec_id, n.block_id.clone(), n.input_data.clone()))
                .collect();
            let mut moved = false;
            for (node_exec_id, block_id, input) in ready {
                if let Some(failed) = engine::give_up_on(&graph, &state, node_exec_id, self.max_starts, Utc::now()) {
                    tracing::warn!(%execution_id, %node_exec_id, "a node whose runs kept stopping the process is failed");
                    self.append(&mut state, &mut version, failed).await?;
                    moved = true;
                    break;
                }
                if let Some(refused) = self.charge(&state, node_exec_id, &block_id, &input).await? {
                    self.refuse(&mut state, &mut version, node_exec_id, refused).await?;
                    moved = true;
                    break;
                }
                let started = engine::start_node(&mut state.clone(), node_exec_id, Utc::now());
                if !self.append(&mut state, &mut version, started).await? {
                    moved = true;
                    break;
                }
                in_flight.insert(node_exec_id);
                let ctx = BlockContext {
                    user_id: state.user_id,
                    execution_id,
                    graph_id: state.graph_id,
                    node_exec_id,
                    user_timezone: user_timezone.clone(),
                    now: Utc::now(),
                };
                let task = BlockTask {
                    commands: self.commands.clone(),
                    outside: self.outside.clone(),
                    reports: reports.clone(),
                    stop: blocks_stop.clone(),
                };
                let answers = state.node_execution(node_exec_id).map(|n| n.answers.clone()).unwrap_or_default();
                let running = tokio::spawn(task.run(block_id.clone(), input, ctx, answers));
                tokio::spawn(fail_on_panic(running, reports.clone(), node_exec_id, block_id));
            }
            if moved {
                continue;
            }
            if in_flight.is_empty() {
                // Nothing queued or running: the run is over, or waits for
                // its reviews.
                let now = Utc::now();
                let end = engine::settle(&state, now).unwrap_or(ExecutionEvent::ExecutionEnded {
                    status: ExecutionStatus::Completed,
                    error: None,
                    at: now,
                });
                self.append(&mut state, &mut version, vec![end]).await?;
                continue;
            }
            tokio::select! {
                report = inbox.recv() => {
                    let Some(report) = report else { continue };
                    // What else the blocks reported meanwhile (a quick
                    // block's outputs and its end) goes in the same append:
                    // one commit instead of one per report.
                    let mut reports = vec![report];
                    while let Ok(more) = inbox.try_recv() {
                        reports.push(more);
                    }
                    for report in &reports {
                        if let Report::Done { node_exec_id, .. } | Report::Review { node_exec_id, .. } = report {
                            in_flight.remove(node_exec_id);
                        }
                    }
                    self.record(&graph, &mut state, &mut version, &reports).await?;
                }
                // While blocks run (or wait), look whether the run was stopped.
                _ = tokio::time::sleep(STOP_CHECK) => {
                    self.commands.catch_up_execution(&mut state, &mut version).await?;
                }
                _ = self.stop.cancelled() => {}
            }
        };
        blocks_stop.cancel();
        Ok(finished)
    }

    /// Append what the blocks reported, in order, decided against the run as
    /// it is now; when another writer moved the stream first (a stop, a
    /// share), decide again on the reloaded run, or drop the reports if the
    /// run has ended.
    async fn record(
        &self,
        graph: &domain::graph::GraphVersion,
        state: &mut GraphExecution,
        version: &mut i64,
        reports: &[Report],
    ) -> Result<(), CommandError> {
        for _ in 0..MAX_REDECIDE {
            if state.status.is_some_and(ExecutionStatus::is_final) {
                return Ok(());
            }
            let mut working = state.clone();
            let at = Utc::now();
            let mut events: Vec<ExecutionEvent> =
                reports.iter().flat_map(|report| decide_report(graph, &mut working, report, at)).collect();
            // A run these reports leave with nothing queued or running ends
            // (or pauses for its reviews) in the same append: one commit less.
            events.extend(engine::settle(&working, at));
            if self.append(state, version, events).await? {
                return Ok(());
            }
        }
        Err(CommandError::Conflict)
    }

    /// The charge was refused: AutoGPT fails the node with the error and
    /// the run with it.
    async fn refuse(
        &self,
        state: &mut GraphExecution,
        version: &mut i64,
        node_exec_id: Uuid,
        refused: String,
    ) -> Result<(), CommandError> {
        let mut working = state.clone();
        let at = Utc::now();
        let mut events = engine::start_node(&mut working, node_exec_id, at);
        let error = ExecutionEvent::NodeOutputProduced {
            node_exec_id,
            pin: "error".into(),
            value: Value::String(refused.clone()),
            at,
        };
        let end = ExecutionEvent::NodeExecutionEnded { node_exec_id, status: ExecutionStatus::Failed, at };
        for event in [error, end] {
            working.evolve(&event);
            events.push(event);
        }
        events.extend(engine::end_run(&mut working, ExecutionStatus::Failed, Some(refused), at));
        self.append(state, version, events).await?;
        Ok(())
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

    /// Append `events` at `version` and fold them into `state`; when
    /// another writer moved the stream first (a stop, a share), fold in
    /// what it wrote instead and answer false, so the caller decides again.
    async fn append(
        &self,
        state: &mut GraphExecution,
        version: &mut i64,
        events: Vec<ExecutionEvent>,
    ) -> Result<bool, CommandError> {
        match self.commands.append_run_step(state, *version, &events).await {
            Ok(next) => {
                for event in &events {
                    state.evolve(event);
                }
                *version = next;
                Ok(true)
            }
            Err(CommandError::Conflict) => {
                self.commands.catch_up_execution(state, version).await?;
                Ok(false)
            }
            Err(e) => Err(e),
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

/// The events one report decides, folded into `working` as they are.
fn decide_report(
    graph: &domain::graph::GraphVersion,
    working: &mut GraphExecution,
    report: &Report,
    at: chrono::DateTime<Utc>,
) -> Vec<ExecutionEvent> {
    match report {
        Report::Outputs { node_exec_id, outputs } => outputs
            .iter()
            .flat_map(|(pin, value)| engine::record_output(graph, working, *node_exec_id, pin, value.clone(), at))
            .collect(),
        Report::Answered { node_exec_id, seq, request, answer } => {
            let event = ExecutionEvent::NodeEffectAnswered {
                node_exec_id: *node_exec_id,
                seq: *seq,
                request: request.clone(),
                answer: answer.clone(),
                at,
            };
            working.evolve(&event);
            vec![event]
        }
        Report::Review { node_exec_id, seq, effect } => {
            let Effect::Review { payload, instructions, editable, timeout_seconds, timeout_action } = effect else {
                return vec![];
            };
            let timeout_at = timeout_seconds
                .and_then(|s| i64::try_from(s).ok())
                .and_then(chrono::TimeDelta::try_seconds)
                .and_then(|d| at.checked_add_signed(d));
            let event = ExecutionEvent::NodeReviewRequested {
                node_exec_id: *node_exec_id,
                seq: *seq,
                payload: payload.clone(),
                instructions: instructions.clone(),
                editable: *editable,
                timeout_at,
                timeout_action: timeout_action.clone(),
                at,
            };
            working.evolve(&event);
            vec![event]
        }
        Report::Done { node_exec_id, error: Some(error) } => {
            engine::fail_node(graph, working, *node_exec_id, error.clone(), at)
        }
        Report::Done { node_exec_id, error: None } => {
            engine::end_node(working, *node_exec_id, ExecutionStatus::Completed, at)
        }
    }
}

/// A block task that panicked outside the block's pure code (which
/// `blocks::run_turn` guards) would never report its end, and its node would
/// stay in flight for ever, holding the run open: end the node FAILED
/// instead, as AutoGPT fails a node whose block raised.
async fn fail_on_panic(running: JoinHandle<()>, reports: mpsc::Sender<Report>, node_exec_id: Uuid, block_id: String) {
    let Err(failure) = running.await else { return };
    if !failure.is_panic() {
        return;
    }
    let message = blocks::panic_message(failure.into_panic().as_ref());
    tracing::error!(%node_exec_id, block_id, %message, "a block's task panicked");
    let error = Some(blocks::block_error(&block_id, &message));
    let _ = reports.send(Report::Done { node_exec_id, error }).await;
}

/// What a running block tells its worker.
enum Report {
    /// Values it yielded (up to a wait, or all of them).
    Outputs {
        /// The node execution.
        node_exec_id: Uuid,
        /// The pins and values, in yield order.
        outputs: Vec<(String, Value)>,
    },
    /// A request it made to the outside world was answered.
    Answered {
        /// The node execution.
        node_exec_id: Uuid,
        /// Which of its requests.
        seq: u32,
        /// What it asked.
        request: Value,
        /// What came back.
        answer: Value,
    },
    /// It asked a person to review data; it stops here until the answer.
    Review {
        /// The node execution.
        node_exec_id: Uuid,
        /// Which of its requests.
        seq: u32,
        /// The review it asks for.
        effect: Effect,
    },
    /// It ended, failed with this error when it did.
    Done {
        /// The node execution.
        node_exec_id: Uuid,
        /// The error text, on failure.
        error: Option<String>,
    },
}

/// What a block's task needs besides the block: the store for the blocks
/// that remember, the outside world for those that call out, where to
/// report, and when to stop.
struct BlockTask {
    commands: Arc<Commands<PgEventStore>>,
    outside: Outside,
    reports: mpsc::Sender<Report>,
    stop: CancellationToken,
}

/// How a block's steps went.
enum Flow {
    /// On to the next turn or the end.
    Go,
    /// The run stopped or the worker is gone: report nothing more.
    Gone,
    /// A step failed with this error.
    Failed(String),
}

impl BlockTask {
    /// Run one block, turn by turn: its values go to the worker in batches
    /// cut at its waits and its requests; each request is carried out (or
    /// its recorded answer, from before a takeover, reused) and its answer
    /// reported before the block sees it. A stop cuts a wait or a request
    /// short, and nothing more is reported.
    async fn run(self, block_id: String, input: Map<String, Value>, ctx: BlockContext, mut answers: Vec<Value>) {
        let node_exec_id = ctx.node_exec_id;
        let mut outputs = Vec::new();
        let error = loop {
            let outcome = blocks::run_turn(&block_id, &input, &ctx, &answers);
            match self.steps(outcome.steps, &ctx, &mut outputs).await {
                Flow::Go => {}
                Flow::Gone => return,
                Flow::Failed(error) => break Some(error),
            }
            if outcome.error.is_some() {
                break outcome.error;
            }
            let Some(effect) = outcome.effect else { break None };
            if let Effect::Review { .. } = effect {
                // The node waits for a person: its answer comes through the
                // review API, and the block runs again with it then.
                if !self.flush(node_exec_id, &mut outputs).await {
                    return;
                }
                let seq = u32::try_from(answers.len()).unwrap_or(u32::MAX);
                let _ = self.reports.send(Report::Review { node_exec_id, seq, effect }).await;
                return;
            }
            if answers.len() >= MAX_REQUESTS {
                break Some(format!("the block asked the outside world more than {MAX_REQUESTS} times"));
            }
            if !self.flush(node_exec_id, &mut outputs).await {
                return;
            }
            let answer = tokio::select! {
                _ = self.stop.cancelled() => return,
                answer = self.outside.perform(&self.commands, ctx.user_id, &effect) => without_nul(answer),
            };
            let request = serde_json::to_value(&effect).unwrap_or(Value::Null);
            let seq = u32::try_from(answers.len()).unwrap_or(u32::MAX);
            let report = Report::Answered { node_exec_id, seq, request, answer: answer.clone() };
            if self.reports.send(report).await.is_err() {
                return;
            }
            answers.push(answer);
        };
        if !self.flush(node_exec_id, &mut outputs).await {
            return;
        }
        let _ = self.reports.send(Report::Done { node_exec_id, error }).await;
    }

    /// Report the values gathered so far; false when the worker is gone.
    async fn flush(&self, node_exec_id: Uuid, outputs: &mut Vec<(String, Value)>) -> bool {
        if outputs.is_empty() {
            return true;
        }
        let batch = std::mem::take(outputs);
        self.reports.send(Report::Outputs { node_exec_id, outputs: batch }).await.is_ok()
    }

    /// Carry out one turn's steps, gathering its values in `outputs`.
    async fn steps(&self, steps: Vec<Step>, ctx: &BlockContext, outputs: &mut Vec<(String, Value)>) -> Flow {
        let node_exec_id = ctx.node_exec_id;
        for step in steps {
            match step {
                Step::Yield(pin, value) => outputs.push((pin, without_nul(value))),
                Step::Sleep(wait) => {
                    if !self.flush(node_exec_id, outputs).await {
                        return Flow::Gone;
                    }
                    tokio::select! {
                        _ = self.stop.cancelled() => return Flow::Gone,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
                Step::Persist { storage_key, value } => {
                    let value = without_nul(value);
                    match self.commands.persist_information(ctx.user_id, storage_key, value.clone(), node_exec_id).await
                    {
                        Ok(()) => outputs.push(("value".to_owned(), value)),
                        Err(e) => return Flow::Failed(format!("Could not store the information: {e}")),
                    }
                }
                Step::Recall { storage_key, default } => {
                    match self.commands.recall_information(ctx.user_id, &storage_key).await {
                        Ok(stored) => outputs.push(("value".to_owned(), stored.unwrap_or(default))),
                        Err(e) => return Flow::Failed(format!("Could not read the information: {e}")),
                    }
                }
            }
        }
        Flow::Go
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_block_task_that_panics_still_reports_its_node_failed() {
        let (reports, mut inbox) = mpsc::channel(1);
        let node_exec_id = Uuid::new_v4();
        let running = tokio::spawn(async { panic!("lost in the task") });
        fail_on_panic(running, reports.clone(), node_exec_id, "x".into()).await;
        match inbox.try_recv() {
            Ok(Report::Done { node_exec_id: id, error: Some(error) }) => {
                assert_eq!(id, node_exec_id);
                assert!(error.starts_with("raised by UnknownBlock with message: lost in the task"), "{error}");
            }
            _ => panic!("no failure reported"),
        }
        fail_on_panic(tokio::spawn(async {}), reports, node_exec_id, "x".into()).await;
        assert!(inbox.try_recv().is_err(), "a task that ended on its own reported for itself");
    }
}
