//! The Postgres backend of the event store.
//!
//! An append is one statement (one round trip, one implicit transaction):
//! the expected-version check and the multi-row insert run together, and the
//! unique `(stream_id, version)` constraint settles races between writers.

use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use tokio::sync::watch;
use uuid::Uuid;

use crate::error::StoreError;
use crate::store::{AppendResult, EventMetadata, EventStore, GlobalPosition, RecordedEvent, StreamWrite};

const STREAM_VERSION_CONSTRAINT: &str = "events_stream_version_key";
const EVENT_ID_CONSTRAINT: &str = "events_event_id_key";

const APPEND_SQL: &str = r#"
WITH input AS (
    SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::uuid[], $4::text[], $5::int4[], $6::jsonb[], $7::jsonb[], $8::bigint[])
        WITH ORDINALITY AS t(stream_id, version, event_id, event_type, schema_version, data, metadata, expected, ord)
), streams AS (
    SELECT DISTINCT stream_id, expected FROM input
), ok AS (
    SELECT coalesce(bool_and(
        coalesce((SELECT max(e.version) FROM events e WHERE e.stream_id = s.stream_id), 0) = s.expected
    ), true) AS ok
    FROM streams s
)
INSERT INTO events (stream_id, version, event_id, event_type, schema_version, data, metadata)
SELECT i.stream_id, i.version, i.event_id, i.event_type, i.schema_version, i.data, i.metadata
FROM input i, ok
WHERE ok.ok
ORDER BY i.ord
RETURNING tx_id, position
"#;

const SELECT_COLUMNS: &str =
    "tx_id, position, stream_id, version, event_id, event_type, schema_version, data, metadata, recorded_at";

/// Below this transaction id every transaction has finished: the horizon
/// under which the log can no longer change.
const VISIBLE: &str = "tx_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint";

/// Event store on a Postgres `events` table.
#[derive(Debug, Clone)]
pub struct PgEventStore {
    pool: PgPool,
    appended: watch::Sender<u64>,
}

impl PgEventStore {
    /// A store on this pool (migrations must have been applied).
    pub fn new(pool: PgPool) -> Self {
        Self { pool, appended: watch::Sender::new(0) }
    }

    /// The pool, for read models living in the same database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn existing(&self, event_ids: &[Uuid]) -> Result<Option<AppendResult>, StoreError> {
        let rows = sqlx::query("SELECT tx_id, position FROM events WHERE event_id = ANY($1) ORDER BY tx_id, position")
            .bind(event_ids)
            .fetch_all(&self.pool)
            .await?;
        if rows.len() != event_ids.len() {
            return Ok(None);
        }
        let positions = rows.iter().map(global_of).collect::<Result<_, _>>()?;
        Ok(Some(AppendResult { positions, duplicate: true }))
    }
}

fn global_of(row: &PgRow) -> Result<GlobalPosition, sqlx::Error> {
    Ok(GlobalPosition { tx_id: row.try_get("tx_id")?, position: row.try_get("position")? })
}

fn recorded_of(row: &PgRow) -> Result<RecordedEvent, StoreError> {
    let metadata: serde_json::Value = row.try_get("metadata")?;
    let event_id: Uuid = row.try_get("event_id")?;
    let event_type: String = row.try_get("event_type")?;
    let metadata: EventMetadata = serde_json::from_value(metadata).map_err(|e| StoreError::Decode {
        event_id,
        event_type: event_type.clone(),
        reason: format!("metadata: {e}"),
    })?;
    Ok(RecordedEvent {
        global: global_of(row)?,
        stream_id: row.try_get("stream_id")?,
        version: row.try_get("version")?,
        event_id,
        event_type,
        schema_version: row.try_get("schema_version")?,
        data: row.try_get("data")?,
        metadata,
        recorded_at: row.try_get("recorded_at")?,
    })
}

