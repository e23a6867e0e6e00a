//! Human reviews (`rm_reviews`), written by the executions projector as a
//! run's nodes ask for and get their reviews, and the queries of the review
//! routes (AutoGPT's `PendingHumanReviewModel`).

use chrono::{DateTime, Utc};
use domain::execution::{ExecutionEvent, ExecutionStatus};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::projector::ProjectionError;
use crate::query::{Pagination, QueryError};

/// Apply a run's review events: a node asking (a WAITING row, the node in
/// REVIEW), the run pausing or going on.
pub(crate) async fn apply(id: Uuid, event: ExecutionEvent, conn: &mut PgConnection) -> Result<(), ProjectionError> {
    match event {
        ExecutionEvent::NodeReviewRequested {
            node_exec_id, payload, instructions, editable, timeout_at, at, ..
        } => {
            let node_id: Option<String> =
                sqlx::query_scalar("UPDATE rm_node_executions SET status = 'REVIEW' WHERE id = $1 RETURNING node_id")
                    .bind(node_exec_id)
                    .fetch_optional(&mut *conn)
                    .await?;
            sqlx::query(
                "INSERT INTO rm_reviews (node_exec_id, execution_id, user_id, node_id, payload, instructions, editable, \
                   status, timeout_at, created_at) \
                 SELECT $1, e.id, e.user_id, $3, $4, $5, $6, 'WAITING', $7, $8 FROM rm_graph_executions e \
                 WHERE e.id = $2 \
                 ON CONFLICT (node_exec_id) DO UPDATE SET payload = excluded.payload, \
                   instructions = excluded.instructions, editable = excluded.editable, status = 'WAITING', \
                   review_message = NULL, was_edited = NULL, processed = false, timeout_at = excluded.timeout_at, \
                   updated_at = excluded.created_at, reviewed_at = NULL",
            )
            .bind(node_exec_id)
            .bind(id)
            .bind(node_id.unwrap_or_default())
            .bind(payload)
            .bind(instructions)
            .bind(editable)
            .bind(timeout_at)
            .bind(at)
            .execute(conn)
            .await?;
        }
        ExecutionEvent::ExecutionPaused { at } => set_run_status(id, "REVIEW", at, conn).await?,
        ExecutionEvent::ExecutionReviewed { at } => set_run_status(id, "QUEUED", at, conn).await?,
        _ => {}
    }
    Ok(())
}

async fn set_run_status(id: Uuid, status: &str, at: DateTime<Utc>, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE rm_graph_executions SET status = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(status)
        .bind(at)
        .execute(conn)
        .await
        .map(|_| ())
}

/// An answer to a waiting review decides it; other answers (HTTP, model
/// calls) match no waiting row.
pub(crate) async fn decided(
    node_exec_id: Uuid,
    answer: &Value,
    at: DateTime<Utc>,
    conn: &mut PgConnection,
) -> Result<(), sqlx::Error> {
    let status = match answer.get("status").and_then(Value::as_str) {
        Some(s @ ("APPROVED" | "REJECTED")) => s,
        Some("FAILED") => "REJECTED",
        _ => return Ok(()),
    };
    sqlx::query(
        "UPDATE rm_reviews SET status = $2, review_message = $3, was_edited = $4, payload = coalesce($5, payload), \
           updated_at = $6, reviewed_at = $6 \
         WHERE node_exec_id = $1 AND status = 'WAITING'",
    )
    .bind(node_exec_id)
    .bind(status)
    .bind(answer.get("message").and_then(Value::as_str))
    .bind(answer.get("was_edited").and_then(Value::as_bool))
    .bind(answer.get("data"))
    .bind(at)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Why a review still waiting when its node ended was closed.
pub(crate) fn ended_before_a_decision(status: ExecutionStatus) -> String {
    format!("The run ended ({}) before a decision", status.as_str())
}

/// A reviewed node that ran on its decision has had it processed; one
/// that ended without one (the run was stopped) is closed as rejected.
pub(crate) async fn processed(
    node_exec_id: Uuid,
    status: ExecutionStatus,
    at: DateTime<Utc>,
    conn: &mut PgConnection,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE rm_reviews SET processed = true, updated_at = $3, \
           status = CASE WHEN status = 'WAITING' THEN 'REJECTED' ELSE status END, \
           review_message = CASE WHEN status = 'WAITING' THEN $2 ELSE review_message END \
         WHERE node_exec_id = $1",
    )
    .bind(node_exec_id)
    .bind(ended_before_a_decision(status))
    .bind(at)
    .execute(conn)
    .await
    .map(|_| ())
}

