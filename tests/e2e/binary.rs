//! The `autogpt-es` binary as an operator runs it: serve, answer, stop
//! cleanly on SIGTERM; print tokens; report projection status.

use std::process::Command;
use std::time::Duration;

use crate::helpers::{fresh_database, serve, Server, BIN, TEST_KEY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_then_shuts_down_gracefully_on_sigterm() {
    let url = fresh_database().await;
    let Server { mut child, port, lines: lines_rx } = serve(&url, &[]);
    let token = String::from_utf8(
        Command::new(BIN)
            .args(["token", "--user", "3e53486c-cf57-477e-ba2a-cb02dc828e1a"])
            .env("JWT_VERIFY_KEY", TEST_KEY)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let client = reqwest::Client::new();
    let response =
        client.get(format!("http://127.0.0.1:{port}/api/graphs")).bearer_auth(token.trim()).send().await.unwrap();
    assert_eq!(response.status(), 200, "a token from `autogpt-es token` is accepted");
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
    // Read to the end of its output: the reader thread may still hold lines.
    let rest: Vec<String> = std::iter::from_fn(|| lines_rx.recv_timeout(Duration::from_secs(5)).ok()).collect();
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
}

#[tokio::test]
async fn projections_status_lists_every_projector() {
    let url = fresh_database().await;
    let output = Command::new(BIN).args(["projections", "status"]).env("DATABASE_URL", &url).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout);
    for name in ["graphs", "library_agents", "users"] {
        assert!(text.lines().any(|l| l.starts_with(name)), "{name} missing from:\n{text}");
    }
}

#[tokio::test]
async fn the_development_key_refuses_a_public_bind() {
    let output = Command::new(BIN)
        .arg("serve")
        .env_remove("JWT_VERIFY_KEY")
        .env_remove("SUPABASE_JWT_SECRET")
        .env("HOST", "0.0.0.0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("JWT_VERIFY_KEY"));
}
