//! `Idempotency-Key`: a retried request is answered what the first got.
//!
//! A key names one request of a user: it is bound to a fingerprint of the
//! route (method and path with its ids, `/api/v1` read as `/api`) and the
//! body, so reusing it anywhere else is refused like reusing it with
//! another body. The first request with a key claims it and runs; its
//! response (status, body, the headers that matter) is kept. The same key
//! with the same body is answered that response, even if deciding anew
//! would now differ; with another body or on another route,
//! `422 idempotency_key_reused`; while the first is still running, a
//! duplicate waits for it (up to the consistency timeout), then `409`. A
//! request that failed with a 5xx or a conflict releases its key, so it can
//! be retried. Once the handler has run, its answer is the answer: a record
//! that cannot be kept is logged and the key released, never turned into a
//! 5xx for a command that committed.
//! The command context still derives event ids from the key, scoped to the
//! route (see `Caller`), so even a key whose record was lost appends nothing
//! twice, and never lands on what the key made on another route.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sqlx::Row;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::consistency::{EVENT_POSITION_HEADER, TOKEN_HEADER};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The request header.
pub const KEY_HEADER: &str = "idempotency-key";
/// Set on a response replayed from the record of an earlier request.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// A claim older than this is taken over: its request died mid-way.
const ABANDONED_AFTER_SECS: i64 = 120;

/// Response headers kept with the record and replayed.
const KEPT_HEADERS: [&str; 3] = ["content-type", TOKEN_HEADER, EVENT_POSITION_HEADER];

/// Apply idempotency keys to the mutating routes of `router`.
pub fn keyed(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    router.layer(middleware::from_fn_with_state(state.clone(), idempotent))
}

async fn idempotent(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mutating = matches!(*request.method(), Method::POST | Method::PUT | Method::PATCH | Method::DELETE);
    let key = request.headers().get(KEY_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let Some(key) = key.filter(|k| mutating && !k.is_empty() && k.len() <= 255) else {
        return next.run(request).await;
    };
    match run_once(&state, key, request, next).await {
        Ok(response) | Err(Outcome::Answer(response)) => response,
        Err(Outcome::Error(e)) => e.into_response(),
    }
}

/// How a keyed request ended early.
enum Outcome {
    /// A response to send as it is (the handler's, or a replay).
    Answer(Response),
    /// An error of ours.
    Error(ApiError),
}

impl From<ApiError> for Outcome {
    fn from(e: ApiError) -> Self {
        Self::Error(e)
    }
}

impl From<sqlx::Error> for Outcome {
    fn from(e: sqlx::Error) -> Self {
        Self::Error(e.into())
    }
}

async fn run_once(state: &AppState, key: String, request: Request, next: Next) -> Result<Response, Outcome> {
    let (mut parts, body) = request.into_parts();
    // Without a valid caller the handler answers 401 itself; no key to keep.
    let Ok(user) = AuthUser::from_request_parts(&mut parts, state).await else {
        return Err(Outcome::Answer(next.run(Request::from_parts(parts, body)).await));
    };
    let route = route_of(&parts);
    let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), &())
        .await
        .map_err(|r| Outcome::Answer(r.into_response()))?;
    let fingerprint = Sha256::new().chain_update(route.as_bytes()).chain_update(&bytes).finalize().to_vec();
    let id = Record { user: user.user_id, route, key };

    if !id.claim(state, &fingerprint).await? {
        return Err(Outcome::Answer(id.replay(state, &fingerprint).await?));
    }
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    // From here on the handler may have committed: whatever befalls the
    // record, the client gets the handler's answer, never an error of ours.
    if response.status().is_server_error() || response.status() == StatusCode::CONFLICT {
        // Nothing was committed (a command that committed answers success),
        // and trying again may work: the key must not keep this answer.
        id.release_or_log(state).await;
        return Ok(response);
    }
    let (head, body) = response.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(e) => {
            // The handler's own body failed: there is no answer to keep.
            id.release_or_log(state).await;
            return Err(Outcome::Error(ApiError::internal(&e)));
        }
    };
    if let Err(e) = id.complete(state, head.status, &head.headers, &body).await {
        // Without its record a retry runs the command again; the event ids
        // derived from the key make that append nothing twice, while a
        // claim left open would answer 409 until it is abandoned.
        tracing::warn!(error = %e, route = %id.route, "the answer of a keyed request could not be kept");
        id.release_or_log(state).await;
    }
    Ok(Response::from_parts(head, Body::from(body)))
}

/// The route a request names, as keys are bound to it: method and path
/// with its ids, the external API's `/api/v1` read as `/api`.
pub(crate) fn route_of(parts: &axum::http::request::Parts) -> String {
    // Inside a nested router the URI has lost its prefix; the original has not.
    let uri = parts.extensions.get::<axum::extract::OriginalUri>().map_or(&parts.uri, |o| &o.0);
    format!("{} {}", parts.method, uri.path().replacen("/api/v1/", "/api/", 1))
}

