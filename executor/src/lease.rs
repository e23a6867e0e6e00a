//! Leases on running runs (`executor_leases`): who holds a run, until when.
//! They decide who may take over a run whose worker went silent; the
//! stream's expected version still decides who may append.

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

/// Take the lease on a run if nobody holds a live one (or we already do).
pub(crate) async fn acquire(
    pool: &PgPool,
    execution_id: Uuid,
    worker: &str,
    lease: Duration,
) -> Result<bool, sqlx::Error> {
    let won: Option<String> = sqlx::query_scalar(
        "INSERT INTO executor_leases (execution_id, worker, expires_at) \
         VALUES ($1, $2, now() + make_interval(secs => $3)) \
         ON CONFLICT (execution_id) DO UPDATE SET worker = excluded.worker, expires_at = excluded.expires_at \
         WHERE executor_leases.expires_at < now() OR executor_leases.worker = excluded.worker \
         RETURNING worker",
    )
    .bind(execution_id)
    .bind(worker)
    .bind(lease.as_secs_f64())
    .fetch_optional(pool)
    .await?;
    Ok(won.is_some())
}

/// Extend our lease; false when it is no longer ours.
pub(crate) async fn renew(
    pool: &PgPool,
    execution_id: Uuid,
    worker: &str,
    lease: Duration,
) -> Result<bool, sqlx::Error> {
    let renewed = sqlx::query(
        "UPDATE executor_leases SET expires_at = now() + make_interval(secs => $3) \
         WHERE execution_id = $1 AND worker = $2",
    )
    .bind(execution_id)
    .bind(worker)
    .bind(lease.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(renewed.rows_affected() == 1)
}

/// Give the lease up (the run ended, or this process is stopping).
pub(crate) async fn release(pool: &PgPool, execution_id: Uuid, worker: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM executor_leases WHERE execution_id = $1 AND worker = $2")
        .bind(execution_id)
        .bind(worker)
        .execute(pool)
        .await?;
    Ok(())
}

/// Runs to start or take over: queued ones, and running ones whose worker
/// holds no live lease and that have not moved for a lease's length.
pub(crate) async fn candidates(pool: &PgPool, lease: Duration) -> Result<Vec<(Uuid, Uuid, bool)>, sqlx::Error> {
    sqlx::query_as(
        "(SELECT id, user_id, false FROM rm_graph_executions WHERE status = 'QUEUED' ORDER BY created_at LIMIT 100) \
         UNION ALL \
         (SELECT e.id, e.user_id, true FROM rm_graph_executions e \
          WHERE e.status = 'RUNNING' AND e.updated_at < now() - make_interval(secs => $1) \
            AND NOT EXISTS (SELECT FROM executor_leases l WHERE l.execution_id = e.id AND l.expires_at >= now()) \
          LIMIT 100)",
    )
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await
}
