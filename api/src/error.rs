//! The one JSON error shape, `{detail, error_type, timestamp, errors?}`, and
//! the mapping from every internal error to it. `detail` is a sentence,
//! except for a refused run, where AutoGPT's clients read a structured
//! `{type, message, node_errors}` object.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{SecondsFormat, Utc};
use commands::{CommandError, StoreError};
use domain::api_key::ApiKeyError;
use domain::execution::engine::RunError;
use domain::graph::GraphError;
use domain::library::LibraryError;
use domain::schedule::ScheduleError;
use domain::store::ListingError;
use domain::user::UserError;
use projections::{ProjectionError, QueryError};
use serde::Serialize;
use serde_json::{json, Value};

/// The error body every failure is answered with.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Human-readable explanation, or the structured reason a run was refused.
    pub detail: Detail,
    /// Machine-readable kind (`not_found`, `validation_error`, …).
    pub error_type: &'static str,
    /// When the error was produced (RFC 3339).
    pub timestamp: String,
    /// Field errors of a request that did not fit its schema (422).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// Graph validation errors per submitted node id, then field (400).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub node_errors: Option<Value>,
}

/// What `detail` holds.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Detail {
    /// A sentence.
    Text(String),
    /// Why a run was refused, per node (AutoGPT's `GraphValidationError`).
    Validation(ValidationDetail),
}

/// The structured `detail` of a refused run.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ValidationDetail {
    /// Always `validation_error`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// A sentence.
    pub message: String,
    /// Per node id, per field, what is wrong.
    #[schema(value_type = Object)]
    pub node_errors: Value,
}

/// One field-level problem of a request that did not fit its schema.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct FieldError {
    /// Dotted path of the field (`graph.nodes[0].block_id`), or `body`.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// A short machine-readable kind (`missing`, `invalid`, `json_invalid`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The offending input, when known: any JSON value.
    pub input: Value,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>, kind: &str, input: Value) -> Self {
        Self { field: field.into(), message: message.into(), kind: kind.into(), input }
    }
}

/// An error answered to the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    error_type: &'static str,
    detail: String,
    /// Rare, and boxed so the common `Result<_, ApiError>` stays small.
    extra: Option<Box<Extra>>,
}

#[derive(Debug, Default)]
struct Extra {
    errors: Option<Vec<FieldError>>,
    node_errors: Option<Value>,
    /// The detail is the structured validation object, not the sentence.
    structured: bool,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    /// An error with a status, a type and a message.
    pub fn new(status: StatusCode, error_type: &'static str, detail: impl Into<String>) -> Self {
        Self { status, error_type, detail: detail.into(), extra: None }
    }

    /// 401.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    /// 403.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// 400.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }

    /// 422 with the field errors.
    pub fn unprocessable(detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        Self {
            extra: Some(Box::new(Extra { errors: Some(errors), ..Extra::default() })),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_error", detail)
        }
    }

    /// 500, logged once here; the client learns nothing internal.
    pub fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %error, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "Internal server error")
    }

    /// The same error, answered with one more header (`Retry-After`, …).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.extra.get_or_insert_with(Box::default).headers.push((name, value));
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let extra = self.extra.map(|e| *e).unwrap_or_default();
        let detail = match (&extra.node_errors, extra.structured) {
            (Some(node_errors), true) => Detail::Validation(ValidationDetail {
                kind: "validation_error",
                message: self.detail,
                node_errors: node_errors.clone(),
            }),
            _ => Detail::Text(self.detail),
        };
        let body = ErrorBody {
            detail,
            error_type: self.error_type,
            timestamp: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            errors: extra.errors,
            node_errors: extra.node_errors,
        };
        let mut response = (self.status, Json(body)).into_response();
        response.headers_mut().extend(extra.headers);
        response
    }
}

impl From<GraphError> for ApiError {
    fn from(e: GraphError) -> Self {
        match e {
            GraphError::NotFound | GraphError::VersionNotFound(_) => Self::not_found(e.to_string()),
            GraphError::AlreadyExists => Self::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            GraphError::IdMismatch | GraphError::Invalid(_) => Self::bad_request(e.to_string()),
            GraphError::TooLarge { field, .. } => {
                Self::unprocessable(e.to_string(), vec![FieldError::new(field, e.to_string(), "too_long", Value::Null)])
            }
            GraphError::Validation { message, node_errors } => Self::node_errors(message, json!(node_errors), false),
        }
    }
}

