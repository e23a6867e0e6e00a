use std::sync::OnceLock;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

use crate::auth::AuthUser;
use crate::error::ErrorBody;
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/blocks", get(list_blocks))
}

/// The static catalog, rendered once.
fn rendered() -> &'static Value {
    static BLOCKS: OnceLock<Value> = OnceLock::new();
    BLOCKS.get_or_init(|| Value::Array(domain::blocks::catalog().iter().map(|b| b.to_api_json()).collect()))
}

/// List available blocks.
#[utoipa::path(get, path = "/api/blocks", operation_id = "getV1List available blocks", tag = "blocks",
    responses((status = 200, description = "All enabled blocks: id, name, schemas, costs, …", body = Vec<Object>), (status = 401, description = "Not authenticated", body = ErrorBody)))]
pub(crate) async fn list_blocks(_user: AuthUser) -> Json<&'static Value> {
    Json(rendered())
}
