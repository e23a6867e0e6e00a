use chrono::{DateTime, TimeZone, Utc};
use serde_json::Map;
use uuid::Uuid;

use super::*;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn create(cron: &str, timezone: &str, now: DateTime<Utc>) -> Result<Vec<ScheduleEvent>, ScheduleError> {
    Schedule::default().decide(ScheduleCommand::CreateSchedule {
        schedule_id: Uuid::new_v4(),
        user_id: Uuid::new_v4(),
        graph_id: Uuid::new_v4(),
        graph_version: 1,
        name: "nightly".into(),
        cron: cron.into(),
        timezone: timezone.into(),
        inputs: Map::new(),
        credentials: Map::new(),
        now,
    })
}

fn created(cron: &str, timezone: &str, now: DateTime<Utc>) -> Schedule {
    Schedule::from_events(&create(cron, timezone, now).unwrap())
}

#[test]
fn nine_in_berlin_is_eight_utc_in_winter_and_seven_in_summer() {
    let winter = created("0 9 * * *", "Europe/Berlin", at("2026-01-15T10:00:00Z"));
    assert_eq!(winter.next_run_time, Some(at("2026-01-16T08:00:00Z")));
    let summer = created("0 9 * * *", "Europe/Berlin", at("2026-07-15T06:00:00Z"));
    assert_eq!(summer.next_run_time, Some(at("2026-07-15T07:00:00Z")));
}

#[test]
fn bad_expressions_and_zones_are_refused() {
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    for cron in ["", "* * * *", "0 * * * * *", "61 * * * *", "a b c d e", "0 0 32 * *"] {
        assert!(
            matches!(create(cron, "UTC", now), Err(ScheduleError::InvalidCron { .. })),
            "{cron:?} should be refused"
        );
    }
    assert_eq!(create("0 9 * * *", "Mars/Olympus", now), Err(ScheduleError::InvalidTimezone("Mars/Olympus".into())));
    assert!(matches!(create("0 0 30 2 *", "UTC", now), Err(ScheduleError::NeverFires(_))));
    assert!(create("@daily", "UTC", now).is_ok());
    assert!(create("*/15 9-17 * * MON-FRI", "America/New_York", now).is_ok());
}

#[test]
fn weekdays_read_as_in_a_crontab() {
    // 2026-01-15 is a Thursday.
    let thursday = at("2026-01-15T12:00:00Z");
    for sunday in ["0 0 * * 0", "0 0 * * 7", "0 0 * * SUN"] {
        assert_eq!(created(sunday, "UTC", thursday).next_run_time, Some(at("2026-01-18T00:00:00Z")), "{sunday}");
    }
    // A restricted day of month and day of week match either.
    assert_eq!(created("0 0 1 * 1", "UTC", thursday).next_run_time, Some(at("2026-01-19T00:00:00Z")));
}

#[test]
fn a_due_fire_is_the_latest_slot_and_skips_the_missed_ones() {
    let schedule = created("* * * * *", "UTC", at("2026-01-15T10:00:30Z"));
    assert_eq!(schedule.due(at("2026-01-15T10:00:59Z")), None);
    let on_time = schedule.due(at("2026-01-15T10:01:02Z")).unwrap();
    assert_eq!(
        on_time,
        DueFire {
            fire_time: at("2026-01-15T10:01:00Z"),
            missed_since: None,
            next_run_time: Some(at("2026-01-15T10:02:00Z"))
        }
    );
    let fraction = schedule.due(at("2026-01-15T10:01:00.580503Z")).unwrap();
    assert_eq!(fraction, on_time, "slots are whole minutes whatever the clock's fraction");
    let late = schedule.due(at("2026-01-15T10:05:30Z")).unwrap();
    assert_eq!(
        late,
        DueFire {
            fire_time: at("2026-01-15T10:05:00Z"),
            missed_since: Some(at("2026-01-15T10:01:00Z")),
            next_run_time: Some(at("2026-01-15T10:06:00Z"))
        }
    );
}

