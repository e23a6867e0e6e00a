//! The credits read model (`rm_credit_balances`, `rm_credit_transactions`)
//! and its queries: a user's balance and history, and the admins' view of
//! everyone's.

use chrono::{DateTime, Utc};
use domain::aggregate::Aggregate;
use domain::credit::{CreditEvent, CreditLedger, TransactionType};
use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::projector::{BoxFuture, ProjectionError, StreamProjector};
use crate::query::{Pagination, QueryError};

/// Builds the credits read model from the users' ledgers.
pub struct CreditsProjector;

/// Name of the credits projection.
pub const NAME: &str = "credits";

impl StreamProjector for CreditsProjector {
    type Source = CreditLedger;
    const NAME: &'static str = NAME;
    const TABLES: &'static [&'static str] = &["rm_credit_transactions", "rm_credit_balances"];
    const BULK: bool = true;
    // A live batch of a few events goes event by event: its prepared
    // statements cost less than planning the batch statement.
    const BULK_FROM: usize = crate::projector::BULK_FROM;

    fn bulk(
        &self,
        events: &[(Uuid, CreditEvent)],
        args: &mut sqlx::postgres::PgArguments,
    ) -> Result<Option<(&'static str, usize)>, ProjectionError> {
        crate::credit_batch::statement(events, args)
    }

    fn apply<'a>(
        &'a self,
        user_id: Uuid,
        event: <CreditLedger as Aggregate>::Event,
        conn: &'a mut PgConnection,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            let (delta, at) = match &event {
                CreditEvent::CreditsAdded { amount, at, .. } => (*amount, *at),
                CreditEvent::NodeExecutionCharged { amount, at, .. }
                | CreditEvent::TokensCharged { amount, at, .. } => (-*amount, *at),
            };
            if delta == 0 && !matches!(event, CreditEvent::CreditsAdded { .. }) {
                return Ok(());
            }
            let balance: i64 = sqlx::query_scalar(
                "INSERT INTO rm_credit_balances (user_id, balance, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id) DO UPDATE SET balance = rm_credit_balances.balance + excluded.balance, \
                 updated_at = excluded.updated_at RETURNING balance",
            )
            .bind(user_id)
            .bind(delta)
            .bind(at)
            .fetch_one(&mut *conn)
            .await?;
            match event {
                CreditEvent::CreditsAdded { amount, transaction_key, kind, reason, admin_id, at, .. } => {
                    sqlx::query(
                        "INSERT INTO rm_credit_transactions \
                         (user_id, transaction_key, kind, amount, running_balance, transaction_time, reason, admin_id) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
                    )
                    .bind(user_id)
                    .bind(transaction_key)
                    .bind(kind.as_str())
                    .bind(amount)
                    .bind(balance)
                    .bind(at)
                    .bind(reason)
                    .bind(admin_id)
                    .execute(conn)
                    .await?;
                }
                CreditEvent::NodeExecutionCharged { amount, ref usage, at, .. }
                | CreditEvent::TokensCharged { amount, ref usage, at, .. } => {
                    // Tokens add to their run's usage without counting a node.
                    let nodes = i32::from(matches!(event, CreditEvent::NodeExecutionCharged { .. }));
                    sqlx::query(
                        "INSERT INTO rm_credit_transactions (user_id, transaction_key, kind, amount, running_balance, \
                           transaction_time, usage_graph_id, usage_execution_id, usage_node_count, usage_start_time) \
                         VALUES ($1, $2, 'USAGE', $3, $4, $5, $6, $7, $8, $5) \
                         ON CONFLICT (user_id, transaction_key) DO UPDATE SET \
                           amount = rm_credit_transactions.amount + excluded.amount, \
                           running_balance = excluded.running_balance, transaction_time = excluded.transaction_time, \
                           usage_node_count = rm_credit_transactions.usage_node_count + excluded.usage_node_count",
                    )
                    .bind(user_id)
                    .bind(format!("usage-{}", usage.graph_exec_id))
                    .bind(-amount)
                    .bind(balance)
                    .bind(at)
                    .bind(usage.graph_id)
                    .bind(usage.graph_exec_id)
                    .bind(nodes)
                    .execute(conn)
                    .await?;
                }
            }
            Ok(())
        })
    }
}

/// One entry of a credit history (AutoGPT's `UserTransaction`); a run's
/// usage is one entry.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct UserTransaction {
    /// The entry's key.
    pub transaction_key: String,
    /// When it happened (for usage: the last charge).
    pub transaction_time: DateTime<Utc>,
    /// What kind.
    pub transaction_type: TransactionType,
    /// Credits added (negative: spent).
    pub amount: i64,
    /// The balance right after it.
    pub running_balance: i64,
    /// The balance now.
    pub current_balance: i64,
    /// What it was.
    pub description: Option<String>,
    /// For usage: the graph.
    pub usage_graph_id: Option<Uuid>,
    /// For usage: the run.
    pub usage_execution_id: Option<Uuid>,
    /// For usage: the node executions charged.
    pub usage_node_count: i64,
    /// For usage: the first charge (else the entry's time).
    pub usage_start_time: DateTime<Utc>,
    /// Whose.
    pub user_id: Uuid,
    /// Their e-mail.
    pub user_email: Option<String>,
    /// Why (an admin's comment).
    pub reason: Option<String>,
    /// The admin who added it.
    pub admin_email: Option<String>,
    /// Anything else.
    pub extra_data: Option<String>,
}

