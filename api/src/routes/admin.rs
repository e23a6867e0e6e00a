use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use projections::status::{report, StatusReport};

use crate::auth::AdminUser;
use crate::error::ApiResult;
use crate::error::ErrorBody;
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/admin/projections", get(list_projections))
}

/// The log's head, what its horizon holds back (and the transaction holding
/// it), and each projector's checkpoint, lag and last error.
#[utoipa::path(get, path = "/api/admin/projections", operation_id = "getAdminProjections", tag = "admin",
    responses((status = 200, description = "Projection status", body = StatusReport), (status = 403, description = "Admin access required", body = ErrorBody)))]
pub(crate) async fn list_projections(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> ApiResult<Json<StatusReport>> {
    Ok(Json(report(state.store()).await?))
}
