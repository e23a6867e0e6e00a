use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use commands::Outcome;
use domain::library::LibraryAgentPatch;
use projections::graphs;
use projections::library::{self, AgentSource, LibraryAgentPage, LibraryAgentView, LibraryQuery, LibrarySort};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{default_page, in_range, parse_id};
use crate::consistency::{reads, Committed};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Query};
use crate::state::{AppState, Caller};

pub(super) fn router(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .route("/library/agents", get(list_agents).post(add_marketplace_agent))
        .route("/library/agents/marketplace/{store_listing_version_id}", get(get_agent_by_store_version))
        .route("/library/agents/favorites", get(list_favorites))
        .route("/library/agents/by-graph/{graph_id}", get(get_agent_by_graph))
        .route("/library/agents/{library_agent_id}", get(get_agent).patch(update_agent).delete(delete_agent))
        .route("/library/agents/{library_agent_id}/fork", post(fork_agent));
    reads(routes, state, &[library::NAME, graphs::NAME, projections::store::NAME])
}

/// How to order a library listing (AutoGPT's `LibraryAgentSort`).
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[schema(as = LibraryAgentSort)]
pub(crate) enum SortBy {
    #[default]
    #[serde(rename = "updatedAt")]
    UpdatedAt,
    #[serde(rename = "createdAt")]
    CreatedAt,
}

fn default_page_size() -> i64 {
    15
}

/// Query of the library listings.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    search_term: Option<String>,
    #[serde(default)]
    sort_by: SortBy,
    #[serde(default = "default_page")]
    page: i64,
    #[serde(default = "default_page_size")]
    page_size: i64,
}

impl ListQuery {
    fn into_query(self, favorites_only: bool) -> ApiResult<LibraryQuery> {
        in_range("page", self.page, 1, 1000)?;
        in_range("page_size", self.page_size, 1, 1000)?;
        Ok(LibraryQuery {
            search_term: self.search_term,
            sort: match self.sort_by {
                SortBy::UpdatedAt => LibrarySort::UpdatedAt,
                SortBy::CreatedAt => LibrarySort::CreatedAt,
            },
            page: self.page,
            page_size: self.page_size,
            favorites_only,
        })
    }
}

/// Query of `GET /library/agents/by-graph/{graph_id}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ByGraphQuery {
    #[serde(default)]
    version: Option<i32>,
}

async fn read_agent(state: &AppState, user: Uuid, id: Uuid) -> ApiResult<LibraryAgentView> {
    library::get_agent(state.pool(), user, id).await?.ok_or_else(|| ApiError::not_found("Library agent not found"))
}

/// Answer a command on a library agent with the agent as served: from the
/// read models once they show the command, else as the log has it.
async fn answer_agent(
    state: &AppState,
    outcome: &Outcome,
    user: Uuid,
    id: Uuid,
) -> Committed<axum::Json<LibraryAgentView>> {
    let read = async { Ok(library::get_agent(state.pool(), user, id).await?.map(axum::Json)) };
    let from_log = async {
        let found = state.commands.library_agent_from_log(user, id).await?;
        Ok(found.and_then(|f| {
            let version = f.version.as_ref().map(|(v, at)| (v, *at));
            AgentSource::from_state(&f.agent, &f.graph, version).map(|a| axum::Json(a.to_view()))
        }))
    };
    state.answer_read(outcome, read, from_log).await
}

/// The caller's library, searchable and paginated.
#[utoipa::path(get, path = "/api/library/agents", operation_id = "getV2List library agents", tag = "library",
    params(("search_term" = Option<String>, Query), ("sort_by" = Option<SortBy>, Query),
        ("page" = Option<i64>, Query, minimum = 1, maximum = 1000), ("page_size" = Option<i64>, Query, minimum = 1, maximum = 1000)),
    responses((status = 200, description = "One page of the library", body = LibraryAgentPage), (status = 422, description = "Bad query", body = ErrorBody)))]
pub(crate) async fn list_agents(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<LibraryAgentPage>> {
    Ok(axum::Json(library::list_agents(state.pool(), caller.user.user_id, &q.into_query(false)?).await?))
}

/// The caller's favourite agents.
#[utoipa::path(get, path = "/api/library/agents/favorites", operation_id = "getV2List favorite library agents", tag = "library",
    params(("page" = Option<i64>, Query, minimum = 1, maximum = 1000), ("page_size" = Option<i64>, Query, minimum = 1, maximum = 1000)),
    responses((status = 200, description = "One page of the library", body = LibraryAgentPage)))]
pub(crate) async fn list_favorites(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<LibraryAgentPage>> {
    Ok(axum::Json(library::list_agents(state.pool(), caller.user.user_id, &q.into_query(true)?).await?))
}

/// One library agent.
#[utoipa::path(get, path = "/api/library/agents/{library_agent_id}", operation_id = "getV2Get library agent", tag = "library",
    params(("library_agent_id" = String, Path)),
    responses((status = 200, description = "The library agent", body = LibraryAgentView), (status = 404, description = "Not found", body = ErrorBody)))]
pub(crate) async fn get_agent(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<LibraryAgentView>> {
    Ok(axum::Json(read_agent(&state, caller.user.user_id, parse_id(&id, "Library agent")?).await?))
}

/// The caller's library agent for a graph.
#[utoipa::path(get, path = "/api/library/agents/by-graph/{graph_id}", operation_id = "getV2GetLibraryAgentByGraphId", tag = "library",
    params(("graph_id" = String, Path), ("version" = Option<i32>, Query, minimum = -2147483648, maximum = 2147483647)),
    responses((status = 200, description = "The library agent", body = LibraryAgentView), (status = 404, description = "Not found", body = ErrorBody)))]
