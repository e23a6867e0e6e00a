//! The executions read model (`rm_graph_executions`, `rm_node_executions`),
//! folded from the runs' streams; the views and queries live in
//! [`crate::execution_views`].

use domain::aggregate::Aggregate;
use domain::blocks::{self, BlockType};
use domain::execution::{ExecutionEvent, ExecutionStatus, GraphExecution};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::projector::{BoxFuture, ProjectionError, StreamProjector};

/// Builds the executions read model from `execution-<id>` streams.
pub struct ExecutionsProjector;

/// Name of the executions projection.
pub const NAME: &str = "executions";

impl StreamProjector for ExecutionsProjector {
    type Source = GraphExecution;
    const NAME: &'static str = NAME;
    const TABLES: &'static [&'static str] = &["rm_node_executions", "rm_graph_executions", "rm_reviews"];
    const BULK: bool = true;
    // A live batch of a few events goes event by event: its prepared
    // statements cost less than planning the batch statement.
    const BULK_FROM: usize = crate::projector::BULK_FROM;

    fn bulk(
        &self,
        events: &[(Uuid, ExecutionEvent)],
        args: &mut sqlx::postgres::PgArguments,
    ) -> Result<Option<(&'static str, usize)>, ProjectionError> {
        crate::execution_batch::statement(events, args)
    }

    fn apply<'a>(
        &'a self,
        id: Uuid,
        event: <GraphExecution as Aggregate>::Event,
        conn: &'a mut PgConnection,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply(id, event, conn))
    }
}

