//! `spawn_app()`: a fresh database (copied from a migrated template) and a
//! running server on port 0, plus a client with auth helpers.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use api::auth::{sign, Claims, AUDIENCE};
use api::config::AuthConfig;
use api::{db, embedded, App, Config};
use commands::PgEventStore;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;
use sqlx::{Connection, Executor, PgConnection, PgPool};
use tokio::sync::OnceCell;
use uuid::Uuid;

/// The Postgres server tests run against, as a URL without a database:
/// `TEST_DATABASE_URL` when set; else the system's server on 127.0.0.1:5432
/// when it answers; else (or with `TEST_DATABASE_URL=embedded`) a private
/// cluster started as `autogpt-es serve` starts one ([`api::embedded`]), in
/// the temporary directory, once per test process. The tests leave it
/// running: the next run finds it ready.
pub fn server_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    // Blocking on purpose: callers are sync, and the first caller's start
    // (a few seconds, once) may hold up the others.
    URL.get_or_init(|| {
        match std::env::var("TEST_DATABASE_URL").ok().filter(|v| !v.is_empty()) {
            Some(url) if url != embedded::FORCE => return url,
            None if embedded::default_server_answers_blocking() => {
                return format!("postgres://postgres@{}", embedded::DEFAULT_SERVER);
            }
            _ => {}
        }
        let settings = embedded::Settings { data_dir: std::env::temp_dir().join("autogpt-es-e2e-postgres"), port: 0 };
        let cluster = embedded::Cluster::start_blocking(&settings).unwrap_or_else(|e| panic!("{e}"));
        eprintln!(
            "tests use the private PostgreSQL cluster in {} ({:?})",
            cluster.data_dir().display(),
            cluster.outcome()
        );
        cluster.server_url()
    })
    .clone()
}

fn admin_db_url() -> String {
    format!("{}/postgres", server_url())
}

static TEMPLATE: OnceCell<String> = OnceCell::const_new();

/// Database names carry their creation time, so a run only cleans up what
/// earlier runs left behind (older than an hour), never a concurrent run's.
fn db_name(kind: &str) -> String {
    format!("autogpt_es_{kind}_{}_{}", chrono::Utc::now().timestamp(), Uuid::new_v4().simple())
}

/// A migrated template database, created once per test process. Test
/// databases of earlier runs are dropped at the same time.
async fn template() -> &'static str {
    TEMPLATE
        .get_or_init(|| async {
            let name = db_name("tmpl");
            let mut admin = PgConnection::connect(&admin_db_url()).await.expect("connect to postgres");
            let stale: Vec<String> = sqlx::query_scalar(
                "SELECT datname FROM pg_database WHERE datname ~ '^autogpt_es_(tmpl|test)_[0-9]+_' \
                 AND (CASE WHEN datname ~ '^autogpt_es_(tmpl|test)_[0-9]+_' THEN split_part(datname, '_', 4)::bigint END) \
                   < extract(epoch FROM now()) - 3600 \
                 AND datname NOT IN (SELECT datname FROM pg_stat_activity WHERE datname IS NOT NULL)",
            )
            .fetch_all(&mut admin)
            .await
            .expect("list stale databases");
            for db in stale {
                let _ = admin.execute(format!("DROP DATABASE IF EXISTS \"{db}\"").as_str()).await;
            }
            admin.execute(format!("CREATE DATABASE \"{name}\"").as_str()).await.expect("create template");
            let pool = PgPool::connect(&format!("{}/{name}", server_url())).await.expect("connect template");
            db::migrate(&pool).await.expect("migrate template");
            pool.close().await;
            name
        })
        .await
}

/// A fresh, migrated database; returns its URL.
pub async fn fresh_database() -> String {
    let template = template().await;
    let name = db_name("test");
    let mut admin = PgConnection::connect(&admin_db_url()).await.expect("connect to postgres");
    for attempt in 0.. {
        match admin.execute(format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\"").as_str()).await {
            Ok(_) => break,
            // Concurrent copies of one template can collide; try again.
            Err(e) if attempt < 20 => {
                tracing_free_log(&e);
                tokio::time::sleep(Duration::from_millis(50 * (attempt + 1))).await;
            }
            Err(e) => panic!("create test database: {e}"),
        }
    }
    format!("{}/{name}", server_url())
}

fn tracing_free_log(e: &sqlx::Error) {
    eprintln!("retrying database creation: {e}");
}

/// A store on a fresh database.
pub async fn fresh_store() -> PgEventStore {
    let url = fresh_database().await;
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(20).connect(&url).await.expect("connect");
    PgEventStore::new(pool)
}

