//! The hash chain, computed in the append (see migration 0025): each event's
//! hash needs the hash of its stream's event at the expected version. A
//! command has just read that stream through this store, and a writer that
//! appends again has just appended to it, so the hash is nearly always known
//! here; a small map keeps the last one per stream, and one query asks the
//! log for the rest. The append itself only inserts if the stored hash at
//! the expected version is the one chained from, so a stale or wrong entry
//! can cost a conflict (after which it is forgotten) but never fork a chain.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};

use crate::error::StoreError;
use crate::store::StreamWrite;

/// Streams whose last hash is kept; past this the map starts over (an
/// entry is a convenience: a miss costs one query).
const CAPACITY: usize = 100_000;

/// A stream's stored hash at a version: what the next append chains from.
/// `None` for an event stored without one (inserted behind the store's back).
pub(crate) type Link = Option<Vec<u8>>;

/// The last hash known per stream, with its version.
#[derive(Debug, Default)]
pub(crate) struct LastHashes {
    map: Mutex<HashMap<String, (i64, Vec<u8>)>>,
}

impl LastHashes {
    /// Remember that `stream_id` is at `version` with `hash`.
    pub(crate) fn remember(&self, stream_id: &str, version: i64, hash: &[u8]) {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= CAPACITY && !map.contains_key(stream_id) {
            map.clear();
        }
        match map.get_mut(stream_id) {
            Some(entry) if entry.0 >= version => {}
            Some(entry) => *entry = (version, hash.to_vec()),
            None => {
                map.insert(stream_id.to_owned(), (version, hash.to_vec()));
            }
        }
    }

    /// Forget what is known of these streams (an append to them conflicted).
    pub(crate) fn forget(&self, writes: &[StreamWrite]) {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        for write in writes {
            map.remove(&write.stream_id);
        }
    }

    /// For each write, the link it chains from: empty for a new stream, the
    /// known hash at its expected version, else the log's (one query for
    /// all the misses). A version the log does not hold answers `None`; the
    /// append then fails its version guard, as it would have anyway.
    pub(crate) async fn links(&self, pool: &PgPool, writes: &[StreamWrite]) -> Result<Vec<Link>, StoreError> {
        let mut links: Vec<Option<Link>> = Vec::with_capacity(writes.len());
        {
            let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
            for write in writes {
                links.push(match write.expected_version {
                    0 => Some(Some(Vec::new())),
                    expected => match map.get(&write.stream_id) {
                        Some((version, hash)) if *version == expected => Some(Some(hash.clone())),
                        _ => None,
                    },
                });
            }
        }
        let missing: Vec<usize> = (0..writes.len()).filter(|i| links[*i].is_none()).collect();
        if !missing.is_empty() {
            let rows = sqlx::query(
                "SELECT s.i, e.hash FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS s(stream_id, version, i) \
                 JOIN events e ON e.stream_id = s.stream_id AND e.version = s.version",
            )
            .bind(missing.iter().map(|i| writes[*i].stream_id.as_str()).collect::<Vec<_>>())
            .bind(missing.iter().map(|i| writes[*i].expected_version).collect::<Vec<_>>())
            .fetch_all(pool)
            .await?;
            for row in rows {
                let ordinal: i64 = row.try_get("i")?;
                let hash: Option<Vec<u8>> = row.try_get("hash")?;
                if let Some(i) = usize::try_from(ordinal - 1).ok().and_then(|k| missing.get(k)) {
                    links[*i] = Some(hash);
                }
            }
        }
        // Not in the log at that version: chain from nothing; the guard refuses.
        Ok(links.into_iter().map(|l| l.unwrap_or(None)).collect())
    }
}

/// Now, to the microsecond the log keeps: the hash covers `recorded_at`
/// as stored, so it is chosen here rather than by the database's clock.
pub(crate) fn now_to_the_microsecond() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}
