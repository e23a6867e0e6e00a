//! The Postgres backend of the event store.
//!
//! An append is one statement (one round trip, one implicit transaction):
//! the expected-version check and the multi-row insert run together. The
//! event versions are `expected + 1 ..`, so a stream that moved past the
//! expected version (or exists when 0 was expected) collides with the unique
//! `(stream_id, version)` constraint, which also settles races between
//! writers; a stream behind the expected version fails the `NOT EXISTS`
//! guard and nothing is inserted. The statement is kept flat (no CTEs, no
//! aggregates) so that the prepared statement settles on a cached generic
//! plan: a CTE form that counted versions got a fresh custom plan on every
//! call, and planning cost more than the insert. A single event on a single
//! stream, the common case, binds scalars instead of arrays. Payloads travel
//! as text into `json` columns: validated, not converted. A multi-row append
//! computes its transaction id once (an init plan) rather than running the
//! column default's text round trip for every row, which cost about a third
//! of a 100-event append. The arrays are unnested in the select list, where
//! Postgres steps through them together row by row; `UNNEST(a, b, …)` in
//! `FROM` first copied every array into a tuplestore, and casting `text[]`
//! to `json[]` built a second copy of the payloads (together about a tenth
//! of a batched append's server time). Rows are inserted, and take their
//! positions, in the order of the arrays, with no `ORDER BY` (a sort of every
//! row's payload cost a few percent more; a test pins the order). Metadata
//! is sent once per distinct value (a command's events share theirs),
//! validated once in an init plan and picked per row by index.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use tokio::sync::watch;
use uuid::Uuid;

use crate::chain::{now_to_the_microsecond, LastHashes, Link};
use crate::error::StoreError;
use crate::inflight::{InFlight, Ticket};
use crate::seal::{event_hash, HashedFields};
use crate::store::{AppendResult, EventMetadata, EventStore, GlobalPosition, RecordedEvent, StreamWrite};
use crate::writers::Writers;

const STREAM_VERSION_CONSTRAINT: &str = "events_stream_version_key";
const EVENT_ID_CONSTRAINT: &str = "events_event_id_key";

const APPEND_SQL: &str = r#"
INSERT INTO events (tx_id, stream_id, version, event_id, event_type, schema_version, data, metadata, recorded_at, hash)
SELECT (SELECT pg_current_xact_id()::text::bigint + xid_offset FROM log_epoch), unnest($1::text[]), unnest($2::bigint[]), unnest($3::uuid[]),
    unnest($4::text[]), unnest($5::int4[]), unnest($6::text[])::json, (SELECT $7::text[]::json[])[unnest($10::int4[])],
    $11::timestamptz, unnest($12::bytea[])
WHERE NOT EXISTS (
    SELECT FROM UNNEST($8::text[], $9::bigint[], $13::bytea[]) AS s(stream_id, expected, prev)
    WHERE NOT EXISTS (SELECT FROM events e WHERE e.stream_id = s.stream_id AND e.version = s.expected
                      AND e.hash IS NOT DISTINCT FROM s.prev)
)
RETURNING tx_id, position
"#;

/// The common case, one event on one stream, with scalar parameters: the
/// server skips decoding nine arrays for a single row.
///
/// Both appends spell out the order key (`log_tx_id()` of migration 0006)
/// as an uncorrelated subquery, run once per statement: the column default
/// calls the SQL function, which Postgres cannot inline (it reads a table)
/// and runs through its own executor each time, and that took a third off
/// single-event appends (pgbench, 8 clients: 8,500 against 11,500 rows/s).
///
/// Both insert the hash computed here (see [`crate::chain`]) and guard on
/// the stored hash at the expected version being the one chained from.
const APPEND_ONE_SQL: &str = r#"
INSERT INTO events (tx_id, stream_id, version, event_id, event_type, schema_version, data, metadata, recorded_at, hash)
SELECT (SELECT pg_current_xact_id()::text::bigint + xid_offset FROM log_epoch),
    $1, $2, $3, $4, $5, $6::text::json, $7::text::json, $9, $10
WHERE $8::bigint = 0
   OR EXISTS (SELECT FROM events e WHERE e.stream_id = $1 AND e.version = $8 AND e.hash IS NOT DISTINCT FROM $11::bytea)
RETURNING tx_id, position
"#;

