//! `autogpt-es events export|import`: moving a log between databases as
//! NDJSON, byte for byte, with its tamper evidence checked on the way in.
//!
//! One line per event in global order below the horizon, every column of
//! `events`: `position`, `tx_id`, `stream_id`, `version`, `event_id`,
//! `event_type`, `schema_version`, `recorded_at` (RFC 3339, to the microsecond Postgres keeps),
//! `data` and `metadata` as JSON strings holding the stored text (a raw
//! payload could span lines, and re-serializing it would change the bytes the
//! hash covers), and `hash` in hex. Import inserts into an empty log keeping
//! `position` and `tx_id`, recomputing each hash along its stream's chain as
//! the append does, and refuses the whole import at the first one that
//! differs from the exported hash: an export edited on the way is never
//! loaded. It keeps the last hash of every stream it has seen, a few dozen
//! bytes per stream.

use std::collections::HashMap;
use std::io::{BufRead, Write};

use api::{db, Config};
use chrono::{DateTime, Utc};
use clap::Subcommand;
use commands::PgEventStore;
use eventlog::seal::{event_hash, hex, HashedFields};
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row};
use uuid::Uuid;

/// The `events` subcommands.
#[derive(Subcommand)]
pub enum EventsCommand {
    /// Write the log to stdout as NDJSON, one event per line, in global order.
    Export,
    /// Load an export from stdin into an empty log, checking every hash.
    Import,
}

/// One exported event: every column of `events` (see the module's docs).
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    position: i64,
    tx_id: i64,
    stream_id: String,
    version: i64,
    event_id: Uuid,
    event_type: String,
    schema_version: i32,
    recorded_at: DateTime<Utc>,
    data: String,
    metadata: String,
    hash: Option<String>,
}

/// Rows per insert statement of an import.
const BATCH: usize = 1000;

/// Run one `events` subcommand against the configured database.
pub async fn run(command: EventsCommand, config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let pool = db::connect(config.database_url.expose(), 2).await?;
    db::migrate(&pool).await?;
    match command {
        EventsCommand::Export => export(&pool).await,
        EventsCommand::Import => import(pool).await,
    }
}

async fn export(pool: &PgPool) -> Result<(), Box<dyn std::error::Error>> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut rows = eventlog::audit_verify::stored_events(pool);
    let mut count = 0u64;
    while let Some(row) = rows.try_next().await? {
        let line = Line {
            position: row.try_get("position")?,
            tx_id: row.try_get("tx_id")?,
            stream_id: row.try_get("stream_id")?,
            version: row.try_get("version")?,
            event_id: row.try_get("event_id")?,
            event_type: row.try_get("event_type")?,
            schema_version: row.try_get("schema_version")?,
            recorded_at: row.try_get("recorded_at")?,
            data: row.try_get("data")?,
            metadata: row.try_get("metadata")?,
            hash: row.try_get::<Option<Vec<u8>>, _>("hash")?.as_deref().map(hex),
        };
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
        count += 1;
    }
    out.flush()?;
    eprintln!("exported {count} events");
    Ok(())
}

const IMPORT_SQL: &str = "\
INSERT INTO events (position, tx_id, stream_id, version, event_id, event_type, schema_version, recorded_at, data, metadata,
                    hash)
OVERRIDING SYSTEM VALUE
SELECT p, t, s, v, e, ty, sv, r, d::json, m::json, h
FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::uuid[], $6::text[], $7::int4[],
            $8::timestamptz[], $9::text[], $10::text[], $11::bytea[]) AS u(p, t, s, v, e, ty, sv, r, d, m, h)";

/// Each stream's last version and hash, as the import goes.
type Chains = HashMap<String, (i64, [u8; 32])>;

async fn import(pool: PgPool) -> Result<(), Box<dyn std::error::Error>> {
    // All or nothing: a refused line leaves the log as empty as it was.
    let mut tx = pool.begin().await?;
    let existing: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&mut *tx).await?;
    if existing > 0 {
        return Err(format!("the log already holds {existing} events: import loads into an empty log only").into());
    }
    let mut batch = Vec::with_capacity(BATCH);
    let mut chains = Chains::new();
    let mut count = 0u64;
    for (n, text) in std::io::stdin().lock().lines().enumerate() {
        let text = text?;
        if text.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(&text).map_err(|e| format!("line {}: {e}", n + 1))?;
        let hash = chained(&mut chains, &line)?;
        batch.push((line, hash));
        if batch.len() == BATCH {
            count += insert(&mut tx, &mut batch).await?;
        }
    }
    count += insert(&mut tx, &mut batch).await?;
    // New appends continue after the imported positions.
    sqlx::query(
        "SELECT setval(pg_get_serial_sequence('events', 'position'), max(position)) FROM events HAVING count(*) > 0",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    // The imported tx_ids come from another server: make new ones sort after them.
    PgEventStore::new(pool).ensure_order().await?;
    eprintln!("imported {count} events, every hash as exported");
    Ok(())
}

/// The line's hash, chained from its stream's previous version (from
/// nothing when that is missing, so a gap shows as a difference), checked
/// against the export's.
fn chained(chains: &mut Chains, line: &Line) -> Result<[u8; 32], String> {
    let prev = match chains.get(&line.stream_id) {
        Some((version, hash)) if *version == line.version - 1 => hash.as_slice(),
        _ => &[],
    };
    let fields = HashedFields {
        stream_id: &line.stream_id,
        version: line.version,
        event_id: line.event_id,
        event_type: &line.event_type,
        schema_version: line.schema_version,
        recorded_at: line.recorded_at,
        data: &line.data,
        metadata: &line.metadata,
    };
    let hash = event_hash(prev, &fields);
    let position = line.position;
    match line.hash.as_deref() {
        Some(exported) if exported == hex(&hash) => {}
        Some(exported) => {
            return Err(format!(
                "event at position {position}: its content hashes to {}, the export says {exported} \
                 (altered, or an event before it in its stream is missing); nothing was imported",
                hex(&hash)
            ))
        }
        None => return Err(format!("event at position {position} has no hash in the export")),
    }
    chains.insert(line.stream_id.clone(), (line.version, hash));
    Ok(hash)
}

/// Insert a batch of checked lines (emptying it).
async fn insert(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    batch: &mut Vec<(Line, [u8; 32])>,
) -> Result<u64, Box<dyn std::error::Error>> {
    if batch.is_empty() {
        return Ok(0);
    }
    let column = |f: fn(&Line) -> i64| batch.iter().map(|(l, _)| f(l)).collect::<Vec<_>>();
    let done = sqlx::query(IMPORT_SQL)
        .bind(column(|l| l.position))
        .bind(column(|l| l.tx_id))
        .bind(batch.iter().map(|(l, _)| l.stream_id.as_str()).collect::<Vec<_>>())
        .bind(column(|l| l.version))
        .bind(batch.iter().map(|(l, _)| l.event_id).collect::<Vec<_>>())
        .bind(batch.iter().map(|(l, _)| l.event_type.as_str()).collect::<Vec<_>>())
        .bind(batch.iter().map(|(l, _)| l.schema_version).collect::<Vec<_>>())
        .bind(batch.iter().map(|(l, _)| l.recorded_at).collect::<Vec<_>>())
        .bind(batch.iter().map(|(l, _)| l.data.as_str()).collect::<Vec<_>>())
        .bind(batch.iter().map(|(l, _)| l.metadata.as_str()).collect::<Vec<_>>())
        .bind(batch.iter().map(|(_, h)| h.to_vec()).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    batch.clear();
    Ok(done.rows_affected())
}
