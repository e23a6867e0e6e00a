//! Cron schedules over HTTP: create, list, delete, time zones, and the
//! scheduler firing due schedules exactly once across instances, on a clock
//! the test moves (so no test waits for a real minute).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api::{App, Config};
use chrono::{DateTime, TimeDelta, Utc};
use commands::clock::Clock;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{echo_graph, fresh_database, send, TestApp, TEST_KEY};
use crate::support::{admin_request, assert_error, assert_field_error, event_count, events_of_type, id_of, user};

/// A clock that runs at real speed from a time the test sets (and moves).
#[derive(Clone)]
struct TestClock(Arc<Mutex<(DateTime<Utc>, Instant)>>);

impl TestClock {
    fn at(t: &str) -> Self {
        Self(Arc::new(Mutex::new((utc(t), Instant::now()))))
    }

    fn set(&self, t: &str) {
        *self.0.lock().unwrap() = (utc(t), Instant::now());
    }

    fn clock(&self) -> Clock {
        let this = self.clone();
        Clock::from_fn(move || {
            let (base, since) = *this.0.lock().unwrap();
            base + TimeDelta::from_std(since.elapsed()).unwrap_or_default()
        })
    }
}

fn utc(t: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(t).expect("RFC 3339").with_timezone(&Utc)
}

/// An instance on `url` reading the time from `clock`, its scheduler
/// looking every 50 ms (or not running).
async fn instance(url: &str, clock: &TestClock, scheduler: bool) -> TestApp {
    let mut config = Config::local(url.to_owned(), TEST_KEY);
    config.db_pool_size = 6;
    config.scheduler_poll = Duration::from_millis(50);
    config.scheduler_enabled = scheduler;
    let app = App::build_with_clock(config, clock.clock()).await.expect("build app");
    let port = app.port();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    TestApp::at(port, url.to_owned()).await
}

async fn spawn(clock: &TestClock) -> TestApp {
    instance(&fresh_database().await, clock, true).await
}

async fn create(app: &TestApp, owner: Uuid, graph_id: &str, body: Value) -> (u16, Value) {
    app.post(&format!("/api/graphs/{graph_id}/schedules"), owner, &body).await
}

fn every_minute() -> Value {
    json!({"name": "every minute", "cron": "* * * * *", "inputs": {"n": 7}, "timezone": "UTC"})
}

/// The scheduler part of the admin report.
async fn scheduler_report(app: &TestApp) -> Value {
    let (status, body) = send(admin_request(app, Method::GET, "/api/admin/projections", user())).await;
    assert_eq!(status, 200, "{body}");
    body["scheduler"].clone()
}

