//! The store's pages: listed agents (filter, sort, full-text search),
//! agent details, creators, and a listed agent's graph for download. The
//! pages are public; a version's detail and graph need a user.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use projections::store::{self, CreatorSort, StoreQuery, StoreSort};
use serde::Deserialize;
use uuid::Uuid;

use super::{check_page, default_page, parse_id};
use crate::auth::AuthUser;
use crate::consistency::reads;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Query;
use crate::state::AppState;

pub(super) fn router(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .route("/store/agents", get(list_agents))
        .route("/store/agents/{store_listing_version_id}", get(get_agent_by_version))
        .route("/store/agents/{username}/{agent_name}", get(get_agent))
        .route("/store/graph/{store_listing_version_id}", get(get_agent_graph))
        .route("/store/download/agents/{store_listing_version_id}", get(download_agent))
        .route("/store/creators", get(list_creators))
        .route("/store/creator/{username}", get(get_creator));
    reads(routes, state, &[store::NAME, projections::graphs::NAME])
}

fn default_page_size() -> i64 {
    20
}

/// How `GET /api/store/agents` may be ordered.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AgentSortBy {
    Rating,
    Runs,
    Name,
    UpdatedAt,
}

/// Query of `GET /api/store/agents`.
#[derive(Debug, Deserialize)]
pub(crate) struct AgentsQuery {
    #[serde(default)]
    featured: bool,
    #[serde(default)]
    creator: Option<String>,
    #[serde(default)]
    sorted_by: Option<AgentSortBy>,
    #[serde(default)]
    search_query: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default = "default_page")]
    page: i64,
    #[serde(default = "default_page_size")]
    page_size: i64,
}

/// Listed agents, one page: filtered, sorted, or ranked by full-text match.
#[utoipa::path(get, path = "/api/store/agents", operation_id = "getV2List store agents", tag = "store",
    params(("featured" = Option<bool>, Query), ("creator" = Option<String>, Query),
        ("sorted_by" = Option<AgentSortBy>, Query), ("search_query" = Option<String>, Query),
        ("category" = Option<String>, Query), ("page" = Option<i64>, Query, minimum = 1, maximum = 1000),
        ("page_size" = Option<i64>, Query, minimum = 1, maximum = 100)),
    security(()),
    responses((status = 200, description = "One page", body = store::StoreAgentsResponse),
        (status = 422, description = "Bad query", body = ErrorBody)))]
pub(crate) async fn list_agents(
    State(state): State<AppState>,
    Query(q): Query<AgentsQuery>,
) -> ApiResult<axum::Json<store::StoreAgentsResponse>> {
    check_page(q.page, q.page_size)?;
    let query = StoreQuery {
        featured: q.featured,
        creator: q.creator,
        sort: q.sorted_by.map(|s| match s {
            AgentSortBy::Rating => StoreSort::Rating,
            AgentSortBy::Runs => StoreSort::Runs,
            AgentSortBy::Name => StoreSort::Name,
            AgentSortBy::UpdatedAt => StoreSort::UpdatedAt,
        }),
        search: q.search_query,
        category: q.category,
        page: q.page,
        page_size: q.page_size,
    };
    Ok(axum::Json(store::list_agents(state.pool(), &query).await?))
}

/// Query of `GET /api/store/agents/{username}/{agent_name}`.
#[derive(Debug, Deserialize)]
pub(crate) struct DetailQuery {
    #[serde(default)]
    include_changelog: bool,
}

/// A listed agent by its creator's username and its slug (any case).
#[utoipa::path(get, path = "/api/store/agents/{username}/{agent_name}", operation_id = "getV2Get specific agent", tag = "store",
    params(("username" = String, Path), ("agent_name" = String, Path), ("include_changelog" = Option<bool>, Query)),
    security(()),
    responses((status = 200, description = "The agent", body = store::StoreAgentDetails),
        (status = 404, description = "Not listed", body = ErrorBody)))]
pub(crate) async fn get_agent(
    State(state): State<AppState>,
    Path((username, agent_name)): Path<(String, String)>,
    Query(q): Query<DetailQuery>,
) -> ApiResult<axum::Json<store::StoreAgentDetails>> {
    let found = store::agent_by_slug(state.pool(), &username, &agent_name, q.include_changelog).await?;
    found.map(axum::Json).ok_or_else(|| ApiError::not_found("Store agent not found"))
}

/// An approved listing version in full.
#[utoipa::path(get, path = "/api/store/agents/{store_listing_version_id}", operation_id = "getV2Get agent by version", tag = "store",
    params(("store_listing_version_id" = String, Path)),
    responses((status = 200, description = "The agent", body = store::StoreAgentDetails),
        (status = 404, description = "Not listed", body = ErrorBody)))]
pub(crate) async fn get_agent_by_version(
    State(state): State<AppState>,
    _user: AuthUser,
    Path(version_id): Path<String>,
) -> ApiResult<axum::Json<store::StoreAgentDetails>> {
    let version_id = parse_id(&version_id, "Store listing version")?;
    let found = store::agent_by_version(state.pool(), version_id).await?;
    found.map(axum::Json).ok_or_else(|| ApiError::not_found("Store listing version not found"))
}

