//! Reading the log as an auditor does: a page of the global order, filtered
//! by event type, stream category, acting user and time, below the horizon
//! (so a page never skips an event that commits later with a lower key).

use chrono::{DateTime, Utc};
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use crate::postgres::{recorded_of, HORIZON, SELECT_COLUMNS};
use crate::{GlobalPosition, PgEventStore, RecordedEvent, StoreError};

/// Which events an audit page holds.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// Only this event type.
    pub event_type: Option<String>,
    /// Only streams of this category (aggregate prefix).
    pub category: Option<String>,
    /// Only events whose metadata names this acting user.
    pub user_id: Option<Uuid>,
    /// Recorded at or after.
    pub from: Option<DateTime<Utc>>,
    /// Recorded before.
    pub to: Option<DateTime<Utc>>,
}

impl PgEventStore {
    /// Up to `limit` events after `after` in global order that pass `filter`.
    pub async fn read_filtered(
        &self,
        after: GlobalPosition,
        limit: i64,
        filter: &LogFilter,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut sql: QueryBuilder<Postgres> = QueryBuilder::new(format!("SELECT {SELECT_COLUMNS} FROM events WHERE "));
        sql.push(HORIZON).push(" AND (tx_id, position) > (").push_bind(after.tx_id).push(", ");
        sql.push_bind(after.position).push(")");
        if let Some(event_type) = &filter.event_type {
            sql.push(" AND event_type = ").push_bind(event_type.clone());
        }
        if let Some(category) = &filter.category {
            // `C` collation: a prefix range uses the stream index.
            sql.push(" AND stream_id >= ").push_bind(format!("{category}-"));
            sql.push(" AND stream_id < ").push_bind(format!("{category}."));
        }
        if let Some(user) = filter.user_id {
            sql.push(" AND metadata->>'user_id' = ").push_bind(user.to_string());
        }
        if let Some(from) = filter.from {
            sql.push(" AND recorded_at >= ").push_bind(from);
        }
        if let Some(to) = filter.to {
            sql.push(" AND recorded_at < ").push_bind(to);
        }
        sql.push(" ORDER BY tx_id, position LIMIT ").push_bind(limit.clamp(1, 1000));
        let rows = sql.build().fetch_all(self.pool()).await?;
        rows.iter().map(recorded_of).collect()
    }

    /// A stream's first event (who created it), without reading the rest.
    pub async fn stream_origin(&self, stream_id: &str) -> Result<Option<RecordedEvent>, StoreError> {
        let sql = format!("SELECT {SELECT_COLUMNS} FROM events WHERE stream_id = $1 AND version = 1");
        let row = sqlx::query(&sql).bind(stream_id).fetch_optional(self.pool()).await?;
        row.as_ref().map(recorded_of).transpose()
    }

    /// Up to `limit` of a stream's events after `after_version`, in order,
    /// and up to `until_version` when given; with `caused_by`, only the
    /// events that user caused or that no user caused (the platform's own),
    /// leaving out other parties' (an admin's review of a submission).
    pub async fn read_stream_page(
        &self,
        stream_id: &str,
        after_version: i64,
        until_version: Option<i64>,
        limit: i64,
        caused_by: Option<Uuid>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut sql: QueryBuilder<Postgres> = QueryBuilder::new(format!("SELECT {SELECT_COLUMNS} FROM events WHERE "));
        sql.push("stream_id = ").push_bind(stream_id.to_owned());
        sql.push(" AND version > ").push_bind(after_version);
        if let Some(until) = until_version {
            sql.push(" AND version <= ").push_bind(until);
        }
        if let Some(user) = caused_by {
            sql.push(" AND (metadata->>'user_id' IS NULL OR metadata->>'user_id' = ").push_bind(user.to_string());
            sql.push(")");
        }
        sql.push(" ORDER BY version LIMIT ").push_bind(limit.max(1));
        let rows = sql.build().fetch_all(self.pool()).await?;
        rows.iter().map(recorded_of).collect()
    }
}
