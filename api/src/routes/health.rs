use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/health", get(health))
}

/// Answer of `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// Always `healthy` when the process answers.
    status: &'static str,
}

/// Liveness.
#[utoipa::path(get, path = "/health", operation_id = "health", tag = "health",
    responses((status = 200, description = "Healthy", body = Health)))]
pub(crate) async fn health() -> Json<Health> {
    Json(Health { status: "healthy" })
}
