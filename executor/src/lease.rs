//! Leases on running runs (`executor_leases`): who holds a run, until when.
//! They decide who may take over a run whose worker went silent; the
//! stream's expected version still decides who may append.
//!
//! Each write here is a transaction that holds the log back while it runs,
//! like an append: it is marked as one (`PgEventStore::writing`), so the
//! log's tailers wake when it ends.

use std::time::Duration;

use commands::PgEventStore;
use sqlx::PgPool;
use uuid::Uuid;

/// What asking for a run's lease came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grant {
    /// Ours now.
    Granted,
    /// Another worker holds a live lease on it.
    Held,
    /// The user already has `per_user` runs under live leases.
    Capped,
}

/// Take the lease on a run if nobody holds a live one (or we already do)
/// and its user has fewer than `per_user` other runs under live leases.
/// The count and the grant happen under a lock on the user, so two
/// instances deciding at once cannot both take the last place. One round
/// trip, committed without a flush (migration 0027 says why that is safe).
pub(crate) async fn acquire(
    store: &PgEventStore,
    run: (Uuid, Uuid),
    worker: &str,
    lease: Duration,
    per_user: usize,
) -> Result<Grant, sqlx::Error> {
    let (execution_id, user_id) = run;
    let _writing = store.writing();
    let grant: String = sqlx::query_scalar("SELECT executor_lease_acquire($1, $2, $3, $4, $5)")
        .bind(execution_id)
        .bind(user_id)
        .bind(worker)
        .bind(lease.as_secs_f64())
        .bind(i64::try_from(per_user).unwrap_or(i64::MAX))
        .fetch_one(store.pool())
        .await?;
    Ok(match grant.as_str() {
        "granted" => Grant::Granted,
        "capped" => Grant::Capped,
        _ => Grant::Held,
    })
}

/// Extend our lease; false when it is no longer ours.
pub(crate) async fn renew(
    store: &PgEventStore,
    execution_id: Uuid,
    worker: &str,
    lease: Duration,
) -> Result<bool, sqlx::Error> {
    let _writing = store.writing();
    let renewed = sqlx::query(
        "UPDATE executor_leases SET expires_at = now() + make_interval(secs => $3) \
         WHERE execution_id = $1 AND worker = $2",
    )
    .bind(execution_id)
    .bind(worker)
    .bind(lease.as_secs_f64())
    .execute(store.pool())
    .await?;
    Ok(renewed.rows_affected() == 1)
}

/// Give the lease up (the run ended, or this process is stopping), in one
/// round trip committed without a flush (see migration 0027).
pub(crate) async fn release(store: &PgEventStore, execution_id: Uuid, worker: &str) -> Result<(), sqlx::Error> {
    let _writing = store.writing();
    let release = sqlx::query("SELECT executor_lease_release($1, $2)").bind(execution_id).bind(worker);
    release.execute(store.pool()).await?;
    Ok(())
}

/// Runs to start or take over: queued ones, and running ones whose worker
/// holds no live lease and that have not moved for a lease's length. A
/// user's queued runs are offered only while the user has fewer than
/// `per_user` running across every instance (as the read model knows it:
/// instances deciding at the same moment may overshoot by one each).
pub(crate) async fn candidates(
    pool: &PgPool,
    lease: Duration,
    per_user: usize,
) -> Result<Vec<(Uuid, Uuid, bool)>, sqlx::Error> {
    sqlx::query_as(
        "(SELECT id, user_id, false FROM ( \
            SELECT q.id, q.user_id, q.created_at, \
                   row_number() OVER (PARTITION BY q.user_id ORDER BY q.created_at) AS place \
            FROM rm_graph_executions q WHERE q.status = 'QUEUED') q \
          WHERE q.place <= $2 - (SELECT count(*) FROM rm_graph_executions r \
                                 WHERE r.user_id = q.user_id AND r.status = 'RUNNING') \
          ORDER BY q.created_at LIMIT 100) \
         UNION ALL \
         (SELECT e.id, e.user_id, true FROM rm_graph_executions e \
          WHERE e.status = 'RUNNING' AND e.updated_at < now() - make_interval(secs => $1) \
            AND NOT EXISTS (SELECT FROM executor_leases l WHERE l.execution_id = e.id AND l.expires_at >= now()) \
          LIMIT 100)",
    )
    .bind(lease.as_secs_f64())
    .bind(i64::try_from(per_user).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await
}