pub(crate) async fn get_agent_by_graph(
    State(state): State<AppState>,
    caller: Caller,
    Path(graph_id): Path<String>,
    Query(q): Query<ByGraphQuery>,
) -> ApiResult<axum::Json<LibraryAgentView>> {
    let graph_id = parse_id(&graph_id, "Library agent")?;
    let agent = library::get_agent_by_graph(state.pool(), caller.user.user_id, graph_id, q.version).await?;
    Ok(axum::Json(agent.ok_or_else(|| ApiError::not_found("Library agent not found"))?))
}

/// Change flags, settings or the pinned version of a library agent.
#[utoipa::path(patch, path = "/api/library/agents/{library_agent_id}", operation_id = "patchV2Update library agent", tag = "library",
    params(("library_agent_id" = String, Path)), request_body = LibraryAgentPatch,
    responses((status = 200, description = "The library agent", body = LibraryAgentView), (status = 404, description = "Not found", body = ErrorBody)))]
pub(crate) async fn update_agent(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(patch): Json<LibraryAgentPatch>,
) -> ApiResult<Committed<axum::Json<LibraryAgentView>>> {
    let id = parse_id(&id, "Library agent")?;
    let outcome = state.commands.update_library_agent(&caller.ctx, caller.user.user_id, id, patch).await?;
    Ok(answer_agent(&state, &outcome, caller.user.user_id, id).await)
}

/// Remove an agent from the caller's library.
#[utoipa::path(delete, path = "/api/library/agents/{library_agent_id}", operation_id = "deleteV2Delete library agent", tag = "library",
    params(("library_agent_id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Not found", body = ErrorBody)))]
pub(crate) async fn delete_agent(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Committed<StatusCode>> {
    let id = parse_id(&id, "Library agent")?;
    let outcome = state.commands.delete_library_agent(&caller.ctx, caller.user.user_id, id).await?;
    Ok(state.answer(&outcome, StatusCode::NO_CONTENT).await)
}

/// Copy the agent's graph into a new graph of the caller's own.
#[utoipa::path(post, path = "/api/library/agents/{library_agent_id}/fork", operation_id = "postV2Fork library agent", tag = "library",
    params(("library_agent_id" = String, Path)),
    responses((status = 200, description = "The library agent of the fork", body = LibraryAgentView), (status = 404, description = "Not found", body = ErrorBody),
        (status = 429, description = "Quota reached: the caller holds as many as allowed; delete some first", body = ErrorBody)))]
pub(crate) async fn fork_agent(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Committed<axum::Json<LibraryAgentView>>> {
    let id = parse_id(&id, "Library agent")?;
    let created = state.commands.fork_library_agent(&caller.ctx, caller.user.user_id, id).await?;
    Ok(answer_agent(&state, &created.outcome, caller.user.user_id, created.library_agent_id).await)
}

/// Where an agent added from the store comes from.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AddSource {
    Onboarding,
    #[default]
    Marketplace,
}

/// Body of `POST /api/library/agents`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = Body_postV2Add_marketplace_agent)]
pub(crate) struct AddMarketplaceAgent {
    /// The approved listing version whose graph to add.
    store_listing_version_id: String,
    /// Where the user found it.
    #[serde(default)]
    #[allow(dead_code)]
    source: AddSource,
}

/// The graph an approved listing version publishes.
async fn listed_graph(state: &AppState, raw: &str) -> ApiResult<(Uuid, i32)> {
    let version_id = parse_id(raw, "Store listing version")?;
    match projections::store::version_ref(state.pool(), version_id).await? {
        Some(v) if v.status == domain::store::SubmissionStatus::Approved => Ok((v.graph_id, v.agent_version)),
        _ => Err(ApiError::not_found("Store listing version not found")),
    }
}

/// Add an approved store agent's graph to the caller's library.
#[utoipa::path(post, path = "/api/library/agents", operation_id = "postV2Add marketplace agent", tag = "library",
    request_body = AddMarketplaceAgent,
    responses((status = 201, description = "The library agent", body = LibraryAgentView),
        (status = 404, description = "Not listed", body = ErrorBody)))]
pub(crate) async fn add_marketplace_agent(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<AddMarketplaceAgent>,
) -> ApiResult<Committed<(StatusCode, axum::Json<LibraryAgentView>)>> {
    let (graph_id, version) = listed_graph(&state, &body.store_listing_version_id).await?;
    let user = caller.user.user_id;
    let (outcome, id) = state.commands.add_published_to_library(&caller.ctx, user, graph_id, version).await?;
    Ok(answer_agent(&state, &outcome, user, id).await.map(|agent| (StatusCode::CREATED, agent)))
}

/// The caller's library agent for an approved store agent.
#[utoipa::path(get, path = "/api/library/agents/marketplace/{store_listing_version_id}", operation_id = "getV2Get agent by store id", tag = "library",
    params(("store_listing_version_id" = String, Path)),
    responses((status = 200, description = "The library agent", body = LibraryAgentView),
        (status = 404, description = "Not in the library", body = ErrorBody)))]
pub(crate) async fn get_agent_by_store_version(
    State(state): State<AppState>,
    caller: Caller,
    Path(version_id): Path<String>,
) -> ApiResult<axum::Json<LibraryAgentView>> {
    let (graph_id, _) = listed_graph(&state, &version_id).await?;
    let agent = library::get_agent_by_graph(state.pool(), caller.user.user_id, graph_id, None).await?;
    Ok(axum::Json(agent.ok_or_else(|| ApiError::not_found("Library agent not found"))?))
}
