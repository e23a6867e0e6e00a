//! Creators submitting to the store and admins reviewing: submissions,
//! profiles, reviews of listed agents, and the admin listing pages.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use commands::services::Submission;
use commands::Outcome;
use domain::store::{ProfileDetails, SubmissionDetails, SubmissionStatus};
use projections::store::{self, StoreSubmission};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::store::{graph_file, published_graph};
use super::{default_page, parse_id, PageQuery};
use crate::auth::AdminUser;
use crate::consistency::{reads, Committed};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Query};
use crate::state::{AppState, Caller};

pub(super) fn router(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .route("/store/submissions", get(list_submissions).post(create_submission))
        .route("/store/submissions/{store_listing_version_id}", put(edit_submission).delete(delete_submission))
        .route("/store/profile", get(get_profile).post(update_profile))
        .route("/store/myagents", get(my_agents))
        .route("/store/agents/{username}/{agent_name}/review", post(review_agent))
        .route("/store/admin/listings", get(admin_listings))
        .route("/store/admin/submissions/{store_listing_version_id}/review", post(review_submission))
        .route("/store/admin/submissions/download/{store_listing_version_id}", get(admin_download));
    reads(routes, state, &[store::NAME, projections::graphs::NAME])
}

fn default_page_size() -> i64 {
    20
}

/// Answer a command on a version with the version as the store now has it.
async fn answer_submission(
    state: &AppState,
    outcome: &Outcome,
    version_id: Uuid,
    for_admin: bool,
) -> Committed<axum::Json<StoreSubmission>> {
    let read = async { Ok(store::submission(state.pool(), version_id, for_admin).await?.map(axum::Json)) };
    state.answer_read(outcome, read, async { Ok(None) }).await
}

/// The caller's submissions, newest first.
#[utoipa::path(get, path = "/api/store/submissions", operation_id = "getV2List my submissions", tag = "store",
    params(("page" = Option<i64>, Query, minimum = 1, maximum = 1000), ("page_size" = Option<i64>, Query, minimum = 1, maximum = 100)),
    responses((status = 200, description = "One page", body = store::StoreSubmissionsResponse),
        (status = 422, description = "Bad query", body = ErrorBody)))]
pub(crate) async fn list_submissions(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<PageQuery<20>>,
) -> ApiResult<axum::Json<store::StoreSubmissionsResponse>> {
    let q = q.checked()?;
    Ok(axum::Json(store::submissions(state.pool(), caller.user.user_id, q.page, q.page_size).await?))
}

/// Body of `POST /api/store/submissions`.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct StoreSubmissionRequest {
    /// The graph.
    agent_id: String,
    /// Its version.
    #[schema(minimum = 1, maximum = 2147483647)]
    agent_version: i32,
    /// URL name of the listing.
    #[schema(pattern = "^[a-z0-9_-]{1,64}$")]
    slug: String,
    #[serde(flatten)]
    details: SubmissionDetails,
}

/// Submit a version of one of the caller's graphs for review (PENDING).
#[utoipa::path(post, path = "/api/store/submissions", operation_id = "postV2Create store submission", tag = "store",
    request_body = StoreSubmissionRequest,
    responses((status = 200, description = "The submission", body = StoreSubmission),
        (status = 400, description = "Breaks a store rule", body = ErrorBody),
        (status = 404, description = "No such graph or version", body = ErrorBody),
        (status = 409, description = "The slug is taken", body = ErrorBody)))]
pub(crate) async fn create_submission(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<StoreSubmissionRequest>,
) -> ApiResult<Committed<axum::Json<StoreSubmission>>> {
    let graph_id = parse_id(&body.agent_id, "Graph")?;
    let submission = Submission { graph_id, graph_version: body.agent_version, slug: body.slug, details: body.details };
    let (outcome, submitted) = state.commands.submit_to_store(&caller.ctx, caller.user.user_id, submission).await?;
    Ok(answer_submission(&state, &outcome, submitted.version_id, false).await)
}

/// The listing of a version the caller may act on as its creator.
async fn own_version(state: &AppState, caller: &Caller, raw: &str) -> ApiResult<(Uuid, Uuid)> {
    let version_id = parse_id(raw, "Submission")?;
    match store::version_ref(state.pool(), version_id).await? {
        Some(v) if v.owner_id == caller.user.user_id => Ok((v.listing_id, version_id)),
        _ => Err(ApiError::not_found("Submission not found")),
    }
}

/// Edit a pending submission.
#[utoipa::path(put, path = "/api/store/submissions/{store_listing_version_id}", operation_id = "putV2Edit store submission", tag = "store",
    params(("store_listing_version_id" = String, Path)),
    request_body = SubmissionDetails,
    responses((status = 200, description = "The submission", body = StoreSubmission),
        (status = 400, description = "Not pending", body = ErrorBody),
        (status = 404, description = "Not the caller's", body = ErrorBody)))]
