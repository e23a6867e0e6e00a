//! Credits: the balance, the history, and admins adding credits.

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use domain::credit::TransactionType;
use projections::credits::{self, TransactionHistory, UserHistoryResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{default_page, in_range};
use crate::consistency::{reads, Committed};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Query};
use crate::state::{AppState, Caller};

pub(super) fn router(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .route("/credits", get(get_credits))
        .route("/credits/transactions", get(get_transactions))
        .route("/credits/admin/add_credits", post(add_credits))
        .route("/credits/admin/users_history", get(users_history));
    reads(routes, state, &[credits::NAME])
}

/// Answer of `GET /api/credits`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreditsResponse {
    /// Credits left (1 credit = $0.01).
    credits: i64,
}

/// The caller's balance.
#[utoipa::path(get, path = "/api/credits", operation_id = "getV1Get user credits", tag = "credits",
    responses((status = 200, description = "The balance", body = CreditsResponse)))]
pub(crate) async fn get_credits(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<CreditsResponse>> {
    let starting = state.commands.credit_rules().starting_grant;
    Ok(axum::Json(CreditsResponse { credits: credits::balance(state.pool(), caller.user.user_id, starting).await? }))
}

fn default_limit() -> i64 {
    100
}

/// Query of `GET /api/credits/transactions`.
#[derive(Debug, Deserialize)]
pub(crate) struct HistoryQuery {
    #[serde(default)]
    transaction_time: Option<DateTime<Utc>>,
    #[serde(default)]
    transaction_type: Option<TransactionType>,
    #[serde(default = "default_limit")]
    transaction_count_limit: i64,
}

/// The caller's history, newest first; pass `next_transaction_time` back as
/// `transaction_time` for the entries before.
#[utoipa::path(get, path = "/api/credits/transactions", operation_id = "getV1Get credit history", tag = "credits",
    params(("transaction_time" = Option<DateTime<Utc>>, Query), ("transaction_type" = Option<TransactionType>, Query),
        ("transaction_count_limit" = Option<i64>, Query, minimum = 1, maximum = 1000)),
    responses((status = 200, description = "A page of the history", body = TransactionHistory)))]
pub(crate) async fn get_transactions(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<axum::Json<TransactionHistory>> {
    in_range("transaction_count_limit", q.transaction_count_limit, 1, 1000)?;
    let page = credits::history(
        state.pool(),
        caller.user.user_id,
        q.transaction_time,
        q.transaction_type,
        q.transaction_count_limit,
    );
    Ok(axum::Json(page.await?))
}

/// Body of `POST /api/credits/admin/add_credits`.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct AddCredits {
    /// Whose credits.
    user_id: Uuid,
    /// How many (negative: taken away).
    #[schema(minimum = -1_000_000_000, maximum = 1_000_000_000)]
    amount: i64,
    /// Why.
    comments: String,
}

/// Answer of `POST /api/credits/admin/add_credits`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AddUserCreditsResponse {
    /// The user's balance now.
    new_balance: i64,
    /// The transaction's key.
    transaction_key: String,
}

/// An admin adds credits to a user (or takes them away).
#[utoipa::path(post, path = "/api/credits/admin/add_credits", operation_id = "postV2Add credits to user", tag = "admin",
    request_body = AddCredits,
    responses((status = 200, description = "Added", body = AddUserCreditsResponse),
        (status = 403, description = "Admin access required", body = crate::error::ErrorBody)))]
pub(crate) async fn add_credits(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<AddCredits>,
) -> ApiResult<Committed<axum::Json<AddUserCreditsResponse>>> {
    if !caller.user.is_admin {
        return Err(ApiError::forbidden("Admin access required"));
    }
    in_range("amount", body.amount, -1_000_000_000, 1_000_000_000)?;
    let (outcome, new_balance, transaction_key) = state
        .commands
        .add_credits(&caller.ctx, caller.user.token_user_id, body.user_id, body.amount, body.comments)
        .await?;
    Ok(state.answer(&outcome, axum::Json(AddUserCreditsResponse { new_balance, transaction_key })).await)
}

fn default_page_size() -> i64 {
    20
}

/// Query of `GET /api/credits/admin/users_history`.
#[derive(Debug, Deserialize)]
pub(crate) struct UsersHistoryQuery {
    #[serde(default)]
    search: Option<String>,
    #[serde(default = "default_page")]
    page: i64,
    #[serde(default = "default_page_size")]
    page_size: i64,
    #[serde(default)]
    transaction_filter: Option<TransactionType>,
}

/// Everyone's credit history, for admins.
#[utoipa::path(get, path = "/api/credits/admin/users_history", operation_id = "getV2Get all users history", tag = "admin",
    params(("search" = Option<String>, Query), ("page" = Option<i64>, Query, minimum = 1, maximum = 1000),
        ("page_size" = Option<i64>, Query, minimum = 1, maximum = 1000),
        ("transaction_filter" = Option<TransactionType>, Query)),
    responses((status = 200, description = "A page of the history", body = UserHistoryResponse),
        (status = 403, description = "Admin access required", body = crate::error::ErrorBody)))]
pub(crate) async fn users_history(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<UsersHistoryQuery>,
) -> ApiResult<axum::Json<UserHistoryResponse>> {
    if !caller.user.is_admin {
        return Err(ApiError::forbidden("Admin access required"));
    }
    in_range("page", q.page, 1, super::MAX_PAGE)?;
    in_range("page_size", q.page_size, 1, 1000)?;
    let page = credits::users_history(state.pool(), q.search.as_deref(), q.transaction_filter, q.page, q.page_size);
    Ok(axum::Json(page.await?))
}
