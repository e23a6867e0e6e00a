//! Zero-setup runs: `autogpt-es serve` with no database configured creates a
//! private PostgreSQL cluster from the system's `initdb`/`pg_ctl`, serves on
//! it, stops it on exit, and finds it again on the next start. The system
//! server answers on 127.0.0.1:5432 here, so `DATABASE_URL=embedded` stands
//! in for "unset, and nothing there"; both take the same path after the probe.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use api::auth::sign;
use api::embedded::{self, Cluster, Outcome, Settings};
use api::Config;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::helpers::{claims, sample_graph, serve_logged, Server, TEST_KEY};

/// A data directory under the temporary directory (which the `postgres`
/// user can reach when the tests run as root), removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        // A failed assertion may leave a server running there: SIGINT is
        // PostgreSQL's fast shutdown.
        if let Ok(pid_file) = std::fs::read_to_string(self.0.join("pg/postmaster.pid")) {
            if let Some(pid) = pid_file.lines().next() {
                let _ = Command::new("kill").args(["-INT", pid]).status();
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Serve on the private cluster in `data`; the lines printed before serving.
fn serve_private(data: &Path) -> (Server, Vec<String>) {
    let data = data.to_str().expect("utf-8 path");
    serve_logged(embedded::FORCE, &[(embedded::DATA_DIR_VAR, data), (embedded::PORT_VAR, "0")])
}

/// SIGTERM, a clean exit, and everything it printed after serving.
async fn stop(server: Server) -> Vec<String> {
    let Server { mut child, lines, .. } = server;
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
    std::iter::from_fn(|| lines.recv_timeout(Duration::from_secs(5)).ok()).collect()
}

fn said(lines: &[String], what: &str) -> bool {
    lines.iter().any(|l| l.contains(what))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_creates_a_private_cluster_then_starts_and_reuses_it() {
    let scratch = Scratch(std::env::temp_dir().join(format!("autogpt-es-zero-setup-{}", Uuid::new_v4().simple())));
    let data = scratch.0.join("pg");
    let client = reqwest::Client::new();
    let user = Uuid::new_v4();
    let token = sign(&Config::local("", TEST_KEY).auth, &claims(user, false)).unwrap();
    let graphs = |port: u16| {
        let request = client.get(format!("http://127.0.0.1:{port}/api/graphs")).bearer_auth(&token);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<serde_json::Value>().await.unwrap()
        }
    };

    // First start: nothing there yet.
    let (server, startup) = serve_private(&data);
    assert!(said(&startup, "PostgreSQL binaries"), "{startup:#?}");
    assert!(said(&startup, "created a PostgreSQL cluster"), "{startup:#?}");
    assert!(said(&startup, "started the PostgreSQL cluster"), "{startup:#?}");
    let health = client.get(format!("http://127.0.0.1:{}/health", server.port)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let created = client
        .post(format!("http://127.0.0.1:{}/api/graphs", server.port))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "graph": sample_graph("zero-setup") }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200, "an authenticated write");
    if std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        let owner = std::fs::metadata(&data).unwrap().uid();
        assert_ne!(owner, 0, "as root, the cluster belongs to another user (initdb refuses root)");
    }
    let rest = stop(server).await;
    assert!(said(&rest, "stopped the PostgreSQL cluster"), "it started the cluster, so it stops it: {rest:#?}");
    assert!(!data.join("postmaster.pid").exists());

    // A crash leaves postmaster.pid behind, naming a pid that is now some
    // other live process (here this one): it is set aside.
    std::fs::write(data.join("postmaster.pid"), format!("{}\n{}\n", std::process::id(), data.display())).unwrap();
    let (server, startup) = serve_private(&data);
    assert!(said(&startup, "stale postmaster.pid"), "{startup:#?}");
    assert!(said(&startup, "started the PostgreSQL cluster"), "{startup:#?}");
    assert!(!said(&startup, "created a PostgreSQL cluster"), "{startup:#?}");
    let listed = graphs(server.port).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "the first run's graph is still there: {listed}");
    let rest = stop(server).await;
    assert!(said(&rest, "stopped the PostgreSQL cluster"), "{rest:#?}");

    // Running already (started by someone else, here through the library
    // the tests' own cluster uses): reused, and left running on exit.
    let cluster = Cluster::start(Settings { data_dir: data.clone(), port: 0 }).await.unwrap();
    assert_eq!(cluster.outcome(), Outcome::Started);
    let (server, startup) = serve_private(&data);
    assert!(said(&startup, "reusing the PostgreSQL cluster"), "{startup:#?}");
    assert!(said(&startup, &format!("127.0.0.1:{}", cluster.port())), "{startup:#?}");
    assert_eq!(graphs(server.port).await.as_array().map(Vec::len), Some(1));
    let rest = stop(server).await;
    assert!(said(&rest, "left the PostgreSQL cluster running"), "{rest:#?}");
    let mut conn = PgConnection::connect(&cluster.url(embedded::DATABASE)).await.expect("still running");
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&mut conn).await.unwrap();
    assert!(events > 0);
    conn.close().await.unwrap();
    cluster.stop().await.unwrap();
    assert!(!data.join("postmaster.pid").exists());
}
