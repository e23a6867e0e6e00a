//! Presets: saved inputs for a graph, listed per graph, changed, deleted,
//! and run with inputs merged over them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use commands::services::{NewPreset, PresetSource};
use commands::Outcome;
use domain::preset::PresetPatch;
use projections::execution_views::GraphExecutionMeta;
use projections::presets::{self, PresetPage, PresetView};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{default_page, parse_id};
use crate::consistency::{reads, Committed};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Query};
use crate::state::{AppState, Caller};

pub(super) fn router(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .route("/library/presets", get(list_presets).post(create_preset))
        .route("/library/presets/{preset_id}", get(get_preset).patch(update_preset).delete(delete_preset))
        .route("/library/presets/{preset_id}/execute", post(execute_preset));
    reads(routes, state, &[presets::NAME, projections::webhooks::NAME])
}

fn default_page_size() -> i64 {
    10
}

/// Query of `GET /api/library/presets`.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    graph_id: String,
    #[serde(default = "default_page")]
    page: i64,
    #[serde(default = "default_page_size")]
    page_size: i64,
}

/// The caller's presets of a graph, newest first.
#[utoipa::path(get, path = "/api/library/presets", operation_id = "getV2List presets", tag = "presets",
    params(("graph_id" = String, Query), ("page" = Option<i64>, Query, minimum = 1, maximum = 1000),
        ("page_size" = Option<i64>, Query, minimum = 1, maximum = 100)),
    responses((status = 200, description = "One page", body = PresetPage), (status = 422, description = "Bad query", body = ErrorBody)))]
pub(crate) async fn list_presets(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<PresetPage>> {
    super::check_page(q.page, q.page_size)?;
    // An id that names no graph has no presets.
    let Ok(graph_id) = Uuid::parse_str(&q.graph_id) else {
        return Ok(axum::Json(PresetPage {
            presets: vec![],
            pagination: projections::query::Pagination::of(0, q.page, q.page_size),
        }));
    };
    let page = presets::list_presets(state.pool(), caller.user.user_id, graph_id, q.page, q.page_size).await?;
    Ok(axum::Json(super::webhooks::page_with_ingress_urls(page)))
}

fn yes() -> bool {
    true
}

/// Body of `POST /api/library/presets`: inputs for a graph version, or the
/// inputs of one of the caller's runs.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum CreatePreset {
    /// Given inputs (AutoGPT's `LibraryAgentPresetCreatable`).
    #[schema(title = "LibraryAgentPresetCreatable")]
    Inputs {
        graph_id: String,
        #[schema(minimum = 1, maximum = 2147483647)]
        graph_version: i32,
        #[schema(value_type = Object)]
        inputs: Map<String, Value>,
        #[schema(value_type = Object)]
        credentials: Map<String, Value>,
        name: String,
        description: String,
        #[serde(default = "yes")]
        is_active: bool,
        /// Triggered presets are not served here: accepted and ignored.
        #[serde(default)]
        #[allow(dead_code)]
        webhook_id: Option<String>,
    },
    /// A run's inputs (`LibraryAgentPresetCreatableFromGraphExecution`).
    #[schema(title = "LibraryAgentPresetCreatableFromGraphExecution")]
    FromRun {
        graph_execution_id: String,
        name: String,
        description: String,
        #[serde(default = "yes")]
        is_active: bool,
    },
}

async fn answer_preset(state: &AppState, outcome: &Outcome, user: Uuid, id: Uuid) -> Committed<axum::Json<PresetView>> {
    let read = async {
        Ok(presets::get_preset(state.pool(), user, id).await?.map(super::webhooks::with_ingress_url).map(axum::Json))
    };
    state.answer_read(outcome, read, async { Ok(None) }).await
}

/// Save a preset.
#[utoipa::path(post, path = "/api/library/presets", operation_id = "postV2Create a new preset", tag = "presets",
    request_body = CreatePreset,
    responses((status = 200, description = "The preset", body = PresetView),
        (status = 404, description = "No such graph, version or run", body = ErrorBody),
        (status = 429, description = "Quota reached: the caller holds as many as allowed; delete some first", body = ErrorBody)))]
