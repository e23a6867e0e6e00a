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
    /// The version of the projector's code that built the read model.
    pub version: i32,
    /// `live`, `rebuilding`, `stalled` (a rebuild whose heartbeat stopped:
    /// its process died or hangs) or `failed` (the last rebuild's error is
    /// in `rebuild`; the old read model kept serving).
    pub state: String,
    /// The latest rebuild, if there was one.
    pub rebuild: Option<RebuildStatus>,
}

/// A rebuild's progress, as any process sees it (from the shared row).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RebuildStatus {
    /// `rebuilding`, `done` or `failed`, as the rebuilding process last wrote it.
    pub state: String,
    /// The version of the projector's code being built.
    pub version: i32,
    /// Events of the log replayed.
    pub events_done: i64,
    /// Events in the log when it started (or `events_done` once past it).
    pub events_total: i64,
    /// Share done, 0 to 100.
    pub percent: f64,
    /// Seconds left at the rate so far, while it runs.
    pub eta_seconds: Option<f64>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat.
    pub updated_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Why it failed.
    pub error: Option<String>,
}

/// A rebuild whose heartbeat is older than this is reported as stalled.
const STALLED_AFTER_MS: i64 = 30_000;

impl RebuildStatus {
    fn from_row(r: &sqlx::postgres::PgRow, now: DateTime<Utc>) -> Result<Option<Self>, sqlx::Error> {
        let Some(state) = r.try_get::<Option<String>, _>("rb_state")? else { return Ok(None) };
        let (done, total): (i64, i64) = (r.try_get("rb_done")?, r.try_get("rb_total")?);
        let started_at: DateTime<Utc> = r.try_get("rb_started_at")?;
        let percent = if total > 0 { (done as f64 * 100.0 / total as f64).min(100.0) } else { 100.0 };
        let elapsed = (now - started_at).num_milliseconds().max(1) as f64 / 1000.0;
        let eta_seconds =
            (state == "rebuilding" && done > 0).then(|| (total - done).max(0) as f64 * elapsed / done as f64);
        Ok(Some(Self {
            state,
            version: r.try_get("rb_version")?,
            events_done: done,
            events_total: total,
            percent,
            eta_seconds,
            started_at,
            updated_at: r.try_get("rb_updated_at")?,
            finished_at: r.try_get("rb_finished_at")?,
            error: r.try_get("rb_error")?,
        }))
    }

    /// The projection's state this rebuild implies.
    fn projection_state(this: Option<&Self>, now: DateTime<Utc>) -> &'static str {
        match this {
            Some(r) if r.state == "rebuilding" && (now - r.updated_at).num_milliseconds() > STALLED_AFTER_MS => {
                "stalled"
            }
            Some(r) if r.state == "rebuilding" => "rebuilding",
            Some(r) if r.state == "failed" => "failed",
            _ => "live",
        }
    }
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
        "SELECT c.name, c.tx_id, c.position, c.updated_at, c.last_error, c.last_error_at, c.version, \
           r.state AS rb_state, r.version AS rb_version, r.events_done AS rb_done, r.events_total AS rb_total, \
           r.started_at AS rb_started_at, r.updated_at AS rb_updated_at, r.finished_at AS rb_finished_at, \
           r.error AS rb_error, \
           (SELECT count(*) FROM events e WHERE (e.tx_id, e.position) > (c.tx_id, c.position) \
              AND (e.tx_id, e.position) <= ($1, $2)) AS lag_events, \
           (SELECT min(e.recorded_at) FROM events e WHERE (e.tx_id, e.position) > (c.tx_id, c.position) \
              AND (e.tx_id, e.position) <= ($1, $2)) AS oldest_pending \
         FROM projection_checkpoints c LEFT JOIN projection_rebuilds r ON r.name = c.name ORDER BY c.name",
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
            let rebuild = RebuildStatus::from_row(r, now)?;
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
                version: r.try_get("version")?,
                state: RebuildStatus::projection_state(rebuild.as_ref(), now).to_owned(),
                rebuild,
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
