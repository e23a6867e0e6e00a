//! The store's external routes (`/external-api/v1/store/…`, scope
//! `READ_STORE`): the internal store pages, by API key.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use projections::store;

use super::store::{self as pages, AgentsQuery, CreatorsQuery, DetailQuery};
use crate::consistency::reads;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::Query;
use crate::keys::{scope, KeyHolder};
use crate::state::AppState;

/// The routes, under the external API's prefix.
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .route("/store/agents", get(external_store_agents))
        .route("/store/agents/{username}/{agent_name}", get(external_store_agent))
        .route("/store/creators", get(external_store_creators))
        .route("/store/creators/{username}", get(external_store_creator));
    reads(routes, state, &[store::NAME])
}

/// Listed agents, one page (as `GET /api/store/agents`).
#[utoipa::path(get, path = "/external-api/v1/store/agents", operation_id = "getExternalStoreAgents", tag = "external",
    params(("featured" = Option<bool>, Query), ("creator" = Option<String>, Query),
        ("sorted_by" = Option<pages::AgentSortBy>, Query), ("search_query" = Option<String>, Query),
        ("category" = Option<String>, Query), ("page" = Option<i64>, Query, minimum = 1, maximum = 1000),
        ("page_size" = Option<i64>, Query, minimum = 1, maximum = 100)),
    responses((status = 200, description = "One page", body = store::StoreAgentsResponse),
        (status = 401, description = "Missing, unknown, suspended or revoked key", body = ErrorBody),
        (status = 403, description = "The key lacks READ_STORE", body = ErrorBody),
        (status = 422, description = "Bad query", body = ErrorBody)),
    security(("APIKeyHeader" = [])))]
pub(crate) async fn external_store_agents(
    state: State<AppState>,
    _key: KeyHolder<scope::ReadStore>,
    query: Query<AgentsQuery>,
) -> ApiResult<axum::Json<store::StoreAgentsResponse>> {
    pages::list_agents(state, query).await
}

/// A listed agent (as `GET /api/store/agents/{username}/{agent_name}`).
#[utoipa::path(get, path = "/external-api/v1/store/agents/{username}/{agent_name}", operation_id = "getExternalStoreAgent", tag = "external",
    params(("username" = String, Path), ("agent_name" = String, Path), ("include_changelog" = Option<bool>, Query)),
    responses((status = 200, description = "The agent", body = store::StoreAgentDetails),
        (status = 401, description = "Missing, unknown, suspended or revoked key", body = ErrorBody),
        (status = 403, description = "The key lacks READ_STORE", body = ErrorBody),
        (status = 404, description = "Not listed", body = ErrorBody)),
    security(("APIKeyHeader" = [])))]
pub(crate) async fn external_store_agent(
    state: State<AppState>,
    _key: KeyHolder<scope::ReadStore>,
    path: Path<(String, String)>,
    query: Query<DetailQuery>,
) -> ApiResult<axum::Json<store::StoreAgentDetails>> {
    pages::get_agent(state, path, query).await
}

/// Creators, one page (as `GET /api/store/creators`).
#[utoipa::path(get, path = "/external-api/v1/store/creators", operation_id = "getExternalStoreCreators", tag = "external",
    params(("featured" = Option<bool>, Query), ("search_query" = Option<String>, Query),
        ("sorted_by" = Option<pages::CreatorSortBy>, Query), ("page" = Option<i64>, Query, minimum = 1, maximum = 1000),
        ("page_size" = Option<i64>, Query, minimum = 1, maximum = 100)),
    responses((status = 200, description = "One page", body = store::CreatorsResponse),
        (status = 401, description = "Missing, unknown, suspended or revoked key", body = ErrorBody),
        (status = 403, description = "The key lacks READ_STORE", body = ErrorBody),
        (status = 422, description = "Bad query", body = ErrorBody)),
    security(("APIKeyHeader" = [])))]
pub(crate) async fn external_store_creators(
    state: State<AppState>,
    _key: KeyHolder<scope::ReadStore>,
    query: Query<CreatorsQuery>,
) -> ApiResult<axum::Json<store::CreatorsResponse>> {
    pages::list_creators(state, query).await
}

/// A creator (as `GET /api/store/creator/{username}`).
#[utoipa::path(get, path = "/external-api/v1/store/creators/{username}", operation_id = "getExternalStoreCreator", tag = "external",
    params(("username" = String, Path)),
    responses((status = 200, description = "The creator", body = store::CreatorDetails),
        (status = 401, description = "Missing, unknown, suspended or revoked key", body = ErrorBody),
        (status = 403, description = "The key lacks READ_STORE", body = ErrorBody),
        (status = 404, description = "No such creator", body = ErrorBody)),
    security(("APIKeyHeader" = [])))]
pub(crate) async fn external_store_creator(
    state: State<AppState>,
    _key: KeyHolder<scope::ReadStore>,
    path: Path<String>,
) -> ApiResult<axum::Json<store::CreatorDetails>> {
    pages::get_creator(state, path).await
}
