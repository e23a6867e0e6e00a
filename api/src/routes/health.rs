use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/health", get(health))
}

/// Liveness.
#[utoipa::path(get, path = "/health", operation_id = "health", tag = "health",
    responses((status = 200, description = "Healthy")))]
pub(crate) async fn health() -> Json<Value> {
    Json(json!({"status": "healthy"}))
}
