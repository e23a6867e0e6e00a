//! Tamper evidence: the per-stream hash chain of migration 0016, computed
//! here byte for byte as its `event_content` encodes it (by the append since
//! migration 0025, and by verify and import; the trigger still fills in rows
//! that arrive without one), and seals, a chain of digests over the global
//! order below the horizon.
//!
//! The event hash makes a changed event visible (its stored hash no longer
//! matches its content) and a removed one too when a later event of its
//! stream remains (that event's hash names the missing one's). A seal covers
//! what the chains cannot: the last event of a stream removed, an event
//! inserted behind the writers' back, or two events swapped in the order.

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::postgres::HORIZON;
use crate::StoreError;

/// The columns of an event that its hash covers, borrowed from a row.
#[derive(Debug, Clone, Copy)]
pub struct HashedFields<'a> {
    /// The stream.
    pub stream_id: &'a str,
    /// Its version within the stream.
    pub version: i64,
    /// The event's id.
    pub event_id: Uuid,
    /// The event type name.
    pub event_type: &'a str,
    /// The payload's schema version.
    pub schema_version: i32,
    /// When it was recorded; only whole microseconds are stored.
    pub recorded_at: DateTime<Utc>,
    /// The payload as stored (`data::text`).
    pub data: &'a str,
    /// The metadata as stored (`metadata::text`).
    pub metadata: &'a str,
}

/// Feed `text` as its u32 big-endian byte length and its bytes: a length
/// prefix keeps two different field splits from encoding the same.
fn length_prefixed(hasher: &mut Sha256, text: &str) {
    hasher.update((text.len() as u32).to_be_bytes());
    hasher.update(text.as_bytes());
}

/// The event's hash: `sha256(prev_hash || content)` with `content` encoded
/// as documented in `migrations/0016_event_hashes.sql` (its SQL function
/// `event_content` encodes the same). `prev_hash` is the hash of the
/// stream's previous version, empty for version 1.
pub fn event_hash(prev_hash: &[u8], event: &HashedFields<'_>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash);
    length_prefixed(&mut hasher, event.stream_id);
    hasher.update(event.version.to_be_bytes());
    hasher.update(event.event_id.as_bytes());
    length_prefixed(&mut hasher, event.event_type);
    hasher.update(event.schema_version.to_be_bytes());
    hasher.update(event.recorded_at.timestamp_micros().to_be_bytes());
    length_prefixed(&mut hasher, event.data);
    length_prefixed(&mut hasher, event.metadata);
    hasher.finalize().into()
}

/// Running digest of a seal: `sha256(prev_digest || for each event in
/// (tx_id, position) order: i64 big-endian position || hash)`.
#[derive(Debug, Clone)]
pub(crate) struct SealDigest {
    hasher: Sha256,
    count: i64,
}

impl SealDigest {
    /// Start after the previous seal's digest (empty for the first seal).
    pub(crate) fn new(prev_digest: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(prev_digest);
        Self { hasher, count: 0 }
    }

    /// Add the next event in global order.
    pub(crate) fn push(&mut self, position: i64, hash: &[u8]) {
        self.hasher.update(position.to_be_bytes());
        self.hasher.update(hash);
        self.count += 1;
    }

    /// How many events were added.
    pub(crate) fn count(&self) -> i64 {
        self.count
    }

    /// The digest.
    pub(crate) fn finish(self) -> Vec<u8> {
        self.hasher.finalize().to_vec()
    }
}

/// A seal: the digest of the events in ((from_tx_id, from_position),
/// (to_tx_id, to_position)], chained to the previous seal's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Seal {
    /// Its number in the chain, from 1.
    pub seq: i64,
    /// The previous seal's end (exclusive); `(0, 0)` for the first.
    pub from_tx_id: i64,
    /// See `from_tx_id`.
    pub from_position: i64,
    /// The last event it covers (inclusive).
    pub to_tx_id: i64,
    /// See `to_tx_id`.
    pub to_position: i64,
    /// How many events it covers.
    pub event_count: i64,
    /// The digest, hex.
    pub digest: String,
    /// The previous seal's digest, hex (empty for the first).
    pub prev_digest: String,
    /// When it was made.
    pub sealed_at: DateTime<Utc>,
}

/// Lower-case hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

const SEAL_COLUMNS: &str = "seq, from_tx_id, from_position, to_tx_id, to_position, event_count, digest, \
                            prev_digest, sealed_at";

