use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::aggregate::EventType;

/// Facts about a schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
// Events live one at a time (decoded, folded, dropped): boxing the creation's
// payload would cost an allocation for nothing.
#[allow(clippy::large_enum_variant)]
pub enum ScheduleEvent {
    /// A user scheduled runs of a graph version.
    ScheduleCreated {
        /// The schedule id.
        schedule_id: Uuid,
        /// Whose runs (and credits).
        user_id: Uuid,
        /// The graph.
        graph_id: Uuid,
        /// The version every fire runs.
        graph_version: i32,
        /// The user's name for it.
        name: String,
        /// Five-field crontab expression, as given.
        cron: String,
        /// IANA time zone the expression is read in.
        timezone: String,
        /// Graph inputs of every run.
        inputs: Map<String, Value>,
        /// Credentials per credentials field, as given.
        credentials: Map<String, Value>,
        /// The first fire.
        next_run_time: Option<DateTime<Utc>>,
        /// When.
        at: DateTime<Utc>,
    },
    /// A fire started a run.
    ScheduleFired {
        /// The cron slot that fired.
        fire_time: DateTime<Utc>,
        /// The run it queued.
        execution_id: Uuid,
        /// The first slot skipped because nobody fired it in time (slots
        /// from it up to `fire_time` were folded into this one fire).
        missed_since: Option<DateTime<Utc>>,
        /// The slot after `fire_time`, if the expression matches again.
        next_run_time: Option<DateTime<Utc>>,
        /// When it was recorded.
        at: DateTime<Utc>,
    },
    /// A fire was due but its run could not be queued (the graph is gone,
    /// the inputs no longer fit, no credits): the schedule moves on.
    ScheduleFireFailed {
        /// The cron slot that was due.
        fire_time: DateTime<Utc>,
        /// Why no run was queued.
        reason: String,
        /// As in `ScheduleFired`.
        missed_since: Option<DateTime<Utc>>,
        /// The slot after `fire_time`.
        next_run_time: Option<DateTime<Utc>>,
        /// When it was recorded.
        at: DateTime<Utc>,
    },
    /// The schedule was deleted; it never fires again.
    ScheduleDeleted {
        /// Who deleted it.
        user_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
}

impl EventType for ScheduleEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::ScheduleCreated { .. } => "ScheduleCreated",
            Self::ScheduleFired { .. } => "ScheduleFired",
            Self::ScheduleFireFailed { .. } => "ScheduleFireFailed",
            Self::ScheduleDeleted { .. } => "ScheduleDeleted",
        }
    }
}
