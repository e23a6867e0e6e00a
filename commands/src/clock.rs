//! Where command handlers get the time: one clock, passed in, so tests can
//! fix it.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

/// The time source of the command handlers. Times are whole microseconds,
/// the precision Postgres keeps: what a command answers from its own
/// decision then equals what a read model serves later.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(Arc::new(Utc::now))
    }

    /// A clock reading `now` (tests fix time with it).
    pub fn from_fn(now: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        Self(Arc::new(now))
    }

    /// The current time, truncated to microseconds.
    pub fn now(&self) -> DateTime<Utc> {
        let now = (self.0)();
        now.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(now)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Clock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_clock_reads_whole_microseconds() {
        let at = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        let clock = Clock::from_fn(move || at);
        assert_eq!(clock.now().timestamp_subsec_nanos(), 123_456_000);
        assert!(Clock::system().now().timestamp_subsec_nanos().is_multiple_of(1000));
    }
}
