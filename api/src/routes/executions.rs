//! Running graphs: start a run, stop it, list and read runs, delete and share them.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use commands::services::{RunChange, RunRequest};
use projections::execution_views::{
    self, GraphExecutionMeta, GraphExecutionWithNodes, GraphExecutionsPaginated, SharedExecutionResponse,
};
use projections::executions;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::{parse_id, PageQuery};
use crate::consistency::{reads, Committed};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{parse_json, Query};
use crate::state::{AppState, Caller};

pub(super) fn router(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .route("/graphs/{graph_id}/execute/{graph_version}", post(execute_graph))
        .route("/graphs/{graph_id}/executions", get(list_graph_executions))
        .route("/graphs/{graph_id}/executions/{graph_exec_id}", get(get_execution))
        .route("/graphs/{graph_id}/executions/{graph_exec_id}/stop", post(stop_execution))
        .route("/graphs/{graph_id}/executions/{graph_exec_id}/share", post(share_execution).delete(unshare_execution))
        .route("/executions", get(list_executions))
        .route("/executions/{graph_exec_id}", delete(delete_execution))
        .route("/public/shared/{share_token}", get(get_shared_execution));
    reads(routes, state, &[executions::NAME])
}

/// Body of `POST /api/graphs/{id}/execute/{version}` (all of it optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct ExecuteGraph {
    /// Graph inputs by input name.
    #[serde(default)]
    #[schema(value_type = Object)]
    inputs: Map<String, Value>,
    /// Credentials per credentials field (accepted; no block here needs any).
    #[serde(default)]
    #[schema(value_type = Object)]
    credentials_inputs: Map<String, Value>,
    /// Where the run was started from.
    #[serde(default)]
    #[allow(dead_code)]
    source: Option<RunSource>,
}

/// Where a run was started from; accepted for compatibility, not used.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum RunSource {
    Builder,
    Library,
    Onboarding,
}

/// Query of `POST /api/graphs/{id}/execute/{version}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ExecuteQuery {
    #[serde(default)]
    preset_id: Option<String>,
}

/// A 402 unless the user has credits left to start a run.
pub(crate) async fn ensure_credits(state: &AppState, user_id: uuid::Uuid) -> ApiResult<()> {
    if state.commands.balance(user_id).await? <= 0 {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYMENT_REQUIRED,
            "insufficient_balance",
            "Insufficient balance to run the agent. Please top up your account.",
        ));
    }
    Ok(())
}

/// Start a run of a graph version: its starting nodes are queued at once;
/// a worker picks it up.
#[utoipa::path(post, path = "/api/graphs/{graph_id}/execute/{graph_version}", operation_id = "postV1Execute graph agent", tag = "graphs",
    params(("graph_id" = String, Path), ("graph_version" = i32, Path, minimum = -2147483648, maximum = 2147483647),
        ("preset_id" = Option<String>, Query)),
    request_body(content = ExecuteGraph, content_type = "application/json", description = "May be omitted"),
    responses((status = 200, description = "The run, queued", body = GraphExecutionMeta),
        (status = 400, description = "The graph cannot run with these inputs (node_errors)", body = ErrorBody),
        (status = 402, description = "No credits left", body = ErrorBody),
        (status = 404, description = "No such graph or version the caller may run (another's: not an approved store version in its library)", body = ErrorBody)))]
pub(crate) async fn execute_graph(
    State(state): State<AppState>,
    caller: Caller,
    Path((graph_id, graph_version)): Path<(String, String)>,
    Query(q): Query<ExecuteQuery>,
    body: Bytes,
) -> ApiResult<Committed<axum::Json<GraphExecutionMeta>>> {
    let graph_id = parse_id(&graph_id, "Graph")?;
    let version = super::int_path(&graph_version, "graph_version")?;
    let body: ExecuteGraph =
        if body.iter().all(u8::is_ascii_whitespace) { ExecuteGraph::default() } else { parse_json(&body)? };
    let preset_id = q.preset_id.as_deref().map(|p| parse_id(p, "Preset")).transpose()?;
    let request = RunRequest {
        user_id: caller.user.user_id,
        graph_id,
        version: Some(version),
        inputs: body.inputs,
        preset_id,
        credentials: body.credentials_inputs,
    };
    let (outcome, run) = start_run(&state, &caller.ctx, request).await?;
    Ok(state.answer(&outcome, axum::Json(GraphExecutionMeta::of_state(&run))).await)
}

