//! The log's order survives a restore onto a server whose transaction ids
//! are lower than the stored ones.

use std::time::Duration;

use eventlog::PgEventStore;
use projections::Projections;
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{fresh_database, sample_graph, send, spawn_app_on};

/// Stored transaction ids far above anything this server hands out soon.
const RESTORED_AHEAD: i64 = 1_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restore_with_lower_transaction_ids_new_events_are_applied_after_the_restored_ones() {
    // A log written and fully projected elsewhere...
    let url = fresh_database().await;
    let pool = PgPool::connect(&url).await.expect("connect");
    let store = PgEventStore::new(pool.clone());
    let commands = commands::services::Commands::new(store.clone());
    let owner = Uuid::new_v4();
    for i in 0..3 {
        let draft = serde_json::from_value(sample_graph(&format!("restored {i}"))).expect("draft");
        commands.create_graph(&commands::CommandContext::for_user(owner), owner, draft).await.expect("create");
    }
    let projections = Projections::new(store.clone(), projections::all());
    projections.init().await.expect("init");
    for name in projections.names() {
        projections.catch_up(name).await.expect("catch up");
    }
    // ...restored onto a server whose transaction ids are far lower: shift
    // the stored ids (and the checkpoints with them) up instead.
    sqlx::query("UPDATE events SET tx_id = tx_id + $1").bind(RESTORED_AHEAD).execute(&pool).await.expect("shift");
    sqlx::query("UPDATE projection_checkpoints SET tx_id = tx_id + $1 WHERE tx_id > 0")
        .bind(RESTORED_AHEAD)
        .execute(&pool)
        .await
        .expect("shift checkpoints");
    let restored_max: i64 = sqlx::query_scalar("SELECT max(tx_id) FROM events").fetch_one(&pool).await.unwrap();

    // The server starts on it and takes new writes.
    let app = spawn_app_on(url, |c| c.consistency_timeout = Duration::from_secs(5)).await;
    let generation: i32 = sqlx::query_scalar("SELECT generation FROM log_epoch").fetch_one(&pool).await.unwrap();
    assert_eq!(generation, 1, "startup detected the restored log and raised the offset once");
    let response = app
        .request(Method::POST, "/api/graphs", owner)
        .json(&json!({ "graph": sample_graph("after the restore") }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers().get("x-read-models-pending").is_none(), "the projectors applied the new events");
    let token = response.headers()["x-consistency-token"].to_str().unwrap().to_owned();
    let (status, graphs) =
        send(app.request(Method::GET, "/api/graphs", owner).header("x-consistency-token", token)).await;
    assert_eq!(status, 200);
    let mut names: Vec<&str> = graphs.as_array().expect("list").iter().filter_map(|g| g["name"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["after the restore", "restored 0", "restored 1", "restored 2"], "nothing skipped: {graphs}");
    let newest: i64 = sqlx::query_scalar("SELECT max(tx_id) FROM events").fetch_one(&pool).await.unwrap();
    assert!(newest > restored_max, "new events sort after the restored ones ({newest} > {restored_max})");

    // A second start finds the order intact and changes nothing.
    let again = spawn_app_on(app.url.clone(), |_| {}).await;
    let (status, _): (u16, Value) = again.get("/api/graphs", owner).await;
    assert_eq!(status, 200);
    let generation: i32 = sqlx::query_scalar("SELECT generation FROM log_epoch").fetch_one(&pool).await.unwrap();
    assert_eq!(generation, 1, "no false alarm in normal operation");
}