fn seal_of(row: &sqlx::postgres::PgRow) -> Result<Seal, sqlx::Error> {
    Ok(Seal {
        seq: row.try_get("seq")?,
        from_tx_id: row.try_get("from_tx_id")?,
        from_position: row.try_get("from_position")?,
        to_tx_id: row.try_get("to_tx_id")?,
        to_position: row.try_get("to_position")?,
        event_count: row.try_get("event_count")?,
        digest: hex(&row.try_get::<Vec<u8>, _>("digest")?),
        prev_digest: hex(&row.try_get::<Vec<u8>, _>("prev_digest")?),
        sealed_at: row.try_get("sealed_at")?,
    })
}

/// Every seal, in chain order.
pub async fn seals(pool: &PgPool) -> Result<Vec<Seal>, StoreError> {
    let rows = sqlx::query(&format!("SELECT {SEAL_COLUMNS} FROM event_seals ORDER BY seq")).fetch_all(pool).await?;
    Ok(rows.iter().map(seal_of).collect::<Result<_, _>>()?)
}

/// Seal every event below the horizon that no seal covers yet. Answers the
/// new seal, or `None` when there was nothing new or another sealer sealed
/// the same range first.
///
/// The events are read as one stream on a pooled connection outside any
/// write transaction: a read holds no transaction id, so it never holds the
/// horizon back for tailers, however long the first seal of a big log takes.
/// Only the final insert writes, and the unique start of `event_seals` makes a
/// racing sealer's insert fail instead of forking the chain.
pub async fn seal(pool: &PgPool) -> Result<Option<Seal>, StoreError> {
    let last = sqlx::query("SELECT to_tx_id, to_position, digest FROM event_seals ORDER BY seq DESC LIMIT 1")
        .fetch_optional(pool)
        .await?;
    let (from_tx, from_pos, prev_digest) = match last {
        Some(row) => (row.try_get::<i64, _>(0)?, row.try_get::<i64, _>(1)?, row.try_get::<Vec<u8>, _>(2)?),
        None => (0, 0, Vec::new()),
    };
    let sql = format!(
        "SELECT tx_id, position, hash FROM events WHERE (tx_id, position) > ($1, $2) AND {HORIZON} \
         ORDER BY tx_id, position"
    );
    let mut digest = SealDigest::new(&prev_digest);
    let mut end = None;
    {
        let mut rows = sqlx::query(&sql).bind(from_tx).bind(from_pos).fetch(pool);
        while let Some(row) = rows.try_next().await? {
            let (tx_id, position): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
            // A row without a hash seals as an empty one; verify reports it.
            let hash: Option<Vec<u8>> = row.try_get(2)?;
            digest.push(position, hash.as_deref().unwrap_or_default());
            end = Some((tx_id, position));
        }
    }
    let Some((to_tx, to_pos)) = end else { return Ok(None) };
    let count = digest.count();
    let inserted = sqlx::query(&format!(
        "INSERT INTO event_seals (from_tx_id, from_position, to_tx_id, to_position, event_count, digest, prev_digest) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (from_tx_id, from_position) DO NOTHING \
         RETURNING {SEAL_COLUMNS}"
    ))
    .bind(from_tx)
    .bind(from_pos)
    .bind(to_tx)
    .bind(to_pos)
    .bind(count)
    .bind(digest.finish())
    .bind(&prev_digest)
    .fetch_optional(pool)
    .await?;
    Ok(inserted.as_ref().map(seal_of).transpose()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes of the migration's encoding, spelled out once more by hand:
    /// a change to `event_hash` that the documented format does not share
    /// fails here.
    #[test]
    fn event_hash_hashes_the_documented_bytes() {
        let event = HashedFields {
            stream_id: "s-1",
            version: 2,
            event_id: Uuid::from_u128(1),
            event_type: "T",
            schema_version: 1,
            recorded_at: DateTime::from_timestamp_micros(1_000_001).unwrap(),
            data: "{}",
            metadata: "[]",
        };
        let mut bytes = vec![0xab];
        bytes.extend([0, 0, 0, 3]);
        bytes.extend(b"s-1");
        bytes.extend(2i64.to_be_bytes());
        bytes.extend(1u128.to_be_bytes());
        bytes.extend([0, 0, 0, 1, b'T']);
        bytes.extend(1i32.to_be_bytes());
        bytes.extend(1_000_001i64.to_be_bytes());
        bytes.extend([0, 0, 0, 2, b'{', b'}', 0, 0, 0, 2, b'[', b']']);
        let expected: [u8; 32] = Sha256::digest(&bytes).into();
        assert_eq!(event_hash(&[0xab], &event), expected);
    }

    #[test]
    fn hex_is_lower_case_and_padded() {
        assert_eq!(hex(&[0, 0xab, 7]), "00ab07");
    }
}
