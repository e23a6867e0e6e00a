//! The Schedule aggregate: a user's cron schedule of runs of one graph
//! version. Its stream also records every fire, so two instances deciding
//! the same fire at once cannot both append it.

mod command;
mod cron;
mod event;

pub use command::{failure_backoff, DueFire, ScheduleCommand};
pub use cron::{in_zone, CronSpec};
pub use event::ScheduleEvent;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::aggregate::Aggregate;

/// Why a schedule command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// No such schedule for this user.
    #[error("Schedule not found")]
    NotFound,
    /// The cron expression does not parse.
    #[error("Invalid cron expression '{cron}': {reason}")]
    InvalidCron {
        /// As given.
        cron: String,
        /// What is wrong.
        reason: String,
    },
    /// Not an IANA time zone name.
    #[error("Invalid timezone '{0}': not an IANA time zone name")]
    InvalidTimezone(String),
    /// The expression parses but names no time that ever comes.
    #[error("Cron expression '{0}' never fires")]
    NeverFires(String),
}

/// State of one schedule, folded from its stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schedule {
    /// Set once created.
    pub id: Option<Uuid>,
    /// Whose runs.
    pub user_id: Option<Uuid>,
    /// The graph.
    pub graph_id: Uuid,
    /// The version every fire runs.
    pub graph_version: i32,
    /// The user's name for it.
    pub name: String,
    /// Five-field crontab expression.
    pub cron: String,
    /// IANA time zone of the expression.
    pub timezone: String,
    /// Graph inputs of every run.
    pub inputs: Map<String, Value>,
    /// Credentials, as given.
    pub credentials: Map<String, Value>,
    /// The slot it waits for; `None` once the expression matches no more.
    pub next_run_time: Option<DateTime<Utc>>,
    /// The last slot that fired (or failed to).
    pub last_fire_time: Option<DateTime<Utc>>,
    /// Fires in a row that failed; a fire that queues a run resets it.
    pub failures_in_a_row: u32,
    /// Deleted: never fires again.
    pub deleted: bool,
    /// When it was created.
    pub created_at: Option<DateTime<Utc>>,
}

impl Schedule {
    /// The schedule exists, is not deleted and is `user`'s.
    pub fn is_visible_to(&self, user: Uuid) -> bool {
        self.id.is_some() && !self.deleted && self.user_id == Some(user)
    }
}

impl Aggregate for Schedule {
    type Event = ScheduleEvent;
    const STREAM_PREFIX: &'static str = "schedule";

    fn evolve(&mut self, event: &ScheduleEvent) {
        match event {
            ScheduleEvent::ScheduleCreated {
                schedule_id,
                user_id,
                graph_id,
                graph_version,
                name,
                cron,
                timezone,
                inputs,
                credentials,
                next_run_time,
                at,
            } => {
                *self = Self {
                    id: Some(*schedule_id),
                    user_id: Some(*user_id),
                    graph_id: *graph_id,
                    graph_version: *graph_version,
                    name: name.clone(),
                    cron: cron.clone(),
                    timezone: timezone.clone(),
                    inputs: inputs.clone(),
                    credentials: credentials.clone(),
                    next_run_time: *next_run_time,
                    last_fire_time: None,
                    failures_in_a_row: 0,
                    deleted: false,
                    created_at: Some(*at),
                };
            }
            ScheduleEvent::ScheduleFired { fire_time, next_run_time, .. } => {
                self.last_fire_time = Some(*fire_time);
                self.next_run_time = *next_run_time;
                self.failures_in_a_row = 0;
            }
            ScheduleEvent::ScheduleFireFailed { fire_time, next_run_time, .. } => {
                self.last_fire_time = Some(*fire_time);
                self.next_run_time = *next_run_time;
                self.failures_in_a_row = self.failures_in_a_row.saturating_add(1);
            }
            ScheduleEvent::ScheduleDeleted { .. } => self.deleted = true,
        }
    }
}

#[cfg(test)]
mod tests;