async fn apply(id: Uuid, event: ExecutionEvent, conn: &mut PgConnection) -> Result<(), ProjectionError> {
    match event {
        ExecutionEvent::ExecutionQueued {
            user_id, graph_id, graph_version, inputs, preset_id, starting, at, ..
        } => {
            sqlx::query(
                "INSERT INTO rm_graph_executions \
                 (id, user_id, graph_id, graph_version, preset_id, status, inputs, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, 'QUEUED', $6, $7, $7) ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(user_id)
            .bind(graph_id)
            .bind(graph_version)
            .bind(preset_id)
            .bind(Value::Object(inputs))
            .bind(at)
            .execute(&mut *conn)
            .await?;
            for node in starting {
                sqlx::query(
                    "INSERT INTO rm_node_executions \
                     (id, execution_id, node_id, block_id, status, input_data, add_time, queue_time) \
                     VALUES ($1, $2, $3, $4, 'QUEUED', $5, $6, $6) ON CONFLICT (id) DO NOTHING",
                )
                .bind(node.node_exec_id)
                .bind(id)
                .bind(&node.node_id)
                .bind(&node.block_id)
                .bind(Value::Object(node.input_data.clone()))
                .bind(at)
                .execute(&mut *conn)
                .await?;
                add_output(conn, id, &node.block_id, &node.input_data).await?;
            }
        }
        ExecutionEvent::ExecutionStarted { at, .. } => {
            sqlx::query(
                "UPDATE rm_graph_executions SET status = 'RUNNING', started_at = coalesce(started_at, $2), \
                 updated_at = $2 WHERE id = $1",
            )
            .bind(id)
            .bind(at)
            .execute(conn)
            .await?;
        }
        ExecutionEvent::ExecutionResumed { at, .. } => {
            sqlx::query(
                "UPDATE rm_node_executions SET status = 'QUEUED', start_time = NULL \
                 WHERE execution_id = $1 AND status = 'RUNNING'",
            )
            .bind(id)
            .execute(&mut *conn)
            .await?;
            sqlx::query("UPDATE rm_graph_executions SET updated_at = $2 WHERE id = $1")
                .bind(id)
                .bind(at)
                .execute(conn)
                .await?;
        }
        ExecutionEvent::NodeInputReceived { node_exec_id, node_id, block_id, pin, value, at } => {
            sqlx::query(
                "INSERT INTO rm_node_executions (id, execution_id, node_id, block_id, status, input_data, add_time) \
                 VALUES ($1, $2, $3, $4, 'INCOMPLETE', jsonb_build_object($5::text, $6::jsonb), $7) \
                 ON CONFLICT (id) DO UPDATE SET input_data = rm_node_executions.input_data || excluded.input_data",
            )
            .bind(node_exec_id)
            .bind(id)
            .bind(node_id)
            .bind(block_id)
            .bind(pin)
            .bind(value)
            .bind(at)
            .execute(conn)
            .await?;
        }
        ExecutionEvent::NodeExecutionQueued { node_exec_id, input_data, at } => {
            let block_id: Option<String> = sqlx::query_scalar(
                "UPDATE rm_node_executions SET status = 'QUEUED', input_data = $2, queue_time = $3 \
                 WHERE id = $1 RETURNING block_id",
            )
            .bind(node_exec_id)
            .bind(Value::Object(input_data.clone()))
            .bind(at)
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(block_id) = block_id {
                add_output(conn, id, &block_id, &input_data).await?;
            }
        }
        ExecutionEvent::NodeExecutionStarted { node_exec_id, at, .. } => {
            sqlx::query("UPDATE rm_node_executions SET status = 'RUNNING', start_time = $2 WHERE id = $1")
                .bind(node_exec_id)
                .bind(at)
                .execute(conn)
                .await?;
        }
        ExecutionEvent::NodeOutputProduced { node_exec_id, pin, value, .. } => {
            sqlx::query(
                "UPDATE rm_node_executions SET output_data = output_data || \
                 jsonb_build_object($2::text, coalesce(output_data -> $2, '[]'::jsonb) || jsonb_build_array($3::jsonb)) \
                 WHERE id = $1",
            )
            .bind(node_exec_id)
            .bind(pin)
            .bind(value)
            .execute(conn)
            .await?;
        }
        ExecutionEvent::NodeReviewRequested { .. }
        | ExecutionEvent::ExecutionPaused { .. }
        | ExecutionEvent::ExecutionReviewed { .. } => crate::reviews::apply(id, event, conn).await?,
        ExecutionEvent::NodeEffectAnswered { node_exec_id, answer, at, .. } => {
            // The answer's time, not the projection's: a rebuild gives the same row.
            crate::reviews::decided(node_exec_id, &answer, at, conn).await?;
            if let Some(stats) = domain::execution::llm_stats([&answer]) {
                sqlx::query(
                    "UPDATE rm_node_executions SET stats = jsonb_build_object( \
                       'llm_call_count', coalesce((stats->>'llm_call_count')::bigint, 0) + ($2->>'llm_call_count')::bigint, \
                       'input_token_count', coalesce((stats->>'input_token_count')::bigint, 0) \
                         + ($2->>'input_token_count')::bigint, \
                       'output_token_count', coalesce((stats->>'output_token_count')::bigint, 0) \
                         + ($2->>'output_token_count')::bigint) \
                     WHERE id = $1",
                )
                .bind(node_exec_id)
                .bind(stats)
                .execute(conn)
                .await?;
            }
        }
        ExecutionEvent::NodeExecutionEnded { node_exec_id, status, at } => {
            sqlx::query("UPDATE rm_node_executions SET status = $2, end_time = $3 WHERE id = $1")
                .bind(node_exec_id)
                .bind(status.as_str())
                .bind(at)
                .execute(&mut *conn)
                .await?;
            crate::reviews::processed(node_exec_id, status, at, conn).await?;
            let ran = i32::from(matches!(status, ExecutionStatus::Completed | ExecutionStatus::Failed));
            sqlx::query(
                "UPDATE rm_graph_executions SET node_exec_count = node_exec_count + $2, \
                 node_error_count = node_error_count + $3, updated_at = $4 WHERE id = $1",
            )
            .bind(id)
            .bind(ran)
            .bind(i32::from(status == ExecutionStatus::Failed))
            .bind(at)
            .execute(conn)
            .await?;
        }
        // Where a replay diverged is in the error its end carries.
        ExecutionEvent::ExecutionDiverged { .. } => {}
        ExecutionEvent::ExecutionEnded { status, error, at } => {
            sqlx::query(
                "UPDATE rm_graph_executions SET status = $2, error = $3, ended_at = $4, updated_at = $4 WHERE id = $1",
            )
            .bind(id)
            .bind(status.as_str())
            .bind(error)
            .bind(at)
            .execute(conn)
            .await?;
        }
        ExecutionEvent::ExecutionDeleted { at } => {
            sqlx::query("UPDATE rm_graph_executions SET is_deleted = true, updated_at = $2 WHERE id = $1")
                .bind(id)
                .bind(at)
                .execute(conn)
                .await?;
        }
        ExecutionEvent::ExecutionShared { share_token, at } => {
            sqlx::query("UPDATE rm_graph_executions SET share_token = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(share_token)
                .bind(at)
                .execute(conn)
                .await?;
        }
        ExecutionEvent::ExecutionUnshared { at } => {
            sqlx::query("UPDATE rm_graph_executions SET share_token = NULL, updated_at = $2 WHERE id = $1")
                .bind(id)
                .bind(at)
                .execute(conn)
                .await?;
        }
    }
    Ok(())
}

/// An AgentOutput node execution's queued input adds its value to the run's
/// outputs under its name (AutoGPT's `GraphExecution.outputs`).
async fn add_output(
    conn: &mut PgConnection,
    execution_id: Uuid,
    block_id: &str,
    input: &serde_json::Map<String, Value>,
) -> Result<(), ProjectionError> {
    if blocks::find(block_id).map(|b| b.block_type) != Some(BlockType::Output) {
        return Ok(());
    }
    let (Some(Value::String(name)), Some(value)) = (input.get("name"), input.get("value")) else { return Ok(()) };
    sqlx::query(
        "UPDATE rm_graph_executions SET outputs = outputs || \
         jsonb_build_object($2::text, coalesce(outputs -> $2, '[]'::jsonb) || jsonb_build_array($3::jsonb)) \
         WHERE id = $1",
    )
    .bind(execution_id)
    .bind(name)
    .bind(value)
    .execute(conn)
    .await?;
    Ok(())
}
