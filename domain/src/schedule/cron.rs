//! When a schedule fires: a five-field crontab expression read in an IANA
//! time zone. Kept behind one small type so the rest of the domain never
//! sees the parsing library.

use std::str::FromStr;

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};

use super::ScheduleError;

/// A validated cron expression with the time zone it is read in.
#[derive(Debug, Clone)]
pub struct CronSpec {
    cron: croner::Cron,
    tz: Tz,
}

impl CronSpec {
    /// Parse `expression` (minute hour day-of-month month day-of-week, as in
    /// a crontab; names and `@daily`-style nicknames are accepted) in the
    /// time zone named `timezone`. As in a crontab, a restricted day of
    /// month and day of week match either; Sunday is 0 or 7. A local time
    /// that a clock change skips fires when the clock jumps; one that it
    /// repeats fires once.
    pub fn parse(expression: &str, timezone: &str) -> Result<Self, ScheduleError> {
        let tz = Tz::from_str(timezone.trim()).map_err(|_| ScheduleError::InvalidTimezone(timezone.to_owned()))?;
        let fields = expression.split_whitespace().count();
        // AutoGPT reads crontab lines: no seconds, no years. Counted here
        // (nicknames aside) so the error names the real problem.
        if !expression.trim_start().starts_with('@') && fields != 5 {
            return Err(ScheduleError::InvalidCron {
                cron: expression.to_owned(),
                reason: format!("expected 5 fields (minute hour day month weekday), found {fields}"),
            });
        }
        let parser = CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).build();
        let cron = parser
            .parse(expression)
            .map_err(|e| ScheduleError::InvalidCron { cron: expression.to_owned(), reason: e.to_string() })?;
        Ok(Self { cron, tz })
    }

    /// The time zone.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The first fire strictly after `after`, if the expression ever
    /// matches again (`0 0 30 2 *` never does).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = whole_second(after).with_timezone(&self.tz);
        self.cron.find_next_occurrence(&local, false).ok().map(|t| t.with_timezone(&Utc))
    }

    /// The latest fire at or before `at`, if any.
    pub fn latest_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = whole_second(at).with_timezone(&self.tz);
        self.cron.find_previous_occurrence(&local, true).ok().map(|t| t.with_timezone(&Utc))
    }
}

/// `at` without its fraction of a second: the search keeps the fraction it
/// starts from, and slots are whole minutes.
fn whole_second(at: DateTime<Utc>) -> DateTime<Utc> {
    at.with_nanosecond(0).unwrap_or(at)
}

/// `at` as RFC 3339 in the time zone named `timezone` (UTC when the name is
/// not one): how a schedule's times are shown to its user.
pub fn in_zone(at: DateTime<Utc>, timezone: &str) -> String {
    let tz = Tz::from_str(timezone).unwrap_or(Tz::UTC);
    at.with_timezone(&tz).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
