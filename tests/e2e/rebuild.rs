//! Zero-downtime rebuilds: built beside the live read model while writes go
//! on and queries keep answering, swapped in whole, and excluded across
//! processes (two instances on one database).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{greeting_graph, send, spawn_app, spawn_app_on, TestApp};
use crate::support::{admin_request, assert_error, id_of, listed_graph_ids, user};

/// Start a rebuild of `name` as `admin`.
async fn start(app: &TestApp, name: &str, admin: Uuid) -> (u16, Value) {
    send(admin_request(app, Method::POST, &format!("/api/admin/projections/{name}/rebuild"), admin)).await
}

/// The admin route's entry for projection `name`.
async fn entry(app: &TestApp, name: &str, admin: Uuid) -> Value {
    let (status, body) = send(admin_request(app, Method::GET, "/api/admin/projections", admin)).await;
    assert_eq!(status, 200, "{body}");
    body["projections"].as_array().unwrap().iter().find(|p| p["name"] == name).cloned().expect("projection listed")
}

/// Wait until the latest rebuild of `name` has ended; answers its entry.
async fn rebuilt(app: &TestApp, name: &str, admin: Uuid) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let e = entry(app, name, admin).await;
        if e["rebuild"]["state"] != "rebuilding" {
            return e;
        }
        assert!(Instant::now() < deadline, "rebuild of {name} did not end: {e}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every row of a table, in a stable order, as JSON.
async fn rows(app: &TestApp, table: &str, order: &str) -> Vec<Value> {
    sqlx::query_scalar(&format!("SELECT to_jsonb(t) FROM {table} t ORDER BY {order}"))
        .fetch_all(&app.pool)
        .await
        .expect("read table")
}

async fn index_names(app: &TestApp, table: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE tablename = $1 AND schemaname = current_schema() ORDER BY 1",
    )
    .bind(table)
    .fetch_all(&app.pool)
    .await
    .expect("indexes")
}

#[tokio::test]
async fn a_rebuild_during_writes_loses_nothing_and_queries_never_see_a_partial_model() {
    let app = Arc::new(spawn_app().await);
    let (owner, admin) = (user(), user());
    let mut created = Vec::new();
    for _ in 0..15 {
        created.push(id_of(&app.create_graph(owner, greeting_graph()).await));
    }
    let indexes = index_names(&app, "rm_graphs").await;
    let writing = Arc::new(AtomicBool::new(true));
    // Readers: every answer is complete, and never fewer graphs than before.
    let reader = {
        let (app, writing) = (Arc::clone(&app), Arc::clone(&writing));
        tokio::spawn(async move {
            let (mut seen, mut reads) = (0usize, 0u32);
            while writing.load(Ordering::Relaxed) {
                let n = listed_graph_ids(&app, owner).await.len();
                assert!(n >= seen, "a query saw {n} graphs after seeing {seen}: a half-built model");
                (seen, reads) = (n, reads + 1);
            }
            reads
        })
    };
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let app = Arc::clone(&app);
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for _ in 0..8 {
                    ids.push(id_of(&app.create_graph(owner, greeting_graph()).await));
                }
                ids
            })
        })
        .collect();
    for name in ["graphs", "library_agents", "graphs"] {
        let (status, body) = start(&app, name, admin).await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["state"], "rebuilding");
        let done = rebuilt(&app, name, admin).await;
        assert_eq!(done["rebuild"]["state"], "done", "{done}");
        assert_eq!(
            (done["state"].as_str(), done["rebuild"]["percent"].as_f64()),
            (Some("live"), Some(100.0)),
            "{done}"
        );
    }
    for w in writers {
        created.extend(w.await.unwrap());
    }
    writing.store(false, Ordering::Relaxed);
    assert!(reader.await.unwrap() > 0, "queries answered during the rebuilds");
    // The last write's projection, then everything the writers created.
    let (_, last) = app.get(&format!("/api/graphs/{}", created.last().unwrap()), owner).await;
    assert_eq!(last["id"], created.last().unwrap().as_str());
    let mut listed = listed_graph_ids(&app, owner).await;
    listed.sort();
    created.sort();
    assert_eq!(listed, created, "every graph written during the rebuilds is in the rebuilt model");
    assert_eq!(index_names(&app, "rm_graphs").await, indexes, "the swapped-in table keeps the index names");
    // The read model equals a fresh rebuild of it.
    let before = rows(&app, "rm_graphs", "id, version").await;
    let library = rows(&app, "rm_library_agents", "id").await;
    assert_eq!(start(&app, "graphs", admin).await.0, 202);
    assert_eq!(start(&app, "library_agents", admin).await.0, 202);
    rebuilt(&app, "graphs", admin).await;
    rebuilt(&app, "library_agents", admin).await;
    assert_eq!(rows(&app, "rm_graphs", "id, version").await, before);
    assert_eq!(rows(&app, "rm_library_agents", "id").await, library);
    let leftovers: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rebuild\\_%' OR nspname LIKE 'retired\\_%'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(leftovers, 0, "side schemas are dropped after the swap");
}

