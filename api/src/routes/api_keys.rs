//! A user's API keys: create (the secret shown once), list, read, revoke,
//! suspend and re-scope. None of these routes is replayed by the
//! idempotency layer: its record keeps the response, and a create's
//! response holds the secret, which is never stored.

use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::Router;
use commands::services::{ApiKeyChange, NewApiKey};
use commands::{CommandContext, Outcome};
use domain::api_key::{ApiKey, ApiKeyPermission};
use projections::api_keys::{self, ApiKeyInfo};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::parse_id;
use crate::consistency::{reads, Committed};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Json;
use crate::keys;
use crate::state::{AppState, Caller};

pub(super) fn router(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .route("/api-keys", get(list_api_keys).post(create_api_key))
        .route("/api-keys/{key_id}", get(get_api_key).delete(revoke_api_key))
        .route("/api-keys/{key_id}/suspend", post(suspend_api_key))
        .route("/api-keys/{key_id}/permissions", put(update_permissions));
    reads(routes, state, &[api_keys::NAME])
}

/// Body of `POST /api/api-keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = CreateAPIKeyRequest)]
pub(crate) struct CreateApiKeyRequest {
    /// Display name, holding more than whitespace.
    // Whitespace spelled out as Rust's White_Space set (what `trim` uses),
    // as `openapi::EMAIL_PATTERN` does: `\s` differs between dialects.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"[^\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    name: String,
    /// What the key grants.
    permissions: Vec<ApiKeyPermission>,
    /// Optional description.
    #[serde(default)]
    #[schema(max_length = 2000)]
    description: Option<String>,
    /// When the key stops working (RFC 3339, in the future); never when
    /// absent. Read as text: a string that is no such time is a 400, as a
    /// time in the past is.
    #[serde(default)]
    #[schema(format = DateTime)]
    expires_at: Option<String>,
}

/// Answer of `POST /api/api-keys`: the key, and its secret, shown this once.
/// `Debug` leaves the secret out.
#[derive(Serialize, ToSchema)]
#[schema(as = CreateAPIKeyResponse)]
pub(crate) struct CreateApiKeyResponse {
    /// The key as listed.
    api_key: ApiKeyInfo,
    /// The secret: send it as `X-API-Key`. It cannot be shown again.
    plain_text_key: String,
}

impl std::fmt::Debug for CreateApiKeyResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateApiKeyResponse").field("api_key", &self.api_key).finish_non_exhaustive()
    }
}

/// Body of `PUT /api/api-keys/{key_id}/permissions`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = UpdatePermissionsRequest)]
pub(crate) struct UpdatePermissionsRequest {
    /// What the key grants from now on.
    permissions: Vec<ApiKeyPermission>,
}

/// A key as served right after a command: from what the command decided,
/// with its recorded use. The command has committed by then, so a failed
/// read of the use leaves it out (logged) rather than answering an error.
async fn info_of(state: &AppState, key: &ApiKey) -> ApiResult<ApiKeyInfo> {
    let last_used = match key.id {
        Some(id) => api_keys::last_used(state.pool(), id).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, key_id = %id, "the last use of an API key could not be read");
            None
        }),
        None => None,
    };
    ApiKeyInfo::from_state(key, last_used).ok_or_else(|| ApiError::not_found("API key not found"))
}

/// Make an API key; its secret is in this answer only.
#[utoipa::path(post, path = "/api/api-keys", operation_id = "postV1Create new api key", tag = "api-keys",
    request_body = CreateApiKeyRequest,
    responses((status = 200, description = "The key and its secret (shown once)", body = CreateApiKeyResponse),
        (status = 400, description = "An expiry that is no time in the future", body = ErrorBody),
        (status = 422, description = "Bad name, description or permission", body = ErrorBody),
        (status = 429, description = "Quota reached: the caller holds as many as allowed; delete some first", body = ErrorBody)))]
pub(crate) async fn create_api_key(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<CreateApiKeyRequest>,
) -> ApiResult<Committed<axum::Json<CreateApiKeyResponse>>> {
    let (plain, secret) = tokio::task::spawn_blocking(keys::generate)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| ApiError::internal(&e))?;
    let key = NewApiKey {
        name: body.name,
        description: body.description,
        scopes: body.permissions,
        secret,
        expires_at: match body.expires_at.as_deref() {
            None => None,
            Some(text) => Some(
                chrono::DateTime::parse_from_rfc3339(text)
                    .map_err(|_| ApiError::bad_request("expires_at must be an RFC 3339 time"))?
                    .with_timezone(&chrono::Utc),
            ),
        },
    };
    let (outcome, created) = state.commands.create_api_key(&caller.ctx, caller.user.user_id, key).await?;
    // From the command's own state, read from nowhere: after the commit this
    // answer is the only copy of the secret, and a key made a moment ago has
    // not been used.
    let api_key =
        ApiKeyInfo::from_state(&created, None).ok_or_else(|| ApiError::internal(&"created key has no state"))?;
    let body = CreateApiKeyResponse { api_key, plain_text_key: plain.into_inner() };
    Ok(state.answer(&outcome, axum::Json(body)).await)
}

