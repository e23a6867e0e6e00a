//! Running one claimed run to its end. Every node execution starts as soon
//! as it is queued, its block in a task of its own (so branches run side by
//! side, and waits overlap), unless it is one the worker runs itself in the
//! append that starts it (see `inline`); the worker alone appends: each
//! block's outputs and end are routed by the engine and appended at the
//! stream version they were decided against.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use commands::services::{Charge, Commands, StepOutcome};
use commands::{CommandError, PgEventStore};
use domain::aggregate::Aggregate;
use domain::credit::Usage;
use domain::execution::replay::{self, Start};
use domain::execution::{engine, ExecutionEvent, ExecutionStatus, GraphExecution};
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::blocks::BlockContext;
use crate::decide::decide_report;
use crate::inline;
use crate::outside::Outside;
use crate::task::{fail_on_panic, BlockTask, Report};

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

/// The blocks a worker has running, and what starting another needs.
struct Running {
    /// Node executions whose blocks run now.
    in_flight: HashSet<Uuid>,
    /// Where their tasks report.
    reports: mpsc::Sender<Report>,
    /// Stops them all.
    stop: CancellationToken,
    /// The user's chosen timezone, for clock blocks.
    user_timezone: Option<String>,
    /// For a replay or fork: what it re-runs.
    recording: Option<replay::Recording>,
    /// Whether the next append may run blocks here (see `inline`); off
    /// for one append after a charge refused one that did.
    inline: bool,
}

/// How a started node's block runs: live, or re-running a recorded node
/// execution on its answers.
struct Launch {
    node_exec_id: Uuid,
    block_id: String,
    input: Map<String, Value>,
    /// In a replay, the recorded node execution it re-runs.
    replayed: Option<Replayed>,
}

