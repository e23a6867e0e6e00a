//! Auditors read history: one stream's events with their metadata (admins,
//! or the user who created the stream), and the global log in order,
//! filtered by event type, category, acting user and time (admins).

use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use eventlog::audit::LogFilter;
use eventlog::{ConsistencyToken, EventMetadata, EventStore, GlobalPosition, RecordedEvent};
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
    Router::new().route("/audit/streams/{stream_id}", get(read_stream)).route("/audit/events", get(read_log))
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
        Self {
            token: ConsistencyToken(event.global).to_string(),
            stream_id: event.stream_id,
            version: event.version,
            event_id: event.event_id,
            event_type: event.event_type,
            schema_version: event.schema_version,
            data: serde_json::from_str(event.data.get()).unwrap_or(Value::Null),
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

/// Whether `user` may read `stream`: the user's own stream, or one whose
/// first event the user caused.
fn owns(user: &AuthUser, stream_id: &str, first: Option<&RecordedEvent>) -> bool {
    let own_id = stream_id.rsplit_once('-').and_then(|(_, id)| Uuid::parse_str(id).ok());
    own_id == Some(user.user_id) || first.is_some_and(|e| e.metadata.user_id == Some(user.user_id))
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
    let store = state.store();
    let events = store.read_stream(&stream_id, q.from_version).await?;
    let first = if q.from_version == 0 {
        events.first().cloned()
    } else {
        store.read_stream(&stream_id, 0).await?.into_iter().next()
    };
    if first.is_none() || !(user.is_admin || owns(&user, &stream_id, first.as_ref())) {
        return Err(ApiError::not_found("Stream not found"));
    }
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
    params(("after" = Option<String>, Query, description = "A token: events after it"),
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
        None | Some("") => GlobalPosition::START,
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
