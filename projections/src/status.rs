//! How far each projector is behind the log, and what holds the log back,
//! for operators (`GET /api/admin/projections`, `projections status`,
//! `/metrics`).

use chrono::{DateTime, Utc};
use eventlog::horizon::{horizon, Horizon};
use eventlog::{ConsistencyToken, EventStore, GlobalPosition, PgEventStore};
use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use crate::projector::ProjectionError;

/// One projector's progress. Positions are compared in the log's order,
/// `(tx_id, position)`, so lag is never negative.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProjectionStatus {
    /// Projector name.
    pub name: String,
    /// Consistency token of the last applied event.
    pub checkpoint_token: String,
    /// Position of the last applied event (for humans; not an order key).
    pub checkpoint: i64,
    /// Transaction id of the last applied event.
    pub checkpoint_tx: i64,
    /// Readable events not yet applied.
    pub lag_events: i64,
    /// Age of the oldest readable event not yet applied, in milliseconds.
    pub lag_ms: i64,
    /// When the checkpoint last moved.
    pub updated_at: DateTime<Utc>,
    /// The last failure, cleared by the next successful batch.
    pub last_error: Option<String>,
    /// When that failure happened.
    pub last_error_at: Option<DateTime<Utc>>,
}

/// The log's head, its horizon and every projector's progress.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusReport {
    /// Consistency token of the last readable event.
    pub head_token: String,
    /// Position of the last readable event (for humans).
    pub head: i64,
    /// Events committed but held back by an older open transaction.
    pub horizon: Horizon,
    /// Each projector, by name.
    pub projections: Vec<ProjectionStatus>,
}

/// The progress of every projector with a checkpoint row.
pub async fn statuses(store: &PgEventStore, head: GlobalPosition) -> Result<Vec<ProjectionStatus>, ProjectionError> {
    let rows = sqlx::query(
        "SELECT c.name, c.tx_id, c.position, c.updated_at, c.last_error, c.last_error_at, \
           (SELECT count(*) FROM events e WHERE (e.tx_id, e.position) > (c.tx_id, c.position) \
              AND (e.tx_id, e.position) <= ($1, $2)) AS lag_events, \
           (SELECT min(e.recorded_at) FROM events e WHERE (e.tx_id, e.position) > (c.tx_id, c.position) \
              AND (e.tx_id, e.position) <= ($1, $2)) AS oldest_pending \
         FROM projection_checkpoints c ORDER BY c.name",
    )
    .bind(head.tx_id)
    .bind(head.position)
    .fetch_all(store.pool())
    .await?;
    let now = Utc::now();
    rows.iter()
        .map(|r| {
            let oldest: Option<DateTime<Utc>> = r.try_get("oldest_pending")?;
            let checkpoint = GlobalPosition { tx_id: r.try_get("tx_id")?, position: r.try_get("position")? };
            Ok(ProjectionStatus {
                name: r.try_get("name")?,
                checkpoint_token: ConsistencyToken(checkpoint).to_string(),
                checkpoint: checkpoint.position,
                checkpoint_tx: checkpoint.tx_id,
                lag_events: r.try_get("lag_events")?,
                lag_ms: oldest.map_or(0, |t| (now - t).num_milliseconds().max(0)),
                updated_at: r.try_get("updated_at")?,
                last_error: r.try_get("last_error")?,
                last_error_at: r.try_get("last_error_at")?,
            })
        })
        .collect()
}

/// Head, horizon and projectors, measured now.
pub async fn report(store: &PgEventStore) -> Result<StatusReport, ProjectionError> {
    let head = store.head().await?;
    let horizon = horizon(store.pool()).await?;
    let projections = statuses(store, head).await?;
    Ok(StatusReport { head_token: ConsistencyToken(head).to_string(), head: head.position, horizon, projections })
}
