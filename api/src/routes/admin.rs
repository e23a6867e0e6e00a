use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use projections::status::{statuses, ProjectionStatus};

use crate::auth::AdminUser;
use crate::error::ApiResult;
use crate::error::ErrorBody;
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/admin/projections", get(list_projections))
}

/// Each projector's checkpoint, the log head, lag and last error.
#[utoipa::path(get, path = "/api/admin/projections", operation_id = "getAdminProjections", tag = "admin",
    responses((status = 200, description = "Projection status"), (status = 403, description = "Admin access required", body = ErrorBody)))]
pub(crate) async fn list_projections(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> ApiResult<Json<Vec<ProjectionStatus>>> {
    Ok(Json(statuses(state.store()).await?))
}
