//! Checking a presented key. The slow hash is verified once per key and
//! process: a key that verified is remembered by its digest. Its status and
//! scopes are read from the log on every request all the same, so a key
//! suspended or revoked a moment ago is refused on the very next one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use domain::api_key::{ApiKey, ApiKeyStatus};
use projections::api_keys;
use uuid::Uuid;

use super::secret;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Keys remembered as verified before the memory is cleared (bounds what a
/// flood of distinct valid keys can hold).
const REMEMBERED: usize = 10_000;

/// How often a key's `last_used_at` is written at most. It is telemetry: a
/// write per request would make every external call a write and contend on
/// the key's row, while "used within the last minute" is all a listing
/// needs to say. The throttle is per process, so several instances write a
/// little more often; the write never moves the time back.
const USAGE_EVERY: Duration = Duration::from_secs(60);

/// The process's memory of verified keys and of when each key's use was
/// last written.
#[derive(Default)]
pub struct KeyAuth {
    verified: Mutex<HashMap<[u8; 32], Uuid>>,
    used: Mutex<HashMap<Uuid, Instant>>,
}

fn invalid() -> ApiError {
    ApiError::unauthorized("Invalid API key")
}

impl KeyAuth {
    /// The id of the key `presented`, if this process has verified it
    /// before (whether it is still active is the route's to check).
    pub fn known(&self, presented: &str) -> Option<Uuid> {
        let fingerprint = secret::fingerprint(presented);
        self.verified.lock().ok().and_then(|m| m.get(&fingerprint).copied())
    }

    /// The key `presented` is, as the log has it now, if it is a key of
    /// ours and still active; its use is recorded.
    pub async fn authenticate(&self, state: &AppState, presented: &str) -> ApiResult<(Uuid, ApiKey)> {
        if !secret::well_formed(presented) {
            return Err(invalid());
        }
        let (key_id, key) = match self.known(presented) {
            Some(id) => (id, state.commands.api_key(id).await?),
            None => self.verify_slowly(state, presented, secret::fingerprint(presented)).await?,
        };
        match key.status {
            ApiKeyStatus::Active => {}
            ApiKeyStatus::Suspended => return Err(ApiError::unauthorized("API key is suspended")),
            ApiKeyStatus::Revoked => return Err(ApiError::unauthorized("API key is revoked")),
        }
        if key.is_expired(chrono::Utc::now()) {
            return Err(ApiError::unauthorized("API key has expired"));
        }
        self.record_use(state, key_id).await;
        Ok((key_id, key))
    }

    /// Find the candidates by the lookup digest and check the slow hash.
    async fn verify_slowly(
        &self,
        state: &AppState,
        presented: &str,
        fingerprint: [u8; 32],
    ) -> ApiResult<(Uuid, ApiKey)> {
        for id in api_keys::candidates(state.pool(), &secret::lookup(presented)).await? {
            let key = state.commands.api_key(id).await?;
            let Some(hash) = key.secret.as_ref().map(|s| s.hash.clone()) else { continue };
            let text = presented.to_owned();
            let matches = tokio::task::spawn_blocking(move || secret::verify(&text, &hash))
                .await
                .map_err(|e| ApiError::internal(&e))?;
            if matches {
                if let Ok(mut verified) = self.verified.lock() {
                    if verified.len() >= REMEMBERED {
                        verified.clear();
                    }
                    verified.insert(fingerprint, id);
                }
                return Ok((id, key));
            }
        }
        Err(invalid())
    }

    /// Write `last_used_at` unless this process wrote it for the key within
    /// [`USAGE_EVERY`]; a failure is logged, never answered.
    async fn record_use(&self, state: &AppState, key_id: Uuid) {
        let now = Instant::now();
        let due = self.used.lock().is_ok_and(|mut used| {
            if used.len() >= REMEMBERED {
                used.clear();
            }
            match used.get(&key_id) {
                Some(at) if now.duration_since(*at) < USAGE_EVERY => false,
                _ => {
                    used.insert(key_id, now);
                    true
                }
            }
        });
        if due {
            if let Err(e) = api_keys::record_use(state.pool(), key_id, chrono::Utc::now()).await {
                tracing::warn!(error = %e, %key_id, "could not record an API key's use");
            }
        }
    }
}
