//! (a) and (c'): plain INSERTs into `bench_raw`, the ceiling an append is
//! compared with; [`Rows`] also makes (f)'s raw INSERTs.

use std::sync::LazyLock;
use std::time::Instant;

use eventlog::store::new_event_id;
use serde_json::value::RawValue;
use sqlx::{Connection, Executor, PgConnection, PgPool};
use uuid::Uuid;

use crate::measure::{measure, Settings, Stats};
use crate::workload::{metadata, payload};
use crate::{Res, BATCH, WRITERS};

/// The columns of `events`, a plain bigserial, a unique `(stream_id,
/// version)` and a unique `event_id`.
const RAW_TABLE: &str = "CREATE TABLE IF NOT EXISTS bench_raw (
    position bigserial PRIMARY KEY,
    tx_id bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    stream_id text NOT NULL, version bigint NOT NULL, event_id uuid NOT NULL UNIQUE,
    event_type text NOT NULL, schema_version integer NOT NULL, data json NOT NULL,
    metadata json NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream_id, version))";

const RAW_COLUMNS: &str =
    "INSERT INTO bench_raw (stream_id, version, event_id, event_type, schema_version, data, metadata) VALUES ";

/// One row's placeholders from `$first`; payloads are sent as text, as the
/// event store sends them.
fn row_placeholders(first: usize) -> String {
    let [s, v, id, ty, sv, data, meta] = std::array::from_fn(|i| first + i);
    format!("(${s}, ${v}, ${id}, ${ty}, ${sv}, ${data}::text::json, ${meta}::text::json)")
}

/// An INSERT of `rows` rows, returning what an append returns.
fn insert_sql(rows: usize) -> String {
    let values: Vec<String> = (0..rows).map(|r| row_placeholders(1 + 7 * r)).collect();
    format!("{RAW_COLUMNS}{} RETURNING tx_id, position", values.join(", "))
}

static INSERT_ONE: LazyLock<String> = LazyLock::new(|| insert_sql(1));
static INSERT_BATCH: LazyLock<String> = LazyLock::new(|| insert_sql(BATCH));

pub async fn create_table(pool: &PgPool) -> Res<()> {
    pool.execute(RAW_TABLE).await?;
    Ok(())
}

/// Rows ready to insert: versions `after + 1 ..` of a stream, with their
/// payloads and one metadata (a command's events share theirs), encoded as
/// the event store sends them.
pub struct Rows<'s> {
    stream: &'s str,
    after: i64,
    payloads: Vec<Box<RawValue>>,
    metadata: String,
}

impl<'s> Rows<'s> {
    pub fn new(stream: &'s str, after: i64, count: usize) -> Res<Self> {
        let payloads = (1..=count as i64).map(|i| payload(after + i)).collect();
        Ok(Self { stream, after, payloads, metadata: serde_json::to_string(&metadata())? })
    }

    /// One autocommitted INSERT of all the rows (1 or [`BATCH`]).
    pub async fn insert(&self, conn: &mut PgConnection) -> Res<()> {
        let sql: &str = match self.payloads.len() {
            1 => &INSERT_ONE,
            BATCH => &INSERT_BATCH,
            n => return Err(format!("no INSERT statement for {n} rows").into()),
        };
        let mut query = sqlx::query(sql);
        for (version, data) in (self.after + 1..).zip(&self.payloads) {
            query = query
                .bind(self.stream)
                .bind(version)
                .bind(new_event_id())
                .bind("BenchEvent")
                .bind(1i32)
                .bind(data.get())
                .bind(&self.metadata);
        }
        query.fetch_all(conn).await?;
        Ok(())
    }
}

/// (a) one row per statement, or (c') `batched`, [`BATCH`] rows per
/// statement: [`WRITERS`] dedicated connections, each on its own stream,
/// looping without pause.
pub async fn raw_insert(settings: &Settings, url: &str, batched: bool) -> Res<Stats> {
    let rows = if batched { BATCH } else { 1 };
    measure(settings, WRITERS, |ctl| {
        let url = url.to_owned();
        async move {
            let mut conn = PgConnection::connect(&url).await?;
            let stream = format!("bench_raw-{}", Uuid::new_v4());
            let (mut version, mut latencies) = (0i64, Vec::new());
            while ctl.running() {
                let started = Instant::now();
                Rows::new(&stream, version, rows)?.insert(&mut conn).await?;
                version += rows as i64;
                ctl.done(started, &mut latencies);
            }
            conn.close().await?;
            Ok(latencies)
        }
    })
    .await
}
