//! What holds the log back is visible, and our own sessions cannot hold it
//! back for long.

use reqwest::Method;
use serde_json::Value;
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

use crate::helpers::{sample_graph, send, server_url, spawn_app_with};
use crate::support::admin_request;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_route_names_the_transaction_holding_the_horizon_and_what_it_holds_back() {
    let app = spawn_app_with(|c| c.consistency_timeout = std::time::Duration::from_millis(200)).await;
    let mut blocker = PgConnection::connect(&format!("{}/postgres?application_name=stuck-migration", server_url()))
        .await
        .expect("connect");
    blocker.execute("BEGIN").await.expect("begin");
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut blocker).await.expect("pid");
    blocker.execute("SELECT pg_current_xact_id()").await.expect("xid");
    let user = Uuid::new_v4();
    let (status, _) = app.post("/api/graphs", user, &serde_json::json!({ "graph": sample_graph("held") })).await;
    assert_eq!(status, 200);

    let report = admin_report(&app).await;
    let horizon = &report["horizon"];
    assert_eq!(
        horizon["held_back_events"], 3,
        "the graph, its library agent and its quota place are held back: {report}"
    );
    let oldest = &horizon["oldest_transaction"];
    assert_eq!(oldest["pid"], pid, "{report}");
    assert_eq!(oldest["database"], "postgres");
    assert_eq!(oldest["application_name"], "stuck-migration");
    assert_eq!(oldest["state"], "idle in transaction");
    assert!(oldest["age_ms"].as_i64() >= Some(0));
    for p in report["projections"].as_array().expect("projections") {
        assert!(p["lag_events"].as_i64() >= Some(0), "lag is counted in log order, never negative: {p}");
    }

    blocker.execute("COMMIT").await.expect("commit");
    let report = admin_report(&app).await;
    assert_eq!(report["horizon"]["held_back_events"], 0, "{report}");
}

async fn admin_report(app: &crate::helpers::TestApp) -> Value {
    let (status, body) = send(admin_request(app, Method::GET, "/api/admin/projections", Uuid::new_v4())).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn our_sessions_time_out_when_idle_in_transaction_and_appends_commit_durably_whatever_the_default() {
    let app = spawn_app_with(|_| {}).await;
    // A database whose default would make commits asynchronous.
    let db = app.url.rsplit('/').next().expect("db name").to_owned();
    app.pool.execute(format!("ALTER DATABASE \"{db}\" SET synchronous_commit = off").as_str()).await.expect("alter");
    let pool = api::db::connect(&app.url, 2).await.expect("connect");
    let mut conn = pool.acquire().await.expect("acquire");
    let setting = |name: &'static str| sqlx::query_scalar::<_, String>("SELECT current_setting($1)").bind(name);
    assert_eq!(setting("synchronous_commit").fetch_one(&mut *conn).await.unwrap(), "on");
    assert_eq!(setting("idle_in_transaction_session_timeout").fetch_one(&mut *conn).await.unwrap(), "10s");
    assert_eq!(setting("statement_timeout").fetch_one(&mut *conn).await.unwrap(), "1min");
    drop(conn);
    // The event store pins it on its append sessions, whatever the pool says.
    let relaxed = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&app.url).await.expect("pool");
    let store = eventlog::PgEventStore::new(relaxed);
    assert_eq!(store.writer_setting("synchronous_commit").await.unwrap(), "on");
}
