//! How far each projector is behind the log, for operators.

use chrono::{DateTime, Utc};
use eventlog::store::EventStore;
use eventlog::PgEventStore;
use serde::Serialize;
use sqlx::Row;

use crate::projector::ProjectionError;

/// One projector's progress.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectionStatus {
    /// Projector name.
    pub name: String,
    /// Position of the last applied event.
    pub checkpoint: i64,
    /// Transaction id of the last applied event.
    pub checkpoint_tx: i64,
    /// Position of the last readable event in the log.
    pub head: i64,
    /// Events readable but not yet applied.
    pub lag_events: i64,
    /// Age of the oldest event not yet applied, in milliseconds.
    pub lag_ms: i64,
    /// When the checkpoint last moved.
    pub updated_at: DateTime<Utc>,
    /// The last failure, cleared by the next successful batch.
    pub last_error: Option<String>,
    /// When that failure happened.
    pub last_error_at: Option<DateTime<Utc>>,
}

/// The progress of every projector with a checkpoint row.
pub async fn statuses(store: &PgEventStore) -> Result<Vec<ProjectionStatus>, ProjectionError> {
    let head = store.head().await?;
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
            Ok(ProjectionStatus {
                name: r.try_get("name")?,
                checkpoint: r.try_get("position")?,
                checkpoint_tx: r.try_get("tx_id")?,
                head: head.position,
                lag_events: r.try_get("lag_events")?,
                lag_ms: oldest.map_or(0, |t| (now - t).num_milliseconds().max(0)),
                updated_at: r.try_get("updated_at")?,
                last_error: r.try_get("last_error")?,
                last_error_at: r.try_get("last_error_at")?,
            })
        })
        .collect()
}
