//! Connecting to Postgres and applying migrations.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool, Postgres};

/// The schema: the event log, checkpoints and read models.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Connect, creating the database first if it does not exist yet, so a
/// fresh machine needs no manual setup.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    if !Postgres::database_exists(url).await? {
        if let Err(e) = Postgres::create_database(url).await {
            // Another instance may have created it meanwhile.
            if !Postgres::database_exists(url).await? {
                return Err(e);
            }
        }
    }
    let options = PgConnectOptions::from_str(url)?.options(SESSION_SETTINGS);
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        // sqlx pings every connection it hands out by default: one extra
        // round trip per query. Only check those that sat idle a while.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > IDLE_CHECK_AFTER {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_with(options)
        .await
}

/// Settings of every connection the server opens (the event store's writer
/// and the projectors' connections derive theirs from the pool's). A
/// session of ours left idle inside a transaction, or a runaway statement,
/// would hold back the log's horizon for every reader: both are cut off.
/// Appends commit durably whatever the role's or database's default is; only
/// projector connections relax that.
pub const SESSION_SETTINGS: [(&str, &str); 3] =
    [("idle_in_transaction_session_timeout", "10s"), ("statement_timeout", "60s"), ("synchronous_commit", "on")];

/// Pooled connections idle longer than this are pinged before use.
const IDLE_CHECK_AFTER: Duration = Duration::from_secs(10);

/// Apply pending migrations, on one connection without the statement
/// timeout: a migration of a large table may take longer than any query.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    let mut conn = pool.acquire().await?;
    sqlx::query("SET statement_timeout = 0").execute(&mut *conn).await?;
    let migrated = MIGRATOR.run(&mut *conn).await;
    // Back to the session's setting before the connection returns to the pool.
    sqlx::query("RESET statement_timeout").execute(&mut *conn).await?;
    migrated
}
