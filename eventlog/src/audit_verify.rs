//! Verifying the log's tamper evidence: one pass over every event below the
//! horizon in global order, recomputing each event's hash from its content
//! and its stream's previous hash, checking each stream's versions run 1, 2,
//! 3, … without a gap or a step back, and recomputing every seal's digest.
//!
//! The pass is one streamed query (rows arrive as Postgres sends them, never
//! the whole log in memory); what it keeps is one entry per stream, its last
//! version and hash.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use futures_util::TryStreamExt;
use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::postgres::HORIZON;
use crate::seal::{event_hash, hex, seals, HashedFields, Seal, SealDigest};
use crate::StoreError;

/// How often (in events) [`verify`] reports its progress.
pub const PROGRESS_EVERY: u64 = 100_000;

/// What is wrong with the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// An event's content no longer matches its hash (or it has none).
    Altered,
    /// A stream's version came at or below one already seen in global order.
    Reordered,
    /// Versions of a stream are missing before this event.
    Deleted,
    /// A seal's recomputed digest or count differs from the stored one (an
    /// event removed, added or moved in its range), or the seal chain breaks.
    SealMismatch,
}

/// The first thing found wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// The event's position (for a seal, the position its range ends at).
    pub position: i64,
    /// The event's stream (for a seal, the last event's seen in its range).
    pub stream_id: Option<String>,
    /// The event's version (likewise).
    pub version: Option<i64>,
    /// What is wrong.
    pub kind: ProblemKind,
    /// In words, for operators.
    pub detail: String,
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyReport {
    /// Nothing was found wrong.
    pub ok: bool,
    /// Events read (all below the horizon).
    pub events_checked: u64,
    /// Distinct streams among them.
    pub streams: u64,
    /// Seals whose digest was recomputed.
    pub seals_checked: u64,
    /// The first problem in global order of discovery.
    pub first_problem: Option<Problem>,
    /// How long the pass took.
    pub duration_ms: u64,
}

/// The last event seen of a stream.
struct StreamTip {
    version: i64,
    hash: Vec<u8>,
}

/// The seals, checked one after another as the pass reaches each one's end.
struct SealCheck {
    seals: std::vec::IntoIter<Seal>,
    current: Option<(Seal, SealDigest)>,
    /// The stored digest of the seal before `current` (hex): the next one
    /// chains from the stored digest, so one broken range flags one seal.
    prev_digest: String,
    checked: u64,
    last_event: Option<(String, i64)>,
}

impl SealCheck {
    fn new(seals: Vec<Seal>) -> Self {
        let mut check =
            Self { seals: seals.into_iter(), current: None, prev_digest: String::new(), checked: 0, last_event: None };
        check.advance();
        check
    }

    fn advance(&mut self) {
        self.current = self.seals.next().map(|seal| {
            let prev = unhex(&self.prev_digest);
            (seal, SealDigest::new(&prev))
        });
    }

    /// Feed the next event; answers a problem of a seal that ended before it.
    fn push(&mut self, tx_id: i64, position: i64, hash: &[u8], stream_id: &str, version: i64) -> Option<Problem> {
        let mut problem = None;
        // Seals whose end event is gone end when the pass has gone past them.
        while let Some((seal, _)) = &self.current {
            if (tx_id, position) <= (seal.to_tx_id, seal.to_position) {
                break;
            }
            problem = problem.or(self.finish());
        }
        if let Some((seal, digest)) = &mut self.current {
            digest.push(position, hash);
            self.last_event = Some((stream_id.to_owned(), version));
            if (tx_id, position) == (seal.to_tx_id, seal.to_position) {
                problem = problem.or(self.finish());
            }
        }
        problem
    }

    /// Close the current seal: compare, then move to the next.
    fn finish(&mut self) -> Option<Problem> {
        let (seal, digest) = self.current.take()?;
        self.checked += 1;
        let count = digest.count();
        let recomputed = hex(&digest.finish());
        let detail = if seal.prev_digest != self.prev_digest {
            Some(format!("seal {} does not chain to the seal before it", seal.seq))
        } else if count != seal.event_count {
            Some(format!("seal {} covers {} events, {count} remain in its range", seal.seq, seal.event_count))
        } else if recomputed != seal.digest {
            Some(format!("seal {}: the events in its range differ from those it sealed", seal.seq))
        } else {
            None
        };
        let (stream_id, version) = self.last_event.take().unzip();
        self.prev_digest = seal.digest.clone();
        self.advance();
        detail.map(|detail| Problem {
            position: seal.to_position,
            stream_id,
            version,
            kind: ProblemKind::SealMismatch,
            detail: format!(
                "{detail} (events after ({}, {}) up to ({}, {}))",
                seal.from_tx_id, seal.from_position, seal.to_tx_id, seal.to_position
            ),
        })
    }
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2).filter_map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()).collect()
}

