//! `autogpt-es events export|import`: a log moves to another database byte
//! for byte (positions, transaction ids and hashes kept), an edited export
//! is refused whole, only an empty log takes an import, and a server on
//! the imported log builds the same read models.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use sqlx::PgPool;

use crate::helpers::{fresh_database, greeting_graph, spawn_app, spawn_app_on, BIN};
use crate::support::user;

fn import(url: &str, input: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .args(["events", "import"])
        .env("DATABASE_URL", url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

async fn rows(pool: &PgPool) -> Vec<(i64, i64, String, String, String, Vec<u8>)> {
    sqlx::query_as(
        "SELECT position, tx_id, stream_id, data::text, metadata::text, hash FROM events ORDER BY tx_id, position",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// A read model's rows, in a stable order, as JSON.
async fn models(pool: &PgPool, table: &str) -> Vec<serde_json::Value> {
    sqlx::query_scalar(&format!("SELECT to_jsonb(t) FROM {table} t ORDER BY to_jsonb(t)::text"))
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_exported_log_imports_byte_for_byte_and_an_edited_export_is_refused() {
    let app = spawn_app().await;
    let owner = user();
    for _ in 0..2 {
        let graph = app.create_graph(owner, greeting_graph()).await;
        let id = graph["id"].as_str().unwrap().to_owned();
        assert_eq!(app.put(&format!("/api/graphs/{id}"), owner, &greeting_graph()).await.0, 200);
    }
    // Wait until everything is below the horizon, where export reads.
    let total = rows(&app.pool).await.len();
    let mut export = Vec::new();
    for _ in 0..200 {
        let output = Command::new(BIN).args(["events", "export"]).env("DATABASE_URL", &app.url).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        export = output.stdout;
        if export.iter().filter(|b| **b == b'\n').count() == total {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let text = String::from_utf8(export.clone()).unwrap();
    assert_eq!(text.lines().count(), total, "one line per event");
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    for column in ["position", "tx_id", "stream_id", "version", "event_id", "event_type", "schema_version"] {
        assert!(!first[column].is_null(), "{column} missing from {first}");
    }
    assert_eq!(first["hash"].as_str().map(str::len), Some(64), "{first}");

    let target = fresh_database().await;
    let output = import(&target, &export);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let imported = PgPool::connect(&target).await.unwrap();
    assert_eq!(rows(&imported).await, rows(&app.pool).await, "positions, tx ids, payloads and hashes kept");
    // The read models a server builds from the imported log are the same.
    let _server = spawn_app_on(target.clone(), |_| {}).await;
    for table in ["rm_graphs", "rm_library_agents", "rm_users", "rm_credit_balances"] {
        let (want, mut got) = (models(&app.pool, table).await, Vec::new());
        for _ in 0..200 {
            got = models(&imported, table).await;
            if got == want {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(got, want, "{table} rebuilt from the imported log");
        assert!(!want.is_empty() || !table.starts_with("rm_graphs"), "{table} has rows to compare");
    }
    let again = import(&target, &export);
    assert!(!again.status.success(), "a second import into a non-empty log is refused");
    assert!(String::from_utf8_lossy(&again.stderr).contains("empty log"));

    // An export edited on the way: the event's recomputed hash differs.
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut edited: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    let position = edited["position"].as_i64().unwrap();
    edited["data"] = serde_json::Value::String(r#"{"name": "forged"}"#.into());
    lines[1] = edited.to_string();
    let other = fresh_database().await;
    let output = import(&other, (lines.join("\n") + "\n").as_bytes());
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("position {position}")), "{stderr}");
    let pool = PgPool::connect(&other).await.unwrap();
    assert!(rows(&pool).await.is_empty(), "nothing of a refused import is kept");
}