/// The graph a listing version publishes: approved ones for anyone, any
/// version for its creator and for admins.
pub(crate) async fn published_graph(
    state: &AppState,
    version_id: &str,
    viewer: Option<&AuthUser>,
    meta_only: bool,
) -> ApiResult<(Uuid, i32, serde_json::Value)> {
    let version_id = parse_id(version_id, "Store listing version")?;
    let not_found = || ApiError::not_found("Store listing version not found");
    let v = store::version_ref(state.pool(), version_id).await?.ok_or_else(not_found)?;
    let privileged = viewer.is_some_and(|u| u.is_admin || u.user_id == v.owner_id);
    if v.status != domain::store::SubmissionStatus::Approved && !privileged {
        return Err(not_found());
    }
    let graph = projections::graphs::get_published_version(state.pool(), v.graph_id, v.agent_version, meta_only)
        .await?
        .ok_or_else(not_found)?;
    Ok((v.graph_id, v.agent_version, graph))
}

/// The graph (as `GraphMeta`) of a listing version.
#[utoipa::path(get, path = "/api/store/graph/{store_listing_version_id}", operation_id = "getV2Get agent graph", tag = "store",
    params(("store_listing_version_id" = String, Path)),
    responses((status = 200, description = "The graph's meta", body = domain::graph::view::GraphMeta),
        (status = 404, description = "Not listed", body = ErrorBody)))]
pub(crate) async fn get_agent_graph(
    State(state): State<AppState>,
    user: AuthUser,
    Path(version_id): Path<String>,
) -> ApiResult<axum::Json<serde_json::Value>> {
    Ok(axum::Json(published_graph(&state, &version_id, Some(&user), true).await?.2))
}

/// A graph as a file to save: `agent_<graph id>_v<version>.json`, its
/// export view only. A file leaves the owner's account (the public download
/// needs no sign-in), so it carries neither the owner's user id nor the
/// credentials the owner set on nodes.
pub(crate) fn graph_file(graph_id: Uuid, version: i32, graph: serde_json::Value) -> Response {
    let disposition = format!("attachment; filename=agent_{graph_id}_v{version}.json");
    (
        [(header::CONTENT_TYPE, "application/json".to_owned()), (header::CONTENT_DISPOSITION, disposition)],
        domain::graph::view::for_export(graph).to_string(),
    )
        .into_response()
}

/// Download an approved listing version's graph.
#[utoipa::path(get, path = "/api/store/download/agents/{store_listing_version_id}", operation_id = "getV2Download agent file", tag = "store",
    params(("store_listing_version_id" = String, Path)),
    security(()),
    responses((status = 200, description = "The graph as a JSON file, as exported (no user ids, no credentials)", body = Object),
        (status = 404, description = "Not listed", body = ErrorBody)))]
pub(crate) async fn download_agent(
    State(state): State<AppState>,
    Path(version_id): Path<String>,
) -> ApiResult<Response> {
    let (graph_id, version, graph) = published_graph(&state, &version_id, None, false).await?;
    Ok(graph_file(graph_id, version, graph))
}

/// How creators may be ordered.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CreatorSortBy {
    AgentRating,
    AgentRuns,
    NumAgents,
}

/// Query of `GET /api/store/creators`.
#[derive(Debug, Deserialize)]
pub(crate) struct CreatorsQuery {
    #[serde(default)]
    featured: bool,
    #[serde(default)]
    search_query: Option<String>,
    #[serde(default)]
    sorted_by: Option<CreatorSortBy>,
    #[serde(default = "default_page")]
    page: i64,
    #[serde(default = "default_page_size")]
    page_size: i64,
}

/// Creators with listed agents, one page.
#[utoipa::path(get, path = "/api/store/creators", operation_id = "getV2List store creators", tag = "store",
    params(("featured" = Option<bool>, Query), ("search_query" = Option<String>, Query),
        ("sorted_by" = Option<CreatorSortBy>, Query), ("page" = Option<i64>, Query, minimum = 1, maximum = 1000),
        ("page_size" = Option<i64>, Query, minimum = 1, maximum = 100)),
    security(()),
    responses((status = 200, description = "One page", body = store::CreatorsResponse),
        (status = 422, description = "Bad query", body = ErrorBody)))]
pub(crate) async fn list_creators(
    State(state): State<AppState>,
    Query(q): Query<CreatorsQuery>,
) -> ApiResult<axum::Json<store::CreatorsResponse>> {
    check_page(q.page, q.page_size)?;
    let sort = q.sorted_by.map(|s| match s {
        CreatorSortBy::AgentRating => CreatorSort::AgentRating,
        CreatorSortBy::AgentRuns => CreatorSort::AgentRuns,
        CreatorSortBy::NumAgents => CreatorSort::NumAgents,
    });
    let page = store::creators(state.pool(), q.featured, q.search_query, sort, q.page, q.page_size);
    Ok(axum::Json(page.await?))
}

/// A creator's page.
#[utoipa::path(get, path = "/api/store/creator/{username}", operation_id = "getV2Get creator details", tag = "store",
    params(("username" = String, Path)),
    security(()),
    responses((status = 200, description = "The creator", body = store::CreatorDetails),
        (status = 404, description = "No such creator", body = ErrorBody)))]
pub(crate) async fn get_creator(
    State(state): State<AppState>,
    Path(username): Path<String>,
) -> ApiResult<axum::Json<store::CreatorDetails>> {
    store::creator(state.pool(), &username)
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found("Creator not found"))
}
