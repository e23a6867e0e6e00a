//! Cron schedules: creating and deleting them for a user, and firing a due
//! one for the scheduler. A fire appends the schedule's `ScheduleFired` at
//! its expected version together with the run's `ExecutionQueued`, in one
//! append: of several instances deciding the same fire, one wins and the
//! others see a conflict.

use chrono::{DateTime, Utc};
use domain::execution::engine;
use domain::quota::QuotaKind;
use domain::schedule::{Schedule, ScheduleCommand};
use domain::user::{User, TIMEZONE_NOT_SET};
use eventlog::EventStore;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::execution::runnable_version;
use super::quota::Place;
use super::{Commands, RunRequest};
use crate::context::CommandContext;
use crate::error::CommandError;
use crate::uow::{retry_on_conflict, Outcome, UnitOfWork};

/// What to schedule.
#[derive(Debug, Clone)]
pub struct ScheduleRequest {
    /// Whose runs.
    pub user_id: Uuid,
    /// The graph.
    pub graph_id: Uuid,
    /// The version; `None`: the active one (else the latest).
    pub graph_version: Option<i32>,
    /// The user's name for it.
    pub name: String,
    /// Five-field crontab expression.
    pub cron: String,
    /// IANA time zone; `None`: the user's own, else UTC.
    pub timezone: Option<String>,
    /// Graph inputs of every run.
    pub inputs: Map<String, Value>,
    /// Credentials per credentials field.
    pub credentials: Map<String, Value>,
}

/// What firing a schedule came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FireOutcome {
    /// Nothing was due (or the schedule is deleted or unknown).
    NotDue,
    /// A run was queued for the slot.
    Fired {
        /// The slot.
        fire_time: DateTime<Utc>,
        /// The run.
        execution_id: Uuid,
    },
    /// The slot was due but no run could be queued; recorded, and the
    /// schedule moved on.
    Failed {
        /// The slot.
        fire_time: DateTime<Utc>,
        /// Why.
        reason: String,
    },
    /// Another instance recorded this fire first.
    Lost,
}

impl<S: EventStore> Commands<S> {
    /// Create a schedule of runs of a graph the user may run, after checking
    /// that its inputs would start a run. Answers the schedule as created.
    pub async fn create_schedule(
        &self,
        ctx: &CommandContext,
        request: ScheduleRequest,
    ) -> Result<(Outcome, Schedule), CommandError> {
        retry_on_conflict(|| async {
            let mut uow = UnitOfWork::new(&self.store, ctx);
            let r = request.clone();
            let saved = runnable_version(&mut uow, r.user_id, r.graph_id, r.graph_version).await?;
            let now = self.now();
            // A schedule whose every fire would be refused is refused now.
            engine::queue_run(&saved, Uuid::nil(), r.user_id, r.inputs.clone(), None, now)?;
            let timezone = match r.timezone.filter(|tz| !tz.trim().is_empty()) {
                Some(tz) => tz,
                None => {
                    let (user, _) = uow.load::<User>(r.user_id).await?;
                    let tz = user.timezone;
                    if tz.is_empty() || tz == TIMEZONE_NOT_SET {
                        "UTC".to_owned()
                    } else {
                        tz
                    }
                }
            };
            let schedule_id = ctx.new_id("schedule");
            let (mut state, version) = uow.load::<Schedule>(schedule_id).await?;
            let events = state.decide(ScheduleCommand::CreateSchedule {
                schedule_id,
                user_id: r.user_id,
                graph_id: r.graph_id,
                graph_version: saved.version,
                name: r.name,
                cron: r.cron,
                timezone,
                inputs: r.inputs,
                credentials: r.credentials,
                now,
            })?;
            if !events.is_empty() {
                self.move_place(&mut uow, r.user_id, (QuotaKind::Schedule, schedule_id), Place::Take).await?;
            }
            uow.record::<Schedule>(schedule_id, version, &events)?;
            let outcome = uow.commit().await?;
            for event in &events {
                domain::Aggregate::evolve(&mut state, event);
            }
            Ok((outcome, state))
        })
        .await
    }

    /// Delete one of the user's schedules.
    pub async fn delete_schedule(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        schedule_id: Uuid,
    ) -> Result<Outcome, CommandError> {
        retry_on_conflict(|| async {
            let mut uow = UnitOfWork::new(&self.store, ctx);
            let (schedule, version) = uow.load::<Schedule>(schedule_id).await?;
            let events = schedule.decide(ScheduleCommand::DeleteSchedule { user_id, now: self.now() })?;
            uow.record::<Schedule>(schedule_id, version, &events)?;
            self.move_place(&mut uow, user_id, (QuotaKind::Schedule, schedule_id), Place::GiveBack).await?;
            uow.commit().await
        })
        .await
    }

    /// Fire a schedule if a slot is due now (see `domain::schedule::DueFire`
    /// for which slot). The run's id derives from the schedule and the slot,
    /// so every instance deciding this fire decides the same run, and only
    /// one append of it can succeed. Not retried: a loser has nothing to do.
    pub async fn fire_schedule(&self, schedule_id: Uuid) -> Result<FireOutcome, CommandError> {
        let now = self.now();
        let (schedule, version) = self.read::<Schedule>(schedule_id).await?;
        let (Some(due), Some(user_id)) = (schedule.due(now), schedule.user_id) else { return Ok(FireOutcome::NotDue) };
        let key = format!("schedule/{schedule_id}/{}", due.fire_time.to_rfc3339());
        let ctx = CommandContext::keyed(user_id, key);
        let mut uow = UnitOfWork::new(&self.store, &ctx);
        let run = if self.balance(user_id).await? <= 0 {
            Err("Insufficient balance to run the agent".to_owned())
        } else {
            let request = RunRequest {
                user_id,
                graph_id: schedule.graph_id,
                version: Some(schedule.graph_version),
                inputs: schedule.inputs.clone(),
                preset_id: None,
                credentials: schedule.credentials.clone(),
            };
            match self.queue_run(&mut uow, request).await {
                Ok(_) => Ok(ctx.new_id("execution")),
                Err(e @ (CommandError::Graph(_) | CommandError::Run(_) | CommandError::Library(_))) => {
                    Err(e.to_string())
                }
                Err(e) => return Err(e),
            }
        };
        let fire_time = due.fire_time;
        let events = schedule.decide(ScheduleCommand::RecordFire { due, run: run.clone(), now })?;
        uow.record::<Schedule>(schedule_id, version, &events)?;
        match uow.commit().await {
            Ok(outcome) if outcome.appended > 0 => Ok(match run {
                Ok(execution_id) => FireOutcome::Fired { fire_time, execution_id },
                Err(reason) => FireOutcome::Failed { fire_time, reason },
            }),
            // Stored already under the same event ids: another instance's.
            Ok(_) | Err(CommandError::Conflict) => Ok(FireOutcome::Lost),
            Err(e) => Err(e),
        }
    }

    /// A schedule's state as the log has it (`None` unless it is `user_id`'s
    /// and not deleted): what a response shows before the read model has it.
    pub async fn schedule_from_log(&self, user_id: Uuid, schedule_id: Uuid) -> Result<Option<Schedule>, CommandError> {
        let (schedule, _) = self.read::<Schedule>(schedule_id).await?;
        Ok(schedule.is_visible_to(user_id).then_some(schedule))
    }
}