pub(crate) const SELECT_COLUMNS: &str =
    "tx_id, position, stream_id, version, event_id, event_type, schema_version, data, metadata, recorded_at";

/// Below this transaction id every transaction has finished: the horizon
/// under which the log can no longer change.
/// It adds the log's transaction id offset, as `log_horizon()` of migration
/// 0006 does, inline for the reason given at [`APPEND_ONE_SQL`].
pub(crate) const HORIZON: &str = concat!("tx_id < (", horizon_bound!(), ")");

/// The horizon's transaction id alone (see [`HORIZON`]).
pub(crate) const HORIZON_BOUND: &str = horizon_bound!();

/// The statement both [`HORIZON`] and [`HORIZON_BOUND`] are made of.
macro_rules! horizon_bound {
    () => {
        "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint + xid_offset FROM log_epoch"
    };
}
use horizon_bound;

/// Raise the transaction id offset when the server's current transaction id
/// (plus the offset) is not above every stored `tx_id`: the log came from
/// another server (a restore, a new cluster). In normal operation every
/// stored id came from an earlier transaction, so this never fires. The new
/// offset puts the oldest running transaction above the stored maximum, so
/// every stored event stays readable and every new one sorts after them.
const ENSURE_ORDER_SQL: &str = "\
UPDATE log_epoch SET
    xid_offset = m.max_tx - pg_snapshot_xmin(pg_current_snapshot())::text::bigint + 1,
    generation = generation + 1, bumped_at = now()
FROM (SELECT max(tx_id) AS max_tx FROM events) m
WHERE m.max_tx >= pg_current_xact_id()::text::bigint + xid_offset
RETURNING xid_offset, generation";

/// Event store on a Postgres `events` table.
#[derive(Debug, Clone)]
pub struct PgEventStore {
    pool: PgPool,
    writers: Arc<Writers>,
    inflight: Arc<InFlight>,
    last_hashes: Arc<LastHashes>,
}

impl PgEventStore {
    /// A store on this pool (migrations must have been applied). Appends use
    /// up to as many dedicated connections as the pool may open, at most 8.
    pub fn new(pool: PgPool) -> Self {
        let size = (pool.options().get_max_connections() as usize).clamp(1, 8);
        // Appends are the truth: whatever the pool's, role's or database's
        // default, they wait for the WAL flush before they answer.
        let options = pool.connect_options().as_ref().clone().options([("synchronous_commit", "on")]);
        let writers = Arc::new(Writers::new(options, size));
        Self { pool, writers, inflight: Arc::new(InFlight::new()), last_hashes: Arc::default() }
    }

    /// The pool, for read models living in the same database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Keep the log's order correct on this server: raise the transaction
    /// id offset if the stored log came from elsewhere (see
    /// [`ENSURE_ORDER_SQL`]). Run at startup and after the database restarted
    /// underneath; answers the new generation when it raised the offset.
    pub async fn ensure_order(&self) -> Result<Option<i32>, StoreError> {
        let bumped = sqlx::query(ENSURE_ORDER_SQL).fetch_optional(&self.pool).await?;
        let Some(row) = bumped else { return Ok(None) };
        let (offset, generation): (i64, i32) = (row.try_get("xid_offset")?, row.try_get("generation")?);
        tracing::warn!(
            offset,
            generation,
            "stored transaction ids are ahead of this server's (a restored or moved log): \
             the log's order key now adds {offset} to new transaction ids"
        );
        Ok(Some(generation))
    }

    /// When the database server started: a change means it restarted (or
    /// another server took over) underneath us.
    pub async fn server_started_at(&self) -> Result<DateTime<Utc>, StoreError> {
        Ok(sqlx::query_scalar("SELECT pg_postmaster_start_time()").fetch_one(&self.pool).await?)
    }

    /// A setting as the append sessions run with it (`synchronous_commit`,
    /// `statement_timeout`, …): diagnostics for operators and tests.
    pub async fn writer_setting(&self, name: &str) -> Result<String, StoreError> {
        let mut writer = self.writers.acquire().await?;
        let value = sqlx::query_scalar("SELECT current_setting($1)").bind(name).fetch_one(writer.conn()).await?;
        writer.release();
        Ok(value)
    }

