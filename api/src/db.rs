//! Connecting to Postgres and applying migrations.

use std::time::Duration;

use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::postgres::PgPoolOptions;
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
        .connect(url)
        .await
}

/// Pooled connections idle longer than this are pinged before use.
const IDLE_CHECK_AFTER: Duration = Duration::from_secs(10);

/// Apply pending migrations.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}
