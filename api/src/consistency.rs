//! Read-your-writes at the API edge: commands answer a consistency token
//! once their events are committed, whatever the read models do; queries
//! accept a token and wait, boundedly, for the read models they read.
//!
//! A committed command has succeeded. It waits a bounded time for the
//! projectors fed by what it touched, then answers its normal status and
//! body either way: a client, proxy or SDK retries a 5xx, and a retried
//! create without an idempotency key would create twice. When the read
//! models are still behind, the response says which (`X-Read-Models-Pending`)
//! and its body is built from what the command decided or from the log.

use std::future::Future;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use commands::Outcome;
use eventlog::ConsistencyToken;
use serde_json::json;

use crate::error::{ApiError, ApiResult, FieldError};
use crate::state::AppState;

/// The token of a command's last event, in the log's order (opaque).
pub const TOKEN_HEADER: &str = "x-consistency-token";
/// The position of a command's last event, for humans (not an order key).
pub const EVENT_POSITION_HEADER: &str = "x-event-position";
/// The read models that had not caught up with a command when it answered.
pub const PENDING_HEADER: &str = "x-read-models-pending";

/// Where a command's events landed and which read models still lag them.
#[derive(Debug, Clone)]
pub struct Settled {
    /// The command's consistency token.
    pub token: ConsistencyToken,
    /// Projectors that had not applied the command's events in time.
    pub pending: Vec<&'static str>,
}

impl Settled {
    /// Every read model the command feeds shows it.
    pub fn is_current(&self) -> bool {
        self.pending.is_empty()
    }
}

/// A committed command's response: its body, with the consistency headers.
/// Without a body (it could not be built, which only a failing database
/// causes) the answer is `202 Accepted`: the change stands, read it again
/// with the token.
pub struct Committed<T> {
    settled: Settled,
    body: Option<T>,
}

impl<T> Committed<T> {
    /// The same answer with its body changed (a status added, say).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Committed<U> {
        Committed { settled: self.settled, body: self.body.map(f) }
    }
}

impl<T: IntoResponse> IntoResponse for Committed<T> {
    fn into_response(self) -> Response {
        let mut response = match self.body {
            Some(body) => body.into_response(),
            None => StatusCode::ACCEPTED.into_response(),
        };
        let headers = response.headers_mut();
        let at = self.settled.token.0;
        insert(headers, TOKEN_HEADER, &self.settled.token.to_string());
        insert(headers, EVENT_POSITION_HEADER, &at.position.to_string());
        if !self.settled.pending.is_empty() {
            insert(headers, PENDING_HEADER, &self.settled.pending.join(","));
        }
        response
    }
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

impl AppState {
    /// Wait, at most the consistency timeout, for the projectors fed by the
    /// stream categories the command touched. Never fails: lagging read
    /// models are reported, not raised.
    pub async fn settle(&self, outcome: &Outcome) -> Settled {
        let names = self.projections.readers_of(&outcome.categories);
        let pending = match self.projections.wait_for(&names, outcome.position, self.consistency_timeout).await {
            Ok(pending) => pending,
            Err(e) => {
                tracing::error!(error = %e, "waiting for a projection this process does not run");
                names
            }
        };
        if !pending.is_empty() {
            tracing::warn!(position = ?outcome.position, ?pending, "read models did not catch up within the consistency timeout");
        }
        Settled { token: outcome.position.into(), pending }
    }

    /// Answer a command with a body built from what it decided.
    pub async fn answer<T>(&self, outcome: &Outcome, body: T) -> Committed<T> {
        Committed { settled: self.settle(outcome).await, body: Some(body) }
    }

    /// Answer a command with a body read from the read models when they have
    /// caught up, else with one built from the log (`from_log`). A failure
    /// of either is logged, never answered: the command has succeeded.
    pub async fn answer_read<T>(
        &self,
        outcome: &Outcome,
        read: impl Future<Output = ApiResult<Option<T>>>,
        from_log: impl Future<Output = ApiResult<Option<T>>>,
    ) -> Committed<T> {
        let settled = self.settle(outcome).await;
        let fresh = if settled.is_current() { read.await.ok().flatten() } else { None };
        let body = match fresh {
            Some(body) => Some(body),
            None => from_log.await.ok().flatten(),
        };
        Committed { settled, body }
    }
}

/// Make the safe-method routes of `router` honour `X-Consistency-Token`:
/// before the handler runs, wait until the named projectors (the read
/// models those routes read) have passed the token.
pub fn reads(router: Router<AppState>, state: &AppState, names: &'static [&'static str]) -> Router<AppState> {
    router.route_layer(middleware::from_fn_with_state((state.clone(), names), read_after))
}

async fn read_after(
    State((state, names)): State<(AppState, &'static [&'static str])>,
    request: Request,
    next: Next,
) -> Response {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let Some(raw) = request.headers().get(TOKEN_HEADER).cloned() else { return next.run(request).await };
    let (mut parts, body) = request.into_parts();
    match wait_for_token(&state, names, &raw, &mut parts).await {
        Ok(()) => next.run(Request::from_parts(parts, body)).await,
        Err(e) => e.into_response(),
    }
}

async fn wait_for_token(
    state: &AppState,
    names: &'static [&'static str],
    raw: &HeaderValue,
    parts: &mut axum::http::request::Parts,
) -> ApiResult<()> {
    let token: ConsistencyToken = raw.to_str().ok().and_then(|s| s.parse().ok()).ok_or_else(|| {
        let input = json!(String::from_utf8_lossy(raw.as_bytes()));
        ApiError::unprocessable(
            "Invalid X-Consistency-Token header",
            vec![FieldError::new("X-Consistency-Token", eventlog::token::InvalidToken.to_string(), "invalid", input)],
        )
    })?;
    if state.projections.wait_for(names, token.0, Duration::ZERO).await?.is_empty() {
        return Ok(());
    }
    // A token past every position or transaction the log has handed out
    // was never answered by this server (forged, or from another one):
    // waiting could not help, so say so at once.
    let (handed_out, next_tx): (Option<i64>, i64) = sqlx::query_as(
        "SELECT pg_sequence_last_value(pg_get_serial_sequence('events', 'position')), \
           pg_snapshot_xmax(pg_current_snapshot())::text::bigint + (SELECT xid_offset FROM log_epoch)",
    )
    .fetch_one(state.pool())
    .await?;
    if token.0.position > handed_out.unwrap_or(0) || token.0.tx_id >= next_tx {
        return Err(ApiError::bad_request(
            "X-Consistency-Token is ahead of the event log: it was not issued by this server",
        ));
    }
    let _waiting = state.waits.enter(caller_of(state, parts).await)?;
    let pending = state.projections.wait_for(names, token.0, state.consistency_timeout).await?;
    if pending.is_empty() {
        return Ok(());
    }
    // A GET is safe to retry: say when.
    Err(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "read_models_pending",
        format!("The read models ({}) have not reached the consistency token yet; retry shortly", pending.join(", ")),
    )
    .with_header(axum::http::header::RETRY_AFTER, HeaderValue::from_static("1")))
}

/// Whose wait this is: the authenticated user, or one shared place for
/// requests without a valid identity (their route answers 401 itself).
pub(crate) async fn caller_of(state: &AppState, parts: &mut axum::http::request::Parts) -> uuid::Uuid {
    use axum::extract::FromRequestParts;
    crate::auth::AuthUser::from_request_parts(parts, state).await.map_or(uuid::Uuid::nil(), |u| u.user_id)
}
