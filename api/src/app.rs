//! Building and running the server: pool → migrations → projectors →
//! router → listener, all stopped by one shutdown signal.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::live::nats::Nats;
use crate::live::relay::Outlet;
use axum::Router;
use commands::clock::Clock;
use commands::services::Commands;
use commands::PgEventStore;
use executor::{Executor, ExecutorConfig, Scheduler, SchedulerConfig};
use projections::Projections;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::auth::Verifier;
use crate::config::Config;
use crate::state::AppState;
use crate::{db, http, openapi, routes};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Database connection failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The event store could not be checked.
    #[error("event store: {0}")]
    Store(#[from] eventlog::StoreError),
    /// Projectors could not start.
    #[error("projections: {0}")]
    Projections(#[from] projections::ProjectionError),
    /// `JWT_VERIFY_KEY` is not a key of the configured algorithm.
    #[error("JWT_VERIFY_KEY is not a valid key: {0}")]
    Key(#[from] jsonwebtoken::errors::Error),
    /// A setting is unusable (a master key that is not 32 bytes).
    #[error("{0}")]
    Config(String),
    /// `NATS_URL` is not a NATS address.
    #[error("NATS: {0}")]
    Nats(String),
    /// The port could not be bound.
    #[error("bind: {0}")]
    Bind(#[from] std::io::Error),
}

/// A built, bound, not yet serving application.
pub struct App {
    listener: TcpListener,
    router: Router,
    stop: CancellationToken,
    workers: Vec<JoinHandle<()>>,
    state: AppState,
}

impl App {
    /// Connect, migrate, start the projectors and bind the listener.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        Self::build_with_clock(config, Clock::system()).await
    }

    /// As [`App::build`], with commands and the scheduler reading the time
    /// from `clock` (tests fix or advance it).
    pub async fn build_with_clock(config: Config, clock: Clock) -> Result<Self, StartupError> {
        let verifier = Verifier::new(&config.auth)?;
        // Installed before anything records.
        crate::metrics::handle();
        let pool = db::connect(config.database_url.expose(), config.db_pool_size).await?;
        db::migrate(&pool).await?;
        let store = PgEventStore::new(pool);
        // Before anything reads or appends: the log may come from another server.
        store.ensure_order().await?;
        let bus = crate::live::Bus::new(config.ws_buffer);
        let stop = CancellationToken::new();
        let (outlet, forwarder) = match &config.nats_url {
            Some(url) => {
                let namespace = database_name(config.database_url.expose());
                let nats = Nats::connect(url, &namespace).await.map_err(|e| StartupError::Nats(e.to_string()))?;
                let forwarder = nats.forward(bus.clone(), stop.clone());
                (Outlet::Nats(Box::new(nats)), Some(forwarder))
            }
            None => (Outlet::Local(bus.clone()), None),
        };
        let mut projectors = projections::all();
        projectors.push(Arc::new(crate::live::Relay::new(store.clone(), outlet)));
        let projections = Projections::new(store.clone(), projectors);
        let mut workers = projections.spawn(stop.clone()).await?;
        workers.extend(forwarder);
        let vault = vault(&config, store.pool()).await?;
        let commands = Arc::new(
            Commands::with_clock(store, clock.clone())
                .with_credit_rules(config.credits)
                .with_vault(vault)
                .with_quotas(config.quotas),
        );
        let executor = Executor::new(
            commands.clone(),
            ExecutorConfig {
                workers: config.executor_workers,
                per_user: config.executor_per_user,
                lease: config.executor_lease,
                max_node_starts: config.executor_max_node_starts,
                ..ExecutorConfig::default()
            },
        )
        .with_outside(outside(&config.outbound)?);
        if let Some(wake) =
            projections.progress_of(projections::executions::NAME).filter(|_| config.executor_workers > 0)
        {
            workers.push(executor.spawn(wake, stop.clone()));
        }
        let scheduler = Scheduler::new(
            commands.clone(),
            clock,
            SchedulerConfig { poll: config.scheduler_poll, batch: config.scheduler_batch },
        );
        if config.scheduler_enabled {
            workers.push(scheduler.spawn(stop.clone()));
        }
        if let Some(every) = config.seal_interval {
            workers.push(crate::sealer::spawn(commands.store().pool().clone(), every, stop.clone()));
        }
        let state = AppState {
            commands,
            executor,
            scheduler,
            bus,
            projections,
            auth: Arc::new(verifier),
            consistency_timeout: config.consistency_timeout,
            waits: crate::waits::Waits::new(config.waits_per_user),
            keys: Arc::default(),
            system_llm_key: config.outbound.openai_api_key.is_some(),
            files: Arc::new(routes::FileStore::new(config.file_storage_dir.clone(), config.max_upload_bytes)),
        };
        let router = router(state.clone(), &config);
        let listener = TcpListener::bind(SocketAddr::new(config.host, config.port)).await?;
        Ok(Self { listener, router, stop, workers, state })
    }

    /// The bound port (useful with port 0).
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Shared state, for embedding and tests.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serve until `shutdown` resolves: finish in-flight requests, then stop
    /// the projectors after the batch each has in hand.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let served = axum::serve(self.listener, self.router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .await;
        self.stop.cancel();
        for worker in self.workers {
            if let Err(e) = worker.await {
                tracing::warn!(error = %e, "projector task ended abnormally");
            }
        }
        served
    }
}

/// The database's name in a Postgres URL: the namespace of this
/// deployment's subjects on a shared NATS server.
fn database_name(url: &str) -> String {
    url.split('?').next().unwrap_or(url).rsplit('/').next().unwrap_or("autogpt").to_owned()
}

/// The full router with middleware.
pub fn router(state: AppState, config: &Config) -> Router {
    let app = Router::new()
        .merge(routes::root())
        .merge(crate::live::ws::router())
        .merge(openapi::router())
        .nest("/api", routes::api(&state))
        .nest("/api/v1", routes::api(&state))
        .nest("/external-api/v1", routes::external(&state))
        .fallback(http::not_found)
        .method_not_allowed_fallback(http::method_not_allowed)
        .with_state(state.clone());
    let limits = crate::limits::RateLimits::new(
        config.rate_limit_per_user,
        config.rate_limit_per_address,
        state.auth,
        state.keys,
    );
    http::layer(app.layer(axum::middleware::from_fn_with_state(limits, crate::limits::limit)), config)
}

/// The vault sealing credentials: under `ENCRYPTION_KEY` (older keys still
/// opening what they wrapped), else under the database's development key.
async fn vault(config: &Config, pool: &sqlx::PgPool) -> Result<commands::vault::Vault, StartupError> {
    use commands::vault::{MasterKey, Vault};
    let bad = |e: commands::vault::VaultError| StartupError::Config(format!("ENCRYPTION_KEY: {e}"));
    let old = match &config.encryption_old_keys {
        Some(keys) => keys.expose().split(',').filter(|k| !k.trim().is_empty()).map(MasterKey::parse).collect(),
        None => Ok(vec![]),
    }
    .map_err(bad)?;
    let current = match &config.encryption_key {
        Some(key) => MasterKey::parse(key.expose()).map_err(bad)?,
        None => {
            tracing::warn!(
                "ENCRYPTION_KEY is unset: credentials are sealed under a development key kept in the database"
            );
            Vault::dev_key(pool).await.map_err(|e| StartupError::Config(e.to_string()))?
        }
    };
    Ok(Vault::new(pool.clone(), current, old))
}

/// The executor's door to the outside world, from `OUTBOUND_*` and
/// `OPENAI_*`.
fn outside(settings: &crate::config::Outbound) -> Result<executor::outside::Outside, StartupError> {
    use executor::net::{AllowList, HttpClient, NetConfig};
    let allow = AllowList::parse(&settings.allow).map_err(|e| StartupError::Config(format!("OUTBOUND_ALLOW: {e}")))?;
    let config = NetConfig {
        request_timeout: settings.timeout,
        max_response_bytes: settings.max_response_bytes,
        retries: settings.retries,
        allow,
        ..NetConfig::default()
    };
    let model = executor::outside::ModelApi {
        base_url: settings.openai_base_url.clone(),
        api_key: settings.openai_api_key.as_ref().map(|k| k.expose().to_owned()),
    };
    Ok(executor::outside::Outside::new(HttpClient::new(config), model))
}