/// The record of one key.
struct Record {
    user: Uuid,
    route: String,
    key: String,
}

impl Record {
    /// Claim the key for this request: true when it is ours to run (new,
    /// or abandoned by a request that died).
    async fn claim(&self, state: &AppState, fingerprint: &[u8]) -> Result<bool, sqlx::Error> {
        let claimed = sqlx::query(
            "INSERT INTO idempotency_keys (user_id, route, key, fingerprint) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, key) DO UPDATE SET created_at = now() \
               WHERE idempotency_keys.status IS NULL AND idempotency_keys.fingerprint = EXCLUDED.fingerprint \
                 AND idempotency_keys.created_at < now() - make_interval(secs => $5) \
             RETURNING 1",
        )
        .bind(self.user)
        .bind(&self.route)
        .bind(&self.key)
        .bind(fingerprint)
        .bind(ABANDONED_AFTER_SECS as f64)
        .fetch_optional(state.pool())
        .await?;
        Ok(claimed.is_some())
    }

    /// Answer a repeated request: the kept response, once there is one.
    async fn replay(&self, state: &AppState, fingerprint: &[u8]) -> ApiResult<Response> {
        let deadline = tokio::time::Instant::now() + state.consistency_timeout;
        let mut pause = Duration::from_millis(5);
        // Waiting for the first to finish counts among the caller's waits.
        let mut waiting = None;
        loop {
            let row = sqlx::query(
                "SELECT fingerprint, status, headers, body FROM idempotency_keys \
                 WHERE user_id = $1 AND key = $2",
            )
            .bind(self.user)
            .bind(&self.key)
            .fetch_optional(state.pool())
            .await?;
            // Released (the first failed) between our claim and this read.
            let Some(row) = row else { return Err(in_use()) };
            if row.try_get::<Vec<u8>, _>("fingerprint")? != fingerprint {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency_key_reused",
                    "This Idempotency-Key was used for a different request (another route, path or body); \
                     use a new key for a new request",
                ));
            }
            if let Some(status) = row.try_get::<Option<i16>, _>("status")? {
                let headers: Option<Value> = row.try_get("headers")?;
                let body: Option<Vec<u8>> = row.try_get("body")?;
                return Ok(replayed(status, headers, body.unwrap_or_default()));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(in_use());
            }
            if waiting.is_none() {
                waiting = Some(state.waits.enter(self.user)?);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    async fn complete(
        &self,
        state: &AppState,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), sqlx::Error> {
        let kept: Map<String, Value> = KEPT_HEADERS
            .iter()
            .filter_map(|name| Some((name.to_string(), Value::from(headers.get(*name)?.to_str().ok()?))))
            .collect();
        sqlx::query(
            "UPDATE idempotency_keys SET status = $4, headers = $5, body = $6, completed_at = now() \
             WHERE user_id = $1 AND key = $2 AND route = $3",
        )
        .bind(self.user)
        .bind(&self.key)
        .bind(&self.route)
        .bind(i16::try_from(status.as_u16()).unwrap_or(i16::MAX))
        .bind(Value::Object(kept))
        .bind(body)
        .execute(state.pool())
        .await?;
        Ok(())
    }

    async fn release(&self, state: &AppState) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND route = $3 AND status IS NULL")
            .bind(self.user)
            .bind(&self.key)
            .bind(&self.route)
            .execute(state.pool())
            .await?;
        Ok(())
    }

    /// Release the key after the handler ran: a failure only leaves the
    /// claim to be taken over once abandoned, so it is logged, not answered.
    async fn release_or_log(&self, state: &AppState) {
        if let Err(e) = self.release(state).await {
            tracing::warn!(error = %e, route = %self.route, "an idempotency key could not be released");
        }
    }
}

fn in_use() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "idempotency_key_in_use",
        "A request with this Idempotency-Key is still running; retry it shortly",
    )
}

fn replayed(status: i16, headers: Option<Value>, body: Vec<u8>) -> Response {
    let status = u16::try_from(status).ok().and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::OK);
    let mut response = (status, body).into_response();
    let map = response.headers_mut();
    map.remove("content-type");
    if let Some(Value::Object(kept)) = headers {
        for (name, value) in kept {
            let value = value.as_str().and_then(|v| HeaderValue::from_str(v).ok());
            if let (Ok(name), Some(value)) = (HeaderName::try_from(name), value) {
                map.insert(name, value);
            }
        }
    }
    map.insert(HeaderName::from_static(REPLAYED_HEADER), HeaderValue::from_static("true"));
    response
}