/// A running server and a client for it.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// HTTP client.
    pub client: reqwest::Client,
    /// The test database.
    pub pool: PgPool,
    /// Auth settings of the server.
    pub auth: Arc<AuthConfig>,
    /// The test database's URL.
    pub url: String,
}

/// The signing key tests use.
pub const TEST_KEY: &str = "test-secret-key-for-e2e-tests-only";

/// Start a server on a fresh database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Start a server on a fresh database, adjusting the config first.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_on(fresh_database().await, adjust).await
}

/// Start a server on an existing database (a second instance sharing one).
pub async fn spawn_app_on(url: String, adjust: impl FnOnce(&mut Config)) -> TestApp {
    // Templates that could grow without bound render in the server's
    // binary under limits, as the server itself arranges in `main`.
    executor::sandbox::use_renderer(env!("CARGO_BIN_EXE_autogpt-es").into());
    let mut config = Config::local(url.clone(), TEST_KEY);
    // Tests run side by side, some with two instances, on one Postgres
    // server (100 connections by default): each instance keeps to a few.
    config.db_pool_size = 6;
    let auth = config.auth.clone();
    adjust(&mut config);
    let app = App::build(config).await.expect("build app");
    let port = app.port();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let mut test_app = TestApp::at(port, url).await;
    test_app.auth = Arc::new(auth);
    test_app
}

impl TestApp {
    /// A client of a server already listening on `port` over `url`, signing
    /// with [`TEST_KEY`].
    pub async fn at(port: u16, url: String) -> Self {
        let pool =
            sqlx::postgres::PgPoolOptions::new().max_connections(4).connect(&url).await.expect("connect test db");
        let auth = Config::local(url.clone(), TEST_KEY).auth;
        let address = format!("http://127.0.0.1:{port}");
        TestApp { address, client: reqwest::Client::new(), pool, auth: Arc::new(auth), url }
    }
}

/// Claims for a user, valid for an hour.
pub fn claims(user: Uuid, admin: bool) -> Claims {
    Claims {
        sub: user.to_string(),
        aud: AUDIENCE.into(),
        exp: chrono::Utc::now().timestamp() + 3600,
        role: Some(if admin { "admin" } else { "authenticated" }.into()),
        email: Some(format!("{}@example.com", &user.simple().to_string()[..8])),
        user_metadata: None,
    }
}

impl TestApp {
    /// Poll a run of `owner` until it has ended, within `wait`; the run.
    pub async fn run_ended(&self, owner: Uuid, graph_id: &str, run_id: &str, wait: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let (status, run) = self.get(&format!("/api/graphs/{graph_id}/executions/{run_id}"), owner).await;
            assert_eq!(status, 200, "{run}");
            if ["COMPLETED", "FAILED", "TERMINATED"].contains(&run["status"].as_str().unwrap_or("")) {
                return run;
            }
            assert!(tokio::time::Instant::now() < deadline, "run never ended: {run}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A valid token for `user`.
    pub fn token(&self, user: Uuid, admin: bool) -> String {
        sign(&self.auth, &claims(user, admin)).expect("sign")
    }

    /// A request as `user` to `path` (relative to the server).
    pub fn request(&self, method: Method, path: &str, user: Uuid) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.address)).bearer_auth(self.token(user, false))
    }

    /// An unauthenticated request.
    pub fn anonymous(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.address))
    }

    /// GET as `user`, returning status and JSON body.
    pub async fn get(&self, path: &str, user: Uuid) -> (u16, Value) {
        send(self.request(Method::GET, path, user)).await
    }

    /// POST JSON as `user`.
    pub async fn post(&self, path: &str, user: Uuid, body: &Value) -> (u16, Value) {
        send(self.request(Method::POST, path, user).json(body)).await
    }

    /// PUT JSON as `user`.
    pub async fn put(&self, path: &str, user: Uuid, body: &Value) -> (u16, Value) {
        send(self.request(Method::PUT, path, user).json(body)).await
    }

    /// PATCH JSON as `user`.
    pub async fn patch(&self, path: &str, user: Uuid, body: &Value) -> (u16, Value) {
        send(self.request(Method::PATCH, path, user).json(body)).await
    }

    /// DELETE as `user`.
    pub async fn delete(&self, path: &str, user: Uuid) -> (u16, Value) {
        send(self.request(Method::DELETE, path, user)).await
    }

    /// Create a graph for `user` and return the served GraphModel.
    pub async fn create_graph(&self, user: Uuid, graph: Value) -> Value {
        let (status, body) = self.post("/api/graphs", user, &serde_json::json!({ "graph": graph })).await;
        assert_eq!(status, 200, "create graph: {body}");
        body
    }
}

/// Send and decode: status plus JSON body (`null` when empty).
pub async fn send(request: RequestBuilder) -> (u16, Value) {
    let response: Response = request.send().await.expect("request failed");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    (status, body)
}