    /// After an append: each stream's last version and hash.
    fn remember_last_hashes(&self, writes: &[StreamWrite], c: &Columns<'_>) {
        // `hashes` holds every write's events in order: a write's last hash
        // ends its run.
        let mut end = 0;
        for write in writes.iter().filter(|w| !w.events.is_empty()) {
            end += write.events.len();
            let version = write.expected_version + write.events.len() as i64;
            self.last_hashes.remember(&write.stream_id, version, &c.hashes[end - 1]);
        }
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

pub(crate) fn recorded_of(row: &PgRow) -> Result<RecordedEvent, StoreError> {
    let event_id: Uuid = row.try_get("event_id")?;
    let event_type: String = row.try_get("event_type")?;
    // Straight from the column's bytes into the struct, no JSON tree between.
    let metadata = match row.try_get::<sqlx::types::Json<EventMetadata>, _>("metadata") {
        Ok(sqlx::types::Json(metadata)) => metadata,
        Err(sqlx::Error::ColumnDecode { source, .. }) => {
            return Err(StoreError::Decode { event_id, event_type, reason: format!("metadata: {source}") });
        }
        Err(e) => return Err(e.into()),
    };
    // Kept as text: the one who needs the payload decodes it into its type.
    let data = row.try_get::<sqlx::types::Json<Box<serde_json::value::RawValue>>, _>("data")?.0;
    envelope(row, (event_id, event_type), data, metadata)
}

/// The event of `row` with the payload and metadata given.
fn envelope(
    row: &PgRow,
    (event_id, event_type): (Uuid, String),
    data: Box<serde_json::value::RawValue>,
    metadata: EventMetadata,
) -> Result<RecordedEvent, StoreError> {
    Ok(RecordedEvent {
        global: global_of(row)?,
        stream_id: row.try_get("stream_id")?,
        version: row.try_get("version")?,
        event_id,
        event_type,
        schema_version: row.try_get("schema_version")?,
        data,
        metadata,
        recorded_at: row.try_get("recorded_at")?,
    })
}

/// The append's parameters, one array per column, borrowing from the
/// writes: no payload is copied before sqlx encodes it.
#[derive(Default)]
struct Columns<'a> {
    stream_ids: Vec<&'a str>,
    versions: Vec<i64>,
    event_ids: Vec<Uuid>,
    types: Vec<&'a str>,
    schema_versions: Vec<i32>,
    data: Vec<&'a str>,
    /// Each distinct metadata once: the events of a command share theirs,
    /// so it is encoded, sent and validated once per append, not per event.
    metadata: Vec<String>,
    /// Per event, the 1-based index of its metadata in `metadata`.
    metadata_of: Vec<i32>,
    /// Per event, its chain hash.
    hashes: Vec<Vec<u8>>,
    /// Streams that must exist at exactly their expected version, with the
    /// hash stored there that their first event chains from.
    guard_streams: Vec<&'a str>,
    guard_versions: Vec<i64>,
    guard_hashes: Vec<Link>,
    /// When, for every event of the append.
    recorded_at: DateTime<Utc>,
}

impl<'a> Columns<'a> {
    /// The columns of `writes`, each chained from its link, recorded at
    /// `recorded_at`.
    fn of(writes: &'a [StreamWrite], links: Vec<Link>, recorded_at: DateTime<Utc>) -> Self {
        let mut c = Self { recorded_at, ..Self::default() };
        let mut last: Option<&EventMetadata> = None;
        for (write, link) in writes.iter().zip(links) {
            let mut prev = link.clone().unwrap_or_default();
            if write.expected_version > 0 {
                c.guard_streams.push(&write.stream_id);
                c.guard_versions.push(write.expected_version);
                c.guard_hashes.push(link);
            }
            for (offset, event) in (1..).zip(&write.events) {
                let version = write.expected_version + offset;
                c.stream_ids.push(&write.stream_id);
                c.versions.push(version);
                c.event_ids.push(event.event_id);
                c.types.push(&event.event_type);
                c.schema_versions.push(event.schema_version);
                c.data.push(event.data.get());
                if last != Some(&event.metadata) {
                    c.metadata.push(serde_json::to_string(&event.metadata).unwrap_or_default());
                    last = Some(&event.metadata);
                }
                c.metadata_of.push(i32::try_from(c.metadata.len()).unwrap_or(i32::MAX));
                let fields = HashedFields {
                    stream_id: &write.stream_id,
                    version,
                    event_id: event.event_id,
                    event_type: &event.event_type,
                    schema_version: event.schema_version,
                    recorded_at,
                    data: event.data.get(),
                    metadata: c.metadata.last().map_or("", String::as_str),
                };
                prev = event_hash(&prev, &fields).to_vec();
                c.hashes.push(prev.clone());
            }
        }
        c
    }
}

/// Which events a reader needs whole: those of the streams named by their
/// prefix (`<prefix>-<id>`), and those of the named types in any stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    /// Stream prefixes, without the dash.
    pub streams: Vec<&'static str>,
    /// Event types, in whatever stream.
    pub types: Vec<&'static str>,
}