impl ApiError {
    /// 400 naming what is wrong per node; `structured` puts it in `detail`
    /// as AutoGPT answers a refused run.
    fn node_errors(message: String, node_errors: Value, structured: bool) -> Self {
        Self {
            extra: Some(Box::new(Extra { node_errors: Some(node_errors), structured, ..Extra::default() })),
            ..Self::new(StatusCode::BAD_REQUEST, "graph_validation_error", message)
        }
    }
}

impl From<ListingError> for ApiError {
    fn from(e: ListingError) -> Self {
        match e {
            ListingError::NotFound(_) => Self::not_found(e.to_string()),
            ListingError::Invalid(_) => Self::bad_request(e.to_string()),
            ListingError::Taken(_) => Self::new(StatusCode::CONFLICT, "conflict", e.to_string()),
        }
    }
}

impl From<RunError> for ApiError {
    fn from(e: RunError) -> Self {
        let message = e.to_string();
        match e {
            RunError::Invalid(node_errors) => Self::node_errors(message, json!(node_errors), true),
            RunError::NoStartingNodes => Self::bad_request(message),
            RunError::NotEnded => Self::new(StatusCode::CONFLICT, "conflict", message),
            RunError::UnknownNode(node) => Self::unprocessable(
                message.clone(),
                vec![FieldError::new("node_id", message, "value_error", json!(node))],
            ),
        }
    }
}

impl From<UserError> for ApiError {
    fn from(e: UserError) -> Self {
        match e {
            UserError::NotFound => Self::not_found(e.to_string()),
            UserError::InvalidDailyLimit(_) => Self::unprocessable(
                e.to_string(),
                vec![FieldError::new("daily_limit", e.to_string(), "range", Value::Null)],
            ),
            UserError::InvalidEmail(_) | UserError::InvalidTimezone(_) => {
                Self::unprocessable(e.to_string(), vec![FieldError::new("body", e.to_string(), "invalid", Value::Null)])
            }
        }
    }
}

impl From<LibraryError> for ApiError {
    fn from(e: LibraryError) -> Self {
        match e {
            LibraryError::NotFound | LibraryError::VersionNotFound(_) => Self::not_found(e.to_string()),
        }
    }
}

impl From<ApiKeyError> for ApiError {
    fn from(e: ApiKeyError) -> Self {
        match e {
            ApiKeyError::NotFound => Self::not_found(e.to_string()),
            ApiKeyError::AlreadyExists => Self::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            // A date in the past fits the schema: a rule beyond it.
            ApiKeyError::InvalidExpiry => Self::bad_request(e.to_string()),
            ApiKeyError::InvalidName | ApiKeyError::InvalidDescription => {
                let field = if e == ApiKeyError::InvalidName { "name" } else { "description" };
                Self::unprocessable(e.to_string(), vec![FieldError::new(field, e.to_string(), "invalid", Value::Null)])
            }
        }
    }
}

impl From<ScheduleError> for ApiError {
    fn from(e: ScheduleError) -> Self {
        let field = |name: &str, input: &str| {
            let message = e.to_string();
            Self::unprocessable(message.clone(), vec![FieldError::new(name, message, "invalid", json!(input))])
        };
        match &e {
            ScheduleError::NotFound => Self::not_found(e.to_string()),
            ScheduleError::InvalidCron { cron, .. } | ScheduleError::NeverFires(cron) => field("cron", cron),
            ScheduleError::InvalidTimezone(tz) => field("timezone", tz),
        }
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::User(e) => e.into(),
            CommandError::Graph(e) => e.into(),
            CommandError::Library(e) => e.into(),
            CommandError::Schedule(e) => e.into(),
            CommandError::Run(e) => e.into(),
            CommandError::Listing(e) => e.into(),
            CommandError::NotFound(_) => Self::not_found(e.to_string()),
            CommandError::Quota(_) => Self::new(StatusCode::TOO_MANY_REQUESTS, "quota_exceeded", e.to_string()),
            CommandError::ApiKey(e) => e.into(),
            CommandError::Conflict => Self::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            CommandError::Store(e) => Self::internal(&e),
            // Rules the schema cannot state (a blank host, too many headers).
            CommandError::Credential(e) => Self::bad_request(e.to_string()),
            CommandError::Vault(e) => Self::internal(&e),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        CommandError::from(e).into()
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::internal(&e)
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        Self::internal(&e)
    }
}

impl From<ProjectionError> for ApiError {
    fn from(e: ProjectionError) -> Self {
        match e {
            ProjectionError::Unknown(_) => Self::not_found(e.to_string()),
            ProjectionError::AlreadyRebuilding(_) => Self::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            ProjectionError::NotRebuildable(_) => Self::bad_request(e.to_string()),
            other => Self::internal(&other),
        }
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