#[derive(Default)]
struct Columns {
    stream_ids: Vec<String>,
    versions: Vec<i64>,
    event_ids: Vec<Uuid>,
    types: Vec<String>,
    schema_versions: Vec<i32>,
    data: Vec<serde_json::Value>,
    metadata: Vec<serde_json::Value>,
    expected: Vec<i64>,
}

impl Columns {
    fn of(writes: &[StreamWrite]) -> Self {
        let mut c = Self::default();
        for write in writes {
            for (offset, event) in (1..).zip(&write.events) {
                c.stream_ids.push(write.stream_id.clone());
                c.versions.push(write.expected_version + offset);
                c.event_ids.push(event.event_id);
                c.types.push(event.event_type.clone());
                c.schema_versions.push(event.schema_version);
                c.data.push(event.data.clone());
                c.metadata.push(serde_json::to_value(&event.metadata).unwrap_or_default());
                c.expected.push(write.expected_version);
            }
        }
        c
    }
}

impl EventStore for PgEventStore {
    #[tracing::instrument(level = "debug", skip_all, fields(streams = writes.len()))]
    async fn append(&self, writes: &[StreamWrite]) -> Result<AppendResult, StoreError> {
        let c = Columns::of(writes);
        if c.event_ids.is_empty() {
            return Ok(AppendResult { positions: vec![], duplicate: false });
        }
        let result = sqlx::query(APPEND_SQL)
            .bind(&c.stream_ids)
            .bind(&c.versions)
            .bind(&c.event_ids)
            .bind(&c.types)
            .bind(&c.schema_versions)
            .bind(&c.data)
            .bind(&c.metadata)
            .bind(&c.expected)
            .fetch_all(&self.pool)
            .await;
        let conflict = || StoreError::Conflict { stream_id: writes[0].stream_id.clone() };
        match result {
            Ok(rows) if rows.len() == c.event_ids.len() => {
                let mut positions: Vec<GlobalPosition> = rows.iter().map(global_of).collect::<Result<_, _>>()?;
                positions.sort();
                self.appended.send_modify(|n| *n = n.wrapping_add(1));
                Ok(AppendResult { positions, duplicate: false })
            }
            // The version check refused: either a stale decision, or this
            // exact append already happened (a retried request).
            Ok(_) => self.existing(&c.event_ids).await?.ok_or_else(conflict),
            Err(sqlx::Error::Database(db)) if db.constraint() == Some(EVENT_ID_CONSTRAINT) => {
                self.existing(&c.event_ids).await?.ok_or_else(conflict)
            }
            Err(sqlx::Error::Database(db)) if db.constraint() == Some(STREAM_VERSION_CONSTRAINT) => Err(conflict()),
            Err(e) => Err(e.into()),
        }
    }

    async fn read_stream(&self, stream_id: &str, after_version: i64) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = format!("SELECT {SELECT_COLUMNS} FROM events WHERE stream_id = $1 AND version > $2 ORDER BY version");
        let rows = sqlx::query(&sql).bind(stream_id).bind(after_version).fetch_all(&self.pool).await?;
        rows.iter().map(recorded_of).collect()
    }

    async fn read_all(&self, after: GlobalPosition, limit: i64) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = format!(
            "SELECT {SELECT_COLUMNS} FROM events WHERE (tx_id, position) > ($1, $2) AND {VISIBLE} \
             ORDER BY tx_id, position LIMIT $3"
        );
        let rows = sqlx::query(&sql).bind(after.tx_id).bind(after.position).bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(recorded_of).collect()
    }

    async fn head(&self) -> Result<GlobalPosition, StoreError> {
        let sql =
            format!("SELECT tx_id, position FROM events WHERE {VISIBLE} ORDER BY tx_id DESC, position DESC LIMIT 1");
        let row = sqlx::query(&sql).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(global_of).transpose()?.unwrap_or_default())
    }

    async fn locate(&self, position: i64) -> Result<Option<GlobalPosition>, StoreError> {
        let row = sqlx::query("SELECT tx_id, position FROM events WHERE position = $1")
            .bind(position)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(global_of).transpose()?)
    }

    fn appended(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }
}
