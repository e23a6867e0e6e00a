//! The log's horizon: readers see only events below the oldest transaction
//! still running on the server, so one long-open write transaction, in any
//! database of the cluster, holds back every tailer. This module says how
//! much is held back and by whom, for operators.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgPool, Row};

use crate::error::StoreError;
use crate::postgres::HORIZON_BOUND;

/// What the horizon holds back, and the transaction holding it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Horizon {
    /// Committed events not yet readable, held back by an older open
    /// transaction.
    pub held_back_events: i64,
    /// How long the oldest of them has been waiting, in milliseconds.
    pub held_back_ms: i64,
    /// The oldest open write transaction on the server (it sets the
    /// horizon), if any.
    pub oldest_transaction: Option<OpenTransaction>,
}

/// An open write transaction (or a prepared one) on the Postgres server.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OpenTransaction {
    /// Backend process id (none for a prepared transaction).
    pub pid: Option<i32>,
    /// Its database.
    pub database: Option<String>,
    /// The client's `application_name`.
    pub application_name: Option<String>,
    /// `active`, `idle in transaction`, …, or `prepared`.
    pub state: Option<String>,
    /// Its transaction id.
    pub xid: String,
    /// The global id of a prepared transaction.
    pub prepared_gid: Option<String>,
    /// How long the transaction has been open, in milliseconds.
    pub age_ms: i64,
}

/// The oldest open write transaction: the backend with the oldest assigned
/// transaction id, or a prepared transaction, whichever is older. Our own
/// session is left out.
const OLDEST_TRANSACTION: &str = "\
SELECT pid, database, application_name, state, xid, prepared_gid, age_ms FROM (
    SELECT pid, datname::text AS database, application_name, state, backend_xid::text AS xid,
           NULL::text AS prepared_gid, age(backend_xid) AS xid_age,
           (extract(epoch FROM now() - xact_start) * 1000)::bigint AS age_ms
    FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
    UNION ALL
    SELECT NULL, database::text, NULL, 'prepared', transaction::text, gid, age(transaction),
           (extract(epoch FROM now() - prepared) * 1000)::bigint
    FROM pg_prepared_xacts
) t ORDER BY xid_age DESC LIMIT 1";

/// Measure the horizon now.
pub async fn horizon(pool: &PgPool) -> Result<Horizon, StoreError> {
    // Rows this snapshot can see have committed; those at or above the
    // horizon are the ones tailers cannot read yet. The bound is read first
    // and given to the count as a value, in one snapshot: a count planned
    // with the bound unknown guesses a third of the log and scans it whole
    // (40 ms and more a second on a log of a million events).
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
    let bound: i64 = sqlx::query_scalar(HORIZON_BOUND).fetch_one(&mut *tx).await?;
    let held = sqlx::query("SELECT count(*) AS n, min(recorded_at) AS oldest FROM events WHERE tx_id >= $1")
        .bind(bound)
        .persistent(false)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    let oldest: Option<DateTime<Utc>> = held.try_get("oldest")?;
    let blocker = sqlx::query(OLDEST_TRANSACTION).fetch_optional(pool).await?;
    let oldest_transaction = blocker
        .map(|r| {
            Ok::<_, sqlx::Error>(OpenTransaction {
                pid: r.try_get("pid")?,
                database: r.try_get("database")?,
                application_name: r.try_get("application_name")?,
                state: r.try_get("state")?,
                xid: r.try_get("xid")?,
                prepared_gid: r.try_get("prepared_gid")?,
                age_ms: r.try_get::<Option<i64>, _>("age_ms")?.unwrap_or(0),
            })
        })
        .transpose()?;
    Ok(Horizon {
        held_back_events: held.try_get("n")?,
        held_back_ms: oldest.map_or(0, |t| (Utc::now() - t).num_milliseconds().max(0)),
        oldest_transaction,
    })
}
