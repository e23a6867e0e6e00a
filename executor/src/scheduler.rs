//! The scheduler: a background loop that fires due cron schedules. It finds
//! candidates in the schedules read model and lets `Commands::fire_schedule`
//! decide against each schedule's stream, so a read model that lags only
//! delays a fire; it never doubles one. With several instances, every one
//! looks, and the expected version of the schedule's stream lets exactly
//! one of them append each fire (the others count a lost race).
//!
//! Missed fires (every instance down, or behind, when slots came): each
//! schedule fires once for its most recent due slot and skips the older
//! ones, recording the first one skipped (`missed_since`); see
//! `domain::schedule::DueFire`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use commands::clock::Clock;
use commands::services::{Commands, FireOutcome};
use commands::PgEventStore;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How the scheduler runs.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// How often it looks for due schedules.
    pub poll: Duration,
    /// Due schedules fired per look, round-robin across users.
    pub batch: i64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self { poll: Duration::from_secs(1), batch: 100 }
    }
}

/// What the scheduler of this instance has done, for operators.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SchedulerStatus {
    /// Looks for due schedules completed.
    pub ticks: u64,
    /// Fires that queued a run here.
    pub fired: u64,
    /// Fires recorded here without a run (graph gone, inputs refused, no
    /// credits).
    pub failed: u64,
    /// Fires another instance recorded first.
    pub lost: u64,
    /// When the last look ended.
    pub last_tick_at: Option<DateTime<Utc>>,
    /// The last failure of the loop or of a fire.
    pub last_error: Option<String>,
    /// When it happened.
    pub last_error_at: Option<DateTime<Utc>>,
}

/// Due schedules now, across every instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Schedules whose next fire has come.
    pub due: i64,
    /// How long the most overdue of them has waited, in milliseconds.
    pub lag_ms: i64,
}

/// The scheduler of one instance.
#[derive(Clone)]
pub struct Scheduler {
    commands: Arc<Commands<PgEventStore>>,
    clock: Clock,
    config: Arc<SchedulerConfig>,
    status: Arc<Mutex<SchedulerStatus>>,
}

impl Scheduler {
    /// A scheduler firing through `commands`, reading the time from `clock`
    /// (the one `commands` decides with).
    pub fn new(commands: Arc<Commands<PgEventStore>>, clock: Clock, config: SchedulerConfig) -> Self {
        Self { commands, clock, config: Arc::new(config), status: Arc::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SchedulerStatus> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What it has done.
    pub fn status(&self) -> SchedulerStatus {
        self.lock().clone()
    }

    fn record_error(&self, error: &dyn std::fmt::Display) {
        tracing::error!(%error, "scheduler");
        let mut status = self.lock();
        status.last_error = Some(error.to_string());
        status.last_error_at = Some(Utc::now());
    }

    /// Look for due schedules every poll interval until `stop`.
    pub fn spawn(&self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = this.tick().await {
                    this.record_error(&e);
                }
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(this.config.poll) => {}
                }
            }
        })
    }

    /// Fire due schedules, up to the batch, round-robin across users: each
    /// user's most overdue first, then each user's second, and so on, so one
    /// user's many schedules (failing ones too) cannot hold back another's.
    async fn tick(&self) -> Result<(), sqlx::Error> {
        let due: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM (SELECT id, next_run_time, \
               row_number() OVER (PARTITION BY user_id ORDER BY next_run_time, id) AS turn \
               FROM rm_schedules WHERE next_run_time <= $1) due \
             ORDER BY turn, next_run_time, id LIMIT $2",
        )
        .bind(self.clock.now())
        .bind(self.config.batch)
        .fetch_all(self.commands.store().pool())
        .await?;
        for schedule_id in due {
            match self.commands.fire_schedule(schedule_id).await {
                Ok(FireOutcome::Fired { fire_time, execution_id }) => {
                    tracing::info!(%schedule_id, %fire_time, %execution_id, "schedule fired");
                    self.lock().fired += 1;
                }
                Ok(FireOutcome::Failed { fire_time, reason }) => {
                    tracing::warn!(%schedule_id, %fire_time, %reason, "schedule fired without a run");
                    self.lock().failed += 1;
                }
                Ok(FireOutcome::Lost) => self.lock().lost += 1,
                Ok(FireOutcome::NotDue) => {}
                Err(e) => self.record_error(&format!("schedule {schedule_id}: {e}")),
            }
        }
        let mut status = self.lock();
        status.ticks += 1;
        status.last_tick_at = Some(self.clock.now());
        Ok(())
    }

    /// The due schedules now and how late the most overdue is.
    pub async fn backlog(&self) -> Result<Backlog, sqlx::Error> {
        let now = self.clock.now();
        let (due, oldest): (i64, Option<DateTime<Utc>>) =
            sqlx::query_as("SELECT count(*), min(next_run_time) FROM rm_schedules WHERE next_run_time <= $1")
                .bind(now)
                .fetch_one(self.commands.store().pool())
                .await?;
        Ok(Backlog { due, lag_ms: oldest.map_or(0, |t| (now - t).num_milliseconds().max(0)) })
    }
}