/// Wait until the instance's scheduler has completed `n` more looks.
async fn ticks(app: &TestApp, n: u64) {
    let start = scheduler_report(app).await["ticks"].as_u64().expect("ticks");
    let deadline = Instant::now() + Duration::from_secs(10);
    while scheduler_report(app).await["ticks"].as_u64().unwrap_or(0) < start + n {
        assert!(Instant::now() < deadline, "the scheduler stopped looking");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Payloads of the `ScheduleFired` events, in log order.
async fn fires(app: &TestApp) -> Vec<Value> {
    let rows: Vec<sqlx::types::Json<Value>> =
        sqlx::query_scalar("SELECT data FROM events WHERE event_type = 'ScheduleFired' ORDER BY position")
            .fetch_all(&app.pool)
            .await
            .expect("fires");
    rows.into_iter().map(|r| r.0).collect()
}

async fn wait_for_fires(app: &TestApp, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let fired = fires(app).await;
        if fired.len() >= n {
            return fired;
        }
        assert!(Instant::now() < deadline, "only {} fires", fired.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Wait until the user's (only) schedule shows its next fire at `t`.
async fn next_run_moves_to(app: &TestApp, owner: Uuid, t: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, all) = app.get("/api/schedules", owner).await;
        if all[0]["next_run_time"].as_str().map(utc) == Some(utc(t)) {
            return;
        }
        assert!(Instant::now() < deadline, "next_run_time never moved to {t}: {all}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn schedules_are_created_listed_and_deleted_by_their_owner_only() {
    let clock = TestClock::at("2026-01-15T10:00:30Z");
    let app = spawn(&clock).await;
    let (owner, stranger) = (user(), user());
    let graph_id = id_of(&app.create_graph(owner, echo_graph()).await);

    let (status, created) = create(&app, owner, &graph_id, every_minute()).await;
    assert_eq!(status, 200, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["schedule_id"], id.as_str());
    assert_eq!(created["name"], "every minute");
    assert_eq!(created["user_id"], owner.to_string());
    assert_eq!(created["graph_id"], graph_id.as_str());
    assert_eq!(created["graph_version"], 1);
    assert_eq!(created["agent_name"], "echo");
    assert_eq!(created["cron"], "* * * * *");
    assert_eq!(created["input_data"], json!({"n": 7}));
    assert_eq!(created["input_credentials"], json!({}));
    assert_eq!(created["timezone"], "UTC");
    assert_eq!(utc(created["next_run_time"].as_str().unwrap()), utc("2026-01-15T10:01:00Z"));

    let (status, of_graph) = app.get(&format!("/api/graphs/{graph_id}/schedules"), owner).await;
    assert_eq!((status, of_graph.clone()), (200, json!([created.clone()])));
    let (_, all) = app.get("/api/schedules", owner).await;
    assert_eq!(all, json!([created]));

    // Another user sees none of it and cannot delete it.
    let (_, theirs) = app.get("/api/schedules", stranger).await;
    assert_eq!(theirs, json!([]));
    let (_, theirs) = app.get(&format!("/api/graphs/{graph_id}/schedules"), stranger).await;
    assert_eq!(theirs, json!([]));
    let (status, body) = app.delete(&format!("/api/schedules/{id}"), stranger).await;
    assert_eq!(status, 404, "{body}");
    assert_error(&body, "not_found");
    // Nor schedule a graph that is not theirs.
    let (status, body) = create(&app, stranger, &graph_id, every_minute()).await;
    assert_eq!(status, 404, "{body}");

    let (status, body) = app.delete(&format!("/api/schedules/{id}"), owner).await;
    assert_eq!((status, body), (200, json!({"id": id})));
    let (_, all) = app.get("/api/schedules", owner).await;
    assert_eq!(all, json!([]));
    let (status, _) = app.delete(&format!("/api/schedules/{id}"), owner).await;
    assert_eq!(status, 404, "deleted once");
    let (status, _) = app.delete("/api/schedules/not-a-uuid", owner).await;
    assert_eq!(status, 404);
    assert_eq!(events_of_type(&app, "ScheduleDeleted").await, 1);

    // A retried create with an Idempotency-Key creates once.
    let keyed = || {
        app.request(Method::POST, &format!("/api/graphs/{graph_id}/schedules"), owner)
            .header("Idempotency-Key", "nightly-1")
            .json(&every_minute())
    };
    let (first, again) = (send(keyed()).await, send(keyed()).await);
    assert_eq!((first.0, again.0), (200, 200), "{first:?} {again:?}");
    assert_eq!(first.1["id"], again.1["id"]);
    assert_eq!(events_of_type(&app, "ScheduleCreated").await, 2, "the first schedule and this one");
}

#[tokio::test]
async fn a_bad_cron_or_time_zone_is_a_422_and_appends_nothing() {
    let clock = TestClock::at("2026-01-15T10:00:30Z");
    let app = spawn(&clock).await;
    let owner = user();
    let graph_id = id_of(&app.create_graph(owner, echo_graph()).await);
    let before = event_count(&app).await;
    for (cron, timezone, field) in [
        ("* * * *", "UTC", "cron"),
        ("0 * * * * *", "UTC", "cron"),
        ("61 * * * *", "UTC", "cron"),
        ("every day", "UTC", "cron"),
        ("0 0 30 2 *", "UTC", "cron"),
        ("0 9 * * *", "Europe/Atlantis", "timezone"),
    ] {
        let body = json!({"name": "x", "cron": cron, "inputs": {"n": 1}, "timezone": timezone});
        let (status, answer) = create(&app, owner, &graph_id, body).await;
        assert_eq!(status, 422, "{cron} {timezone}: {answer}");
        assert_field_error(&answer, field);
    }
    let (status, answer) = create(&app, owner, &graph_id, json!({"cron": "* * * * *", "inputs": {}})).await;
    assert_eq!(status, 422, "name is required: {answer}");
    let (status, _) = create(&app, owner, &Uuid::new_v4().to_string(), every_minute()).await;
    assert_eq!(status, 404, "an unknown graph");
    let (status, _) =
        create(&app, owner, &graph_id, json!({"name": "x", "cron": "* * * * *", "inputs": {}, "graph_version": 9}))
            .await;
    assert_eq!(status, 404, "an unknown version");
    assert_eq!(event_count(&app).await, before, "a refused schedule appends nothing");
}

#[tokio::test]
async fn next_run_time_honours_the_time_zone() {
    let clock = TestClock::at("2026-01-15T10:00:00Z");
    let app = spawn(&clock).await;
    let owner = user();
    let graph_id = id_of(&app.create_graph(owner, echo_graph()).await);
    let nine_in = |tz: &str| json!({"name": "daily", "cron": "0 9 * * *", "inputs": {"n": 1}, "timezone": tz});

    let (status, berlin) = create(&app, owner, &graph_id, nine_in("Europe/Berlin")).await;
    assert_eq!(status, 200, "{berlin}");
    assert_eq!(berlin["timezone"], "Europe/Berlin");
    assert_eq!(berlin["next_run_time"], "2026-01-16T09:00:00+01:00", "shown in the schedule's zone");
    assert_eq!(utc(berlin["next_run_time"].as_str().unwrap()), utc("2026-01-16T08:00:00Z"), "08:00 UTC in winter");

    let (_, tokyo) = create(&app, owner, &graph_id, nine_in("Asia/Tokyo")).await;
    assert_eq!(tokyo["next_run_time"], "2026-01-16T09:00:00+09:00", "19:00 in Tokyo already: tomorrow");

    // Summer time: 07:00 UTC.
    clock.set("2026-07-15T06:00:00Z");
    let (_, summer) = create(&app, owner, &graph_id, nine_in("Europe/Berlin")).await;
    assert_eq!(summer["next_run_time"], "2026-07-15T09:00:00+02:00");

    // Without a zone: the user's own, else UTC.
    let no_zone = json!({"name": "daily", "cron": "0 9 * * *", "inputs": {"n": 1}});
    let (_, utc_default) = create(&app, owner, &graph_id, no_zone.clone()).await;
    assert_eq!(utc_default["timezone"], "UTC");
    assert_eq!(utc_default["next_run_time"], "2026-07-15T09:00:00Z");
    let (status, _) = app.post("/api/auth/user/timezone", owner, &json!({"timezone": "America/New_York"})).await;
    assert_eq!(status, 200);
    let (_, own_zone) = create(&app, owner, &graph_id, no_zone).await;
    assert_eq!(own_zone["timezone"], "America/New_York");
    assert_eq!(own_zone["next_run_time"], "2026-07-15T09:00:00-04:00");
}

#[tokio::test]
async fn a_due_schedule_fires_exactly_once_with_two_instances() {
    let clock = TestClock::at("2026-01-15T10:00:30Z");
    let url = fresh_database().await;
    let first = instance(&url, &clock, true).await;
    let second = instance(&url, &clock, true).await;
    let owner = user();
    let graph_id = id_of(&first.create_graph(owner, echo_graph()).await);
    let (status, created) = create(&first, owner, &graph_id, every_minute()).await;
    assert_eq!(status, 200, "{created}");
    ticks(&first, 2).await;
    assert!(fires(&first).await.is_empty(), "not due yet");

    clock.set("2026-01-15T10:01:02Z");
    let fired = wait_for_fires(&first, 1).await;
    // Both schedulers look again, several times, before counting.
    ticks(&first, 3).await;
    ticks(&second, 3).await;
    assert_eq!(fires(&first).await.len(), 1, "fired once: {fired:?}");
    assert_eq!(events_of_type(&first, "ExecutionQueued").await, 1, "one run");
    assert_eq!(utc(fired[0]["fire_time"].as_str().unwrap()), utc("2026-01-15T10:01:00Z"));
    assert_eq!(fired[0]["missed_since"], Value::Null);

    let run_id = fired[0]["execution_id"].as_str().expect("execution id").to_owned();
    let run = first.run_ended(owner, &graph_id, &run_id, Duration::from_secs(15)).await;
    assert_eq!(run["status"], "COMPLETED", "{run}");
    assert_eq!(run["outputs"], json!({"echo": [7]}));

    next_run_moves_to(&second, owner, "2026-01-15T10:02:00Z").await;
    let report = scheduler_report(&first).await;
    assert_eq!(report["due"], 0, "{report}");
    assert_eq!(report["last_error"], Value::Null, "{report}");
    let fired_here =
        report["fired_here"].as_u64().unwrap() + scheduler_report(&second).await["fired_here"].as_u64().unwrap();
    assert_eq!(fired_here, 1);
}

#[tokio::test]
async fn a_deleted_schedule_never_fires() {
    let clock = TestClock::at("2026-01-15T10:00:30Z");
    let app = spawn(&clock).await;
    let owner = user();
    let graph_id = id_of(&app.create_graph(owner, echo_graph()).await);
    let (_, created) = create(&app, owner, &graph_id, every_minute()).await;
    let id = created["id"].as_str().expect("id");
    let (status, _) = app.delete(&format!("/api/schedules/{id}"), owner).await;
    assert_eq!(status, 200);

    clock.set("2026-01-15T10:03:02Z");
    ticks(&app, 5).await;
    assert!(fires(&app).await.is_empty());
    assert_eq!(events_of_type(&app, "ExecutionQueued").await, 0);
}

#[tokio::test]
async fn fires_missed_while_every_instance_was_down_run_once_for_the_latest_slot() {
    let clock = TestClock::at("2026-01-15T10:00:30Z");
    let url = fresh_database().await;
    // An instance without a scheduler: schedules can be made, none fires.
    let down = instance(&url, &clock, false).await;
    let owner = user();
    let graph_id = id_of(&down.create_graph(owner, echo_graph()).await);
    let (status, _) = create(&down, owner, &graph_id, every_minute()).await;
    assert_eq!(status, 200);
    clock.set("2026-01-15T10:05:30Z");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(fires(&down).await.is_empty(), "no scheduler ran");
    let report = scheduler_report(&down).await;
    assert_eq!(report["due"], 1, "{report}");
    assert!(report["lag_ms"].as_i64().unwrap() >= 270_000, "overdue since 10:01: {report}");

    // A scheduler comes back: one run, for 10:05; 10:01 to 10:04 are skipped.
    let up = instance(&url, &clock, true).await;
    let fired = wait_for_fires(&up, 1).await;
    ticks(&up, 3).await;
    assert_eq!(fires(&up).await.len(), 1, "{fired:?}");
    assert_eq!(events_of_type(&up, "ExecutionQueued").await, 1);
    let data = &fired[0];
    assert_eq!(utc(data["fire_time"].as_str().unwrap()), utc("2026-01-15T10:05:00Z"));
    assert_eq!(utc(data["missed_since"].as_str().unwrap()), utc("2026-01-15T10:01:00Z"));
    assert_eq!(utc(data["next_run_time"].as_str().unwrap()), utc("2026-01-15T10:06:00Z"));

    // And the next slot fires on time again.
    clock.set("2026-01-15T10:06:01Z");
    let fired = wait_for_fires(&up, 2).await;
    assert_eq!(utc(fired[1]["fire_time"].as_str().unwrap()), utc("2026-01-15T10:06:00Z"));
    assert_eq!(fired[1]["missed_since"], Value::Null);
}

#[tokio::test]
async fn a_fire_that_cannot_start_a_run_is_recorded_and_the_schedule_moves_on() {
    let clock = TestClock::at("2026-01-15T10:00:30Z");
    let app = spawn(&clock).await;
    let owner = user();
    let graph_id = id_of(&app.create_graph(owner, echo_graph()).await);
    let (_, created) = create(&app, owner, &graph_id, every_minute()).await;
    let (status, _) = app.delete(&format!("/api/graphs/{graph_id}"), owner).await;
    assert_eq!(status, 200);

    clock.set("2026-01-15T10:01:02Z");
    let deadline = Instant::now() + Duration::from_secs(10);
    while events_of_type(&app, "ScheduleFireFailed").await == 0 {
        assert!(Instant::now() < deadline, "the fire was never recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ticks(&app, 3).await;
    assert_eq!(events_of_type(&app, "ScheduleFireFailed").await, 1, "recorded once, not retried every look");
    assert_eq!(events_of_type(&app, "ExecutionQueued").await, 0);
    let report = scheduler_report(&app).await;
    assert_eq!(report["failed_here"], 1, "{report}");
    assert_eq!(report["last_error"], Value::Null, "a refused run is not a failure of the loop: {report}");

    let (status, metrics) = send(admin_request(&app, Method::GET, "/metrics", user())).await;
    assert_eq!(status, 200);
    let text = metrics.as_str().expect("text");
    for gauge in ["scheduler_due_schedules", "scheduler_lag_seconds", "scheduler_failing"] {
        assert!(text.contains(gauge), "{gauge} missing from /metrics");
    }
    assert_eq!(created["graph_id"], graph_id.as_str());
    next_run_moves_to(&app, owner, "2026-01-15T10:02:00Z").await;

    // Failing again, it waits twice as long, then four times: fewer looks at
    // a schedule that cannot run.
    clock.set("2026-01-15T10:02:02Z");
    next_run_moves_to(&app, owner, "2026-01-15T10:04:00Z").await;
    clock.set("2026-01-15T10:04:01Z");
    next_run_moves_to(&app, owner, "2026-01-15T10:08:00Z").await;
    assert_eq!(events_of_type(&app, "ScheduleFireFailed").await, 3);
}

#[tokio::test]
async fn concurrent_fires_of_one_slot_append_one_run() {
    use commands::services::{Commands, FireOutcome};
    let clock = TestClock::at("2026-01-15T10:00:30Z");
    let url = fresh_database().await;
    // No scheduler: only the fires below race.
    let app = instance(&url, &clock, false).await;
    let owner = user();
    let graph_id = id_of(&app.create_graph(owner, echo_graph()).await);
    let (_, created) = create(&app, owner, &graph_id, every_minute()).await;
    let schedule_id: Uuid = created["id"].as_str().unwrap().parse().unwrap();
    clock.set("2026-01-15T10:01:02Z");

    let commands = Commands::with_clock(commands::PgEventStore::new(app.pool.clone()), clock.clock());
    let outcomes = futures_util::future::join_all((0..8).map(|_| commands.fire_schedule(schedule_id))).await;
    let outcomes: Vec<FireOutcome> = outcomes.into_iter().map(|o| o.expect("fire")).collect();
    let fired = outcomes.iter().filter(|o| matches!(o, FireOutcome::Fired { .. })).count();
    assert_eq!(fired, 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| matches!(o, FireOutcome::Fired { .. } | FireOutcome::Lost | FireOutcome::NotDue)));
    assert_eq!(fires(&app).await.len(), 1);
    assert_eq!(events_of_type(&app, "ExecutionQueued").await, 1);
    // Once recorded, the slot is no longer due.
    assert_eq!(commands.fire_schedule(schedule_id).await.expect("fire"), FireOutcome::NotDue);
}

#[tokio::test]
async fn a_look_fires_due_schedules_round_robin_across_users() {
    let clock = TestClock::at("2026-01-15T10:00:30Z");
    let url = fresh_database().await;
    let mut config = Config::local(url.clone(), TEST_KEY);
    config.db_pool_size = 6;
    config.scheduler_poll = Duration::from_millis(50);
    config.scheduler_batch = 3;
    config.scheduler_enabled = true;
    // Created while the clock stands still before the minute, so all come
    // due at 10:01 together.
    let app = App::build_with_clock(config, clock.clock()).await.expect("build app");
    let port = app.port();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let app = TestApp::at(port, url).await;
    let (busy, quiet) = (user(), user());
    let busy_graph = id_of(&app.create_graph(busy, echo_graph()).await);
    for _ in 0..6 {
        assert_eq!(create(&app, busy, &busy_graph, every_minute()).await.0, 200);
    }
    let quiet_graph = id_of(&app.create_graph(quiet, echo_graph()).await);
    let (status, quiet_schedule) = create(&app, quiet, &quiet_graph, every_minute()).await;
    assert_eq!(status, 200);
    clock.set("2026-01-15T10:01:00Z");
    let fired = wait_for_fires(&app, 3).await;
    let first_three: Vec<&Value> = fired.iter().take(3).collect();
    let quiet_id = quiet_schedule["id"].as_str().unwrap();
    let quiet_in_first_look = sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM (SELECT stream_id FROM events WHERE event_type = 'ScheduleFired' \
         ORDER BY position LIMIT 3) f WHERE stream_id = $1",
    )
    .bind(format!("schedule-{quiet_id}"))
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(quiet_in_first_look, 1, "the quiet user's schedule waited behind the busy one's: {first_three:?}");
    wait_for_fires(&app, 7).await;
}
