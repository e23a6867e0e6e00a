//! `autogpt-es`: the one binary (server, migrations, projections, tokens).

use std::process::ExitCode;

use api::auth::{sign, Claims, AUDIENCE};
use api::config::Secret;
use api::{db, embedded, App, Config};
use clap::{Args, Parser, Subcommand};
use commands::PgEventStore;
use projections::Projections;
use uuid::Uuid;

mod audit_cli;
mod events_cli;

/// mimalloc rather than glibc malloc: request handling allocates many small,
/// short-lived buffers on two threads, where glibc spent about a tenth of the
/// process in `malloc`/`free`/consolidation.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "autogpt-es", version, about = "Event-sourced AutoGPT Platform backend")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server and projectors (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Inspect or rebuild read models.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// Print a JWT signed with the configured key (for local use and tests).
    Token(TokenArgs),
    /// Check or seal the log's tamper evidence.
    #[command(subcommand)]
    Audit(audit_cli::AuditCommand),
    /// Export or import the log as NDJSON.
    #[command(subcommand)]
    Events(events_cli::EventsCommand),
    /// Render one template job from stdin under limits (the server runs
    /// this itself for templates that could grow without bound).
    #[command(name = "render-template", hide = true)]
    RenderTemplate,
}

#[derive(Subcommand)]
enum ProjectionsCommand {
    /// Each projector's checkpoint, the log head and the lag.
    Status,
    /// Rebuild a read model from the log with zero downtime: built beside the
    /// live one, which keeps serving, then swapped in (with a progress bar).
    Rebuild {
        /// Projection name (see `status`).
        name: Option<String>,
        /// Rebuild every projection.
        #[arg(long)]
        all: bool,
    },
    /// Rebuild a read model into a scratch schema and compare it with the
    /// live one row by row; exits 1 when they differ.
    Verify(VerifyArgs),
}

#[derive(Args)]
struct VerifyArgs {
    /// Projection name (see `status`).
    name: String,
}

#[derive(Args)]
struct TokenArgs {
    /// User id (the token's `sub`).
    #[arg(long)]
    user: Uuid,
    /// Give the token the admin role.
    #[arg(long)]
    admin: bool,
    /// E-mail claim.
    #[arg(long)]
    email: Option<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    ttl: i64,
}

fn main() -> ExitCode {
    let command = Cli::parse().command.unwrap_or(Command::Serve);
    // The renderer is a single thread under tight limits: no runtime, no
    // worker threads taking address space before its work starts.
    if matches!(command, Command::RenderTemplate) {
        return ExitCode::from(executor::sandbox::serve_child());
    }
    if let Ok(binary) = std::env::current_exe() {
        executor::sandbox::use_renderer(binary);
    }
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(main_with(command)),
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn main_with(command: Command) -> ExitCode {
    let logs = tracing_subscriber::fmt().with_env_filter(
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| "info,sqlx=warn,tower_http=info".into()),
    );
    // The other commands print their results (NDJSON, JSON reports) on
    // stdout, which the private cluster's log lines would corrupt.
    if matches!(command, Command::Serve) {
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout())).init();
    } else {
        logs.with_writer(std::io::stderr).with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init();
    }
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    match run(command, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, mut config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let cluster = match command {
        Command::Token(_) | Command::RenderTemplate => None,
        _ => private_database(&mut config).await?,
    };
    let result = run_with_database(command, config).await;
    if let Some(cluster) = cluster {
        cluster.release().await;
    }
    result
}

/// With `DATABASE_URL` unset and no server on the default address (or
/// `DATABASE_URL=embedded`), start the private cluster and point `config`
/// at its `autogpt` database; the caller releases it when done.
async fn private_database(config: &mut Config) -> Result<Option<embedded::Cluster>, embedded::Error> {
    match embedded::Database::from_env().await? {
        embedded::Database::External => Ok(None),
        embedded::Database::Private(settings) => {
            let cluster = embedded::Cluster::start(settings).await?;
            config.database_url = Secret::new(cluster.url(embedded::DATABASE));
            Ok(Some(cluster))
        }
    }
}

