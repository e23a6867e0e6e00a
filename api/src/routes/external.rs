//! The external API (`/external-api/v1`), for programs holding an API key
//! (`X-API-Key`): each route names the scope it needs in its signature
//! (`KeyHolder<scope::…>`) and runs the same code as its internal twin.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use commands::services::RunRequest;
use domain::execution::ExecutionStatus;
use projections::{execution_views, executions, users};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{blocks, executions as runs, int_path, parse_id};
use crate::consistency::{reads, Committed};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract;
use crate::keys::{scope, KeyHolder};
use crate::state::AppState;

/// The routes under `/external-api/v1`.
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .route("/me", get(external_me))
        .route("/blocks", get(external_list_blocks))
        .route("/blocks/{block_id}/execute", post(external_execute_block))
        .route("/graphs/{graph_id}/execute/{graph_version}", post(external_execute_graph))
        .route("/graphs/{graph_id}/executions/{graph_exec_id}/results", get(external_execution_results));
    reads(routes, state, &[executions::NAME, users::NAME]).merge(super::external_store::router(state))
}

/// Who a key belongs to.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ExternalUser {
    /// The user id.
    id: Uuid,
    /// Display name.
    name: Option<String>,
    /// E-mail address (empty until the user has signed in once).
    email: String,
    /// IANA timezone or `not-set`.
    timezone: String,
}

/// The key's owner.
#[utoipa::path(get, path = "/external-api/v1/me", operation_id = "getExternalMe", tag = "external",
    responses((status = 200, description = "The key's owner", body = ExternalUser),
        (status = 401, description = "Missing, unknown, suspended or revoked key", body = ErrorBody),
        (status = 403, description = "The key lacks IDENTITY", body = ErrorBody)),
    security(("APIKeyHeader" = [])))]
pub(crate) async fn external_me(
    State(state): State<AppState>,
    key: KeyHolder<scope::Identity>,
) -> ApiResult<Json<ExternalUser>> {
    let user = users::get_user(state.pool(), key.user_id).await?;
    Ok(Json(match user {
        Some(u) => ExternalUser { id: u.id, name: u.name, email: u.email, timezone: u.timezone },
        None => ExternalUser { id: key.user_id, name: None, email: String::new(), timezone: "not-set".into() },
    }))
}

/// The block catalog, without costs.
#[utoipa::path(get, path = "/external-api/v1/blocks", operation_id = "getExternalBlocks", tag = "external",
    responses((status = 200, description = "All enabled blocks: id, name, schemas, …", body = Vec<Object>),
        (status = 401, description = "Missing, unknown, suspended or revoked key", body = ErrorBody),
        (status = 403, description = "The key lacks READ_BLOCK", body = ErrorBody)),
    security(("APIKeyHeader" = [])))]
pub(crate) async fn external_list_blocks(_key: KeyHolder<scope::ReadBlock>) -> Json<&'static Value> {
    Json(blocks::catalog_without_costs())
}

/// Run one block on its own, as `POST /api/blocks/{block_id}/execute` does.
#[utoipa::path(post, path = "/external-api/v1/blocks/{block_id}/execute", operation_id = "postExternalExecuteBlock", tag = "external",
    params(("block_id" = String, Path)),
    request_body(content = Object, content_type = "application/json"),
    responses((status = 200, description = "Each output pin's values", body = std::collections::HashMap<String, Vec<serde_json::Value>>),
        (status = 400, description = "The block failed", body = ErrorBody),
        (status = 401, description = "Missing, unknown, suspended or revoked key", body = ErrorBody),
        (status = 403, description = "The key lacks EXECUTE_BLOCK", body = ErrorBody),
        (status = 404, description = "No such block", body = ErrorBody),
        (status = 422, description = "The body is not a JSON object", body = ErrorBody)),
    security(("APIKeyHeader" = [])))]
pub(crate) async fn external_execute_block(
    State(state): State<AppState>,
    key: KeyHolder<scope::ExecuteBlock>,
    Path(block_id): Path<String>,
    extract::Json(input): extract::Json<Map<String, Value>>,
) -> ApiResult<Json<Map<String, Value>>> {
    blocks::run_block(&state, key.user_id, &block_id, input).await.map(Json)
}

/// Body of `POST /external-api/v1/graphs/{graph_id}/execute/{graph_version}`.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct ExternalRunRequest {
    /// Graph inputs by input name.
    #[serde(default)]
    #[schema(value_type = Object)]
    node_input: Map<String, Value>,
}

/// The run a key started.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ExternalRunStarted {
    /// The run's id.
    id: Uuid,
}