/// Block ids used by tests.
pub mod blocks {
    /// StoreValueBlock (static output).
    pub const STORE_VALUE: &str = "1ff065e9-88e8-4358-9d82-8dc91f622ba9";
    /// FillTextTemplateBlock.
    pub const FILL_TEMPLATE: &str = "db7d8f02-2f44-4c55-ab7a-eae0941f0c30";
    /// PrintToConsoleBlock.
    pub const PRINT: &str = "f3b1c1b2-4c4f-4f0d-8d2f-4c4f0d8d2f4c";
    /// AgentInputBlock.
    pub const AGENT_INPUT: &str = "c0a8e994-ebf1-4a9c-a4d8-89d09c86741b";
    /// AgentOutputBlock.
    pub const AGENT_OUTPUT: &str = "363ae599-353e-4804-937e-b2ee3cef3da4";
}

/// AgentInput(name) → FillTextTemplate("Hello, {{name}}!") → AgentOutput(greeting).
pub fn greeting_graph() -> Value {
    serde_json::json!({
        "name": "greeting",
        "description": "says hello",
        "nodes": [
            {"id": "in", "block_id": blocks::AGENT_INPUT, "input_default": {"name": "name"}},
            {"id": "tpl", "block_id": blocks::FILL_TEMPLATE, "input_default": {"format": "Hello, {{name}}!"}},
            {"id": "out", "block_id": blocks::AGENT_OUTPUT, "input_default": {"name": "greeting"}}
        ],
        "links": [
            {"source_id": "in", "sink_id": "tpl", "source_name": "result", "sink_name": "values_#_name"},
            {"source_id": "tpl", "sink_id": "out", "source_name": "output", "sink_name": "value"}
        ]
    })
}

/// AgentInput(n) → AgentOutput(echo): two nodes.
pub fn echo_graph() -> Value {
    serde_json::json!({
        "name": "echo", "description": "",
        "nodes": [
            {"id": "in", "block_id": blocks::AGENT_INPUT, "input_default": {"name": "n"}},
            {"id": "out", "block_id": blocks::AGENT_OUTPUT, "input_default": {"name": "echo"}}
        ],
        "links": [{"source_id": "in", "sink_id": "out", "source_name": "result", "sink_name": "value"}]
    })
}

/// AutoGPT's sample graph: two StoreValue blocks into a template, printed.
pub fn sample_graph(name: &str) -> Value {
    serde_json::json!({
        "name": name,
        "description": "sample",
        "nodes": [
            {"id": "a", "block_id": blocks::STORE_VALUE, "input_default": {"input": "Hello"}},
            {"id": "b", "block_id": blocks::STORE_VALUE, "input_default": {"input": "World"}},
            {"id": "t", "block_id": blocks::FILL_TEMPLATE, "input_default": {"format": "{{a}}, {{b}}!"}},
            {"id": "p", "block_id": blocks::PRINT}
        ],
        "links": [
            {"source_id": "a", "sink_id": "t", "source_name": "output", "sink_name": "values_#_a"},
            {"source_id": "b", "sink_id": "t", "source_name": "output", "sink_name": "values_#_b"},
            {"source_id": "t", "sink_id": "p", "source_name": "output", "sink_name": "text"}
        ]
    })
}

/// The server binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_autogpt-es");

/// A server binary running as a child process.
pub struct Server {
    /// The process.
    pub child: std::process::Child,
    /// The port it serves on.
    pub port: u16,
    /// Its output lines, as they come.
    pub lines: std::sync::mpsc::Receiver<String>,
}

/// Run `autogpt-es serve` on a database, on a free port, with extra
/// environment; wait until it says which port it serves on.
pub fn serve(url: &str, env: &[(&str, &str)]) -> Server {
    serve_logged(url, env).0
}

/// As [`serve`], also returning the lines it printed before it said which
/// port it serves on.
pub fn serve_logged(url: &str, env: &[(&str, &str)]) -> (Server, Vec<String>) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(BIN)
        .arg("serve")
        .env("DATABASE_URL", url)
        .env("PORT", "0")
        .env("JWT_VERIFY_KEY", TEST_KEY)
        .env("HOST", "127.0.0.1")
        .env("RUST_LOG", "info")
        .env("DB_POOL_SIZE", "6")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the server binary");
    let stdout = child.stdout.take().expect("stdout");
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut startup = Vec::new();
    let port = loop {
        let line = lines
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("server printed its port ({e}); before:\n{}", startup.join("\n")));
        if let Some(rest) = line.split("port=").nth(1) {
            break rest.trim().parse::<u16>().expect("port");
        }
        startup.push(line);
    };
    (Server { child, port, lines }, startup)
}