async fn run_with_database(command: Command, config: Config) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        Command::Serve => serve(config).await,
        // Answered in `main`, before any configuration is read.
        Command::RenderTemplate => Err("render-template takes no database".into()),
        Command::Migrate => {
            let pool = db::connect(config.database_url.expose(), 2).await?;
            db::migrate(&pool).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Projections(cmd) => projections_command(cmd, config).await,
        Command::Audit(cmd) => audit_cli::run(cmd, config).await,
        Command::Events(cmd) => events_cli::run(cmd, config).await,
        Command::Token(args) => {
            let claims = Claims {
                sub: args.user.to_string(),
                aud: AUDIENCE.to_owned(),
                exp: chrono::Utc::now().timestamp() + args.ttl,
                role: Some(if args.admin { "admin" } else { "authenticated" }.to_owned()),
                email: args.email,
                user_metadata: None,
            };
            println!("{}", sign(&config.auth, &claims)?);
            Ok(())
        }
    }
}

async fn serve(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    if config.auth.dev_key {
        tracing::warn!("JWT_VERIFY_KEY is not set: using the DEVELOPMENT key and binding to loopback only");
    }
    if config.nats_url.is_some() {
        tracing::info!(
            "NATS_URL is set; the NATS relay arrives with the WebSocket work, events stay in-process for now"
        );
    }
    let app = App::build(config).await?;
    tracing::info!(port = app.port(), "listening");
    app.run_until_stopped(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// One rebuild, drawing its progress (hidden when stderr is not a terminal).
async fn rebuild_with_progress(
    projections: &Projections,
    name: &str,
) -> Result<projections::rebuild::RebuildReport, Box<dyn std::error::Error>> {
    // The CLI runs only the projectors with read models (no relay), so
    // `--all` never meets one that cannot be rebuilt.
    let job = projections.begin_rebuild(name).await?;
    let bar = indicatif::ProgressBar::new(job.events_total().max(1));
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix} [{bar:40}] {pos}/{len} events {per_sec} eta {eta}")?
            .progress_chars("=> "),
    );
    bar.set_prefix(name.to_owned());
    let drawn = bar.clone();
    let report = job
        .run(move |p| {
            drawn.set_length(p.total.max(1));
            drawn.set_position(p.done);
        })
        .await;
    bar.finish_and_clear();
    Ok(report?)
}

fn print_status(report: &projections::status::StatusReport) {
    let h = &report.horizon;
    println!("log head {} (token {})", report.head, report.head_token);
    println!("held back by an older open transaction: {} events, for {} ms", h.held_back_events, h.held_back_ms);
    if let Some(t) = &h.oldest_transaction {
        println!(
            "oldest open transaction: pid {} database {} application {} state {} xid {} age {} ms{}",
            t.pid.map_or_else(|| "-".into(), |p| p.to_string()),
            t.database.as_deref().unwrap_or("-"),
            t.application_name.as_deref().unwrap_or("-"),
            t.state.as_deref().unwrap_or("-"),
            t.xid,
            t.age_ms,
            t.prepared_gid.as_deref().map(|g| format!(" prepared as {g}")).unwrap_or_default()
        );
    }
    println!("{:<16} {:>22} {:>10} {:>10}  last error", "projection", "checkpoint token", "lag", "lag ms");
    for s in &report.projections {
        println!(
            "{:<16} {:>22} {:>10} {:>10}  {}",
            s.name,
            s.checkpoint_token,
            s.lag_events,
            s.lag_ms,
            s.last_error.as_deref().unwrap_or_default()
        );
    }
}

async fn projections_command(cmd: ProjectionsCommand, config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let pool = db::connect(config.database_url.expose(), 4).await?;
    db::migrate(&pool).await?;
    let store = PgEventStore::new(pool);
    store.ensure_order().await?;
    let projections = Projections::new(store.clone(), projections::all());
    projections.init().await?;
    match cmd {
        ProjectionsCommand::Verify(args) => {
            let report = projections.verify(&args.name).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if !report.equal {
                return Err(format!("{}: the live read model differs from a rebuild", args.name).into());
            }
        }
        ProjectionsCommand::Status => print_status(&projections::status::report(&store).await?),
        ProjectionsCommand::Rebuild { name, all } => {
            let names: Vec<String> = match (name, all) {
                (_, true) => projections.names().into_iter().map(str::to_owned).collect(),
                (Some(n), false) => vec![n],
                (None, false) => return Err("name a projection or pass --all".into()),
            };
            for name in names {
                let report = rebuild_with_progress(&projections, &name).await?;
                println!(
                    "{name}: rebuilt from {} events in {:.1} s, swapped in at {}",
                    report.events,
                    report.elapsed.as_secs_f64(),
                    eventlog::ConsistencyToken(report.checkpoint)
                );
            }
        }
    }
    Ok(())
}
