//! Typed configuration, read once from the environment (and CLI flags).

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::Algorithm;

/// The key used when none is configured: for local development only; the
/// server then binds to loopback and says so loudly.
pub const DEV_JWT_KEY: &str = "autogpt-es-development-key-do-not-use-in-production";

/// A secret that never prints.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How tokens are verified.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// HMAC secret or PEM public key.
    pub verify_key: Secret,
    /// The one accepted algorithm.
    pub algorithm: Algorithm,
    /// No key was configured: the development key is in use.
    pub dev_key: bool,
}

/// Server configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Postgres URL.
    pub database_url: Secret,
    /// Address to bind.
    pub host: IpAddr,
    /// Port to bind (0: any free port).
    pub port: u16,
    /// Token verification.
    pub auth: AuthConfig,
    /// NATS URL, if any (events then fan out across instances).
    pub nats_url: Option<String>,
    /// Allowed CORS origins; empty means any.
    pub cors_origins: Vec<String>,
    /// Largest accepted request body.
    pub body_limit: usize,
    /// How long a command waits for the projections it affects.
    pub consistency_timeout: Duration,
    /// Requests a second each user may send (0: no limit).
    pub rate_limit_per_user: u32,
    /// Requests a second each client address may send without a known
    /// identity (0: no limit).
    pub rate_limit_per_address: u32,
    /// Requests of one caller that may wait for read models (or for a
    /// duplicate keyed request) at once.
    pub waits_per_user: usize,
    /// Runs this instance carries out at once.
    pub executor_workers: usize,
    /// Runs of one user carried out at once, across instances.
    pub executor_per_user: usize,
    /// The most graphs, schedules, API keys and presets a user may hold.
    pub quotas: domain::quota::QuotaLimits,
    /// How long a worker holds a run without renewing before another takes
    /// it over.
    pub executor_lease: Duration,
    /// Starts after which a node that never ended (its process went away
    /// each time) is failed rather than started again.
    pub executor_max_node_starts: u32,
    /// Starting credits and the per-count charge of node executions.
    pub credits: domain::credit::CreditRules,
    /// Pushes a WebSocket client may fall behind before it is cut off
    /// (4008) and told to resume by token.
    pub ws_buffer: usize,
    /// Connections of the shared pool (appends take up to 8 more of their
    /// own, each projector one).
    pub db_pool_size: u32,
    /// Cron schedules are fired by this instance (any number may).
    pub scheduler_enabled: bool,
    /// How often the scheduler looks for due schedules.
    pub scheduler_poll: Duration,
    /// Due schedules one look fires at most (`SCHEDULER_BATCH`), taken
    /// round-robin across users.
    pub scheduler_batch: i64,
    /// How often this instance seals the log's new events (`SEAL_INTERVAL_MS`,
    /// 0 turns sealing off here; any number of instances may seal).
    pub seal_interval: Option<Duration>,
    /// The master key sealing credentials' data keys (`ENCRYPTION_KEY`,
    /// 32 bytes in base64 or hex, AutoGPT's setting name); without it a
    /// development key kept in the database.
    pub encryption_key: Option<Secret>,
    /// Earlier master keys, still opening what they wrapped
    /// (`ENCRYPTION_OLD_KEYS`, comma-separated).
    pub encryption_old_keys: Option<Secret>,
    /// What blocks that call out may reach and how (`OPENAI_BASE_URL`,
    /// `OPENAI_API_KEY`, `OUTBOUND_ALLOW`, the timeouts and limits).
    pub outbound: Outbound,
    /// Where uploaded files are kept (`FILE_STORAGE_DIR`, default
    /// `./.autogpt-es/files`, relative to the working directory; created on
    /// the first upload): `uploads/<user>/` and `media/<user>/`, each file
    /// named by its SHA-256, never by the name the client sent.
    pub file_storage_dir: PathBuf,
    /// Largest file the upload routes take (`MAX_UPLOAD_BYTES`, default
    /// 10 MiB; 413 beyond). The request, multipart framing included, must
    /// also fit in `BODY_LIMIT_BYTES`.
    pub max_upload_bytes: usize,
}

/// Settings of the blocks that call out.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// The OpenAI-compatible API the LLM blocks call (`OPENAI_BASE_URL`).
    pub openai_base_url: String,
    /// The platform's own key for it, used when a block names no
    /// credential (`OPENAI_API_KEY`).
    pub openai_api_key: Option<Secret>,
    /// Addresses the SSRF guard lets through although private or loopback
    /// (`OUTBOUND_ALLOW`: comma-separated IPs and CIDRs; empty by default).
    pub allow: String,
    /// Longest exchange, body included (`OUTBOUND_TIMEOUT_MS`).
    pub timeout: Duration,
    /// Largest response body read (`OUTBOUND_MAX_RESPONSE_BYTES`).
    pub max_response_bytes: usize,
    /// Extra attempts after a failed connection or a 429/502/503/504
    /// (`OUTBOUND_RETRIES`).
    pub retries: u32,
}

