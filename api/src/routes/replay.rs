//! Exact replay of an ended run from its recording, a fork of it from any
//! node, and its timeline step by step. Only the run's owner, or an admin,
//! may see or re-run it; anyone else is told it does not exist.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use commands::services::ReplayRequest;
use domain::execution::replay::{Divergence, ForkAt};
use domain::execution::NodeExecution;
use projections::execution_views::GraphExecutionMeta;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{at_most_chars, parse_id, PageQuery};
use crate::consistency::Committed;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{parse_json, Query};
use crate::state::{AppState, Caller};

/// Longest node id a fork may name.
const MAX_NODE_ID_CHARS: usize = 255;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/graphs/{graph_id}/executions/{graph_exec_id}/replay", post(replay_execution))
        .route("/graphs/{graph_id}/executions/{graph_exec_id}/fork", post(fork_execution))
        .route("/graphs/{graph_id}/executions/{graph_exec_id}/timeline", get(execution_timeline))
}

/// Body of a replay (all of it optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Replay {
    /// The graph version to replay the recording on; the recorded run's
    /// when absent. Another version shows where the recording stops
    /// fitting it.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 2147483647)]
    graph_version: Option<i32>,
}

/// Body of a fork.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Fork {
    /// The node to run live from; every node upstream of it is replayed
    /// from the recording, it and every node downstream run live.
    #[schema(min_length = 1, max_length = 255)]
    node_id: String,
    /// Values for its input pins, in place of what was recorded.
    #[serde(default)]
    #[schema(value_type = Object)]
    inputs: Map<String, Value>,
    /// As for a replay.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 2147483647)]
    graph_version: Option<i32>,
}

/// Replay an ended run: a new run of the same graph, inputs and
/// credentials in which every block runs again on the answers the recording
/// holds, calling nothing outside and charging nothing. It ends FAILED,
/// saying at which node, where the graph or a block no longer agrees with
/// the recording.
#[utoipa::path(post, path = "/api/graphs/{graph_id}/executions/{graph_exec_id}/replay", operation_id = "postV1Replay graph execution", tag = "graphs",
    params(("graph_id" = String, Path), ("graph_exec_id" = String, Path)),
    request_body(content = Replay, content_type = "application/json", description = "May be omitted"),
    responses((status = 200, description = "The replay, queued", body = GraphExecutionMeta),
        (status = 400, description = "The graph version cannot run with the recorded inputs (node_errors)", body = ErrorBody),
        (status = 404, description = "No such run the caller owns (or, for an admin, any), or no such graph version", body = ErrorBody),
        (status = 409, description = "The run has not ended", body = ErrorBody)))]
pub(crate) async fn replay_execution(
    State(state): State<AppState>,
    caller: Caller,
    Path((graph_id, graph_exec_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Committed<axum::Json<GraphExecutionMeta>>> {
    let body: Replay = if body.iter().all(u8::is_ascii_whitespace) { Replay::default() } else { parse_json(&body)? };
    queue(&state, &caller, (&graph_id, &graph_exec_id), body.graph_version, None).await
}

/// Fork an ended run from a node: a new run in which the nodes upstream of
/// it re-run on the recording (no calls, no charge) and it and every node
/// after it run live, it on the inputs given.
#[utoipa::path(post, path = "/api/graphs/{graph_id}/executions/{graph_exec_id}/fork", operation_id = "postV1Fork graph execution", tag = "graphs",
    params(("graph_id" = String, Path), ("graph_exec_id" = String, Path)),
    request_body(content = Fork, content_type = "application/json"),
    responses((status = 200, description = "The fork, queued", body = GraphExecutionMeta),
        (status = 400, description = "The graph cannot run with these inputs (node_errors)", body = ErrorBody),
        (status = 404, description = "No such run the caller owns (or, for an admin, any), or no such graph version", body = ErrorBody),
        (status = 409, description = "The run has not ended", body = ErrorBody),
        (status = 422, description = "No such node in the graph version, or a malformed body", body = ErrorBody)))]
pub(crate) async fn fork_execution(
    State(state): State<AppState>,
    caller: Caller,
    Path((graph_id, graph_exec_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Committed<axum::Json<GraphExecutionMeta>>> {
    let body: Fork = parse_json(&body)?;
    at_most_chars("node_id", &body.node_id, MAX_NODE_ID_CHARS)?;
    let fork = ForkAt { node_id: body.node_id, inputs: body.inputs };
    queue(&state, &caller, (&graph_id, &graph_exec_id), body.graph_version, Some(fork)).await
}

async fn queue(
    state: &AppState,
    caller: &Caller,
    (graph_id, graph_exec_id): (&str, &str),
    graph_version: Option<i32>,
    fork: Option<ForkAt>,
) -> ApiResult<Committed<axum::Json<GraphExecutionMeta>>> {
    let graph_id = parse_id(graph_id, "Graph")?;
    let execution_id = parse_id(graph_exec_id, "Execution")?;
    if let Some(version) = graph_version {
        super::in_range("graph_version", i64::from(version), 1, i64::from(i32::MAX))?;
    }
    let request = ReplayRequest {
        caller: caller.user.user_id,
        admin: caller.user.is_admin,
        graph_id,
        execution_id,
        graph_version,
        fork,
    };
    let (outcome, run) = state.commands.replay_run(&caller.ctx, request).await?;
    super::executions::offer(state, &outcome, &run);
    Ok(state.answer(&outcome, axum::Json(GraphExecutionMeta::of_state(&run))).await)
}

/// One step of a run: a node execution, what it ran on and gave, and
/// whether it ran live or re-ran its recording.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TimelineStep {
    /// The node execution.
    node_exec_id: Uuid,
    /// Its graph node.
    node_id: String,
    /// Its block.
    block_id: String,
    /// The block's name.
    block_name: String,
    /// Where it stands.
    status: String,
    /// What it ran on.
    #[schema(value_type = Object)]
    input_data: Map<String, Value>,
    /// What it yielded, by pin.
    #[schema(value_type = Object)]
    output_data: Map<String, Value>,
    /// When it began.
    start_time: Option<DateTime<Utc>>,
    /// When it ended.
    end_time: Option<DateTime<Utc>>,
    /// Seconds from its start to its end.
    duration: Option<f64>,
    /// Credits its block and its model tokens cost (0 when recorded).
    cost: i64,
    /// Whether it re-ran a recorded node execution instead of running live.
    recorded: bool,
    /// The recorded node execution it re-ran.
    replayed_from: Option<Uuid>,
    /// Its requests to the outside world and their answers, in order
    /// (secrets sent are masked where an answer echoed them).
    #[schema(value_type = Vec<Object>)]
    calls: Vec<Value>,
}

/// A run as its steps, for debugging and stepping through.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Timeline {
    /// The run.
    graph_exec_id: Uuid,
    /// Its graph.
    graph_id: Uuid,
    /// The graph version it ran.
    graph_version: i32,
    /// Where it stands.
    status: String,
    /// The run it replays or forks.
    replayed_from: Option<Uuid>,
    /// For a fork: the node it ran live from.
    forked_at: Option<String>,
    /// Where, as a replay, it stopped agreeing with its recording.
    #[schema(value_type = Option<Object>)]
    diverged: Option<Divergence>,
    /// How many steps it has in all.
    total_steps: usize,
    /// This page of its steps, in the order they were created.
    steps: Vec<TimelineStep>,
}

/// A run's steps in order: each node execution with its inputs, outputs,
/// duration, cost, its calls out, and whether it ran live or re-ran its
/// recording. Read from the run's own stream, so it is never behind.
#[utoipa::path(get, path = "/api/graphs/{graph_id}/executions/{graph_exec_id}/timeline", operation_id = "getV1Get execution timeline", tag = "graphs",
    params(("graph_id" = String, Path), ("graph_exec_id" = String, Path),
        ("page" = Option<i64>, Query, minimum = 1, maximum = 1000),
        ("page_size" = Option<i64>, Query, minimum = 1, maximum = 100)),
    responses((status = 200, description = "The run's steps", body = Timeline),
        (status = 404, description = "No such run the caller owns (or, for an admin, any)", body = ErrorBody)))]
