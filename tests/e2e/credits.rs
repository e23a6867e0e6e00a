//! Credits: the starting grant, admins adding credits, the history, and
//! charges that never take a balance below zero however runs race.

use std::time::Duration;

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{echo_graph, send, spawn_app, spawn_app_with};
use crate::support::{admin_request, assert_error, id_of, user};

#[tokio::test]
async fn a_user_starts_with_the_grant_and_admins_add_credits() {
    let app = spawn_app().await;
    let someone = user();
    app.post("/api/auth/user", someone, &json!({})).await;
    let (status, body) = app.get("/api/credits", someone).await;
    assert_eq!((status, body), (200, json!({"credits": 1500})));

    let admin = user();
    let add = json!({"user_id": someone, "amount": 250, "comments": "welcome bonus"});
    let (status, added) =
        send(admin_request(&app, Method::POST, "/api/credits/admin/add_credits", admin).json(&add)).await;
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["new_balance"], 1750);
    let token = added["transaction_key"].as_str().expect("key").to_owned();
    let (status, _) = app.post("/api/credits/admin/add_credits", someone, &add).await;
    assert_eq!(status, 403, "only admins add credits");

    let (_, balance) = app.get("/api/credits", someone).await;
    assert_eq!(balance["credits"], 1750, "the command's write is read back");
    let (status, history) = app.get("/api/credits/transactions", someone).await;
    assert_eq!(status, 200, "{history}");
    let entries = history["transactions"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{history}");
    assert_eq!(entries[0]["transaction_key"], token.as_str(), "newest first");
    assert_eq!((entries[0]["amount"].as_i64(), entries[0]["running_balance"].as_i64()), (Some(250), Some(1750)));
    assert_eq!(entries[0]["reason"], "welcome bonus");
    assert_eq!(entries[1]["amount"], 1500);
    assert!(history["next_transaction_time"].is_null());
    let (_, page) = app.get("/api/credits/transactions?transaction_count_limit=1", someone).await;
    let cursor = page["next_transaction_time"].as_str().expect("a cursor when the page is full").to_owned();
    let (_, rest) =
        app.get(&format!("/api/credits/transactions?transaction_time={}", urlencode(&cursor)), someone).await;
    assert_eq!(rest["transactions"][0]["amount"], 1500, "{rest}");
    let (_, grants) = app.get("/api/credits/transactions?transaction_type=USAGE", someone).await;
    assert_eq!(grants["transactions"], json!([]));

    let search = format!("/api/credits/admin/users_history?search={someone}");
    let (status, all) = send(admin_request(&app, Method::GET, &search, admin)).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["pagination"]["total_items"], 2, "{all}");
    assert!(all["history"].as_array().unwrap().iter().all(|t| t["user_id"] == someone.to_string()));
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_runs_of_one_user_never_take_the_balance_below_zero() {
    let app = spawn_app_with(|c| {
        c.credits.starting_grant = 5;
        c.credits.count_threshold = 1;
    })
    .await;
    let owner = user();
    let graph = echo_graph();
    let graph_id = id_of(&app.create_graph(owner, graph).await);
    let path = format!("/api/graphs/{graph_id}/execute/1");
    let bodies: Vec<Value> = (0..8).map(|i| json!({"inputs": {"n": i}})).collect();
    let submitted = join_all(bodies.iter().map(|body| app.post(&path, owner, body))).await;
    assert!(submitted.iter().all(|(s, _)| *s == 200), "{submitted:?}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let runs = loop {
        let (_, runs) = app.get("/api/executions", owner).await;
        let runs = runs.as_array().cloned().unwrap_or_default();
        if runs.len() == 8 && runs.iter().all(|r| ["COMPLETED", "FAILED"].contains(&r["status"].as_str().unwrap())) {
            break runs;
        }
        assert!(tokio::time::Instant::now() < deadline, "runs never ended: {runs:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // 16 node executions wanted a credit each; 5 were there.
    let charged: Vec<i64> = sqlx::query_scalar(
        "SELECT (data->>'amount')::bigint FROM events WHERE event_type = 'NodeExecutionCharged' ORDER BY tx_id, position",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(charged.iter().sum::<i64>(), 5, "{charged:?}");
    let failed: Vec<&Value> = runs.iter().filter(|r| r["status"] == "FAILED").collect();
    assert!(!failed.is_empty());
    assert!(
        failed.iter().all(|r| r["stats"]["error"].as_str().unwrap_or("").contains("Insufficient balance")),
        "{failed:?}"
    );
    let completed = runs.iter().filter(|r| r["status"] == "COMPLETED").count();
    assert!(completed <= 2, "each completed run took two credits: {completed}");
    let (_, balance) = app.get("/api/credits", owner).await;
    assert_eq!(balance["credits"], 0);
    let (status, body) = app.post(&path, owner, &json!({"inputs": {"n": 1}})).await;
    assert_eq!(status, 402, "{body}");
    assert_error(&body, "insufficient_balance");
}