impl Default for Outbound {
    fn default() -> Self {
        Self {
            openai_base_url: "https://api.openai.com/v1".into(),
            openai_api_key: None,
            allow: String::new(),
            timeout: Duration::from_secs(60),
            max_response_bytes: 10 * 1024 * 1024,
            retries: 2,
        }
    }
}

/// Default largest request body (10 MiB).
pub const DEFAULT_BODY_LIMIT: usize = 10 * 1024 * 1024;

/// Default largest uploaded file (10 MiB).
pub const DEFAULT_MAX_UPLOAD: usize = 10 * 1024 * 1024;

/// Default directory of uploaded files, relative to the working directory.
pub const DEFAULT_FILE_STORAGE_DIR: &str = "./.autogpt-es/files";

/// Default wait of a command for its projections.
pub const DEFAULT_CONSISTENCY_TIMEOUT: Duration = Duration::from_secs(5);

/// The default local database.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/autogpt";

impl Config {
    /// Read from the environment with the documented defaults.
    pub fn from_env() -> Result<Self, String> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let key = var("JWT_VERIFY_KEY").or_else(|| var("SUPABASE_JWT_SECRET"));
        let algorithm = parse_algorithm(&var("JWT_SIGN_ALGORITHM").unwrap_or_else(|| "HS256".into()))?;
        let dev_key = key.is_none();
        let default_host = if dev_key { "127.0.0.1" } else { "0.0.0.0" };
        let host: IpAddr =
            var("HOST").unwrap_or_else(|| default_host.into()).parse().map_err(|e| format!("HOST: {e}"))?;
        if dev_key && !host.is_loopback() {
            return Err("JWT_VERIFY_KEY is unset: refusing to bind a non-loopback HOST with the development key".into());
        }
        Ok(Self {
            database_url: Secret::new(var("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into())),
            host,
            port: parse_num(var("PORT"), 8006, "PORT")?,
            auth: AuthConfig { verify_key: Secret::new(key.unwrap_or_else(|| DEV_JWT_KEY.into())), algorithm, dev_key },
            nats_url: var("NATS_URL"),
            cors_origins: var("CORS_ORIGINS")
                .map(|v| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
                .unwrap_or_default(),
            body_limit: parse_num(var("BODY_LIMIT_BYTES"), 10 * 1024 * 1024, "BODY_LIMIT_BYTES")?,
            consistency_timeout: Duration::from_millis(parse_num(
                var("CONSISTENCY_TIMEOUT_MS"),
                5000,
                "CONSISTENCY_TIMEOUT_MS",
            )?),
            rate_limit_per_user: parse_num(
                var("RATE_LIMIT_PER_USER"),
                crate::limits::DEFAULT_PER_USER,
                "RATE_LIMIT_PER_USER",
            )?,
            rate_limit_per_address: parse_num(
                var("RATE_LIMIT_PER_ADDRESS"),
                crate::limits::DEFAULT_PER_ADDRESS,
                "RATE_LIMIT_PER_ADDRESS",
            )?,
            waits_per_user: parse_num(
                var("CONSISTENCY_WAITS_PER_USER"),
                crate::waits::DEFAULT_WAITS_PER_USER,
                "CONSISTENCY_WAITS_PER_USER",
            )?,
            executor_workers: parse_num(var("EXECUTOR_WORKERS"), 10, "EXECUTOR_WORKERS")?,
            // AutoGPT's name first; ours, from before, still read.
            executor_per_user: match var("MAX_CONCURRENT_GRAPH_EXECUTIONS_PER_USER") {
                Some(v) => parse_num(Some(v), 25, "MAX_CONCURRENT_GRAPH_EXECUTIONS_PER_USER")?,
                None => parse_num(var("EXECUTOR_PER_USER"), 25, "EXECUTOR_PER_USER")?,
            },
            quotas: {
                let d = domain::quota::QuotaLimits::default();
                domain::quota::QuotaLimits {
                    graphs: parse_num(var("MAX_GRAPHS_PER_USER"), d.graphs, "MAX_GRAPHS_PER_USER")?,
                    schedules: parse_num(var("MAX_SCHEDULES_PER_USER"), d.schedules, "MAX_SCHEDULES_PER_USER")?,
                    api_keys: parse_num(var("MAX_API_KEYS_PER_USER"), d.api_keys, "MAX_API_KEYS_PER_USER")?,
                    presets: parse_num(var("MAX_PRESETS_PER_USER"), d.presets, "MAX_PRESETS_PER_USER")?,
                }
            },
            executor_lease: Duration::from_millis(parse_num(var("EXECUTOR_LEASE_MS"), 15_000, "EXECUTOR_LEASE_MS")?),
            executor_max_node_starts: parse_num(var("EXECUTOR_MAX_NODE_STARTS"), 3, "EXECUTOR_MAX_NODE_STARTS")?,
            db_pool_size: parse_num(var("DB_POOL_SIZE"), 32, "DB_POOL_SIZE")?,
            ws_buffer: parse_num(var("WS_BUFFER"), crate::live::bus::CAPACITY, "WS_BUFFER")?.max(1),
            scheduler_enabled: parse_flag(var("SCHEDULER_ENABLED"), true, "SCHEDULER_ENABLED")?,
            scheduler_poll: Duration::from_millis(
                parse_num(var("SCHEDULER_POLL_MS"), 1000, "SCHEDULER_POLL_MS")?.max(1),
            ),
            scheduler_batch: parse_num(var("SCHEDULER_BATCH"), 100i64, "SCHEDULER_BATCH")?.clamp(1, 10_000),
            seal_interval: Some(parse_num(var("SEAL_INTERVAL_MS"), 10_000u64, "SEAL_INTERVAL_MS")?)
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis),
            encryption_key: var("ENCRYPTION_KEY").map(Secret::new),
            encryption_old_keys: var("ENCRYPTION_OLD_KEYS").map(Secret::new),
            outbound: Outbound {
                openai_base_url: var("OPENAI_BASE_URL").unwrap_or_else(|| Outbound::default().openai_base_url),
                openai_api_key: var("OPENAI_API_KEY").map(Secret::new),
                allow: var("OUTBOUND_ALLOW").unwrap_or_default(),
                timeout: Duration::from_millis(parse_num(var("OUTBOUND_TIMEOUT_MS"), 60_000, "OUTBOUND_TIMEOUT_MS")?),
                max_response_bytes: parse_num(
                    var("OUTBOUND_MAX_RESPONSE_BYTES"),
                    10 * 1024 * 1024,
                    "OUTBOUND_MAX_RESPONSE_BYTES",
                )?,
                retries: parse_num(var("OUTBOUND_RETRIES"), 2, "OUTBOUND_RETRIES")?,
            },
            file_storage_dir: PathBuf::from(var("FILE_STORAGE_DIR").unwrap_or_else(|| DEFAULT_FILE_STORAGE_DIR.into())),
            max_upload_bytes: parse_num(var("MAX_UPLOAD_BYTES"), DEFAULT_MAX_UPLOAD, "MAX_UPLOAD_BYTES")?,
            credits: domain::credit::CreditRules {
                starting_grant: parse_num(var("STARTING_CREDITS"), 1500, "STARTING_CREDITS")?,
                count_threshold: parse_num(
                    var("EXECUTION_COST_COUNT_THRESHOLD"),
                    100,
                    "EXECUTION_COST_COUNT_THRESHOLD",
                )?,
                cost_per_threshold: parse_num(var("EXECUTION_COST_PER_THRESHOLD"), 1, "EXECUTION_COST_PER_THRESHOLD")?,
                credits_per_1k_tokens: parse_num(var("CREDITS_PER_1K_TOKENS"), 1, "CREDITS_PER_1K_TOKENS")?,
            },
        })
    }
}

impl Config {
    /// A loopback server on any free port with an HS256 key and the default
    /// limits: what tests and benchmarks embed.
    pub fn local(database_url: impl Into<String>, hs256_key: &str) -> Self {
        Self {
            database_url: Secret::new(database_url),
            host: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            auth: AuthConfig { verify_key: Secret::new(hs256_key), algorithm: Algorithm::HS256, dev_key: false },
            nats_url: None,
            cors_origins: vec![],
            body_limit: DEFAULT_BODY_LIMIT,
            consistency_timeout: DEFAULT_CONSISTENCY_TIMEOUT,
            rate_limit_per_user: crate::limits::DEFAULT_PER_USER,
            rate_limit_per_address: crate::limits::DEFAULT_PER_ADDRESS,
            waits_per_user: crate::waits::DEFAULT_WAITS_PER_USER,
            executor_workers: 10,
            executor_per_user: 25,
            quotas: domain::quota::QuotaLimits::default(),
            executor_lease: Duration::from_secs(15),
            executor_max_node_starts: 3,
            credits: domain::credit::CreditRules::default(),
            db_pool_size: 32,
            ws_buffer: crate::live::bus::CAPACITY,
            scheduler_enabled: true,
            scheduler_poll: Duration::from_secs(1),
            scheduler_batch: 100,
            seal_interval: Some(Duration::from_secs(10)),
            encryption_key: None,
            encryption_old_keys: None,
            outbound: Outbound::default(),
            // Not the working directory: embedding code (tests, benchmarks)
            // should not leave files in a checkout.
            file_storage_dir: std::env::temp_dir().join("autogpt-es-files"),
            max_upload_bytes: DEFAULT_MAX_UPLOAD,
        }
    }
}

fn parse_num<T: std::str::FromStr>(value: Option<String>, default: T, name: &str) -> Result<T, String> {
    value.map_or(Ok(default), |v| v.parse().map_err(|_| format!("{name}: not a valid number: {v}")))
}

/// A yes/no setting: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`.
fn parse_flag(value: Option<String>, default: bool, name: &str) -> Result<bool, String> {
    match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some("false" | "0" | "no" | "off") => Ok(false),
        Some(other) => Err(format!("{name}: expected true or false, got {other}")),
    }
}

/// An algorithm name as `JWT_SIGN_ALGORITHM` gives it.
pub fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    name.parse::<Algorithm>().map_err(|_| format!("JWT_SIGN_ALGORITHM: unsupported algorithm {name}"))
}