pub(crate) async fn edit_submission(
    State(state): State<AppState>,
    caller: Caller,
    Path(version_id): Path<String>,
    Json(details): Json<SubmissionDetails>,
) -> ApiResult<Committed<axum::Json<StoreSubmission>>> {
    let (listing_id, version_id) = own_version(&state, &caller, &version_id).await?;
    let outcome =
        state.commands.edit_submission(&caller.ctx, caller.user.user_id, listing_id, version_id, details).await?;
    Ok(answer_submission(&state, &outcome, version_id, false).await)
}

/// Withdraw a submission that is not approved (the listing goes with its
/// last version).
#[utoipa::path(delete, path = "/api/store/submissions/{store_listing_version_id}", operation_id = "deleteV2Delete store submission", tag = "store",
    params(("store_listing_version_id" = String, Path, description = "The submission (version) to withdraw")),
    responses((status = 200, description = "Withdrawn", body = bool),
        (status = 400, description = "Approved submissions stay", body = ErrorBody),
        (status = 404, description = "Not the caller's", body = ErrorBody)))]
pub(crate) async fn delete_submission(
    State(state): State<AppState>,
    caller: Caller,
    Path(version_id): Path<String>,
) -> ApiResult<Committed<axum::Json<bool>>> {
    let (listing_id, version_id) = own_version(&state, &caller, &version_id).await?;
    let outcome = state.commands.delete_submission(&caller.ctx, caller.user.user_id, listing_id, version_id).await?;
    Ok(state.answer(&outcome, axum::Json(true)).await)
}

/// The caller's creator profile.
#[utoipa::path(get, path = "/api/store/profile", operation_id = "getV2Get user profile", tag = "store",
    responses((status = 200, description = "The profile", body = store::ProfileView),
        (status = 404, description = "No profile yet", body = ErrorBody)))]
pub(crate) async fn get_profile(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<store::ProfileView>> {
    let found = store::profile(state.pool(), caller.user.user_id).await?;
    found.map(axum::Json).ok_or_else(|| ApiError::not_found("Profile not found"))
}

/// Create or change the caller's creator profile.
#[utoipa::path(post, path = "/api/store/profile", operation_id = "postV2Update user profile", tag = "store",
    request_body = ProfileDetails,
    responses((status = 200, description = "The creator as the store shows it", body = store::CreatorDetails),
        (status = 400, description = "Bad username", body = ErrorBody),
        (status = 409, description = "The username is taken", body = ErrorBody)))]
pub(crate) async fn update_profile(
    State(state): State<AppState>,
    caller: Caller,
    Json(details): Json<ProfileDetails>,
) -> ApiResult<Committed<axum::Json<store::CreatorDetails>>> {
    let (outcome, stored) = state.commands.update_profile(&caller.ctx, caller.user.user_id, details).await?;
    let read = async { Ok(store::creator(state.pool(), &stored.username).await?.map(axum::Json)) };
    let from_log = async {
        Ok(Some(axum::Json(store::CreatorDetails {
            name: stored.name.clone(),
            username: stored.username.clone(),
            description: stored.description.clone(),
            links: stored.links.clone(),
            avatar_url: stored.avatar_url.clone(),
            agent_rating: 0.0,
            agent_runs: 0,
            top_categories: vec![],
        })))
    };
    Ok(state.answer_read(&outcome, read, from_log).await)
}

/// The caller's graphs that can be submitted.
#[utoipa::path(get, path = "/api/store/myagents", operation_id = "getV2Get my agents", tag = "store",
    params(("page" = Option<i64>, Query, minimum = 1, maximum = 1000), ("page_size" = Option<i64>, Query, minimum = 1, maximum = 100)),
    responses((status = 200, description = "One page", body = store::MyAgentsResponse),
        (status = 422, description = "Bad query", body = ErrorBody)))]
pub(crate) async fn my_agents(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<PageQuery<20>>,
) -> ApiResult<axum::Json<store::MyAgentsResponse>> {
    let q = q.checked()?;
    Ok(axum::Json(store::my_agents(state.pool(), caller.user.user_id, q.page, q.page_size).await?))
}

/// Body of a review of a listed agent.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct StoreReviewCreate {
    /// The version rated.
    store_listing_version_id: String,
    /// 1 to 5.
    #[schema(minimum = 1, maximum = 5)]
    score: i32,
    /// Optional words.
    #[serde(default)]
    comments: Option<String>,
}

/// Rate a listed agent's version; the caller's latest review counts.
#[utoipa::path(post, path = "/api/store/agents/{username}/{agent_name}/review", operation_id = "postV2Create agent review", tag = "store",
    params(("username" = String, Path), ("agent_name" = String, Path)),
    request_body = StoreReviewCreate,
    responses((status = 200, description = "The review", body = store::StoreReviewView),
        (status = 400, description = "Bad score", body = ErrorBody),
        (status = 404, description = "Not listed", body = ErrorBody)))]