/// A recorded node execution a replayed one re-runs: its id, when it
/// began, and its requests with their answers.
type Replayed = (Uuid, chrono::DateTime<Utc>, Vec<(Value, Value)>);

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
        // Read before the claim, so the claim goes in one append with the
        // starts of the nodes it finds queued; the two reads go at once.
        let (graph, user_timezone) =
            tokio::try_join!(self.commands.graph_of_run(&state), self.commands.user_timezone(state.user_id))?;
        let mut working = state.clone();
        working.evolve(&claim);
        let Some(graph) = graph else {
            let mut events = vec![claim];
            events.extend(engine::end_run(
                &mut working,
                ExecutionStatus::Failed,
                Some("Graph version not found".into()),
                Utc::now(),
            ));
            if !self.append(&mut state, &mut version, events).await? {
                return Ok(Finished::NotClaimed);
            }
            return Ok(Finished::Ended(ExecutionStatus::Failed));
        };
        let recording = match &state.replay {
            Some(of) => Some(self.recording(&state, of, &graph).await?),
            None => None,
        };
        let (reports, mut inbox) = mpsc::channel::<Report>(64);
        let mut running = Running {
            in_flight: HashSet::new(),
            reports,
            stop: self.stop.child_token(),
            user_timezone,
            recording,
            inline: true,
        };
        if !self.advance(&graph, &mut state, &mut version, (working, vec![claim], Vec::new()), &mut running).await? {
            return Ok(Finished::NotClaimed);
        }
        if takeover {
            tracing::info!(%execution_id, worker = self.worker_id, "took over a run whose worker went silent");
        }
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
            if startable(&state, &running.in_flight).next().is_some() {
                let working = state.clone();
                self.advance(&graph, &mut state, &mut version, (working, Vec::new(), Vec::new()), &mut running).await?;
                continue;
            }
            if running.in_flight.is_empty() {
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
                        if let Report::Done { node_exec_id, .. }
                        | Report::Review { node_exec_id, .. }
                        | Report::Diverged { node_exec_id, .. } = report
                        {
                            running.in_flight.remove(node_exec_id);
                        }
                    }
                    self.record(&graph, &mut state, &mut version, &reports, &mut running).await?;
                }
                // While blocks run (or wait), look whether the run was stopped.
                _ = tokio::time::sleep(STOP_CHECK) => {
                    self.commands.catch_up_execution(&mut state, &mut version).await?;
                }
                _ = self.stop.cancelled() => {}
            }
        };
        running.stop.cancel();
        Ok(finished)
    }

    /// Append what the blocks reported, in order, decided against the run as
    /// it is now, with the starts of the nodes they queued; when another
    /// writer moved the stream first (a stop, a share), decide again on the
    /// reloaded run, or drop the reports if the run has ended.
    async fn record(
        &self,
        graph: &domain::graph::GraphVersion,
        state: &mut GraphExecution,
        version: &mut i64,
        reports: &[Report],
        running: &mut Running,
    ) -> Result<(), CommandError> {
        for _ in 0..MAX_REDECIDE {
            if state.status.is_some_and(ExecutionStatus::is_final) {
                return Ok(());
            }
            let mut working = state.clone();
            let at = Utc::now();
            let recording = running.recording.as_ref().map(|recording| &recording.run);
            let events: Vec<ExecutionEvent> =
                reports.iter().flat_map(|report| decide_report(graph, &mut working, report, recording, at)).collect();
            let charges = reports.iter().filter_map(|report| tokens_of(&working, report)).collect();
            if self.advance(graph, state, version, (working, events, charges), running).await? {
                return Ok(());
            }
        }
        Err(CommandError::Conflict)
    }

    /// Append `decided`: events decided on `state`, which leave it as the
    /// working state given, and their charges. With them go the starts of
    /// every node execution then queued and not running, each charged in
    /// the same transaction the first time it starts, and the run's end or
    /// pause when nothing is left; then their blocks start. One commit
    /// carries a node's outputs, the starts of the nodes they fed, and
    /// their charges. False when another writer moved the run first:
    /// nothing was appended, and `state` holds what it wrote.
    async fn advance(
        &self,
        graph: &domain::graph::GraphVersion,
        state: &mut GraphExecution,
        version: &mut i64,
        decided: (GraphExecution, Vec<ExecutionEvent>, Vec<Charge>),
        running: &mut Running,
    ) -> Result<bool, CommandError> {
        let (mut working, mut events, mut charges) = decided;
        let decided = (events.len(), charges.len());
        let at = Utc::now();
        let mut started = Vec::new();
        // Blocks that can run here do, and what they queue starts in the
        // same append (see `inline`); not in a replay, which checks each
        // node against its recording as its task reports.
        let mut inline_left = if running.recording.is_none() && running.inline { inline::INLINE_PER_APPEND } else { 0 };
        running.inline = true;
        let mut inlined = false;
        loop {
            let before = started.len();
            let out = (&mut events, &mut charges, &mut started);
            if self.start_ready(graph, &mut working, at, out, running, decided.1) {
                break;
            }
            let mut ran = false;
            for launch in started.split_off(before) {
                let reports = (inline_left > 0)
                    .then(|| context(&working, running, launch.node_exec_id, at, None))
                    .and_then(|ctx| inline::run(&launch.block_id, &launch.input, &ctx));
                let Some(reports) = reports else {
                    started.push(launch);
                    continue;
                };
                inline_left -= 1;
                (ran, inlined) = (true, true);
                for report in &reports {
                    events.extend(decide_report(graph, &mut working, report, None, at));
                }
            }
            if !ran {
                break;
            }
        }
        events.extend(engine::settle(&working, at));
        match self.commands.append_charged_run_step(state, *version, &events, &charges).await? {
            StepOutcome::Appended(next) => {
                *state = working;
                *version = next;
            }
            StepOutcome::Moved => {
                self.commands.catch_up_execution(state, version).await?;
                return Ok(false);
            }
            // Blocks run here may have charged nodes their own starts could
            // not: record what was decided, and start the nodes again with
            // each block in its task, so the credits left go node by node.
            StepOutcome::Refused { .. } if inlined => {
                running.inline = false;
                events.truncate(decided.0);
                charges.truncate(decided.1);
                return match decided.0 {
                    0 => Ok(true),
                    _ => self.append_charging(state, version, events, &charges).await,
                };
            }
            // Record what was decided without the starts; the refused node
            // is refused on its own next, with nothing else in its append.
            StepOutcome::Refused { .. } if decided.0 > 0 => {
                events.truncate(decided.0);
                charges.truncate(decided.1);
                return self.append_charging(state, version, events, &charges).await;
            }
            StepOutcome::Refused { node_exec_id, error } => {
                self.refuse(state, version, node_exec_id, error.to_string()).await?;
                return Ok(true);
            }
        }
        for launch in started {
            self.launch(state, running, launch);
        }
        Ok(true)
    }

    /// Start the node executions now startable in `working`: their start
    /// events, the first start's charge, and how each block is to run (in
    /// `started`). True when a replay diverged instead: the run ends, and
    /// the charges past `kept_charges` and the starts are dropped.
    fn start_ready(
        &self,
        graph: &domain::graph::GraphVersion,
        working: &mut GraphExecution,
        at: chrono::DateTime<Utc>,
        (events, charges, started): (&mut Vec<ExecutionEvent>, &mut Vec<Charge>, &mut Vec<Launch>),
        running: &Running,
        kept_charges: usize,
    ) -> bool {
        let ready: Vec<Uuid> = startable(working, &running.in_flight).collect();
        for node_exec_id in ready {
            if let Some(failed) = engine::give_up_on(graph, working, node_exec_id, self.max_starts, at) {
                tracing::warn!(%node_exec_id, "a node whose runs kept stopping the process is failed");
                events.extend(failed);
                continue;
            }
            let Some(node) = working.node_execution(node_exec_id) else { continue };
            let (block_id, input, first) = (node.block_id.clone(), node.input_data.clone(), node.starts == 0);
            let plan = match &running.recording {
                Some(recording) => replay::plan_start(recording, working, node_exec_id),
                None => Start::Live,
            };
            let replayed = match plan {
                Start::Diverged(reason) => {
                    // The run ends here: what this step started never runs
                    // (its nodes end with the run) and is not charged.
                    events.extend(replay::diverge(working, node_exec_id, reason, at));
                    started.clear();
                    charges.truncate(kept_charges);
                    return true;
                }
                // Recorded: nothing is called out, nothing charged.
                Start::Replay(recorded) => {
                    let calls = recorded.requests.iter().cloned().zip(recorded.answers.iter().cloned()).collect();
                    Some((recorded.node_exec_id, recorded.start_time.unwrap_or(at), calls))
                }
                // A node that began before was charged in the append that
                // began it: a takeover or a review's answer starts it again
                // for free.
                Start::Live => {
                    if first {
                        charges.push(charge_of(working, node_exec_id, &block_id, &input));
                    }
                    None
                }
            };
            let from = replayed.as_ref().map(|(id, ..)| *id);
            events.extend(engine::start_replayed(working, node_exec_id, from, at));
            started.push(Launch { node_exec_id, block_id, input, replayed });
        }

        false
    }

    /// What a replay or fork of `of` re-runs: the recorded run, the nodes
    /// that run live, and, on another graph version than the recorded one,
    /// which recorded node each node stands for.
    async fn recording(
        &self,
        state: &GraphExecution,
        of: &replay::ReplayOf,
        graph: &domain::graph::GraphVersion,
    ) -> Result<replay::Recording, CommandError> {
        let (run, _) = self.commands.load_execution(of.execution_id).await?;
        let nodes = match run.graph_version == state.graph_version {
            true => Default::default(),
            false => match self.commands.graph_of_run(&run).await? {
                Some(recorded) => replay::node_map(graph, &recorded),
                None => Default::default(),
            },
        };
        Ok(replay::Recording { live: of.live_nodes(graph), nodes, run })
    }

    /// Run a started node's block in a task of its own.
    fn launch(&self, state: &GraphExecution, running: &mut Running, launch: Launch) {
        let Launch { node_exec_id, block_id, input, replayed } = launch;
        running.in_flight.insert(node_exec_id);
        let (recorded_as, now, recording) = match replayed {
            Some((id, began, calls)) => (Some(id), began, Some(calls)),
            None => (None, Utc::now(), None),
        };
        let ctx = context(state, running, node_exec_id, now, recorded_as);
        let task = BlockTask {
            commands: self.commands.clone(),
            outside: self.outside.clone(),
            reports: running.reports.clone(),
            stop: running.stop.clone(),
            recording,
        };
        let answers = state.node_execution(node_exec_id).map(|n| n.answers.clone()).unwrap_or_default();
        let task = tokio::spawn(task.run(block_id.clone(), input, ctx, answers));
        tokio::spawn(fail_on_panic(task, running.reports.clone(), node_exec_id, block_id));
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

    /// Append `events` at `version` and fold them into `state`; when
    /// another writer moved the stream first (a stop, a share), fold in
    /// what it wrote instead and answer false, so the caller decides again.
    async fn append(
        &self,
        state: &mut GraphExecution,
        version: &mut i64,
        events: Vec<ExecutionEvent>,
    ) -> Result<bool, CommandError> {
        self.append_charging(state, version, events, &[]).await
    }

    /// [`append`](Self::append) with charges that are never refused (a
    /// model call's tokens).
    async fn append_charging(
        &self,
        state: &mut GraphExecution,
        version: &mut i64,
        events: Vec<ExecutionEvent>,
        charges: &[Charge],
    ) -> Result<bool, CommandError> {
        match self.commands.append_charged_run_step(state, *version, &events, charges).await? {
            StepOutcome::Appended(next) => {
                for event in &events {
                    state.evolve(event);
                }
                *version = next;
                Ok(true)
            }
            StepOutcome::Moved | StepOutcome::Refused { .. } => {
                self.commands.catch_up_execution(state, version).await?;
                Ok(false)
            }
        }
    }
}

