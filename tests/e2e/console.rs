//! The admin console (`/admin`) in a real headless Chromium, driven over
//! WebDriver: chromedriver runs as a child process on a free port, the page
//! talks to a real server, and every wait polls with a deadline.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{greeting_graph, spawn_app, TestApp};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// How long any one thing may take to appear: a cold Chromium start and
/// a projection catching up both fit well inside it.
const PATIENCE: Duration = Duration::from_secs(20);
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(50);

/// chromedriver, killed when the test ends however it ends.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    /// Start chromedriver on a free port; ready once it accepts connections.
    async fn start() -> Self {
        assert!(
            std::path::Path::new(CHROMEDRIVER).exists(),
            "{CHROMEDRIVER} is missing: apt-get install chromium chromium-driver (as .ci/run does)"
        );
        // The port is free when asked; chromedriver takes it a moment later,
        // which is as good as a race-free choice gets without its help.
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = Self { child, port };
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "chromedriver never listened on {port}");
            tokio::time::sleep(POLL).await;
        }
        driver
    }

    /// A browser session: headless Chromium, no sandbox (CI runs as root).
    async fn session(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
            }),
        );
        ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("WebDriver session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The element at `css`, once it is in the page.
async fn element(browser: &Client, css: &str) -> fantoccini::elements::Element {
    browser
        .wait()
        .at_most(PATIENCE)
        .every(POLL)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} never appeared: {e}"))
}

/// The shown text of `css` once `ready` accepts it.
async fn text_until(browser: &Client, css: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut last = String::new();
    loop {
        if let Ok(el) = browser.find(Locator::Css(css)).await {
            last = el.text().await.unwrap_or_default();
            if ready(&last) {
                return last;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "{css} never became ready; last text {last:?}");
        tokio::time::sleep(POLL).await;
    }
}

/// Paste `token` into the sign-in form and submit it.
async fn sign_in(browser: &Client, token: &str) {
    let field = element(browser, "#token").await;
    field.clear().await.expect("clear token");
    field.send_keys(token).await.expect("type token");
    element(browser, "#sign-in").await.click().await.expect("sign in");
}

/// Run `steps` against a fresh server in a headless browser. The steps run
/// in their own task so that a failed assertion still closes the session
/// (and with it Chromium) before the test fails.
async fn in_browser<F, Fut>(steps: F)
where
    F: FnOnce(TestApp, Client) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let app = spawn_app().await;
    let driver = Driver::start().await;
    let browser = driver.session().await;
    let outcome = tokio::spawn(steps(app, browser.clone())).await;
    let _ = browser.close().await;
    drop(driver);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test]
async fn the_admin_console_shows_projections_and_stream_history_to_admins_only() {
    in_browser(walk_through).await;
}

