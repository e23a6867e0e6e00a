//! Graph executions as AutoGPT serves them (`GraphExecutionMeta`,
//! `GraphExecution`, `GraphExecutionWithNodes`, `NodeExecutionResult`), read
//! from the executions read model.

use chrono::{DateTime, Utc};
use domain::execution::ExecutionStatus;
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::query::{Pagination, QueryError};

/// Run statistics (AutoGPT's `Stats`); times in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Stats {
    /// Credits spent.
    pub cost: i64,
    /// Wall time from start to end (or to now).
    pub duration: f64,
    /// CPU time (not measured: equals `node_exec_time`).
    pub duration_cpu_only: f64,
    /// Time spent running nodes (not measured yet: 0).
    pub node_exec_time: f64,
    /// CPU time spent running nodes (not measured yet: 0).
    pub node_exec_time_cpu_only: f64,
    /// Node executions that ran.
    pub node_exec_count: i64,
    /// Node executions that failed.
    pub node_error_count: i64,
    /// Why the run failed.
    pub error: Option<String>,
    /// AI summary of the run (never produced here).
    pub activity_status: Option<String>,
    /// AI score of the run (never produced here).
    pub correctness_score: Option<f64>,
}

/// A run without its outputs and node executions.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct GraphExecutionMeta {
    /// The run.
    pub id: Uuid,
    /// Who ran it.
    pub user_id: Uuid,
    /// The graph.
    pub graph_id: Uuid,
    /// The graph version.
    pub graph_version: i32,
    /// The graph inputs.
    #[schema(value_type = Object)]
    pub inputs: Map<String, Value>,
    /// Credentials per input (none are taken yet).
    #[schema(value_type = Option<Object>, required = true)]
    pub credential_inputs: Option<Value>,
    /// Per-node input overrides (none yet).
    #[schema(value_type = Option<Object>, required = true)]
    pub nodes_input_masks: Option<Value>,
    /// The preset it was started from.
    #[schema(required = true)]
    pub preset_id: Option<Uuid>,
    /// Where it stands.
    pub status: ExecutionStatus,
    /// When a worker started it.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// Shared publicly.
    pub is_shared: bool,
    /// The public share token.
    pub share_token: Option<String>,
    /// Statistics, once started.
    #[schema(required = true)]
    pub stats: Option<Stats>,
}

/// A run with its outputs by AgentOutput name.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct GraphExecution {
    /// Everything of the meta.
    #[serde(flatten)]
    pub meta: GraphExecutionMeta,
    /// Every value each output was given, by output name.
    #[schema(value_type = Object)]
    pub outputs: Map<String, Value>,
}

/// A run with its node executions, oldest queued first.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct GraphExecutionWithNodes {
    /// The run and its outputs.
    #[serde(flatten)]
    pub execution: GraphExecution,
    /// Its node executions.
    pub node_executions: Vec<NodeExecutionResult>,
}

/// One node execution.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct NodeExecutionResult {
    /// Who ran it.
    pub user_id: Uuid,
    /// The graph.
    pub graph_id: Uuid,
    /// The graph version.
    pub graph_version: i32,
    /// The run.
    pub graph_exec_id: Uuid,
    /// This node execution.
    pub node_exec_id: Uuid,
    /// The graph node.
    pub node_id: String,
    /// Its block.
    pub block_id: String,
    /// Where it stands.
    pub status: ExecutionStatus,
    /// Its input, pin by pin.
    #[schema(value_type = Object)]
    pub input_data: Value,
    /// Its outputs: each pin's values in yield order.
    #[schema(value_type = Object)]
    pub output_data: Value,
    /// When it was created.
    pub add_time: DateTime<Utc>,
    /// When it was queued.
    pub queue_time: Option<DateTime<Utc>>,
    /// When it began to run.
    pub start_time: Option<DateTime<Utc>>,
    /// When it ended.
    pub end_time: Option<DateTime<Utc>>,
    /// What its model calls cost (`llm_call_count`, `input_token_count`,
    /// `output_token_count`); absent when it made none.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub stats: Option<Value>,
}

/// One page of a graph's runs.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct GraphExecutionsPaginated {
    /// The runs, newest first.
    pub executions: Vec<GraphExecutionMeta>,
    /// Where the page is.
    pub pagination: Pagination,
}

const SELECT: &str = "SELECT id, user_id, graph_id, graph_version, preset_id, status, inputs, outputs, created_at, \
     started_at, ended_at, node_exec_count, node_error_count, error, share_token FROM rm_graph_executions";