/// Every event below the horizon in global order, every column, payloads as
/// their stored text: what the hash covers, as [`verify`] and `events
/// export` read it (columns by name, or by index in this order: tx_id,
/// position, stream_id, version, event_id, event_type, schema_version,
/// recorded_at, data, metadata, hash). Streamed, never the whole log in memory.
pub fn stored_events(pool: &PgPool) -> BoxStream<'_, Result<PgRow, sqlx::Error>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT tx_id, position, stream_id, version, event_id, event_type, schema_version, recorded_at, \
             data::text AS data, metadata::text AS metadata, hash FROM events WHERE {HORIZON} \
             ORDER BY tx_id, position"
        )
    });
    sqlx::query(SQL.as_str()).fetch(pool)
}

/// Check the whole log below the horizon: every event's hash, every
/// stream's versions, every seal. `progress` hears the number of events
/// checked every [`PROGRESS_EVERY`] events. The log is read, never locked:
/// appends go on meanwhile, above the horizon this pass reads under.
pub async fn verify(pool: &PgPool, mut progress: impl FnMut(u64) + Send) -> Result<VerifyReport, StoreError> {
    let started = Instant::now();
    // Seals first: every one of them ends below the horizon the pass reads
    // under (which only rises), so the pass reaches each one's end.
    let mut seals = SealCheck::new(seals(pool).await?);
    let mut tips: HashMap<String, StreamTip> = HashMap::new();
    let mut first_problem: Option<Problem> = None;
    let mut checked = 0u64;
    let mut rows = stored_events(pool);
    while let Some(row) = rows.try_next().await? {
        let (tx_id, position): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        let event = HashedFields {
            stream_id: row.try_get(2)?,
            version: row.try_get(3)?,
            event_id: row.try_get::<Uuid, _>(4)?,
            event_type: row.try_get(5)?,
            schema_version: row.try_get(6)?,
            recorded_at: row.try_get::<DateTime<Utc>, _>(7)?,
            data: row.try_get(8)?,
            metadata: row.try_get(9)?,
        };
        let stored: Option<&[u8]> = row.try_get(10)?;
        let stored = stored.unwrap_or_default();
        let problem = check_event(&mut tips, position, &event, stored);
        let sealed = seals.push(tx_id, position, stored, event.stream_id, event.version);
        if first_problem.is_none() {
            first_problem = problem.or(sealed);
        }
        checked += 1;
        if checked.is_multiple_of(PROGRESS_EVERY) {
            progress(checked);
        }
    }
    drop(rows);
    // Seals that end past the last event left (removed events at the end).
    while seals.current.is_some() {
        let problem = seals.finish();
        if first_problem.is_none() {
            first_problem = problem;
        }
    }
    if checked == 0 || !checked.is_multiple_of(PROGRESS_EVERY) {
        progress(checked);
    }
    Ok(VerifyReport {
        ok: first_problem.is_none(),
        events_checked: checked,
        streams: tips.len() as u64,
        seals_checked: seals.checked,
        first_problem,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

/// Check one event against its stream's last one, and move the tip.
fn check_event(
    tips: &mut HashMap<String, StreamTip>,
    position: i64,
    event: &HashedFields<'_>,
    stored: &[u8],
) -> Option<Problem> {
    let problem = |kind, detail| Problem {
        position,
        stream_id: Some(event.stream_id.to_owned()),
        version: Some(event.version),
        kind,
        detail,
    };
    let (expected, prev_hash): (i64, &[u8]) = match tips.get(event.stream_id) {
        Some(tip) => (tip.version + 1, &tip.hash),
        None => (1, &[]),
    };
    let found = if event.version < expected {
        Some(problem(
            ProblemKind::Reordered,
            format!("version {} comes after version {} of its stream", event.version, expected - 1),
        ))
    } else if event.version > expected {
        Some(problem(
            ProblemKind::Deleted,
            format!("versions {expected}..{} of the stream are missing before this event", event.version - 1),
        ))
    } else if stored.is_empty() {
        Some(problem(ProblemKind::Altered, "the event has no hash".to_owned()))
    } else if event_hash(prev_hash, event) != stored {
        Some(problem(ProblemKind::Altered, "the event's content does not match its hash".to_owned()))
    } else {
        None
    };
    // A step back does not move the tip: later versions still chain to it.
    if event.version >= expected {
        match tips.get_mut(event.stream_id) {
            Some(tip) => {
                tip.version = event.version;
                tip.hash.clear();
                tip.hash.extend_from_slice(stored);
            }
            None => {
                tips.insert(event.stream_id.to_owned(), StreamTip { version: event.version, hash: stored.to_vec() });
            }
        }
    }
    found
}
