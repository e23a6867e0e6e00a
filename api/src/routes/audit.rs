//! Auditors read history: one stream's events with their metadata (admins,
//! or the user who created the stream), and the global log in order,
//! filtered by event type, category, acting user and time (admins).

use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use eventlog::audit::LogFilter;
use eventlog::{ConsistencyToken, EventMetadata, GlobalPosition, RecordedEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::in_range;
use crate::auth::{AdminUser, AuthUser};
use crate::error::{ApiError, ApiResult, ErrorBody, FieldError};
use crate::extract::Query;
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/audit/streams/{stream_id}", get(read_stream))
        .route("/audit/streams/{stream_id}/state", get(state_at))
        .route("/audit/events", get(read_log))
}

/// One event as the log holds it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditEvent {
    /// Its place in the global order, as a consistency token.
    token: String,
    /// The stream.
    stream_id: String,
    /// Its version in the stream, from 1.
    version: i64,
    /// Its id.
    event_id: Uuid,
    /// Its type.
    event_type: String,
    /// The schema version of `data`.
    schema_version: i32,
    /// The payload as stored.
    #[schema(value_type = Object)]
    data: Value,
    /// Correlation, causation, acting user, request.
    #[schema(value_type = Object)]
    metadata: EventMetadata,
    /// When it was committed.
    recorded_at: DateTime<Utc>,
}

impl AuditEvent {
    fn of(event: RecordedEvent) -> Self {
        let mut data = serde_json::from_str(event.data.get()).unwrap_or(Value::Null);
        // What is kept of an API key's secret stays in the log: an auditor
        // sees that a key was made, never material to test guesses against.
        if let Some(secret) = data.pointer_mut("/secret").and_then(Value::as_object_mut) {
            for field in ["hash", "lookup"] {
                if secret.contains_key(field) {
                    secret.insert(field.into(), Value::String("[redacted]".into()));
                }
            }
        }
        Self {
            token: ConsistencyToken(event.global).to_string(),
            stream_id: event.stream_id,
            version: event.version,
            event_id: event.event_id,
            event_type: event.event_type,
            schema_version: event.schema_version,
            data,
            metadata: event.metadata,
            recorded_at: event.recorded_at,
        }
    }
}

fn default_limit() -> i64 {
    100
}

/// Query of `GET /api/audit/streams/{stream_id}`.
#[derive(Debug, Deserialize)]
pub(crate) struct StreamQuery {
    #[serde(default)]
    from_version: i64,
    #[serde(default = "default_limit")]
    limit: i64,
}

/// A page of one stream.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StreamPage {
    /// The stream.
    stream_id: String,
    /// Its events from `from_version` on, in order.
    events: Vec<AuditEvent>,
    /// Pass as `from_version` for the next page; null at the end.
    next_version: Option<i64>,
}

/// A stream name's category and aggregate id (`<category>-<uuid>`; the
/// uuid has dashes of its own, so it is the last 36 characters).
fn split_stream(stream_id: &str) -> Option<(&str, Uuid)> {
    let cut = stream_id.len().checked_sub(37)?;
    let (prefix, rest) = (stream_id.get(..cut)?, stream_id.get(cut..)?);
    Some((prefix, Uuid::parse_str(rest.strip_prefix('-')?).ok()?))
}

/// Whether `user` may read `stream`: the user's own stream, or one whose
/// first event the user caused.
fn owns(user: &AuthUser, stream_id: &str, first: Option<&RecordedEvent>) -> bool {
    let own_id = split_stream(stream_id).map(|(_, id)| id);
    own_id == Some(user.user_id) || first.is_some_and(|e| e.metadata.user_id == Some(user.user_id))
}

/// Whom a reader sees the events of in a stream: everyone's for an admin;
/// for the stream's owner, their own and the platform's, never another
/// party's (an admin's internal review notes). Checked on the stream's
/// first event alone, before anything else is read; a stream the caller may
/// not read is a 404, as one that does not exist: nothing is revealed.
async fn reader_scope(state: &AppState, user: &AuthUser, stream_id: &str) -> ApiResult<Option<Uuid>> {
    let origin = state.store().stream_origin(stream_id).await?;
    if origin.is_none() || !(user.is_admin || owns(user, stream_id, origin.as_ref())) {
        return Err(ApiError::not_found("Stream not found"));
    }
    Ok((!user.is_admin).then_some(user.user_id))
}

/// A stream's events with their metadata, from a version on.
#[utoipa::path(get, path = "/api/audit/streams/{stream_id}", operation_id = "getAuditStream", tag = "audit",
    params(("stream_id" = String, Path, description = "`<category>-<uuid>`"),
        ("from_version" = Option<i64>, Query, minimum = 0, maximum = 2147483647, description = "Events after this version"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000)),
    responses((status = 200, description = "A page of the stream", body = StreamPage),
        (status = 404, description = "No such stream, or not the caller's", body = ErrorBody)))]