#[tokio::test]
async fn two_instances_asked_to_rebuild_one_projection_at_once_one_rebuilds_and_the_other_is_told() {
    let first = spawn_app().await;
    let second = spawn_app_on(first.url.clone(), |_| {}).await;
    let (owner, admin) = (user(), user());
    let graph_id = id_of(&first.create_graph(owner, greeting_graph()).await);
    // A long log, so the first rebuild is still running when the second asks.
    sqlx::query(
        "INSERT INTO events (stream_id, version, event_id, event_type, schema_version, data, metadata) \
         SELECT 'noise-' || md5(g::text), 1, gen_random_uuid(), 'NoiseRecorded', 1, '{}', \
           json_build_object('correlation_id', gen_random_uuid()) \
         FROM generate_series(1, 100000) g",
    )
    .execute(&first.pool)
    .await
    .unwrap();
    let ((a, body_a), (b, body_b)) = tokio::join!(start(&first, "graphs", admin), start(&second, "graphs", admin));
    let mut statuses = [a, b];
    statuses.sort_unstable();
    assert_eq!(statuses, [202, 409], "{body_a} {body_b}");
    let refused = if a == 409 { &body_a } else { &body_b };
    assert_error(refused, "conflict");
    assert!(refused["detail"].as_str().unwrap().contains("already being rebuilt"), "{refused}");
    let running = entry(&second, "graphs", admin).await;
    let state = running["state"].as_str().unwrap().to_owned();
    assert!(state == "rebuilding" || running["rebuild"]["state"] == "done", "seen from the other instance: {running}");
    let done = rebuilt(&second, "graphs", admin).await;
    assert_eq!(done["rebuild"]["state"], "done", "{done}");
    assert_eq!(done["rebuild"]["events_done"].as_i64(), done["rebuild"]["events_total"].as_i64());
    assert!(done["rebuild"]["events_done"].as_i64().unwrap() > 100_000, "{done}");
    assert_eq!(first.get(&format!("/api/graphs/{graph_id}"), owner).await.0, 200, "served after the swap");
    // Once it ended, the other instance may rebuild; meanwhile a separate
    // process (the CLI) asking for the same rebuild is told, and changes nothing.
    assert_eq!(start(&second, "graphs", admin).await.0, 202);
    let (ok, out) = projections_cli(&first, &["rebuild", "graphs"]);
    assert!(!ok && out.contains("already being rebuilt"), "{out}");
    rebuilt(&second, "graphs", admin).await;

    assert_eq!(start(&first, "no-such-projection", admin).await.0, 404);
    let (status, relay) = start(&first, "relay", admin).await;
    assert_eq!(status, 400, "a projector without a read model is not replayed: {relay}");
    let (status, _) = send(first.request(Method::POST, "/api/admin/projections/graphs/rebuild", owner)).await;
    assert_eq!(status, 403, "admins only");
}

/// Run the binary's `projections` subcommand on the test database.
fn projections_cli(app: &TestApp, args: &[&str]) -> (bool, String) {
    let output = std::process::Command::new(crate::helpers::BIN)
        .arg("projections")
        .args(args)
        .env("DATABASE_URL", &app.url)
        .output()
        .expect("run the binary");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

#[tokio::test]
async fn verify_compares_the_live_model_with_a_rebuild_and_the_cli_rebuild_repairs_it() {
    let app = spawn_app().await;
    let owner = user();
    let ids: Vec<String> = {
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(id_of(&app.create_graph(owner, greeting_graph()).await));
        }
        ids
    };
    let (ok, out) = projections_cli(&app, &["verify", "graphs"]);
    assert!(ok, "{out}");
    let report: Value = serde_json::from_str(&out[..=out.rfind('}').unwrap()]).expect("JSON report");
    assert_eq!(report["equal"], true, "{report}");
    assert_eq!(report["tables"][0]["live_rows"], 3);

    sqlx::query("UPDATE rm_graphs SET name = 'edited by hand' WHERE id = $1::uuid")
        .bind(&ids[1])
        .execute(&app.pool)
        .await
        .unwrap();
    let (ok, out) = projections_cli(&app, &["verify", "graphs"]);
    assert!(!ok, "a difference fails the command: {out}");
    assert!(out.contains("differs from a rebuild"), "{out}");
    let report: Value = serde_json::from_str(&out[..=out.rfind("\n}").unwrap() + 1]).expect("JSON report");
    let table = &report["tables"][0];
    assert_eq!(
        (table["table"].as_str(), table["only_live"].as_i64(), table["only_rebuilt"].as_i64()),
        (Some("rm_graphs"), Some(1), Some(1)),
        "{report}"
    );
    assert!(out.contains("edited by hand"), "the differing row is shown: {out}");

    let (ok, out) = projections_cli(&app, &["rebuild", "graphs"]);
    assert!(ok && out.contains("graphs: rebuilt from"), "{out}");
    let (ok, out) = projections_cli(&app, &["verify", "graphs"]);
    assert!(ok, "the rebuild repaired the model: {out}");
    let (_, graph) = app.get(&format!("/api/graphs/{}", ids[1]), owner).await;
    assert_ne!(graph["name"], "edited by hand", "served from the rebuilt model");
}

#[tokio::test]
async fn an_instance_starting_on_a_read_model_built_by_other_code_rebuilds_it() {
    let first = spawn_app().await;
    let (owner, admin) = (user(), user());
    let graph_id = id_of(&first.create_graph(owner, greeting_graph()).await);
    // As if the stored model were built by an older version of the code.
    sqlx::query("UPDATE projection_checkpoints SET version = 0 WHERE name = 'graphs'")
        .execute(&first.pool)
        .await
        .unwrap();
    assert_eq!(entry(&first, "graphs", admin).await["version"], 0);
    let second = spawn_app_on(first.url.clone(), |_| {}).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let done = loop {
        let e = entry(&second, "graphs", admin).await;
        if e["version"] == 1 && e["rebuild"]["state"] == "done" {
            break e;
        }
        assert!(Instant::now() < deadline, "the stale model was not rebuilt: {e}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(done["state"], "live");
    assert_eq!(entry(&second, "library_agents", admin).await["rebuild"], Value::Null, "current models are left alone");
    assert_eq!(second.get(&format!("/api/graphs/{graph_id}"), owner).await.0, 200);
}
