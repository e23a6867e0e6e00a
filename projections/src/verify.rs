//! `projections verify`: rebuild a read model into a scratch schema and
//! compare it with the live one row by row, at the same point of the log.
//! Holds the rebuild lock (a verify and a rebuild of one projection use the
//! same kind of side schema and must not race) and, only for the final
//! comparison, a lock that stops the live projector's writes, not queries.

use std::time::{Duration, Instant};

use eventlog::store::GlobalPosition;
use eventlog::ConsistencyToken;
use serde::Serialize;
use sqlx::{Connection, PgConnection};

use crate::projector::ProjectionError;
use crate::rebuild::{lock_live, Side, HORIZON_WAIT};
use crate::runner::Projections;

/// Rows shown per direction of a difference.
const SAMPLES: i64 = 5;

/// How long to wait for a live projector behind the scratch build.
const CATCH_UP_WAIT: Duration = Duration::from_secs(10);

/// The outcome of a verify.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The projection.
    pub name: String,
    /// Where both models were compared, as a consistency token.
    pub at: String,
    /// Events replayed into the scratch model.
    pub events: u64,
    /// Whether every table matched.
    pub equal: bool,
    /// Each table's comparison.
    pub tables: Vec<TableDiff>,
}

/// One table compared.
#[derive(Debug, Clone, Serialize)]
pub struct TableDiff {
    /// The table.
    pub table: String,
    /// Rows in the live model.
    pub live_rows: i64,
    /// Rows in the rebuilt model.
    pub rebuilt_rows: i64,
    /// Live rows the rebuild does not have (or has otherwise).
    pub only_live: i64,
    /// Rebuilt rows the live model does not have (or has otherwise).
    pub only_rebuilt: i64,
    /// A few of each, as JSON.
    pub samples: Vec<serde_json::Value>,
}

impl Projections {
    /// Rebuild `name` into a scratch schema and compare it with the live
    /// model; the scratch schema is dropped afterwards.
    pub async fn verify(&self, name: &str) -> Result<VerifyReport, ProjectionError> {
        let (_, mut lock) = self.rebuild_lock(name).await?;
        let schema = format!("verify_{name}");
        let result = self.verify_into(name, &schema, &mut lock).await;
        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).execute(&mut lock).await;
        // Released before the session closes: see `RebuildJob::finish`.
        let _ = sqlx::query("SELECT pg_advisory_unlock_all()").execute(&mut lock).await;
        let _ = lock.close().await;
        result
    }

    async fn verify_into(
        &self,
        name: &str,
        schema: &str,
        admin: &mut PgConnection,
    ) -> Result<VerifyReport, ProjectionError> {
        let projector = self.find(name)?;
        let mut side = Side::create(self, projector.as_ref(), admin, schema).await?;
        let mut batches = Side::stream(self, projector.as_ref(), None);
        while let Some(batch) = batches.next(&mut side.cursor).await? {
            side.apply(self, projector.as_ref(), &batch).await?;
        }
        let deadline = Instant::now() + CATCH_UP_WAIT;
        let live = side.live.clone();
        let tables = projector.tables();
        // Compare where the live model stands: carry the scratch model to
        // its checkpoint under a lock that holds the live projector still,
        // waiting a little for a live projector that is behind (or for the
        // log's horizon, held back by an open transaction, to pass it).
        loop {
            let mut tx = admin.begin().await?;
            let at = lock_live(&mut tx, &live, tables, name, "SHARE").await?;
            if at < side.cursor.at {
                tx.rollback().await?;
                if Instant::now() > deadline {
                    return Err(ProjectionError::HeldBack {
                        name: name.to_owned(),
                        reason: format!(
                            "the live model is behind the log (at {}, the log at {}); is the server running?",
                            ConsistencyToken(at),
                            ConsistencyToken(side.cursor.at)
                        ),
                    });
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let mut upto = Side::stream(self, projector.as_ref(), Some(at));
            while let Some(batch) = upto.next(&mut side.cursor).await? {
                side.apply(self, projector.as_ref(), &batch).await?;
            }
            if side.cursor.at < at {
                tx.rollback().await?;
                if Instant::now() > deadline {
                    return Err(ProjectionError::HeldBack {
                        name: name.to_owned(),
                        reason: "the log is held back below the live checkpoint (an open transaction)".to_owned(),
                    });
                }
                tokio::time::sleep(HORIZON_WAIT).await;
                continue;
            }
            let mut diffs = Vec::new();
            for table in tables {
                diffs.push(compare(&mut tx, &live, schema, table).await?);
            }
            tx.rollback().await?;
            let _ = side.conn.close().await;
            return Ok(VerifyReport {
                name: name.to_owned(),
                at: ConsistencyToken(at.max(GlobalPosition::START)).to_string(),
                events: side.cursor.done,
                equal: diffs.iter().all(|d| d.only_live == 0 && d.only_rebuilt == 0),
                tables: diffs,
            });
        }
    }
}

/// Compare one table of the live and scratch schemas as multisets of rows.
/// Identity columns are left out: a sequence also moves for rolled-back
/// batches, so the numbers differ while the order they give does not.
async fn compare(
    conn: &mut PgConnection,
    live: &str,
    scratch: &str,
    table: &str,
) -> Result<TableDiff, ProjectionError> {
    let identity: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns \
         WHERE table_schema = $1 AND table_name = $2 AND is_identity = 'YES'",
    )
    .bind(live)
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    let row = |schema: &str| format!("SELECT to_jsonb(t) - $1::text[] AS r FROM {schema}.{table} t");
    let (a, b) = (row(live), row(scratch));
    let sql = format!(
        "WITH only_live AS ({a} EXCEPT ALL {b}), only_rebuilt AS ({b} EXCEPT ALL {a}) SELECT \
           (SELECT count(*) FROM {live}.{table}), (SELECT count(*) FROM {scratch}.{table}), \
           (SELECT count(*) FROM only_live), (SELECT count(*) FROM only_rebuilt), \
           coalesce((SELECT jsonb_agg(jsonb_build_object('only_in', 'live', 'row', r)) FROM \
             (SELECT r FROM only_live LIMIT $2) s), '[]') || \
           coalesce((SELECT jsonb_agg(jsonb_build_object('only_in', 'rebuilt', 'row', r)) FROM \
             (SELECT r FROM only_rebuilt LIMIT $2) s), '[]')"
    );
    let (live_rows, rebuilt_rows, only_live, only_rebuilt, samples): (i64, i64, i64, i64, serde_json::Value) =
        sqlx::query_as(&sql).bind(&identity).bind(SAMPLES).fetch_one(&mut *conn).await?;
    let samples = match samples {
        serde_json::Value::Array(v) => v,
        other => vec![other],
    };
    Ok(TableDiff { table: table.to_owned(), live_rows, rebuilt_rows, only_live, only_rebuilt, samples })
}