pub(crate) async fn read_stream(
    State(state): State<AppState>,
    user: AuthUser,
    Path(stream_id): Path<String>,
    Query(q): Query<StreamQuery>,
) -> ApiResult<axum::Json<StreamPage>> {
    in_range("from_version", q.from_version, 0, i64::from(i32::MAX))?;
    in_range("limit", q.limit, 1, 1000)?;
    let scope = reader_scope(&state, &user, &stream_id).await?;
    let events = state.store().read_stream_page(&stream_id, q.from_version, None, q.limit + 1, scope).await?;
    let more = events.len() > q.limit as usize;
    let page: Vec<AuditEvent> = events.into_iter().take(q.limit as usize).map(AuditEvent::of).collect();
    let next_version = more.then(|| page.last().map_or(q.from_version, |e| e.version));
    Ok(axum::Json(StreamPage { stream_id, events: page, next_version }))
}

/// Query of `GET /api/audit/events`.
#[derive(Debug, Deserialize)]
pub(crate) struct LogQuery {
    #[serde(default)]
    after: Option<String>,
    #[serde(default = "default_limit")]
    limit: i64,
    #[serde(default)]
    event_type: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    user_id: Option<Uuid>,
    #[serde(default)]
    from: Option<DateTime<Utc>>,
    #[serde(default)]
    to: Option<DateTime<Utc>>,
}

/// A page of the global log.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LogPage {
    /// Events in global order.
    events: Vec<AuditEvent>,
    /// Pass as `after` for the next page; null when this page is the last
    /// one so far.
    next: Option<String>,
}

/// The global log in order, filtered, for admins.
#[utoipa::path(get, path = "/api/audit/events", operation_id = "getAuditEvents", tag = "audit",
    params(("after" = Option<String>, Query, pattern = r"^1\.[0-9a-f]{1,15}\.[0-9a-f]{1,15}$", description = "A token: events after it"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000),
        ("event_type" = Option<String>, Query), ("category" = Option<String>, Query, description = "Stream prefix, e.g. `graph`"),
        ("user_id" = Option<Uuid>, Query, description = "The acting user"),
        ("from" = Option<DateTime<Utc>>, Query, description = "Recorded at or after"),
        ("to" = Option<DateTime<Utc>>, Query, description = "Recorded before")),
    responses((status = 200, description = "A page of the log", body = LogPage),
        (status = 403, description = "Admin access required", body = ErrorBody)))]
pub(crate) async fn read_log(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(q): Query<LogQuery>,
) -> ApiResult<axum::Json<LogPage>> {
    in_range("limit", q.limit, 1, 1000)?;
    let after = match q.after.as_deref() {
        None => GlobalPosition::START,
        Some(raw) => raw.parse::<ConsistencyToken>().map(|t| t.0).map_err(|e| {
            ApiError::unprocessable(
                "Invalid after token",
                vec![FieldError::new("after", e.to_string(), "invalid", raw.into())],
            )
        })?,
    };
    let filter =
        LogFilter { event_type: q.event_type, category: q.category, user_id: q.user_id, from: q.from, to: q.to };
    let events = state.store().read_filtered(after, q.limit, &filter).await?;
    let next = (events.len() as i64 == q.limit)
        .then(|| events.last().map(|e| ConsistencyToken(e.global).to_string()))
        .flatten();
    Ok(axum::Json(LogPage { events: events.into_iter().map(AuditEvent::of).collect(), next }))
}

/// Most events folded into one state answer.
const MAX_FOLDED: i64 = 100_000;

/// What only admins see of a state: who reviewed, and the reviewers'
/// internal notes (the submissions a user reads show neither).
fn without_reviewers(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("internal_comments");
            map.remove("reviewer_id");
            map.values_mut().for_each(without_reviewers);
        }
        Value::Array(items) => items.iter_mut().for_each(without_reviewers),
        _ => {}
    }
}

/// Query of `GET /api/audit/streams/{stream_id}/state`.
#[derive(Debug, Deserialize)]
pub(crate) struct StateQuery {
    #[serde(default)]
    version: Option<i64>,
    #[serde(default)]
    at: Option<DateTime<Utc>>,
}

/// An aggregate's state as of a point of its stream.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StateAt {
    /// The stream.
    stream_id: String,
    /// The last event folded.
    version: i64,
    /// When that event was committed.
    recorded_at: DateTime<Utc>,
    /// The state, as the domain folds it.
    #[schema(value_type = Object)]
    state: Value,
}