fn status_of(text: &str) -> ExecutionStatus {
    serde_json::from_value(Value::String(text.to_owned())).unwrap_or(ExecutionStatus::Failed)
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

impl Stats {
    /// The statistics of a run that started at `started_at` (none before
    /// it starts); a run still going counts its duration up to now.
    fn of(
        started_at: Option<DateTime<Utc>>,
        ended_at: Option<DateTime<Utc>>,
        node_exec_count: i64,
        node_error_count: i64,
        error: Option<&String>,
    ) -> Option<Self> {
        let start = started_at?;
        let end = ended_at.unwrap_or_else(Utc::now);
        Some(Self {
            cost: 0,
            duration: (end - start).num_microseconds().unwrap_or(0).max(0) as f64 / 1e6,
            duration_cpu_only: 0.0,
            node_exec_time: 0.0,
            node_exec_time_cpu_only: 0.0,
            node_exec_count,
            node_error_count,
            error: error.cloned(),
            activity_status: None,
            correctness_score: None,
        })
    }
}

fn execution_of(row: &PgRow) -> Result<GraphExecution, sqlx::Error> {
    let status = status_of(row.try_get("status")?);
    let started_at: Option<DateTime<Utc>> = row.try_get("started_at")?;
    let ended_at: Option<DateTime<Utc>> = row.try_get("ended_at")?;
    let error: Option<String> = row.try_get("error")?;
    let count = |column: &str| i64::from(row.try_get::<i32, _>(column).unwrap_or(0));
    let stats = Stats::of(started_at, ended_at, count("node_exec_count"), count("node_error_count"), error.as_ref());
    let share_token: Option<Uuid> = row.try_get("share_token")?;
    let meta = GraphExecutionMeta {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        graph_id: row.try_get("graph_id")?,
        graph_version: row.try_get("graph_version")?,
        inputs: object(row.try_get("inputs")?),
        credential_inputs: None,
        nodes_input_masks: None,
        preset_id: row.try_get("preset_id")?,
        status,
        started_at,
        ended_at,
        is_shared: share_token.is_some(),
        share_token: share_token.map(|t| t.to_string()),
        stats,
    };
    Ok(GraphExecution { meta, outputs: object(row.try_get("outputs")?) })
}

/// A user's runs, newest first (the first 250, as AutoGPT lists them).
pub async fn list_executions(pool: &PgPool, user_id: Uuid) -> Result<Vec<GraphExecutionMeta>, QueryError> {
    let rows =
        sqlx::query(&format!("{SELECT} WHERE user_id = $1 AND NOT is_deleted ORDER BY created_at DESC, id LIMIT 250"))
            .bind(user_id)
            .fetch_all(pool)
            .await?;
    Ok(rows.iter().map(|r| execution_of(r).map(|e| e.meta)).collect::<Result<_, _>>()?)
}

/// One page of the runs of one of the user's graphs, newest first.
pub async fn list_graph_executions(
    pool: &PgPool,
    user_id: Uuid,
    graph_id: Uuid,
    page: i64,
    page_size: i64,
) -> Result<GraphExecutionsPaginated, QueryError> {
    let filter = "WHERE user_id = $1 AND graph_id = $2 AND NOT is_deleted";
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM rm_graph_executions {filter}"))
        .bind(user_id)
        .bind(graph_id)
        .fetch_one(pool)
        .await?;
    let rows = sqlx::query(&format!("{SELECT} {filter} ORDER BY created_at DESC, id LIMIT $3 OFFSET $4"))
        .bind(user_id)
        .bind(graph_id)
        .bind(page_size)
        .bind(Pagination::offset(page, page_size))
        .fetch_all(pool)
        .await?;
    let executions = rows.iter().map(|r| execution_of(r).map(|e| e.meta)).collect::<Result<_, _>>()?;
    Ok(GraphExecutionsPaginated { executions, pagination: Pagination::of(total, page, page_size) })
}

/// One of the user's runs with its node executions.
pub async fn get_execution(
    pool: &PgPool,
    user_id: Uuid,
    execution_id: Uuid,
) -> Result<Option<GraphExecutionWithNodes>, QueryError> {
    let row = sqlx::query(&format!("{SELECT} WHERE id = $1 AND user_id = $2 AND NOT is_deleted"))
        .bind(execution_id)
        .bind(user_id)
        .fetch_optional(pool)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let execution = execution_of(&row)?;
    let nodes = sqlx::query(
        "SELECT id, node_id, block_id, status, input_data, output_data, add_time, queue_time, start_time, end_time, \
           stats FROM rm_node_executions WHERE execution_id = $1 ORDER BY queue_time NULLS LAST, add_time, seq",
    )
    .bind(execution_id)
    .fetch_all(pool)
    .await?;
    let meta = &execution.meta;
    let node_executions = nodes
        .iter()
        .map(|n| {
            Ok(NodeExecutionResult {
                user_id: meta.user_id,
                graph_id: meta.graph_id,
                graph_version: meta.graph_version,
                graph_exec_id: meta.id,
                node_exec_id: n.try_get("id")?,
                node_id: n.try_get("node_id")?,
                block_id: n.try_get("block_id")?,
                status: status_of(n.try_get("status")?),
                input_data: n.try_get("input_data")?,
                output_data: n.try_get("output_data")?,
                add_time: n.try_get("add_time")?,
                queue_time: n.try_get("queue_time")?,
                start_time: n.try_get("start_time")?,
                end_time: n.try_get("end_time")?,
                stats: n.try_get("stats")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Some(GraphExecutionWithNodes { execution, node_executions }))
}

impl GraphExecutionMeta {
    /// The meta of a run as a command's own state has it (no read model
    /// involved): what starting or stopping a run answers.
    pub fn of_state(state: &domain::execution::GraphExecution) -> Self {
        let count =
            |status: ExecutionStatus| state.node_executions.iter().filter(|n| n.status == status).count() as i64;
        let (failed, ran) = (count(ExecutionStatus::Failed), count(ExecutionStatus::Completed));
        let stats = Stats::of(state.started_at, state.ended_at, ran + failed, failed, state.error.as_ref());
        Self {
            id: state.id.unwrap_or_default(),
            user_id: state.user_id,
            graph_id: state.graph_id,
            graph_version: state.graph_version,
            inputs: state.inputs.clone(),
            credential_inputs: None,
            nodes_input_masks: None,
            preset_id: state.preset_id,
            status: state.status.unwrap_or(ExecutionStatus::Queued),
            started_at: state.started_at,
            ended_at: state.ended_at,
            is_shared: false,
            share_token: None,
            stats,
        }
    }
}

/// A run as anyone with its share token sees it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SharedExecutionResponse {
    /// The run.
    pub id: Uuid,
    /// Its graph's name.
    pub graph_name: String,
    /// Its graph's description.
    #[schema(required = true)]
    pub graph_description: Option<String>,
    /// Where it stands.
    pub status: ExecutionStatus,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// Its outputs by output name.
    #[schema(value_type = Object)]
    pub outputs: Map<String, Value>,
}

/// The shared run with this token, if any.
pub async fn shared_execution(pool: &PgPool, share_token: Uuid) -> Result<Option<SharedExecutionResponse>, QueryError> {
    let row = sqlx::query(
        "SELECT e.id, e.status, e.created_at, e.outputs, g.name AS graph_name, g.model->>'description' AS description \
         FROM rm_graph_executions e LEFT JOIN rm_graphs g ON g.id = e.graph_id AND g.version = e.graph_version \
         WHERE e.share_token = $1 AND NOT e.is_deleted",
    )
    .bind(share_token)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(SharedExecutionResponse {
        id: row.try_get("id")?,
        graph_name: row.try_get::<Option<String>, _>("graph_name")?.unwrap_or_default(),
        graph_description: row.try_get("description")?,
        status: status_of(row.try_get("status")?),
        created_at: row.try_get("created_at")?,
        outputs: object(row.try_get("outputs")?),
    }))
}

impl NodeExecutionResult {
    /// A node execution as a run's own state has it (for pushing it live).
    pub fn of_state(run: &domain::execution::GraphExecution, node: &domain::execution::NodeExecution) -> Self {
        let input = if node.status == ExecutionStatus::Incomplete { &node.received } else { &node.input_data };
        Self {
            user_id: run.user_id,
            graph_id: run.graph_id,
            graph_version: run.graph_version,
            graph_exec_id: run.id.unwrap_or_default(),
            node_exec_id: node.node_exec_id,
            node_id: node.node_id.clone(),
            block_id: node.block_id.clone(),
            status: node.status,
            input_data: Value::Object(input.clone()),
            output_data: Value::Object(node.output_data.clone()),
            add_time: node.add_time,
            queue_time: node.queue_time,
            start_time: node.start_time,
            end_time: node.end_time,
            stats: domain::execution::llm_stats(&node.answers),
        }
    }
}
