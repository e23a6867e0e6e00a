//! The executor: runs queued graph executions with AutoGPT's semantics. A
//! process manager, not a writer of read models: it finds runs waiting for
//! a worker, claims each by appending to the run's stream with the expected
//! version (one claim wins, however many instances look), and records every
//! step as events decided by the engine of `domain::execution`.
//!
//! Within a run, node executions run side by side as they become ready;
//! runs run side by side, up to the pool's size, and at most `per_user` of
//! one user's at once across every instance (a run is only started under a
//! lease, and a user's live leases are capped).

pub mod blocks;
mod decide;
mod inline;
mod lease;
pub mod net;
pub mod outside;
pub mod sandbox;
pub mod scheduler;
mod task;
mod template;
mod worker;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use commands::services::Commands;
use commands::PgEventStore;
use sqlx::PgPool;
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use scheduler::{Scheduler, SchedulerConfig, SchedulerStatus};
pub use worker::Finished;

/// Most requests to the outside world one block may make in one node
/// execution (or one direct run of the block).
pub const MAX_REQUESTS: usize = 32;

/// How the executor runs.
#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// Runs carried out at once by this instance.
    pub workers: usize,
    /// Runs of one user carried out at once by this instance; the others
    /// stay queued.
    pub per_user: usize,
    /// How often it looks for queued runs when nothing wakes it.
    pub poll: Duration,
    /// This worker's name in claims.
    pub worker_id: String,
    /// How long a worker's hold on a run lasts without renewal: after it,
    /// another worker takes the run over (renewed every third of it).
    pub lease: Duration,
    /// How many times a node execution may begin to run without ending (its
    /// process went away each time) before it is failed instead of started
    /// again: a node that takes the process down must not do so forever.
    pub max_node_starts: u32,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        Self {
            workers: 10,
            per_user: 25,
            poll: Duration::from_millis(250),
            worker_id: format!("worker-{}", Uuid::new_v4().simple()),
            lease: Duration::from_secs(15),
            max_node_starts: 3,
        }
    }
}

/// What the executor is doing, for operators.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ExecutorStatus {
    /// Runs being carried out by this instance.
    pub running: usize,
    /// Runs this instance carried to an end.
    pub finished: u64,
    /// Claims lost to another worker.
    pub claim_conflicts: u64,
    /// The last failure of a run or of the loop, and when.
    pub last_error: Option<String>,
    /// When the last failure happened.
    pub last_error_at: Option<DateTime<Utc>>,
}

#[derive(Default)]
struct State {
    running: HashMap<Uuid, Uuid>,
    /// Set once its loop runs: what stops the workers it starts.
    stop: Option<CancellationToken>,
    status: ExecutorStatus,
    /// When due reviews were last looked for.
    reviews_swept: Option<std::time::Instant>,
}

/// How often an executor looks for reviews whose time is up: dispatch runs
/// on every move of the executions model, far more often than timeouts
/// need (they are whole seconds).
const REVIEW_SWEEP: Duration = Duration::from_secs(1);

/// Whether [`Executor::start`] started a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Started {
    /// It did.
    Worker,
    /// The run is running here already, or its user has as many as allowed.
    Skipped,
    /// Every slot is taken.
    Full,
}

/// The executor of one instance.
#[derive(Clone)]
pub struct Executor {
    commands: Arc<Commands<PgEventStore>>,
    config: Arc<ExecutorConfig>,
    state: Arc<Mutex<State>>,
    slots: Arc<Semaphore>,
    outside: outside::Outside,
}

impl Executor {
    /// An executor appending through `commands`.
    pub fn new(commands: Arc<Commands<PgEventStore>>, config: ExecutorConfig) -> Self {
        let slots = Arc::new(Semaphore::new(config.workers.max(1)));
        Self { commands, config: Arc::new(config), state: Arc::default(), slots, outside: outside::Outside::default() }
    }

    /// Its door to the outside world.
    pub fn outside(&self) -> &outside::Outside {
        &self.outside
    }

    /// The same executor calling the outside world through `outside`.
    pub fn with_outside(mut self, outside: outside::Outside) -> Self {
        self.outside = outside;
        self
    }

    fn pool(&self) -> &PgPool {
        self.commands.store().pool()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What it is doing now.
    pub fn status(&self) -> ExecutorStatus {
        let state = self.lock();
        ExecutorStatus { running: state.running.len(), ..state.status.clone() }
    }

    fn record_error(&self, error: &dyn std::fmt::Display) {
        tracing::error!(%error, "executor");
        let mut state = self.lock();
        state.status.last_error = Some(error.to_string());
        state.status.last_error_at = Some(Utc::now());
    }

    /// Look for queued runs whenever `wake` moves (the executions read model
    /// progressing) or the poll interval passes, until `stop`.
    pub fn spawn(
        &self,
        mut wake: watch::Receiver<eventlog::GlobalPosition>,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        self.lock().stop = Some(stop.clone());
        tokio::spawn(async move {
            loop {
                if let Err(e) = this.dispatch(&stop).await {
                    this.record_error(&e);
                }
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = wake.changed() => {}
                    _ = tokio::time::sleep(this.config.poll) => {}
                }
            }
        })
    }