impl Wanted {
    /// Whether `event` is one of them, as the read decides it.
    pub fn covers(&self, stream_id: &str, event_type: &str) -> bool {
        let prefix = stream_id.split('-').next().unwrap_or_default();
        self.streams.contains(&prefix) || self.types.contains(&event_type)
    }
}

/// A write of this process's outside the log (a read model's batch, a
/// lease) under way. Like an append, it may hold the log back: an open
/// writing transaction hides every later commit from readers. So tailers
/// are woken when it ends, as when an append ends, not at their next poll.
pub struct Writing<'a> {
    _ticket: Ticket<'a>,
}

impl PgEventStore {
    /// Mark a write outside the log as under way, until the answer is
    /// dropped (see [`Writing`]).
    pub fn writing(&self) -> Writing<'_> {
        Writing { _ticket: self.inflight.start() }
    }

    /// As [`EventStore::read_all`], but only the events `wanted` names come
    /// with their payload and metadata; the others come with `null` data
    /// and empty metadata, only to be passed over in order. A rebuild reads
    /// the whole log for a read model that needs a part of it: the rest is
    /// then neither sent nor decoded.
    pub async fn read_all_wanted(
        &self,
        after: GlobalPosition,
        limit: i64,
        wanted: &Wanted,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        // A literal limit, for the reason given in `read_all`.
        let sql = format!(
            "SELECT tx_id, position, stream_id, version, event_id, event_type, schema_version, recorded_at, w.wanted, \
               CASE WHEN w.wanted THEN data END AS data, CASE WHEN w.wanted THEN metadata END AS metadata \
             FROM events, LATERAL (SELECT split_part(stream_id, '-', 1) = ANY($3) OR event_type = ANY($4) AS wanted) w \
             WHERE (tx_id, position) > ($1, $2) AND {HORIZON} ORDER BY tx_id, position LIMIT {}",
            limit.max(1)
        );
        let rows = sqlx::query(&sql)
            .bind(after.tx_id)
            .bind(after.position)
            .bind(&wanted.streams)
            .bind(&wanted.types)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| if row.try_get("wanted")? { recorded_of(row) } else { passed_over(row) }).collect()
    }
}

/// An event a reader does not need, with its place and kind only.
fn passed_over(row: &PgRow) -> Result<RecordedEvent, StoreError> {
    let (event_id, event_type): (Uuid, String) = (row.try_get("event_id")?, row.try_get("event_type")?);
    let data = match serde_json::value::RawValue::from_string("null".to_owned()) {
        Ok(data) => data,
        Err(e) => return Err(StoreError::Decode { event_id, event_type, reason: e.to_string() }),
    };
    envelope(row, (event_id, event_type), data, EventMetadata::default())
}