/// A review as served (AutoGPT's `PendingHumanReviewModel`).
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[schema(as = PendingHumanReviewModel)]
pub struct ReviewView {
    /// The node execution under review.
    pub node_exec_id: Uuid,
    /// Its node.
    #[schema(required = false)]
    pub node_id: String,
    /// Who reviews.
    pub user_id: Uuid,
    /// The run.
    pub graph_exec_id: Uuid,
    /// The graph.
    pub graph_id: Uuid,
    /// Its version.
    pub graph_version: i32,
    /// The data under review.
    #[schema(value_type = serde_json::Value, required = true)]
    pub payload: Option<Value>,
    /// What the reviewer is told.
    pub instructions: Option<String>,
    /// Whether the reviewer may edit the data.
    pub editable: bool,
    /// WAITING, APPROVED or REJECTED.
    #[schema(pattern = "^(WAITING|APPROVED|REJECTED)$")]
    pub status: String,
    /// The reviewer's message.
    pub review_message: Option<String>,
    /// Whether the data was edited.
    pub was_edited: Option<bool>,
    /// Whether the run went on with the decision.
    #[schema(required = false)]
    pub processed: bool,
    /// When it was asked for.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: Option<DateTime<Utc>>,
    /// When it was decided.
    pub reviewed_at: Option<DateTime<Utc>>,
}

const SELECT: &str = "SELECT r.node_exec_id, r.node_id, r.user_id, r.execution_id AS graph_exec_id, e.graph_id, \
     e.graph_version, r.payload, r.instructions, r.editable, r.status, r.review_message, r.was_edited, r.processed, \
     r.created_at, r.updated_at, r.reviewed_at FROM rm_reviews r JOIN rm_graph_executions e ON e.id = r.execution_id";

/// The user's waiting reviews, newest first, one page.
pub async fn pending(pool: &PgPool, user_id: Uuid, page: i64, page_size: i64) -> Result<Vec<ReviewView>, QueryError> {
    Ok(sqlx::query_as(&format!(
        "{SELECT} WHERE r.user_id = $1 AND r.status = 'WAITING' AND NOT e.is_deleted \
         ORDER BY r.created_at DESC, r.node_exec_id LIMIT $2 OFFSET $3"
    ))
    .bind(user_id)
    .bind(page_size)
    .bind(Pagination::offset(page, page_size))
    .fetch_all(pool)
    .await?)
}

/// The waiting reviews of one of the user's runs.
pub async fn pending_for_run(pool: &PgPool, user_id: Uuid, execution_id: Uuid) -> Result<Vec<ReviewView>, QueryError> {
    Ok(sqlx::query_as(&format!(
        "{SELECT} WHERE r.execution_id = $1 AND r.user_id = $2 AND r.status = 'WAITING' ORDER BY r.created_at, r.node_exec_id"
    ))
    .bind(execution_id)
    .bind(user_id)
    .fetch_all(pool)
    .await?)
}

/// The run a review belongs to, if it is the user's.
pub async fn run_of(pool: &PgPool, user_id: Uuid, node_exec_id: Uuid) -> Result<Option<Uuid>, QueryError> {
    Ok(sqlx::query_scalar("SELECT execution_id FROM rm_reviews WHERE node_exec_id = $1 AND user_id = $2")
        .bind(node_exec_id)
        .bind(user_id)
        .fetch_optional(pool)
        .await?)
}