/// Queue a run, refused with a 402 while the user has no credits: what
/// both APIs' execute routes do.
pub(crate) async fn start_run(
    state: &AppState,
    ctx: &commands::CommandContext,
    request: RunRequest,
) -> ApiResult<(commands::Outcome, domain::execution::GraphExecution)> {
    ensure_credits(state, request.user_id).await?;
    let (outcome, run) = state.commands.execute_graph(ctx, request).await?;
    offer(state, &outcome, &run);
    Ok((outcome, run))
}

/// Hand a run this request queued to this instance's executor at once.
pub(crate) fn offer(state: &AppState, outcome: &commands::Outcome, run: &domain::execution::GraphExecution) {
    if let Some(id) = run.id.filter(|_| outcome.appended > 0) {
        state.executor.offer(id, run.user_id);
    }
}

/// Stop a run: running and queued node executions end TERMINATED, and so
/// does the run. Answers the run as stopped, or null when it had already
/// ended.
#[utoipa::path(post, path = "/api/graphs/{graph_id}/executions/{graph_exec_id}/stop", operation_id = "postV1Stop graph execution", tag = "graphs",
    params(("graph_id" = String, Path), ("graph_exec_id" = String, Path)),
    responses((status = 200, description = "The run as stopped, or null", body = Option<GraphExecutionMeta>),
        (status = 404, description = "No such run of the caller's under this graph (nothing changed)", body = ErrorBody)))]
pub(crate) async fn stop_execution(
    State(state): State<AppState>,
    caller: Caller,
    Path((graph_id, graph_exec_id)): Path<(String, String)>,
) -> ApiResult<Committed<axum::Json<Option<GraphExecutionMeta>>>> {
    let graph_id = parse_id(&graph_id, "Graph")?;
    let execution_id = parse_id(&graph_exec_id, "Execution")?;
    let (outcome, run, was_open) =
        state.commands.stop_execution(&caller.ctx, caller.user.user_id, graph_id, execution_id).await?;
    let run = run.ok_or_else(|| ApiError::not_found("Execution not found"))?;
    let body = was_open.then(|| GraphExecutionMeta::of_state(&run));
    Ok(state.answer(&outcome, axum::Json(body)).await)
}

/// The user's runs, newest first (at most 250).
#[utoipa::path(get, path = "/api/executions", operation_id = "getV1List all executions", tag = "graphs",
    responses((status = 200, description = "The runs", body = Vec<GraphExecutionMeta>)))]
pub(crate) async fn list_executions(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<Vec<GraphExecutionMeta>>> {
    Ok(axum::Json(execution_views::list_executions(state.pool(), caller.user.user_id).await?))
}

/// One page of a graph's runs, newest first.
#[utoipa::path(get, path = "/api/graphs/{graph_id}/executions", operation_id = "getV1List graph executions", tag = "graphs",
    params(("graph_id" = String, Path), ("page" = Option<i64>, Query, minimum = 1, maximum = 1000),
        ("page_size" = Option<i64>, Query, minimum = 1, maximum = 100)),
    responses((status = 200, description = "The page", body = GraphExecutionsPaginated)))]
pub(crate) async fn list_graph_executions(
    State(state): State<AppState>,
    caller: Caller,
    Path(graph_id): Path<String>,
    Query(q): Query<PageQuery<25>>,
) -> ApiResult<axum::Json<GraphExecutionsPaginated>> {
    let graph_id = parse_id(&graph_id, "Graph")?;
    let q = q.checked()?;
    let page = execution_views::list_graph_executions(state.pool(), caller.user.user_id, graph_id, q.page, q.page_size);
    Ok(axum::Json(page.await?))
}

/// A run with its node executions (oldest queued first).
#[utoipa::path(get, path = "/api/graphs/{graph_id}/executions/{graph_exec_id}", operation_id = "getV1Get execution details", tag = "graphs",
    params(("graph_id" = String, Path), ("graph_exec_id" = String, Path)),
    responses((status = 200, description = "The run", body = GraphExecutionWithNodes)))]
pub(crate) async fn get_execution(
    State(state): State<AppState>,
    caller: Caller,
    Path((graph_id, graph_exec_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<GraphExecutionWithNodes>> {
    let graph_id = parse_id(&graph_id, "Graph")?;
    let execution_id = parse_id(&graph_exec_id, "Execution")?;
    let run = execution_views::get_execution(state.pool(), caller.user.user_id, execution_id).await?;
    run.filter(|r| r.execution.meta.graph_id == graph_id)
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found("Execution not found"))
}

/// Delete one of the user's runs (it is hidden from every listing).
#[utoipa::path(delete, path = "/api/executions/{graph_exec_id}", operation_id = "deleteV1Delete graph execution", tag = "graphs",
    params(("graph_exec_id" = String, Path)),
    responses((status = 204, description = "Deleted")))]