/// A page of a user's history (AutoGPT's `TransactionHistory`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TransactionHistory {
    /// Newest first.
    pub transactions: Vec<UserTransaction>,
    /// Ask again with this `transaction_time` for the entries before; null
    /// at the end.
    #[schema(required = true)]
    pub next_transaction_time: Option<DateTime<Utc>>,
}

/// A page of everyone's history, for admins (`UserHistoryResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct UserHistoryResponse {
    /// Newest first.
    pub history: Vec<UserTransaction>,
    /// Where the page is.
    pub pagination: Pagination,
}

const SELECT: &str = "SELECT t.user_id, t.transaction_key, t.kind, t.amount, t.running_balance, t.transaction_time, \
       t.reason, t.usage_graph_id, t.usage_execution_id, t.usage_node_count, t.usage_start_time, \
       u.email AS user_email, a.email AS admin_email, b.balance AS current_balance \
     FROM rm_credit_transactions t \
     LEFT JOIN rm_users u ON u.id = t.user_id \
     LEFT JOIN rm_users a ON a.id = t.admin_id \
     LEFT JOIN rm_credit_balances b ON b.user_id = t.user_id";

fn kind_of(text: &str) -> TransactionType {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).unwrap_or(TransactionType::Grant)
}

fn transaction_of(row: &PgRow) -> Result<UserTransaction, sqlx::Error> {
    let kind = kind_of(row.try_get("kind")?);
    let graph: Option<Uuid> = row.try_get("usage_graph_id")?;
    let time: DateTime<Utc> = row.try_get("transaction_time")?;
    Ok(UserTransaction {
        transaction_key: row.try_get("transaction_key")?,
        transaction_time: time,
        transaction_type: kind,
        amount: row.try_get("amount")?,
        running_balance: row.try_get("running_balance")?,
        current_balance: row.try_get::<Option<i64>, _>("current_balance")?.unwrap_or(0),
        description: graph.map(|g| format!("Graph {g} run")),
        usage_graph_id: graph,
        usage_execution_id: row.try_get("usage_execution_id")?,
        usage_node_count: i64::from(row.try_get::<i32, _>("usage_node_count")?),
        usage_start_time: row.try_get::<Option<DateTime<Utc>>, _>("usage_start_time")?.unwrap_or(time),
        user_id: row.try_get("user_id")?,
        user_email: row.try_get("user_email")?,
        reason: row.try_get("reason")?,
        admin_email: row.try_get("admin_email")?,
        extra_data: None,
    })
}

/// A user's balance; `starting_grant` when nothing was recorded yet.
pub async fn balance(pool: &PgPool, user_id: Uuid, starting_grant: i64) -> Result<i64, QueryError> {
    let balance: Option<i64> = sqlx::query_scalar("SELECT balance FROM rm_credit_balances WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(pool)
        .await?;
    Ok(balance.unwrap_or(starting_grant))
}

/// A user's history before `before` (newest first), of one kind if asked.
pub async fn history(
    pool: &PgPool,
    user_id: Uuid,
    before: Option<DateTime<Utc>>,
    kind: Option<TransactionType>,
    limit: i64,
) -> Result<TransactionHistory, QueryError> {
    let rows = sqlx::query(&format!(
        "{SELECT} WHERE t.user_id = $1 AND ($2::timestamptz IS NULL OR t.transaction_time < $2) \
         AND ($3::text IS NULL OR t.kind = $3) ORDER BY t.transaction_time DESC, t.transaction_key LIMIT $4"
    ))
    .bind(user_id)
    .bind(before)
    .bind(kind.map(TransactionType::as_str))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let transactions: Vec<UserTransaction> = rows.iter().map(transaction_of).collect::<Result<_, _>>()?;
    let next_transaction_time =
        if transactions.len() as i64 == limit { transactions.last().map(|t| t.transaction_time) } else { None };
    Ok(TransactionHistory { transactions, next_transaction_time })
}

/// Everyone's history for admins: matching `search` (e-mail or user id),
/// of one kind if asked, one page.
pub async fn users_history(
    pool: &PgPool,
    search: Option<&str>,
    kind: Option<TransactionType>,
    page: i64,
    page_size: i64,
) -> Result<UserHistoryResponse, QueryError> {
    let pattern =
        search.map(str::trim).filter(|s| !s.is_empty()).map(|s| format!("%{}%", crate::library::like_escape(s)));
    let filter = "WHERE ($1::text IS NULL OR u.email ILIKE $1 ESCAPE '\\' OR t.user_id::text ILIKE $1 ESCAPE '\\') \
                  AND ($2::text IS NULL OR t.kind = $2)";
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM rm_credit_transactions t LEFT JOIN rm_users u ON u.id = t.user_id {filter}"
    ))
    .bind(&pattern)
    .bind(kind.map(TransactionType::as_str))
    .fetch_one(pool)
    .await?;
    let rows = sqlx::query(&format!(
        "{SELECT} {filter} ORDER BY t.transaction_time DESC, t.transaction_key LIMIT $3 OFFSET $4"
    ))
    .bind(&pattern)
    .bind(kind.map(TransactionType::as_str))
    .bind(page_size)
    .bind(Pagination::offset(page, page_size))
    .fetch_all(pool)
    .await?;
    let history = rows.iter().map(transaction_of).collect::<Result<_, _>>()?;
    Ok(UserHistoryResponse { history, pagination: Pagination::of(total, page, page_size) })
}