/// Start a run of a graph version the key's owner may run.
#[utoipa::path(post, path = "/external-api/v1/graphs/{graph_id}/execute/{graph_version}", operation_id = "postExternalExecuteGraph", tag = "external",
    params(("graph_id" = String, Path), ("graph_version" = i32, Path)),
    request_body = ExternalRunRequest,
    responses((status = 200, description = "The run, queued", body = ExternalRunStarted),
        (status = 400, description = "The graph cannot run with these inputs", body = ErrorBody),
        (status = 401, description = "Missing, unknown, suspended or revoked key", body = ErrorBody),
        (status = 402, description = "No credits left", body = ErrorBody),
        (status = 403, description = "The key lacks EXECUTE_GRAPH", body = ErrorBody),
        (status = 404, description = "No such graph or version", body = ErrorBody),
        (status = 422, description = "Bad body or version", body = ErrorBody)),
    security(("APIKeyHeader" = [])))]
pub(crate) async fn external_execute_graph(
    State(state): State<AppState>,
    key: KeyHolder<scope::ExecuteGraph>,
    Path((graph_id, graph_version)): Path<(String, String)>,
    extract::Json(body): extract::Json<ExternalRunRequest>,
) -> ApiResult<Committed<Json<ExternalRunStarted>>> {
    let graph_id = parse_id(&graph_id, "Graph")?;
    let version = int_path(&graph_version, "graph_version")?;
    let request = RunRequest {
        user_id: key.user_id,
        graph_id,
        version: Some(version),
        inputs: body.node_input,
        preset_id: None,
        credentials: Map::new(),
    };
    let (outcome, run) = runs::start_run(&state, &key.ctx, request).await?;
    let id = run.id.ok_or_else(|| ApiError::not_found("Graph not found"))?;
    Ok(state.answer(&outcome, Json(ExternalRunStarted { id })).await)
}

/// One node execution of a run, as the external API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ExternalNodeOutput {
    /// The graph node.
    node_id: String,
    /// Its input, pin by pin.
    #[schema(value_type = Object)]
    input: Value,
    /// Its outputs: each pin's values in yield order.
    #[schema(value_type = Object)]
    output: Value,
}

/// Where a run stands and what it produced.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ExternalRunResults {
    /// The run.
    execution_id: Uuid,
    /// Where it stands.
    status: ExecutionStatus,
    /// Its node executions, oldest queued first.
    nodes: Vec<ExternalNodeOutput>,
    /// Once COMPLETED: one `{output name: value}` per value each output got; else null.
    #[schema(value_type = Option<Vec<Object>>)]
    output: Option<Vec<Map<String, Value>>>,
}

/// A run's node executions and, once it has completed, its outputs.
#[utoipa::path(get, path = "/external-api/v1/graphs/{graph_id}/executions/{graph_exec_id}/results", operation_id = "getExternalExecutionResults", tag = "external",
    params(("graph_id" = String, Path), ("graph_exec_id" = String, Path)),
    responses((status = 200, description = "The run's results", body = ExternalRunResults),
        (status = 401, description = "Missing, unknown, suspended or revoked key", body = ErrorBody),
        (status = 403, description = "The key lacks READ_GRAPH", body = ErrorBody),
        (status = 404, description = "No such run of this graph", body = ErrorBody)),
    security(("APIKeyHeader" = [])))]
pub(crate) async fn external_execution_results(
    State(state): State<AppState>,
    key: KeyHolder<scope::ReadGraph>,
    Path((graph_id, graph_exec_id)): Path<(String, String)>,
) -> ApiResult<Json<ExternalRunResults>> {
    let graph_id = parse_id(&graph_id, "Graph")?;
    let execution_id = parse_id(&graph_exec_id, "Execution")?;
    let run = execution_views::get_execution(state.pool(), key.user_id, execution_id).await?;
    let run = run
        .filter(|r| r.execution.meta.graph_id == graph_id)
        .ok_or_else(|| ApiError::not_found("Execution not found"))?;
    let status = run.execution.meta.status;
    let nodes = run
        .node_executions
        .into_iter()
        .map(|n| ExternalNodeOutput { node_id: n.node_id, input: n.input_data, output: n.output_data })
        .collect();
    let output = (status == ExecutionStatus::Completed).then(|| {
        let mut values = Vec::new();
        for (name, got) in &run.execution.outputs {
            for value in got.as_array().into_iter().flatten() {
                values.push(Map::from_iter([(name.clone(), value.clone())]));
            }
        }
        values
    });
    Ok(Json(ExternalRunResults { execution_id, status, nodes, output }))
}
