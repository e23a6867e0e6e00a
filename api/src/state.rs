//! Shared application state and the read-your-writes helpers.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use commands::services::Commands;
use commands::{CommandContext, GlobalPosition, PgEventStore};
use projections::Projections;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::auth::Verifier;
use crate::error::ApiError;

/// Header carrying the global position of a command's last event.
pub const EVENT_POSITION_HEADER: &str = "x-event-position";

/// Everything a handler needs.
#[derive(Clone)]
pub struct AppState {
    /// The write side.
    pub commands: Arc<Commands<PgEventStore>>,
    /// The read side.
    pub projections: Projections,
    /// Token verification.
    pub auth: Arc<Verifier>,
    /// How long a command waits for its projections.
    pub consistency_timeout: Duration,
}

impl AppState {
    /// The event store.
    pub fn store(&self) -> &PgEventStore {
        self.commands.store()
    }

    /// The database holding the read models.
    pub fn pool(&self) -> &sqlx::PgPool {
        self.store().pool()
    }

    /// Wait (bounded) until the named projections have applied `position`,
    /// so the response and the client's next query see the write. When they
    /// do not, the write stands but its effects cannot be shown yet: 503.
    pub async fn settle(&self, position: GlobalPosition, names: &[&str]) -> Result<(), ApiError> {
        if self.projections.wait_for(names, position, self.consistency_timeout).await {
            return Ok(());
        }
        tracing::warn!(?position, ?names, "projections did not catch up within the consistency timeout");
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "projection_lag",
            format!(
                "The change was saved at position {}, but the read models have not caught up yet; read again shortly",
                position.position
            ),
        ))
    }
}

/// An authenticated caller with the context its commands carry.
pub struct Caller {
    /// Who.
    pub user: AuthUser,
    /// Correlation, request id, idempotency key.
    pub ctx: CommandContext,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let ctx = CommandContext {
            user_id: Some(user.user_id),
            correlation_id: Uuid::new_v4(),
            request_id: header("x-request-id"),
            idempotency_key: header("idempotency-key").filter(|k| !k.is_empty() && k.len() <= 255),
        };
        Ok(Self { user, ctx })
    }
}

/// A response to a command: the body plus the `X-Event-Position` header.
pub struct Committed<T>(pub GlobalPosition, pub T);

impl<T: IntoResponse> IntoResponse for Committed<T> {
    fn into_response(self) -> Response {
        let mut response = self.1.into_response();
        if let Ok(value) = HeaderValue::from_str(&self.0.position.to_string()) {
            response.headers_mut().insert(EVENT_POSITION_HEADER, value);
        }
        response
    }
}