    /// Start a worker for each queued run, and each run whose worker went
    /// silent, that there is room for.
    async fn dispatch(&self, stop: &CancellationToken) -> Result<(), sqlx::Error> {
        self.time_out_reviews().await?;
        for (execution_id, user_id, takeover) in
            lease::candidates(self.pool(), self.config.lease, self.config.per_user).await?
        {
            if self.start((execution_id, user_id), takeover, stop) == Started::Full {
                break;
            }
        }
        Ok(())
    }

    /// Take a run this instance has just queued at once, without waiting
    /// for the executions read model to show it to the loop: its lease and
    /// its claim decide, as for any run, and one there is no room for now
    /// stays queued for whichever instance finds it next. Nothing happens
    /// before the loop runs (an instance without workers never takes one).
    pub fn offer(&self, execution_id: Uuid, user_id: Uuid) {
        let Some(stop) = self.lock().stop.clone() else { return };
        self.start((execution_id, user_id), false, &stop);
    }

    /// Start a worker for `run` unless this instance runs it already, runs
    /// as many of its user's as allowed, or has no free slot.
    fn start(&self, (execution_id, user_id): (Uuid, Uuid), takeover: bool, stop: &CancellationToken) -> Started {
        let Ok(permit) = self.slots.clone().try_acquire_owned() else { return Started::Full };
        {
            // Looked at and taken under one lock: the loop and an offer may
            // start the same run at once.
            let mut state = self.lock();
            if state.running.contains_key(&execution_id)
                || state.running.values().filter(|u| **u == user_id).count() >= self.config.per_user
            {
                return Started::Skipped;
            }
            state.running.insert(execution_id, user_id);
        }
        let this = self.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let result = this.hold((execution_id, user_id), takeover, &stop).await;
            drop(permit);
            let mut state = this.lock();
            state.running.remove(&execution_id);
            match result {
                Ok(Finished::Ended(_)) => state.status.finished += 1,
                Ok(Finished::NotClaimed | Finished::Lost) => state.status.claim_conflicts += 1,
                Ok(Finished::Interrupted | Finished::Deferred | Finished::Paused) => {}
                Err(e) => {
                    drop(state);
                    this.record_error(&format!("run {execution_id}: {e}"));
                }
            }
        });
        Started::Worker
    }

    /// Hold a run under a lease while a worker runs it: renew the lease,
    /// stand down when it is lost, give it up at the end.
    async fn hold(&self, run: (Uuid, Uuid), takeover: bool, stop: &CancellationToken) -> Result<Finished, String> {
        let (store, me, lease) = (self.commands.store(), self.config.worker_id.as_str(), self.config.lease);
        let execution_id = run.0;
        match lease::acquire(store, run, me, lease, self.config.per_user).await.map_err(|e| e.to_string())? {
            lease::Grant::Granted => {}
            lease::Grant::Held => return Ok(Finished::NotClaimed),
            lease::Grant::Capped => return Ok(Finished::Deferred),
        }
        let held = stop.child_token();
        let renewing = {
            let (store, me, held) = (store.clone(), me.to_owned(), held.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = held.cancelled() => break,
                        _ = tokio::time::sleep(lease / 3) => {}
                    }
                    if !matches!(lease::renew(&store, execution_id, &me, lease).await, Ok(true)) {
                        tracing::warn!(%execution_id, "lease lost: standing down");
                        held.cancel();
                        break;
                    }
                }
            })
        };
        let worker = worker::Worker {
            commands: &self.commands,
            worker_id: me,
            stop: &held,
            outside: &self.outside,
            max_starts: self.config.max_node_starts,
        };
        let result = worker.run(execution_id, takeover).await.map_err(|e| e.to_string());
        let lost = held.is_cancelled() && !stop.is_cancelled();
        held.cancel();
        let _ = renewing.await;
        if let Err(e) = lease::release(store, execution_id, me).await {
            tracing::warn!(%execution_id, error = %e, "could not release lease");
        }
        match result {
            Ok(Finished::Interrupted) if lost => Ok(Finished::Lost),
            other => other,
        }
    }

    /// Decide the reviews whose time is up (any instance may: the run's
    /// expected version lets one decision through).
    async fn time_out_reviews(&self) -> Result<(), sqlx::Error> {
        {
            let mut state = self.lock();
            if state.reviews_swept.is_some_and(|at| at.elapsed() < REVIEW_SWEEP) {
                return Ok(());
            }
            state.reviews_swept = Some(std::time::Instant::now());
        }
        let due: Vec<Uuid> = sqlx::query_scalar(
            "SELECT DISTINCT execution_id FROM rm_reviews WHERE status = 'WAITING' AND timeout_at <= now() LIMIT 50",
        )
        .fetch_all(self.pool())
        .await?;
        for execution_id in due {
            if let Err(e) = self.commands.time_out_reviews(execution_id).await {
                self.record_error(&format!("review timeout of run {execution_id}: {e}"));
            }
        }
        Ok(())
    }

    /// Runs this instance is carrying out.
    pub fn running(&self) -> HashSet<Uuid> {
        self.lock().running.keys().copied().collect()
    }
}
