use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{CronSpec, Schedule, ScheduleError, ScheduleEvent};

/// What a caller (or the scheduler) may ask of a schedule.
#[derive(Debug, Clone, PartialEq)]
// A command is built, decided and dropped: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum ScheduleCommand {
    /// Schedule runs of a graph version. The handler has checked that the
    /// user may run the graph and that the inputs fit it.
    CreateSchedule {
        /// The new schedule's id.
        schedule_id: Uuid,
        /// Whose runs.
        user_id: Uuid,
        /// The graph.
        graph_id: Uuid,
        /// The version.
        graph_version: i32,
        /// The user's name for it.
        name: String,
        /// Five-field crontab expression.
        cron: String,
        /// IANA time zone.
        timezone: String,
        /// Graph inputs.
        inputs: Map<String, Value>,
        /// Credentials.
        credentials: Map<String, Value>,
        /// The clock.
        now: DateTime<Utc>,
    },
    /// Record what a due fire came to: the run it queued, or why none.
    RecordFire {
        /// The fire, as [`Schedule::due`] found it.
        due: DueFire,
        /// The queued run, or why it could not be queued.
        run: Result<Uuid, String>,
        /// The clock.
        now: DateTime<Utc>,
    },
    /// Delete the schedule.
    DeleteSchedule {
        /// Caller.
        user_id: Uuid,
        /// The clock.
        now: DateTime<Utc>,
    },
}

/// A fire that is due, chosen by the missed-fire policy.
///
/// The policy: a schedule fires at most once per check, for the most recent
/// slot that has come (at or before now). Slots before it that nobody
/// fired, because every instance was down or behind, are skipped, not
/// replayed one run each: after an outage a schedule runs once, as soon as
/// possible, and is then back on its cron. The skip is recorded
/// (`missed_since`), so it is visible in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueFire {
    /// The slot that fires.
    pub fire_time: DateTime<Utc>,
    /// The first skipped slot, when any was skipped.
    pub missed_since: Option<DateTime<Utc>>,
    /// The slot after `fire_time`.
    pub next_run_time: Option<DateTime<Utc>>,
}

impl Schedule {
    /// Decide which events a command produces against this state.
    pub fn decide(&self, command: ScheduleCommand) -> Result<Vec<ScheduleEvent>, ScheduleError> {
        match command {
            ScheduleCommand::CreateSchedule {
                schedule_id,
                user_id,
                graph_id,
                graph_version,
                name,
                cron,
                timezone,
                inputs,
                credentials,
                now,
            } => {
                let spec = CronSpec::parse(&cron, &timezone)?;
                if self.id.is_some() {
                    // The same create again (a retried request): nothing new.
                    return Ok(vec![]);
                }
                let next_run_time = spec.next_after(now).ok_or_else(|| ScheduleError::NeverFires(cron.clone()))?;
                Ok(vec![ScheduleEvent::ScheduleCreated {
                    schedule_id,
                    user_id,
                    graph_id,
                    graph_version,
                    name,
                    cron,
                    timezone: spec.timezone().name().to_owned(),
                    inputs,
                    credentials,
                    next_run_time: Some(next_run_time),
                    at: now,
                }])
            }
            ScheduleCommand::RecordFire { due, run, now } => {
                // Someone else recorded this fire (or a later one) already,
                // or the schedule was deleted meanwhile.
                let awaited = due.missed_since.unwrap_or(due.fire_time);
                if self.deleted || self.id.is_none() || self.next_run_time != Some(awaited) {
                    return Ok(vec![]);
                }
                let DueFire { fire_time, missed_since, next_run_time } = due;
                Ok(vec![match run {
                    Ok(execution_id) => {
                        ScheduleEvent::ScheduleFired { fire_time, execution_id, missed_since, next_run_time, at: now }
                    }
                    Err(reason) => {
                        let next_run_time = self.backed_off(fire_time, now).or(next_run_time);
                        ScheduleEvent::ScheduleFireFailed { fire_time, reason, missed_since, next_run_time, at: now }
                    }
                }])
            }
            ScheduleCommand::DeleteSchedule { user_id, now } => {
                if !self.is_visible_to(user_id) {
                    return Err(ScheduleError::NotFound);
                }
                Ok(vec![ScheduleEvent::ScheduleDeleted { user_id, at: now }])
            }
        }
    }

    /// The slot after a failed fire of `slot`, decided at `now`: not before
    /// the backoff of one more failure in a row has passed since the slot,
    /// so a schedule that cannot run (its graph gone, its user out of
    /// credits) is tried ever more rarely instead of taking the scheduler's
    /// time every minute.
    fn backed_off(&self, slot: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let spec = CronSpec::parse(&self.cron, &self.timezone).ok()?;
        let wait = failure_backoff(self.failures_in_a_row.saturating_add(1));
        // `next_after` is strictly after: a second short, so a wait of one
        // minute still lands on the next minute's slot.
        spec.next_after((slot + wait - chrono::Duration::seconds(1)).max(now))
    }

    /// The fire due at `now`, if any (see [`DueFire`] for the policy).
    pub fn due(&self, now: DateTime<Utc>) -> Option<DueFire> {
        let next = self.next_run_time.filter(|t| *t <= now && self.id.is_some() && !self.deleted)?;
        let spec = CronSpec::parse(&self.cron, &self.timezone).ok()?;
        // The latest slot that has come; never earlier than the one the
        // schedule waits for (it is a slot itself, so only a clock turned
        // back could make it so).
        let fire_time = spec.latest_at_or_before(now).filter(|t| *t >= next).unwrap_or(next);
        Some(DueFire {
            fire_time,
            missed_since: (fire_time > next).then_some(next),
            next_run_time: spec.next_after(fire_time.max(now)),
        })
    }
}

/// The least wait before the next fire of a schedule whose last `failures`
/// fires in a row failed: a minute after the first, doubling, at most a day.
pub fn failure_backoff(failures: u32) -> chrono::Duration {
    let minutes = 1_i64 << failures.saturating_sub(1).min(11);
    chrono::Duration::minutes(minutes).min(chrono::Duration::days(1))
}