pub(crate) async fn delete_execution(
    State(state): State<AppState>,
    caller: Caller,
    Path(graph_exec_id): Path<String>,
) -> ApiResult<Committed<Response>> {
    let execution_id = parse_id(&graph_exec_id, "Execution")?;
    let (outcome, run) =
        state.commands.change_run(&caller.ctx, caller.user.user_id, None, execution_id, RunChange::Delete).await?;
    run.ok_or_else(|| ApiError::not_found("Execution not found"))?;
    Ok(state.answer(&outcome, StatusCode::NO_CONTENT.into_response()).await)
}

/// Answer of sharing a run.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ShareResponse {
    /// Where anyone can see it.
    share_url: String,
    /// The public token.
    share_token: String,
}

/// Share one of the user's runs publicly (the same token when shared).
#[utoipa::path(post, path = "/api/graphs/{graph_id}/executions/{graph_exec_id}/share", operation_id = "postV1Share graph execution", tag = "graphs",
    params(("graph_id" = String, Path), ("graph_exec_id" = String, Path)),
    responses((status = 200, description = "Shared", body = ShareResponse),
        (status = 404, description = "No such run of the caller's under this graph (nothing changed)", body = ErrorBody)))]
pub(crate) async fn share_execution(
    State(state): State<AppState>,
    caller: Caller,
    Path((graph_id, graph_exec_id)): Path<(String, String)>,
) -> ApiResult<Committed<axum::Json<ShareResponse>>> {
    let run = change(&state, &caller, &graph_id, &graph_exec_id, RunChange::Share).await?;
    let token = run.1.share_token.map(|t| t.to_string()).unwrap_or_default();
    let body = ShareResponse { share_url: format!("/share/{token}"), share_token: token };
    Ok(state.answer(&run.0, axum::Json(body)).await)
}

/// Stop sharing one of the user's runs.
#[utoipa::path(delete, path = "/api/graphs/{graph_id}/executions/{graph_exec_id}/share", operation_id = "deleteV1Unshare graph execution", tag = "graphs",
    params(("graph_id" = String, Path), ("graph_exec_id" = String, Path)),
    responses((status = 204, description = "No longer shared"),
        (status = 404, description = "No such run of the caller's under this graph (nothing changed)", body = ErrorBody)))]
pub(crate) async fn unshare_execution(
    State(state): State<AppState>,
    caller: Caller,
    Path((graph_id, graph_exec_id)): Path<(String, String)>,
) -> ApiResult<Committed<Response>> {
    let (outcome, _) = change(&state, &caller, &graph_id, &graph_exec_id, RunChange::Unshare).await?;
    Ok(state.answer(&outcome, StatusCode::NO_CONTENT.into_response()).await)
}

async fn change(
    state: &AppState,
    caller: &Caller,
    graph_id: &str,
    graph_exec_id: &str,
    change: RunChange,
) -> ApiResult<(commands::Outcome, domain::execution::GraphExecution)> {
    let graph_id = parse_id(graph_id, "Graph")?;
    let execution_id = parse_id(graph_exec_id, "Execution")?;
    let user = caller.user.user_id;
    let (outcome, run) = state.commands.change_run(&caller.ctx, user, Some(graph_id), execution_id, change).await?;
    let run = run.ok_or_else(|| ApiError::not_found("Execution not found"))?;
    Ok((outcome, run))
}

/// A shared run, for anyone with its token (no sign-in).
#[utoipa::path(get, path = "/api/public/shared/{share_token}", operation_id = "getV1Get shared execution", tag = "graphs",
    params(("share_token" = String, Path, pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")),
    responses((status = 200, description = "The shared run", body = SharedExecutionResponse),
        (status = 404, description = "Not shared", body = ErrorBody)),
    security(()))]
pub(crate) async fn get_shared_execution(
    State(state): State<AppState>,
    Path(share_token): Path<String>,
) -> ApiResult<axum::Json<SharedExecutionResponse>> {
    let token = parse_id(&share_token, "Shared execution")?;
    execution_views::shared_execution(state.pool(), token)
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found("Shared execution not found"))
}
