//! Cron schedules of graph runs: create, list (per graph or all), delete.

use axum::extract::{Path, State};
use axum::routing::{delete, get};
use axum::Router;
use commands::services::ScheduleRequest;
use projections::schedules::{self, GraphExecutionJobInfo};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::parse_id;
use crate::consistency::{reads, Committed};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Json;
use crate::state::{AppState, Caller};

pub(super) fn router(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .route("/graphs/{graph_id}/schedules", get(list_graph_schedules).post(create_schedule))
        .route("/schedules", get(list_schedules))
        .route("/schedules/{schedule_id}", delete(delete_schedule));
    reads(routes, state, &[schedules::NAME])
}

/// Body of `POST /api/graphs/{graph_id}/schedules`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ScheduleCreationRequest)]
pub(crate) struct ScheduleCreationRequest {
    /// The version to run; the graph's active one when absent.
    #[serde(default)]
    graph_version: Option<i32>,
    /// A name for the schedule.
    name: String,
    /// Five-field crontab expression (minute hour day month weekday).
    cron: String,
    /// Graph inputs of every run.
    #[schema(value_type = Object)]
    inputs: Map<String, Value>,
    /// Credentials per credentials field.
    #[serde(default)]
    #[schema(value_type = Object)]
    credentials: Map<String, Value>,
    /// IANA time zone of the expression; the user's own (else UTC) when
    /// absent.
    #[serde(default)]
    timezone: Option<String>,
}

/// Schedule runs of a graph. The cron expression and time zone are checked,
/// and so are the inputs: a schedule whose runs would be refused is
/// refused now.
#[utoipa::path(post, path = "/api/graphs/{graph_id}/schedules", operation_id = "postV1Create execution schedule", tag = "schedules",
    params(("graph_id" = String, Path, description = "ID of the graph to schedule")),
    request_body(content = ScheduleCreationRequest, content_type = "application/json"),
    responses((status = 200, description = "The schedule", body = GraphExecutionJobInfo),
        (status = 400, description = "The graph cannot run with these inputs (node_errors)", body = ErrorBody),
        (status = 404, description = "No such graph or version the caller may run", body = ErrorBody),
        (status = 429, description = "Quota reached: the caller holds as many as allowed; delete some first", body = ErrorBody)))]
pub(crate) async fn create_schedule(
    State(state): State<AppState>,
    caller: Caller,
    Path(graph_id): Path<String>,
    Json(body): Json<ScheduleCreationRequest>,
) -> ApiResult<Committed<axum::Json<GraphExecutionJobInfo>>> {
    let graph_id = parse_id(&graph_id, "Graph")?;
    let user_id = caller.user.user_id;
    let request = ScheduleRequest {
        user_id,
        graph_id,
        graph_version: body.graph_version,
        name: body.name,
        cron: body.cron,
        timezone: body.timezone,
        inputs: body.inputs,
        credentials: body.credentials,
    };
    let (outcome, schedule) = state.commands.create_schedule(&caller.ctx, request).await?;
    let Some(schedule_id) = schedule.id else { return Err(ApiError::not_found("Schedule not found")) };
    let pool = state.pool().clone();
    let read = async move { Ok(schedules::get_schedule(&pool, user_id, schedule_id).await?.map(axum::Json)) };
    let from_log = async { Ok(GraphExecutionJobInfo::from_state(&schedule, None).map(axum::Json)) };
    Ok(state.answer_read(&outcome, read, from_log).await)
}

/// The user's schedules of one graph.
#[utoipa::path(get, path = "/api/graphs/{graph_id}/schedules", operation_id = "getV1List execution schedules for a graph", tag = "schedules",
    params(("graph_id" = String, Path)),
    responses((status = 200, description = "The schedules", body = Vec<GraphExecutionJobInfo>)))]
pub(crate) async fn list_graph_schedules(
    State(state): State<AppState>,
    caller: Caller,
    Path(graph_id): Path<String>,
) -> ApiResult<axum::Json<Vec<GraphExecutionJobInfo>>> {
    let graph_id = parse_id(&graph_id, "Graph")?;
    Ok(axum::Json(schedules::list_schedules(state.pool(), caller.user.user_id, Some(graph_id)).await?))
}

/// All the user's schedules.
#[utoipa::path(get, path = "/api/schedules", operation_id = "getV1List execution schedules for a user", tag = "schedules",
    responses((status = 200, description = "The schedules", body = Vec<GraphExecutionJobInfo>)))]
pub(crate) async fn list_schedules(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<Vec<GraphExecutionJobInfo>>> {
    Ok(axum::Json(schedules::list_schedules(state.pool(), caller.user.user_id, None).await?))
}

/// Answer of deleting a schedule.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeletedSchedule {
    /// The deleted schedule's id.
    id: String,
}

/// Delete one of the user's schedules; it never fires again.
#[utoipa::path(delete, path = "/api/schedules/{schedule_id}", operation_id = "deleteV1Delete execution schedule", tag = "schedules",
    params(("schedule_id" = String, Path, description = "ID of the schedule to delete")),
    responses((status = 200, description = "Deleted", body = DeletedSchedule)))]
pub(crate) async fn delete_schedule(
    State(state): State<AppState>,
    caller: Caller,
    Path(schedule_id): Path<String>,
) -> ApiResult<Committed<axum::Json<DeletedSchedule>>> {
    let schedule_id = parse_id(&schedule_id, "Schedule")?;
    let outcome = state.commands.delete_schedule(&caller.ctx, caller.user.user_id, schedule_id).await?;
    Ok(state.answer(&outcome, axum::Json(DeletedSchedule { id: schedule_id.to_string() })).await)
}