pub(crate) async fn execution_timeline(
    State(state): State<AppState>,
    caller: Caller,
    Path((graph_id, graph_exec_id)): Path<(String, String)>,
    Query(q): Query<PageQuery<100>>,
) -> ApiResult<axum::Json<Timeline>> {
    let q = q.checked()?;
    let graph_id = parse_id(&graph_id, "Graph")?;
    let execution_id = parse_id(&graph_exec_id, "Execution")?;
    let (run, _) = state.commands.load_execution(execution_id).await?;
    let visible = caller.user.is_admin || run.user_id == caller.user.user_id;
    if run.id.is_none() || run.deleted || run.graph_id != graph_id || !visible {
        return Err(ApiError::not_found("Execution not found"));
    }
    let rules = state.commands.credit_rules();
    let skip = usize::try_from((q.page - 1) * q.page_size).unwrap_or(usize::MAX);
    let take = usize::try_from(q.page_size).unwrap_or(0);
    let steps = run.node_executions.iter().skip(skip).take(take).map(|n| step(n, rules)).collect();
    Ok(axum::Json(Timeline {
        graph_exec_id: execution_id,
        graph_id,
        graph_version: run.graph_version,
        status: run.status.map_or("QUEUED", |s| s.as_str()).to_owned(),
        replayed_from: run.replay.as_ref().map(|r| r.execution_id),
        forked_at: run.replay.as_ref().and_then(|r| r.fork.as_ref()).map(|f| f.node_id.clone()),
        diverged: run.diverged.clone(),
        total_steps: run.node_executions.len(),
        steps,
    }))
}

fn step(node: &NodeExecution, rules: &domain::credit::CreditRules) -> TimelineStep {
    let block = domain::blocks::find(&node.block_id);
    let recorded = node.replayed_from.is_some();
    // As charged: the block's price at the start, each model call's tokens
    // once it answered.
    let tokens: i64 =
        node.answers.iter().filter_map(domain::execution::tokens_of).map(|t| rules.cost_of_tokens(t)).sum();
    let cost = if recorded { 0 } else { block.map_or(0, |b| b.run_cost(&node.input_data)) + tokens };
    let duration =
        node.start_time.zip(node.end_time).map(|(s, e)| (e - s).num_microseconds().unwrap_or(0) as f64 / 1e6);
    let calls = node
        .requests
        .iter()
        .zip(&node.answers)
        .map(|(request, answer)| serde_json::json!({"request": request, "answer": answer}))
        .collect();
    TimelineStep {
        node_exec_id: node.node_exec_id,
        node_id: node.node_id.clone(),
        block_id: node.block_id.clone(),
        block_name: block.map_or("UnknownBlock", |b| b.name).to_owned(),
        status: node.status.as_str().to_owned(),
        input_data: node.input_data.clone(),
        output_data: node.output_data.clone(),
        start_time: node.start_time,
        end_time: node.end_time,
        duration,
        cost,
        recorded,
        replayed_from: node.replayed_from,
        calls,
    }
}
