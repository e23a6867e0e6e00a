use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, put};
use axum::Router;
use commands::services::CreatedGraph;
use domain::graph::{view, GraphDraft};
use domain::library::GraphSettings;
use projections::{graphs, library};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::parse_id;
use crate::consistency::{reads, Committed};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Query};
use crate::state::{AppState, Caller};

pub(super) fn router(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .route("/graphs", get(list_graphs).post(create_graph))
        .route("/graphs/{graph_id}", get(get_graph).put(update_graph).delete(delete_graph))
        .route("/graphs/{graph_id}/versions", get(list_graph_versions))
        .route("/graphs/{graph_id}/versions/active", put(set_active_version))
        .route("/graphs/{graph_id}/versions/{version}", get(get_graph_version))
        .route("/graphs/{graph_id}/settings", patch(update_graph_settings));
    reads(routes, state, &[graphs::NAME, library::NAME, projections::store::NAME])
}

/// Body of `POST /api/graphs`.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct CreateGraph {
    graph: GraphDraft,
    #[serde(default)]
    #[allow(dead_code)]
    source: Option<GraphSource>,
}

/// Where a graph came from; accepted for compatibility, not used.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum GraphSource {
    Builder,
    Upload,
}

/// Answer of `DELETE /api/graphs/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeleteGraphResponse {
    /// How many versions the graph had.
    version_counts: i32,
}

/// Query of `GET /api/graphs/{id}`.
#[derive(Debug, Deserialize)]
pub(crate) struct GetGraphQuery {
    #[serde(default)]
    version: Option<i32>,
    #[serde(default)]
    for_export: bool,
}

/// Query of `GET /api/graphs/{id}/versions/{version}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ExportQuery {
    #[serde(default)]
    for_export: bool,
}

/// The model as asked for: whole, or stripped for export.
fn exported(model: Value, for_export: bool) -> axum::Json<Value> {
    axum::Json(if for_export { view::for_export(model) } else { model })
}

/// Body of `PUT /api/graphs/{id}/versions/active`.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct SetGraphActiveVersion {
    active_graph_version: i32,
}

/// A version of a graph as `user` may read it: any of its own; of another's
/// (a store agent), only one the store lists as approved, as AutoGPT
/// serves approved store graphs to non-owners, and stripped for export, as
/// the store's download is: the creator's id and credentials stay theirs.
async fn read_graph(state: &AppState, user: Uuid, id: Uuid, version: Option<i32>) -> ApiResult<Value> {
    if let Some(own) = graphs::get_graph(state.pool(), user, id, version).await? {
        return Ok(own);
    }
    let listed = graphs::get_approved_version(state.pool(), id, version).await?;
    listed.map(view::for_export).ok_or_else(|| ApiError::not_found("Graph not found"))
}

/// The caller's graphs (active versions).
#[utoipa::path(get, path = "/api/graphs", operation_id = "getV1List user graphs", tag = "graphs",
    responses((status = 200, description = "The active version of each graph", body = Vec<view::GraphMeta>), (status = 401, description = "Not authenticated", body = ErrorBody)))]
pub(crate) async fn list_graphs(State(state): State<AppState>, caller: Caller) -> ApiResult<axum::Json<Vec<Value>>> {
    Ok(axum::Json(graphs::list_graphs(state.pool(), caller.user.user_id).await?))
}

/// Create a graph (new ids, validated, added to the library).
#[utoipa::path(post, path = "/api/graphs", operation_id = "postV1Create new graph", tag = "graphs",
    request_body = CreateGraph,
    responses((status = 200, description = "The graph version", body = view::GraphModel), (status = 400, description = "Validation failed with node_errors", body = ErrorBody),
        (status = 422, description = "Body does not fit the schema", body = ErrorBody), (status = 429, description = "Quota reached: the caller holds as many as allowed; delete some first", body = ErrorBody)))]
pub(crate) async fn create_graph(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<CreateGraph>,
) -> ApiResult<Committed<Response>> {
    let created = state.commands.create_graph(&caller.ctx, caller.user.user_id, body.graph).await?;
    Ok(saved_graph(&state, caller.user.user_id, &created).await)
}

/// The GraphModel of the version a command saved, built from the command's
/// own result (the projector stores the same model, built by the same type).
async fn saved_graph(state: &AppState, user_id: Uuid, created: &CreatedGraph) -> Committed<Response> {
    let (graph, at) = &created.saved;
    let body = axum::Json(view::GraphModel::new(graph, user_id, *at, Some(graph.is_active))).into_response();
    state.answer(&created.outcome, body).await
}

/// A graph; without `version`, its highest version. Another user's graph
/// is found only in the versions the store lists as approved (exported).
#[utoipa::path(get, path = "/api/graphs/{graph_id}", operation_id = "getV1Get specific graph", tag = "graphs",
    params(("graph_id" = String, Path), ("version" = Option<i32>, Query, minimum = -2147483648, maximum = 2147483647),
        ("for_export" = Option<bool>, Query)),
    responses((status = 200, description = "The graph version", body = view::GraphModel),
        (status = 404, description = "Not found (another's graph: not an approved store version)", body = ErrorBody)))]
pub(crate) async fn get_graph(
    State(state): State<AppState>,
    caller: Caller,
    Path(graph_id): Path<String>,
    Query(q): Query<GetGraphQuery>,
) -> ApiResult<axum::Json<Value>> {
    let model = read_graph(&state, caller.user.user_id, parse_id(&graph_id, "Graph")?, q.version).await?;
    Ok(exported(model, q.for_export))
}

