//! Human reviews (`/api/review`): what waits for the caller's decision,
//! and the decisions, which let paused runs go on.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Router;
use commands::services::ReviewDecision;
use projections::reviews::{self, ReviewView};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{parse_id, PageQuery};
use crate::consistency::{reads, Committed};
use crate::error::{ApiError, ApiResult, ErrorBody, FieldError};
use crate::extract::{Json, Query};
use crate::state::{AppState, Caller};

/// Most decisions in one request.
const MAX_REVIEWS: usize = 100;
/// Longest reviewer message.
const MAX_MESSAGE_CHARS: usize = 2000;

pub(super) fn router(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .route("/review/pending", get(pending_reviews))
        .route("/review/execution/{graph_exec_id}", get(execution_reviews))
        .route("/review/action", post(review_action));
    reads(routes, state, &[projections::executions::NAME])
}

/// The caller's waiting reviews, newest first.
#[utoipa::path(get, path = "/api/review/pending", operation_id = "getV2Get pending reviews", tag = "review",
    params(("page" = Option<i64>, Query, minimum = 1, maximum = 1000),
        ("page_size" = Option<i64>, Query, minimum = 1, maximum = 100)),
    responses((status = 200, description = "Waiting reviews", body = Vec<ReviewView>),
        (status = 422, description = "Bad page", body = ErrorBody)))]
pub(crate) async fn pending_reviews(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<PageQuery<25>>,
) -> ApiResult<axum::Json<Vec<ReviewView>>> {
    let page = page.checked()?;
    Ok(axum::Json(reviews::pending(state.pool(), caller.user.user_id, page.page, page.page_size).await?))
}

/// The waiting reviews of one of the caller's runs.
#[utoipa::path(get, path = "/api/review/execution/{graph_exec_id}", operation_id = "getV2Get pending reviews for execution",
    tag = "review", params(("graph_exec_id" = String, Path)),
    responses((status = 200, description = "Waiting reviews", body = Vec<ReviewView>),
        (status = 404, description = "No such run", body = ErrorBody)))]
pub(crate) async fn execution_reviews(
    State(state): State<AppState>,
    caller: Caller,
    Path(graph_exec_id): Path<String>,
) -> ApiResult<axum::Json<Vec<ReviewView>>> {
    let id = parse_id(&graph_exec_id, "Graph execution")?;
    let user = caller.user.user_id;
    if projections::execution_views::get_execution(state.pool(), user, id).await?.is_none() {
        return Err(ApiError::not_found("Graph execution not found"));
    }
    Ok(axum::Json(reviews::pending_for_run(state.pool(), user, id).await?))
}

/// One decision (`ReviewItem`).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ReviewItem)]
pub(crate) struct ReviewItem {
    node_exec_id: String,
    approved: bool,
    #[serde(default)]
    #[schema(max_length = 2000)]
    message: Option<String>,
    /// The edited data (ignored unless approved and editable).
    #[serde(default)]
    #[schema(value_type = serde_json::Value)]
    reviewed_data: Option<Value>,
    /// Accepted for compatibility; every review here asks again.
    #[serde(default)]
    #[expect(dead_code, reason = "AutoGPT's auto-approval of a node's later reviews is not served")]
    auto_approve_future: bool,
}

/// Body of `POST /api/review/action` (`ReviewRequest`).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ReviewRequest)]
pub(crate) struct ReviewRequest {
    #[schema(min_items = 1, max_items = 100)]
    reviews: Vec<ReviewItem>,
}

/// Answer of the review action (`ReviewResponse`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ReviewResponse)]
pub(crate) struct ReviewResponse {
    approved_count: usize,
    rejected_count: usize,
    failed_count: usize,
    error: Option<String>,
}

fn invalid(field: &str, message: String) -> ApiError {
    ApiError::unprocessable(message.clone(), vec![FieldError::new(field, message, "value_error", Value::Null)])
}

/// Decide reviews: each run's decisions are taken together (all or none),
/// and a run with no review left goes on.
#[utoipa::path(post, path = "/api/review/action", operation_id = "postV2Process review action", tag = "review",
    request_body = ReviewRequest,
    responses((status = 200, description = "What was decided", body = ReviewResponse),
        (status = 404, description = "A review that is not the caller's or not waiting", body = ErrorBody),
        (status = 422, description = "Too many reviews or too long a message", body = ErrorBody)))]
pub(crate) async fn review_action(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<ReviewRequest>,
) -> ApiResult<Committed<axum::Json<ReviewResponse>>> {
    if body.reviews.is_empty() || body.reviews.len() > MAX_REVIEWS {
        return Err(invalid("reviews", format!("between 1 and {MAX_REVIEWS} reviews")));
    }
    let user = caller.user.user_id;
    let mut by_run: BTreeMap<Uuid, Vec<ReviewDecision>> = BTreeMap::new();
    for item in body.reviews {
        super::at_most_chars("message", item.message.as_deref().unwrap_or_default(), MAX_MESSAGE_CHARS)?;
        let node_exec_id = parse_id(&item.node_exec_id, "Review")?;
        let run = reviews::run_of(state.pool(), user, node_exec_id).await?;
        let run = run.ok_or_else(|| ApiError::not_found(format!("Review {node_exec_id} not found")))?;
        by_run.entry(run).or_default().push(ReviewDecision {
            node_exec_id,
            approved: item.approved,
            message: item.message,
            reviewed_data: item.reviewed_data,
        });
    }
    let mut answer = ReviewResponse { approved_count: 0, rejected_count: 0, failed_count: 0, error: None };
    let mut last = None;
    for (run, decisions) in &by_run {
        match state.commands.review_run(&caller.ctx, user, *run, decisions).await {
            Ok(outcome) => {
                answer.approved_count += decisions.iter().filter(|d| d.approved).count();
                answer.rejected_count += decisions.iter().filter(|d| !d.approved).count();
                last = Some(outcome);
            }
            // The first run's refusal is the answer when nothing was
            // decided; after a decision, the others are counted as failed.
            Err(e) if last.is_none() && by_run.len() == 1 => return Err(e.into()),
            Err(e) => {
                answer.failed_count += decisions.len();
                answer.error = Some(e.to_string());
            }
        }
    }
    match last {
        Some(outcome) => Ok(state.answer(&outcome, axum::Json(answer)).await),
        None => Err(ApiError::not_found(answer.error.unwrap_or_else(|| "Review not found".into()))),
    }
}