/// The node executions of `state` to start now: queued, not running here,
/// as many as there is room for.
fn startable<'a>(state: &'a GraphExecution, in_flight: &'a HashSet<Uuid>) -> impl Iterator<Item = Uuid> + 'a {
    state
        .node_executions
        .iter()
        .filter(|n| n.status == ExecutionStatus::Queued && !in_flight.contains(&n.node_exec_id))
        .take(MAX_PARALLEL_NODES.saturating_sub(in_flight.len()))
        .map(|n| n.node_exec_id)
}

/// What a block of the run sees of it, started at `now` (a replayed one at
/// its recorded start, as the node it re-runs).
fn context(
    state: &GraphExecution,
    running: &Running,
    node_exec_id: Uuid,
    now: chrono::DateTime<Utc>,
    recorded_as: Option<Uuid>,
) -> BlockContext {
    BlockContext {
        user_id: state.user_id,
        execution_id: state.id.unwrap_or_default(),
        graph_id: state.graph_id,
        node_exec_id,
        user_timezone: running.user_timezone.clone(),
        now,
        recorded_as,
    }
}

/// What a node execution's charges are for.
fn usage_of(state: &GraphExecution, node_exec_id: Uuid) -> Usage {
    let node = state.node_execution(node_exec_id);
    Usage {
        graph_exec_id: state.id.unwrap_or_default(),
        graph_id: state.graph_id,
        node_exec_id,
        node_id: node.map(|n| n.node_id.clone()).unwrap_or_default(),
        block_id: node.map(|n| n.block_id.clone()).unwrap_or_default(),
    }
}

/// What a node execution is charged when it first starts: its block's cost
/// for its input.
fn charge_of(state: &GraphExecution, node_exec_id: Uuid, block_id: &str, input: &Map<String, Value>) -> Charge {
    let block_cost = domain::blocks::find(block_id).map_or(0, |b| b.run_cost(input));
    Charge::Start { usage: usage_of(state, node_exec_id), block_cost }
}

/// The tokens a model's answer reports, as a charge.
fn tokens_of(state: &GraphExecution, report: &Report) -> Option<Charge> {
    let Report::Answered { node_exec_id, answer, replayed: false, .. } = report else { return None };
    let tokens = domain::execution::tokens_of(answer).filter(|t| *t > 0)?;
    Some(Charge::Tokens { usage: usage_of(state, *node_exec_id), tokens })
}