async fn walk_through(app: TestApp, browser: Client) {
    let user = Uuid::new_v4();
    let graph = app.create_graph(user, greeting_graph()).await;
    let stream = format!("graph-{}", graph["id"].as_str().expect("graph id"));

    browser.goto(&format!("{}/admin", app.address)).await.expect("open /admin");

    // A user who is not an admin sees the API's refusal and no data.
    sign_in(&browser, &app.token(user, false)).await;
    let refusal = text_until(&browser, "#error", |t| !t.is_empty()).await;
    assert!(refusal.contains("403") && refusal.contains("Admin access required"), "{refusal}");
    let rows = browser.find_all(Locator::Css("#projections tbody tr")).await.expect("rows");
    assert!(rows.is_empty(), "a non-admin saw {} projection rows", rows.len());
    assert!(!element(&browser, "#console").await.is_displayed().await.expect("displayed"));

    // An admin sees every projection, kept fresh.
    sign_in(&browser, &app.token(Uuid::new_v4(), true)).await;
    let graphs = element(&browser, r#"#projections tr[data-projection="graphs"]"#).await;
    let state = graphs.find(Locator::Css(r#"td[data-key="state"]"#)).await.expect("state cell");
    assert_eq!(state.text().await.expect("state"), "live");
    assert!(graphs.find(Locator::Css("button.rebuild")).await.is_ok(), "no Rebuild button");
    assert!(!element(&browser, "#error").await.is_displayed().await.expect("displayed"));
    let kept = browser.execute("return sessionStorage.length", vec![]).await.expect("sessionStorage");
    assert_eq!(kept, json!(1), "the token is kept for the tab");

    // A rebuild started from the console is followed to 100%, and the
    // projection is live again.
    graphs.find(Locator::Css("button.rebuild")).await.expect("rebuild button").click().await.expect("rebuild");
    let rebuild = r#"#projections tr[data-projection="graphs"] td[data-key="rebuild"]"#;
    let done = text_until(&browser, rebuild, |t| t.contains("100.0%")).await;
    assert!(done.contains("events"), "{done}");
    let state = r#"#projections tr[data-projection="graphs"] td[data-key="state"]"#;
    assert_eq!(text_until(&browser, state, |t| t == "live").await, "live");
    assert!(!element(&browser, "#rebuild-error").await.is_displayed().await.expect("displayed"));

    // A reload signs in again from the tab's session.
    browser.refresh().await.expect("reload");
    element(&browser, r#"#projections tr[data-projection="graphs"]"#).await;

    // The verify button shows what the server answered, result or error
    // (the route may not be served by this build).
    element(&browser, "#audit-verify").await.click().await.expect("verify");
    text_until(&browser, "#verify-result", |t| !t.is_empty() && t != "verifying…").await;

    // The log browser finds the graph's creation; its stream id opens the
    // stream's history.
    element(&browser, "#filter-category").await.send_keys("graph").await.expect("category");
    element(&browser, "#log-search").await.click().await.expect("search");
    let link = element(&browser, &format!(r#"#log-events a.stream-link[data-stream="{stream}"]"#)).await;
    link.click().await.expect("open stream");
    let first = r#"#stream-events tr[data-version="1"] .event-type"#;
    assert_eq!(text_until(&browser, first, |t| !t.is_empty()).await, "GraphCreated");

    // Typed in by hand, the same history.
    let input = element(&browser, "#stream-input").await;
    input.clear().await.expect("clear stream");
    browser.execute("document.querySelector('#stream-events tbody').replaceChildren()", vec![]).await.expect("reset");
    input.send_keys(&stream).await.expect("stream id");
    element(&browser, "#stream-open").await.click().await.expect("open");
    assert_eq!(text_until(&browser, first, |t| !t.is_empty()).await, "GraphCreated");

    // The aggregate as of version 1, folded by the server.
    element(&browser, r#"#stream-events tr[data-version="1"] button.state-at"#).await.click().await.expect("state");
    let folded = text_until(&browser, "#state-result", |t| !t.is_empty()).await;
    let folded: serde_json::Value = serde_json::from_str(&folded).expect("state JSON");
    assert_eq!(folded["stream_id"], json!(stream));
    assert_eq!(folded["version"], json!(1));
}

#[tokio::test]
async fn the_console_is_served_without_auth_and_is_not_an_api_operation() {
    let app = spawn_app().await;
    let assets = [("/admin", "text/html"), ("/admin/app.js", "text/javascript"), ("/admin/app.css", "text/css")];
    for (path, kind) in assets {
        let response = app.anonymous(reqwest::Method::GET, path).send().await.expect("request");
        assert_eq!(response.status(), 200, "{path}");
        let served = response.headers()["content-type"].to_str().expect("content type").to_owned();
        assert!(served.starts_with(kind), "{path}: {served}");
    }
    let (status, spec) = crate::helpers::send(app.anonymous(reqwest::Method::GET, "/openapi.json")).await;
    assert_eq!(status, 200);
    let paths = spec["paths"].as_object().expect("paths");
    assert!(paths.keys().all(|p| !p.starts_with("/admin")), "the console's page is not an API operation");
}

#[tokio::test]
async fn the_console_steps_through_a_replayed_runs_timeline() {
    in_browser(step_through).await;
}

async fn step_through(app: TestApp, browser: Client) {
    let owner = Uuid::new_v4();
    let graph = app.create_graph(owner, greeting_graph()).await;
    let graph_id = graph["id"].as_str().expect("graph id").to_owned();
    let (_, queued) =
        app.post(&format!("/api/graphs/{graph_id}/execute/1"), owner, &json!({"inputs": {"name": "Ada"}})).await;
    let run_id = queued["id"].as_str().expect("run id").to_owned();
    app.run_ended(owner, &graph_id, &run_id, PATIENCE).await;
    let path = format!("/api/graphs/{graph_id}/executions/{run_id}/replay");
    let (status, replay) = app.post(&path, owner, &json!({})).await;
    assert_eq!(status, 200, "{replay}");
    let replay_id = replay["id"].as_str().expect("replay id").to_owned();
    app.run_ended(owner, &graph_id, &replay_id, PATIENCE).await;

    browser.goto(&format!("{}/admin", app.address)).await.expect("open /admin");
    sign_in(&browser, &app.token(Uuid::new_v4(), true)).await;
    element(&browser, "#timeline-graph").await.send_keys(&graph_id).await.expect("graph id");
    element(&browser, "#timeline-run").await.send_keys(&replay_id).await.expect("run id");
    element(&browser, "#timeline-open").await.click().await.expect("open timeline");
    let summary = text_until(&browser, "#timeline-summary", |t| !t.is_empty()).await;
    assert!(summary.contains("COMPLETED") && summary.contains(&format!("replay of run {run_id}")), "{summary}");
    let ran = browser.find_all(Locator::Css("#timeline-steps tbody td.ran")).await.expect("rows");
    assert_eq!(ran.len(), 3, "one row a step");
    for cell in ran {
        assert_eq!(cell.text().await.expect("ran"), "recorded");
    }
    // Step by step: the first, then the template with its output.
    assert_eq!(text_until(&browser, "#step-position", |t| !t.is_empty()).await, "Step 1 of 3");
    element(&browser, "#step-next").await.click().await.expect("next");
    assert_eq!(text_until(&browser, "#step-position", |t| t.contains('2')).await, "Step 2 of 3");
    let title = text_until(&browser, "#step-title", |t| t.contains("FillTextTemplate")).await;
    assert!(title.contains("recorded"), "{title}");
    let output = text_until(&browser, "#step-output", |t| !t.is_empty()).await;
    assert!(output.contains("Hello, Ada!"), "{output}");
    element(&browser, "#step-prev").await.click().await.expect("previous");
    assert_eq!(text_until(&browser, "#step-position", |t| t.contains('1')).await, "Step 1 of 3");
    // Someone else's run id, as the console's admin sees it, or nothing.
    let run = element(&browser, "#timeline-run").await;
    run.clear().await.expect("clear");
    run.send_keys(&Uuid::new_v4().to_string()).await.expect("unknown run");
    element(&browser, "#timeline-open").await.click().await.expect("open timeline");
    let refusal = text_until(&browser, "#timeline-error", |t| !t.is_empty()).await;
    assert!(refusal.starts_with("404"), "{refusal}");
}