/// Fold `events` through `A`'s `evolve`.
fn fold<A: domain::Aggregate + Serialize>(events: &[RecordedEvent]) -> ApiResult<Value> {
    let mut state = A::default();
    for event in events {
        state.evolve(&eventlog::codec::decode::<A>(event).map_err(|e| ApiError::internal(&e))?);
    }
    serde_json::to_value(&state).map_err(|e| ApiError::internal(&e))
}

/// The state of the aggregate whose streams carry `prefix`.
fn state_of(prefix: &str, events: &[RecordedEvent]) -> ApiResult<Value> {
    use domain::Aggregate;
    match prefix {
        p if p == domain::user::User::STREAM_PREFIX => fold::<domain::user::User>(events),
        p if p == domain::graph::Graph::STREAM_PREFIX => fold::<domain::graph::Graph>(events),
        p if p == domain::library::LibraryAgent::STREAM_PREFIX => fold::<domain::library::LibraryAgent>(events),
        p if p == domain::execution::GraphExecution::STREAM_PREFIX => fold::<domain::execution::GraphExecution>(events),
        p if p == domain::credit::CreditLedger::STREAM_PREFIX => fold::<domain::credit::CreditLedger>(events),
        p if p == domain::memory::AgentMemory::STREAM_PREFIX => fold::<domain::memory::AgentMemory>(events),
        p if p == domain::preset::Preset::STREAM_PREFIX => fold::<domain::preset::Preset>(events),
        p if p == domain::credential::Credential::STREAM_PREFIX => fold::<domain::credential::Credential>(events),
        p if p == domain::webhook::Webhook::STREAM_PREFIX => fold::<domain::webhook::Webhook>(events),
        p if p == domain::webhook::WebhookDelivery::STREAM_PREFIX => fold::<domain::webhook::WebhookDelivery>(events),
        p if p == domain::store::StoreListing::STREAM_PREFIX => fold::<domain::store::StoreListing>(events),
        p if p == domain::store::StoreProfile::STREAM_PREFIX => fold::<domain::store::StoreProfile>(events),
        p if p == domain::store::StoreReview::STREAM_PREFIX => fold::<domain::store::StoreReview>(events),
        p if p == domain::store::NameClaim::STREAM_PREFIX => fold::<domain::store::NameClaim>(events),
        _ => Err(ApiError::not_found("Stream not found")),
    }
}

/// An aggregate's state as of a version, or as of a time, replayed through
/// the domain from its stream (the latest state without either).
#[utoipa::path(get, path = "/api/audit/streams/{stream_id}/state", operation_id = "getAuditStreamState", tag = "audit",
    params(("stream_id" = String, Path, description = "`<category>-<uuid>`"),
        ("version" = Option<i64>, Query, minimum = 1, maximum = 2147483647, description = "Fold up to this version"),
        ("at" = Option<DateTime<Utc>>, Query, description = "Fold the events committed by then")),
    responses((status = 200, description = "The state (without who reviewed or their internal notes, for non-admins)", body = StateAt),
        (status = 404, description = "No such stream, nothing by then, or not the caller's", body = ErrorBody),
        (status = 422, description = "Too many events to fold", body = ErrorBody)))]
pub(crate) async fn state_at(
    State(state): State<AppState>,
    user: AuthUser,
    Path(stream_id): Path<String>,
    Query(q): Query<StateQuery>,
) -> ApiResult<axum::Json<StateAt>> {
    if let Some(version) = q.version {
        in_range("version", version, 1, i64::from(i32::MAX))?;
    }
    let scope = reader_scope(&state, &user, &stream_id).await?;
    // The state needs every event up to the point, whoever caused it; a
    // stream too long to fold in one request is refused, not loaded.
    let events = state.store().read_stream_page(&stream_id, 0, q.version, MAX_FOLDED + 1, None).await?;
    if events.len() as i64 > MAX_FOLDED {
        let message = format!("more than {MAX_FOLDED} events to fold: ask for an earlier version");
        return Err(ApiError::unprocessable(
            message.clone(),
            vec![FieldError::new("version", message, "too_long", serde_json::json!(q.version))],
        ));
    }
    let upto: Vec<RecordedEvent> = events
        .into_iter()
        .filter(|e| q.version.is_none_or(|v| e.version <= v) && q.at.is_none_or(|at| e.recorded_at <= at))
        .collect();
    let last = upto.last().ok_or_else(|| ApiError::not_found("Nothing recorded by then"))?;
    let (version, recorded_at) = (last.version, last.recorded_at);
    let prefix = split_stream(&stream_id).map_or("", |(p, _)| p);
    let mut folded = state_of(prefix, &upto)?;
    if scope.is_some() {
        without_reviewers(&mut folded);
    }
    Ok(axum::Json(StateAt { stream_id, version, recorded_at, state: folded }))
}