/// The caller's keys, newest first, without their secrets.
#[utoipa::path(get, path = "/api/api-keys", operation_id = "getV1List user api keys", tag = "api-keys",
    responses((status = 200, description = "The keys", body = Vec<ApiKeyInfo>)))]
pub(crate) async fn list_api_keys(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<Vec<ApiKeyInfo>>> {
    Ok(axum::Json(api_keys::list_keys(state.pool(), caller.user.user_id).await?))
}

/// One of the caller's keys, without its secret.
#[utoipa::path(get, path = "/api/api-keys/{key_id}", operation_id = "getV1Get specific api key", tag = "api-keys",
    params(("key_id" = String, Path)),
    responses((status = 200, description = "The key", body = ApiKeyInfo), (status = 404, description = "Not found", body = ErrorBody)))]
pub(crate) async fn get_api_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(key_id): Path<String>,
) -> ApiResult<axum::Json<ApiKeyInfo>> {
    let id = parse_id(&key_id, "API key")?;
    let key = api_keys::get_key(state.pool(), caller.user.user_id, id).await?;
    key.map(axum::Json).ok_or_else(|| ApiError::not_found("API key not found"))
}

async fn change(
    state: &AppState,
    caller: &Caller,
    key_id: &str,
    change: ApiKeyChange,
) -> ApiResult<Committed<axum::Json<ApiKeyInfo>>> {
    let id: Uuid = parse_id(key_id, "API key")?;
    // These changes are idempotent as decided (suspending twice appends
    // once), and no idempotency record scopes their key to the route here:
    // event ids derived from it could make a later, different change on
    // the same key look like a duplicate and be dropped.
    let ctx = CommandContext { idempotency_key: None, ..caller.ctx.clone() };
    let (outcome, key): (Outcome, ApiKey) =
        state.commands.change_api_key(&ctx, caller.user.user_id, id, change).await?;
    let info = info_of(state, &key).await?;
    Ok(state.answer(&outcome, axum::Json(info)).await)
}

/// Revoke one of the caller's keys: it is refused from the next request on,
/// for good, and gone from the listing (answered here one last time).
#[utoipa::path(delete, path = "/api/api-keys/{key_id}", operation_id = "deleteV1Revoke api key", tag = "api-keys",
    params(("key_id" = String, Path)),
    responses((status = 200, description = "The key, revoked", body = ApiKeyInfo), (status = 404, description = "Not found", body = ErrorBody)))]
pub(crate) async fn revoke_api_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(key_id): Path<String>,
) -> ApiResult<Committed<axum::Json<ApiKeyInfo>>> {
    change(&state, &caller, &key_id, ApiKeyChange::Revoke).await
}

/// Suspend one of the caller's keys: it is refused from the next request on.
#[utoipa::path(post, path = "/api/api-keys/{key_id}/suspend", operation_id = "postV1Suspend api key", tag = "api-keys",
    params(("key_id" = String, Path)),
    responses((status = 200, description = "The key, suspended", body = ApiKeyInfo),
        (status = 404, description = "Not found (or revoked)", body = ErrorBody)))]
pub(crate) async fn suspend_api_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(key_id): Path<String>,
) -> ApiResult<Committed<axum::Json<ApiKeyInfo>>> {
    change(&state, &caller, &key_id, ApiKeyChange::Suspend).await
}

/// Replace the permissions one of the caller's keys grants.
#[utoipa::path(put, path = "/api/api-keys/{key_id}/permissions", operation_id = "putV1Update key permissions", tag = "api-keys",
    params(("key_id" = String, Path)), request_body = UpdatePermissionsRequest,
    responses((status = 200, description = "The key, re-scoped", body = ApiKeyInfo),
        (status = 404, description = "Not found (or revoked)", body = ErrorBody)))]
pub(crate) async fn update_permissions(
    State(state): State<AppState>,
    caller: Caller,
    Path(key_id): Path<String>,
    Json(body): Json<UpdatePermissionsRequest>,
) -> ApiResult<Committed<axum::Json<ApiKeyInfo>>> {
    change(&state, &caller, &key_id, ApiKeyChange::SetPermissions(body.permissions)).await
}