pub(crate) async fn create_preset(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<CreatePreset>,
) -> ApiResult<Committed<axum::Json<PresetView>>> {
    let preset = match body {
        CreatePreset::Inputs { graph_id, graph_version, inputs, credentials, name, description, is_active, .. } => {
            let graph_id = parse_id(&graph_id, "Graph")?;
            let source = PresetSource::Inputs { graph_id, graph_version, inputs, credentials };
            NewPreset { source, name, description, is_active }
        }
        CreatePreset::FromRun { graph_execution_id, name, description, is_active } => {
            let source = PresetSource::Run(parse_id(&graph_execution_id, "Graph execution")?);
            NewPreset { source, name, description, is_active }
        }
    };
    let user = caller.user.user_id;
    let (outcome, id) = state.commands.create_preset(&caller.ctx, user, preset).await?;
    Ok(answer_preset(&state, &outcome, user, id).await)
}

/// One of the caller's presets.
#[utoipa::path(get, path = "/api/library/presets/{preset_id}", operation_id = "getV2Get a specific preset", tag = "presets",
    params(("preset_id" = String, Path)),
    responses((status = 200, description = "The preset", body = PresetView), (status = 404, description = "Not found", body = ErrorBody)))]
pub(crate) async fn get_preset(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<PresetView>> {
    let id = parse_id(&id, "Preset")?;
    let found = presets::get_preset(state.pool(), caller.user.user_id, id).await?;
    found.map(super::webhooks::with_ingress_url).map(axum::Json).ok_or_else(|| ApiError::not_found("Preset not found"))
}

/// Change a preset.
#[utoipa::path(patch, path = "/api/library/presets/{preset_id}", operation_id = "patchV2Update an existing preset", tag = "presets",
    params(("preset_id" = String, Path)), request_body = PresetPatch,
    responses((status = 200, description = "The preset", body = PresetView), (status = 404, description = "Not found", body = ErrorBody)))]
pub(crate) async fn update_preset(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(patch): Json<PresetPatch>,
) -> ApiResult<Committed<axum::Json<PresetView>>> {
    let id = parse_id(&id, "Preset")?;
    let user = caller.user.user_id;
    let outcome = state.commands.update_preset(&caller.ctx, user, id, patch).await?;
    Ok(answer_preset(&state, &outcome, user, id).await)
}

/// Delete a preset.
#[utoipa::path(delete, path = "/api/library/presets/{preset_id}", operation_id = "deleteV2Delete a preset", tag = "presets",
    params(("preset_id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Not found", body = ErrorBody)))]
pub(crate) async fn delete_preset(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Committed<StatusCode>> {
    let id = parse_id(&id, "Preset")?;
    let outcome = state.commands.delete_preset(&caller.ctx, caller.user.user_id, id).await?;
    Ok(state.answer(&outcome, StatusCode::NO_CONTENT).await)
}

/// Body of `POST /api/library/presets/{id}/execute`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = Body_postV2Execute_a_preset)]
pub(crate) struct ExecutePreset {
    /// Inputs merged over the preset's.
    #[serde(default)]
    #[schema(value_type = Object)]
    inputs: Map<String, Value>,
    /// Credentials merged over the preset's, by credentials input name.
    #[serde(default)]
    #[schema(value_type = Object)]
    credential_inputs: Map<String, Value>,
}

/// Run a preset, the body's inputs merged over the preset's.
#[utoipa::path(post, path = "/api/library/presets/{preset_id}/execute", operation_id = "postV2Execute a preset", tag = "presets",
    params(("preset_id" = String, Path)), request_body = ExecutePreset,
    responses((status = 200, description = "The run, queued", body = GraphExecutionMeta),
        (status = 400, description = "The graph cannot run with these inputs", body = ErrorBody),
        (status = 402, description = "No credits left", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody)))]
pub(crate) async fn execute_preset(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<ExecutePreset>,
) -> ApiResult<Committed<axum::Json<GraphExecutionMeta>>> {
    let id = parse_id(&id, "Preset")?;
    let user = caller.user.user_id;
    super::executions::ensure_credits(&state, user).await?;
    let (outcome, run) =
        state.commands.execute_preset(&caller.ctx, user, id, body.inputs, body.credential_inputs).await?;
    Ok(state.answer(&outcome, axum::Json(GraphExecutionMeta::of_state(&run))).await)
}