impl EventStore for PgEventStore {
    #[tracing::instrument(level = "debug", skip_all, fields(streams = writes.len()))]
    async fn append(&self, writes: &[StreamWrite]) -> Result<AppendResult, StoreError> {
        if writes.iter().all(|w| w.events.is_empty()) {
            return Ok(AppendResult { positions: vec![], duplicate: false });
        }
        let links = self.last_hashes.links(&self.pool, writes).await?;
        let c = Columns::of(writes, links, now_to_the_microsecond());
        let mut writer = self.writers.acquire().await?;
        let ticket = self.inflight.start();
        let result = match writes {
            [single] if single.events.len() == 1 => {
                sqlx::query(APPEND_ONE_SQL)
                    .bind(c.stream_ids[0])
                    .bind(c.versions[0])
                    .bind(c.event_ids[0])
                    .bind(c.types[0])
                    .bind(c.schema_versions[0])
                    .bind(c.data[0])
                    .bind(&c.metadata[0])
                    .bind(single.expected_version)
                    .bind(c.recorded_at)
                    .bind(&c.hashes[0])
                    .bind(c.guard_hashes.first().cloned().flatten())
                    .fetch_all(writer.conn())
                    .await
            }
            _ => {
                sqlx::query(APPEND_SQL)
                    .bind(&c.stream_ids)
                    .bind(&c.versions)
                    .bind(&c.event_ids)
                    .bind(&c.types)
                    .bind(&c.schema_versions)
                    .bind(&c.data)
                    .bind(&c.metadata)
                    .bind(&c.guard_streams)
                    .bind(&c.guard_versions)
                    .bind(&c.metadata_of)
                    .bind(c.recorded_at)
                    .bind(&c.hashes)
                    .bind(&c.guard_hashes)
                    .fetch_all(writer.conn())
                    .await
            }
        };
        // The transaction has ended, one way or the other.
        drop(ticket);
        if matches!(result, Ok(_) | Err(sqlx::Error::Database(_))) {
            writer.release();
        }
        let conflict = || {
            // Perhaps because what this store knew of a stream's hash is stale.
            self.last_hashes.forget(writes);
            metrics::counter!("eventlog_append_conflicts_total").increment(1);
            StoreError::Conflict { stream_id: writes[0].stream_id.clone() }
        };
        if let Ok(rows) = &result {
            metrics::counter!("eventlog_appends_total").increment(1);
            metrics::counter!("eventlog_appended_events_total").increment(rows.len() as u64);
        }
        match result {
            Ok(rows) if rows.len() == c.event_ids.len() => {
                let mut positions: Vec<GlobalPosition> = rows.iter().map(global_of).collect::<Result<_, _>>()?;
                positions.sort();
                self.remember_last_hashes(writes, &c);
                Ok(AppendResult { positions, duplicate: false })
            }
            // A stream is behind the expected version (no row inserted) or
            // ahead of it (its next version is taken): a wrong or stale
            // decision, or this exact append already happened (a retry).
            Ok(_) => self.existing(&c.event_ids).await?.ok_or_else(conflict),
            Err(sqlx::Error::Database(db))
                if matches!(db.constraint(), Some(EVENT_ID_CONSTRAINT | STREAM_VERSION_CONSTRAINT)) =>
            {
                self.existing(&c.event_ids).await?.ok_or_else(conflict)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn read_stream(&self, stream_id: &str, after_version: i64) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql =
            format!("SELECT {SELECT_COLUMNS}, hash FROM events WHERE stream_id = $1 AND version > $2 ORDER BY version");
        let rows = sqlx::query(&sql).bind(stream_id).bind(after_version).fetch_all(&self.pool).await?;
        // What a command appends next chains from the last of these.
        if let Some(last) = rows.last() {
            if let Some(hash) = last.try_get::<Option<Vec<u8>>, _>("hash")? {
                self.last_hashes.remember(stream_id, last.try_get("version")?, &hash);
            }
        }
        rows.iter().map(recorded_of).collect()
    }

    async fn read_all(&self, after: GlobalPosition, limit: i64) -> Result<Vec<RecordedEvent>, StoreError> {
        // The limit is part of the text, not a parameter: with `LIMIT $3` the
        // generic plan was costed as reading a share of the whole log, so
        // once the log grew past a million events Postgres planned every
        // read afresh (a custom plan each time, about 8% of all CPU under
        // load). With a literal limit the cached generic plan wins.
        let sql = format!(
            "SELECT {SELECT_COLUMNS} FROM events WHERE (tx_id, position) > ($1, $2) AND {HORIZON} \
             ORDER BY tx_id, position LIMIT {}",
            limit.max(1)
        );
        let rows = sqlx::query(&sql).bind(after.tx_id).bind(after.position).fetch_all(&self.pool).await?;
        rows.iter().map(recorded_of).collect()
    }

    async fn head(&self) -> Result<GlobalPosition, StoreError> {
        let sql =
            format!("SELECT tx_id, position FROM events WHERE {HORIZON} ORDER BY tx_id DESC, position DESC LIMIT 1");
        let row = sqlx::query(&sql).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(global_of).transpose()?.unwrap_or_default())
    }

    fn appended(&self) -> watch::Receiver<u64> {
        self.inflight.subscribe()
    }
}