#[test]
fn a_fire_is_recorded_once_and_a_deleted_schedule_is_never_due() {
    let mut schedule = created("* * * * *", "UTC", at("2026-01-15T10:00:30Z"));
    let now = at("2026-01-15T10:01:02Z");
    let due = schedule.due(now).unwrap();
    let fire = ScheduleCommand::RecordFire { due: due.clone(), run: Ok(Uuid::new_v4()), now };
    let events = schedule.decide(fire.clone()).unwrap();
    assert!(matches!(events[..], [ScheduleEvent::ScheduleFired { .. }]));
    schedule.evolve(&events[0]);
    assert_eq!(schedule.decide(fire), Ok(vec![]), "the same fire twice");
    assert_eq!(schedule.due(now), None);

    let user = schedule.user_id.unwrap();
    assert_eq!(
        schedule.decide(ScheduleCommand::DeleteSchedule { user_id: Uuid::new_v4(), now }),
        Err(ScheduleError::NotFound)
    );
    let deleted = schedule.decide(ScheduleCommand::DeleteSchedule { user_id: user, now }).unwrap();
    schedule.evolve(&deleted[0]);
    assert_eq!(schedule.due(at("2026-01-15T11:00:00Z")), None);
    assert_eq!(schedule.decide(ScheduleCommand::DeleteSchedule { user_id: user, now }), Err(ScheduleError::NotFound));
}

#[test]
fn a_local_time_skipped_or_repeated_by_a_clock_change_fires_once() {
    // 02:30 does not exist in Berlin on 2026-03-29: it fires when the clock
    // jumps, at 03:00 local.
    let spring = created("30 2 * * *", "Europe/Berlin", at("2026-03-28T12:00:00Z"));
    assert_eq!(spring.next_run_time, Some(at("2026-03-29T01:00:00Z")));
    // 02:30 happens twice on 2026-10-25: it fires at the first, then the next day.
    let autumn = created("30 2 * * *", "Europe/Berlin", at("2026-10-24T12:00:00Z"));
    assert_eq!(autumn.next_run_time, Some(at("2026-10-25T00:30:00Z")));
    let spec = CronSpec::parse("30 2 * * *", "Europe/Berlin").unwrap();
    assert_eq!(spec.next_after(at("2026-10-25T00:30:00Z")), Some(at("2026-10-26T01:30:00Z")));
}

#[test]
fn odd_expressions_are_refused_or_accepted_but_never_panic() {
    let now = at("2026-01-15T12:00:00Z");
    for cron in [
        "*/0 * * * *",
        "0-100 * * * *",
        "5-1 * * * *",
        "L * * * *",
        "0 0 L * *",
        "0 0 * * 5#9",
        "0 0 * * 5L",
        "0 0 31W * *",
        "@reboot",
        "@",
        "99999999999999999999 * * * *",
        "-1 * * * *",
        "* * * * ?",
        "0 0 29 2 1",
        "0,,5 * * * *",
        "1/2/3 * * * *",
        "\u{00e9} * * * *",
    ] {
        let _ = create(cron, "UTC", now);
        let _ = CronSpec::parse(cron, "UTC").map(|s| (s.next_after(now), s.latest_at_or_before(now)));
    }
}

#[test]
fn a_schedule_failing_in_a_row_waits_ever_longer_and_a_success_resets_it() {
    let mut schedule = created("* * * * *", "UTC", at("2026-01-15T10:00:30Z"));
    let mut fired_at = vec![];
    let mut now = at("2026-01-15T10:01:00Z");
    for _ in 0..5 {
        let due = schedule.due(now).unwrap();
        fired_at.push(due.fire_time);
        let events = schedule.decide(ScheduleCommand::RecordFire { due, run: Err("graph gone".into()), now }).unwrap();
        schedule.evolve(&events[0]);
        now = schedule.next_run_time.unwrap();
    }
    let minutes: Vec<i64> = fired_at.windows(2).map(|w| (w[1] - w[0]).num_minutes()).collect();
    assert_eq!(minutes, [1, 2, 4, 8], "a minute after the first failure, doubling");
    assert_eq!(schedule.failures_in_a_row, 5);
    let due = schedule.due(now).unwrap();
    let events = schedule.decide(ScheduleCommand::RecordFire { due, run: Ok(Uuid::new_v4()), now }).unwrap();
    schedule.evolve(&events[0]);
    assert_eq!(schedule.failures_in_a_row, 0);
    assert_eq!(schedule.next_run_time, Some(now + chrono::Duration::minutes(1)), "back on its cron");
    assert_eq!(failure_backoff(40), chrono::Duration::days(1), "never more than a day");
}