/// One version of a graph (of another user's, only one the store lists as
/// approved, exported).
#[utoipa::path(get, path = "/api/graphs/{graph_id}/versions/{version}", operation_id = "getV1Get graph version", tag = "graphs",
    params(("graph_id" = String, Path), ("version" = i32, Path, minimum = -2147483648, maximum = 2147483647),
        ("for_export" = Option<bool>, Query)),
    responses((status = 200, description = "The graph version", body = view::GraphModel),
        (status = 404, description = "Not found (another's graph: not an approved store version)", body = ErrorBody)))]
pub(crate) async fn get_graph_version(
    State(state): State<AppState>,
    caller: Caller,
    Path((graph_id, version)): Path<(String, String)>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<axum::Json<Value>> {
    let version = super::int_path(&version, "version")?;
    let model = read_graph(&state, caller.user.user_id, parse_id(&graph_id, "Graph")?, Some(version)).await?;
    Ok(exported(model, q.for_export))
}

/// Every version of a graph, newest first.
#[utoipa::path(get, path = "/api/graphs/{graph_id}/versions", operation_id = "getV1Get all graph versions", tag = "graphs",
    params(("graph_id" = String, Path)),
    responses((status = 200, description = "Every version, newest first", body = Vec<view::GraphModel>), (status = 404, description = "Not found", body = ErrorBody)))]
pub(crate) async fn list_graph_versions(
    State(state): State<AppState>,
    caller: Caller,
    Path(graph_id): Path<String>,
) -> ApiResult<axum::Json<Vec<Value>>> {
    let versions = graphs::list_versions(state.pool(), caller.user.user_id, parse_id(&graph_id, "Graph")?).await?;
    if versions.is_empty() {
        return Err(ApiError::not_found("Graph not found"));
    }
    Ok(axum::Json(versions))
}

/// Save a new version (max + 1).
#[utoipa::path(put, path = "/api/graphs/{graph_id}", operation_id = "putV1Update graph version", tag = "graphs",
    params(("graph_id" = String, Path)), request_body = GraphDraft,
    responses((status = 200, description = "The graph version", body = view::GraphModel), (status = 400, description = "Validation failed", body = ErrorBody), (status = 404, description = "Not found", body = ErrorBody)))]
pub(crate) async fn update_graph(
    State(state): State<AppState>,
    caller: Caller,
    Path(graph_id): Path<String>,
    Json(draft): Json<GraphDraft>,
) -> ApiResult<Committed<Response>> {
    let graph_id = parse_id(&graph_id, "Graph")?;
    let created = state.commands.create_graph_version(&caller.ctx, caller.user.user_id, graph_id, draft).await?;
    Ok(saved_graph(&state, caller.user.user_id, &created).await)
}

/// Delete a graph with every version.
#[utoipa::path(delete, path = "/api/graphs/{graph_id}", operation_id = "deleteV1Delete graph permanently", tag = "graphs",
    params(("graph_id" = String, Path)),
    responses((status = 200, description = "How many versions were deleted", body = DeleteGraphResponse), (status = 404, description = "Not found", body = ErrorBody)))]
pub(crate) async fn delete_graph(
    State(state): State<AppState>,
    caller: Caller,
    Path(graph_id): Path<String>,
) -> ApiResult<Committed<axum::Json<DeleteGraphResponse>>> {
    let graph_id = parse_id(&graph_id, "Graph")?;
    let (outcome, count) = state.commands.delete_graph(&caller.ctx, caller.user.user_id, graph_id).await?;
    Ok(state.answer(&outcome, axum::Json(DeleteGraphResponse { version_counts: count })).await)
}

/// Make a version the active one.
#[utoipa::path(put, path = "/api/graphs/{graph_id}/versions/active", operation_id = "putV1Set active graph version", tag = "graphs",
    params(("graph_id" = String, Path)), request_body = SetGraphActiveVersion,
    responses((status = 200, description = "JSON null", body = Option<String>), (status = 404, description = "Not found", body = ErrorBody)))]
pub(crate) async fn set_active_version(
    State(state): State<AppState>,
    caller: Caller,
    Path(graph_id): Path<String>,
    Json(body): Json<SetGraphActiveVersion>,
) -> ApiResult<Committed<axum::Json<Value>>> {
    let graph_id = parse_id(&graph_id, "Graph")?;
    let outcome = state
        .commands
        .set_active_version(&caller.ctx, caller.user.user_id, graph_id, body.active_graph_version)
        .await?;
    Ok(state.answer(&outcome, axum::Json(Value::Null)).await)
}

/// Change the caller's settings for a graph (kept on its library agent).
#[utoipa::path(patch, path = "/api/graphs/{graph_id}/settings", operation_id = "patchV1Update graph settings", tag = "graphs",
    params(("graph_id" = String, Path)), request_body = GraphSettings,
    responses((status = 200, description = "The settings as saved", body = GraphSettings), (status = 404, description = "Not found", body = ErrorBody)))]
pub(crate) async fn update_graph_settings(
    State(state): State<AppState>,
    caller: Caller,
    Path(graph_id): Path<String>,
    Json(settings): Json<GraphSettings>,
) -> ApiResult<Committed<axum::Json<GraphSettings>>> {
    let graph_id = parse_id(&graph_id, "Graph")?;
    let (outcome, _) =
        state.commands.update_graph_settings(&caller.ctx, caller.user.user_id, graph_id, settings).await?;
    Ok(state.answer(&outcome, axum::Json(settings)).await)
}
