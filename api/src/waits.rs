//! Waits a client can ask for (a query holding a consistency token the read
//! models have not reached, a duplicate of a keyed request still running)
//! hold a request open for up to the consistency timeout. Each caller may
//! have only so many such waits at once: past that, a wait is refused with
//! `429` at once, so one client's many slow requests cannot tie up the
//! server for the others. `/metrics` shows how many wait now
//! (`api_waiting_requests`) and how many were refused
//! (`api_waits_refused_total`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::{HeaderValue, StatusCode};
use uuid::Uuid;

use crate::error::ApiError;

/// Waits each caller may have at once, by default.
pub const DEFAULT_WAITS_PER_USER: usize = 16;

/// The waits in progress, per caller.
#[derive(Debug, Clone)]
pub struct Waits {
    per_user: usize,
    waiting: Arc<Mutex<HashMap<Uuid, usize>>>,
}

impl Default for Waits {
    fn default() -> Self {
        Self::new(DEFAULT_WAITS_PER_USER)
    }
}

impl Waits {
    /// At most `per_user` waits per caller (at least one).
    pub fn new(per_user: usize) -> Self {
        Self { per_user: per_user.max(1), waiting: Arc::default() }
    }

    /// A place for one wait of `caller` (the nil id for callers without
    /// an identity), held until the returned guard drops; `429
    /// too_many_waits` when the caller already has as many as allowed.
    pub fn enter(&self, caller: Uuid) -> Result<Waiting, ApiError> {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let count = waiting.entry(caller).or_default();
        if *count >= self.per_user {
            metrics::counter!("api_waits_refused_total").increment(1);
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_waits",
                format!("This caller already has {} requests waiting for read models; retry shortly", self.per_user),
            )
            .with_header(axum::http::header::RETRY_AFTER, HeaderValue::from_static("1")));
        }
        *count += 1;
        metrics::gauge!("api_waiting_requests").increment(1.0);
        Ok(Waiting { waits: self.clone(), caller })
    }
}

/// One wait in progress; dropping it gives its place back.
#[derive(Debug)]
pub struct Waiting {
    waits: Waits,
    caller: Uuid,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut waiting = self.waits.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = waiting.get_mut(&self.caller) {
            *count -= 1;
            if *count == 0 {
                waiting.remove(&self.caller);
            }
        }
        metrics::gauge!("api_waiting_requests").decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_has_at_most_its_waits_and_others_keep_theirs() {
        let waits = Waits::new(2);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let first = waits.enter(a).expect("first");
        let _second = waits.enter(a).expect("second");
        assert!(waits.enter(a).is_err(), "a third wait of one caller");
        assert!(waits.enter(b).is_ok(), "another caller is not affected");
        drop(first);
        assert!(waits.enter(a).is_ok(), "a finished wait gives its place back");
    }
}
