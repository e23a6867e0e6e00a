//! Shared application state and the caller of a request.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use commands::services::Commands;
use commands::{CommandContext, PgEventStore};
use projections::Projections;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::auth::Verifier;
use crate::error::ApiError;

/// Everything a handler needs.
#[derive(Clone)]
pub struct AppState {
    /// The write side.
    pub commands: Arc<Commands<PgEventStore>>,
    /// The read side.
    pub projections: Projections,
    /// This instance's executor.
    pub executor: executor::Executor,
    /// This instance's scheduler of cron schedules.
    pub scheduler: executor::Scheduler,
    /// Where live pushes travel to WebSocket clients.
    pub bus: crate::live::Bus,
    /// Token verification.
    pub auth: Arc<Verifier>,
    /// How long a command waits for its projections.
    pub consistency_timeout: Duration,
    /// The waits each caller may ask for at once.
    pub waits: crate::waits::Waits,
    /// API keys verified by this process, and when their use was recorded.
    pub keys: Arc<crate::keys::KeyAuth>,
    /// The platform has its own key for the LLM blocks (`OPENAI_API_KEY`).
    pub system_llm_key: bool,
    /// Where uploaded files are kept, and how large one may be.
    pub files: Arc<crate::routes::FileStore>,
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
}

impl FromRef<AppState> for Arc<Verifier> {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
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
            // Ids derive from the key within its route, never from the key
            // alone: one key reused on another route or path id (refused
            // while its record is kept) must not land on the same ids.
            idempotency_key: header("idempotency-key")
                .filter(|k| !k.is_empty() && k.len() <= 255)
                .map(|key| format!("{}\n{key}", crate::idempotency::route_of(parts))),
        };
        Ok(Self { user, ctx })
    }
}