pub(crate) async fn review_agent(
    State(state): State<AppState>,
    caller: Caller,
    Path((username, agent_name)): Path<(String, String)>,
    Json(body): Json<StoreReviewCreate>,
) -> ApiResult<Committed<axum::Json<store::StoreReviewView>>> {
    let not_found = || ApiError::not_found("Store listing version not found");
    let listing = store::listing_by_slug(state.pool(), &username, &agent_name).await?.ok_or_else(not_found)?;
    let version_id = parse_id(&body.store_listing_version_id, "Store listing version")?;
    match store::version_ref(state.pool(), version_id).await? {
        Some(v) if v.listing_id == listing && v.status == SubmissionStatus::Approved => {}
        _ => return Err(not_found()),
    }
    let rating = (body.score, body.comments.clone());
    let outcome = state.commands.review_listing(&caller.ctx, caller.user.user_id, listing, version_id, rating).await?;
    Ok(state.answer(&outcome, axum::Json(store::StoreReviewView { score: body.score, comments: body.comments })).await)
}

/// Query of `GET /api/store/admin/listings`.
#[derive(Debug, Deserialize)]
pub(crate) struct AdminListingsQuery {
    #[serde(default)]
    status: Option<SubmissionStatus>,
    #[serde(default)]
    search: Option<String>,
    #[serde(default = "default_page")]
    page: i64,
    #[serde(default = "default_page_size")]
    page_size: i64,
}

/// Every listing with its versions, for admins.
#[utoipa::path(get, path = "/api/store/admin/listings", operation_id = "getV2Get admin listings history", tag = "admin",
    params(("status" = Option<SubmissionStatus>, Query), ("search" = Option<String>, Query),
        ("page" = Option<i64>, Query, minimum = 1, maximum = 1000), ("page_size" = Option<i64>, Query, minimum = 1, maximum = 100)),
    responses((status = 200, description = "One page", body = store::StoreListingsWithVersionsResponse),
        (status = 403, description = "Admin access required", body = ErrorBody)))]
pub(crate) async fn admin_listings(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(q): Query<AdminListingsQuery>,
) -> ApiResult<axum::Json<store::StoreListingsWithVersionsResponse>> {
    super::check_page(q.page, q.page_size)?;
    Ok(axum::Json(store::admin_listings(state.pool(), q.status, q.search, q.page, q.page_size).await?))
}

/// Body of an admin's review.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct ReviewSubmissionRequest {
    /// The version (must match the path).
    store_listing_version_id: String,
    /// Approve, else reject.
    is_approved: bool,
    /// Shown to the creator.
    comments: String,
    /// Only for admins.
    #[serde(default)]
    internal_comments: Option<String>,
}

/// Approve or reject a submission.
#[utoipa::path(post, path = "/api/store/admin/submissions/{store_listing_version_id}/review", operation_id = "postV2Review store submission", tag = "admin",
    params(("store_listing_version_id" = String, Path)),
    request_body = ReviewSubmissionRequest,
    responses((status = 200, description = "The submission as reviewed", body = StoreSubmission),
        (status = 400, description = "Body and path name different versions", body = ErrorBody),
        (status = 403, description = "Admin access required", body = ErrorBody),
        (status = 404, description = "No such submission", body = ErrorBody)))]
pub(crate) async fn review_submission(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    caller: Caller,
    Path(version_id): Path<String>,
    Json(body): Json<ReviewSubmissionRequest>,
) -> ApiResult<Committed<axum::Json<StoreSubmission>>> {
    let version_id = parse_id(&version_id, "Submission")?;
    if body.store_listing_version_id.parse::<Uuid>().ok() != Some(version_id) {
        return Err(ApiError::bad_request("store_listing_version_id does not match the path"));
    }
    let v = store::version_ref(state.pool(), version_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Submission not found"))?;
    let verdict = (body.is_approved, body.comments, body.internal_comments);
    let outcome =
        state.commands.review_submission(&caller.ctx, admin.token_user_id, v.listing_id, version_id, verdict).await?;
    Ok(answer_submission(&state, &outcome, version_id, true).await)
}

/// Download any submission's graph, for admins.
#[utoipa::path(get, path = "/api/store/admin/submissions/download/{store_listing_version_id}", operation_id = "getV2Admin download agent file", tag = "admin",
    params(("store_listing_version_id" = String, Path)),
    responses((status = 200, description = "The graph as a JSON file, as exported (no user ids, no credentials)", body = Object),
        (status = 403, description = "Admin access required", body = ErrorBody),
        (status = 404, description = "No such submission", body = ErrorBody)))]
pub(crate) async fn admin_download(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(version_id): Path<String>,
) -> ApiResult<Response> {
    let (graph_id, version, graph) = published_graph(&state, &version_id, Some(&admin), false).await?;
    Ok(graph_file(graph_id, version, graph))
}
