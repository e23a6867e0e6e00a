//! The credits projector's batch path: a batch of ledger events folded into
//! one balance change per user and one row per transaction (a run's usage
//! charges summed into its entry), written by one statement. A running
//! balance is the user's stored balance before the batch plus the changes
//! up to that transaction, so the fold needs no read.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::credit::CreditEvent;
use serde::Serialize;
use sqlx::postgres::PgArguments;
use uuid::Uuid;

use crate::projector::{bind, json, micros, ProjectionError};

/// A user's balance change over the batch.
#[derive(Debug, Serialize)]
struct BalanceChange {
    user_id: Uuid,
    delta: i64,
    at: DateTime<Utc>,
}

/// One transaction row: a grant, or a run's usage charged in the batch.
#[derive(Debug, Serialize)]
struct TransactionRow {
    user_id: Uuid,
    transaction_key: String,
    kind: &'static str,
    amount: i64,
    /// The user's balance change in the batch up to this transaction.
    cum: i64,
    at: DateTime<Utc>,
    reason: Option<String>,
    admin_id: Option<Uuid>,
    usage_graph_id: Option<Uuid>,
    usage_execution_id: Option<Uuid>,
    usage_node_count: i32,
    usage_start_time: Option<DateTime<Utc>>,
}

#[derive(Default)]
struct Fold {
    balances: Vec<BalanceChange>,
    balance_at: HashMap<Uuid, usize>,
    rows: Vec<TransactionRow>,
    row_at: HashMap<(Uuid, String), usize>,
}

impl Fold {
    /// Move the user's balance; the change so far.
    fn change(&mut self, user_id: Uuid, delta: i64, at: DateTime<Utc>) -> i64 {
        let balances = &mut self.balances;
        let i = *self.balance_at.entry(user_id).or_insert_with(|| {
            balances.push(BalanceChange { user_id, delta: 0, at });
            balances.len() - 1
        });
        let balance = &mut self.balances[i];
        balance.delta += delta;
        balance.at = at;
        balance.delta
    }

    /// Fold one event; `false` when it needs the event-by-event path.
    fn apply(&mut self, user_id: Uuid, event: &CreditEvent) -> bool {
        match event {
            CreditEvent::CreditsAdded { amount, transaction_key, kind, reason, admin_id, at, .. } => {
                let key = (user_id, transaction_key.clone());
                // A key given twice keeps its first entry but moves the
                // balance twice: rare, and left to the event-by-event path.
                if self.row_at.contains_key(&key) {
                    return false;
                }
                let at = micros(*at);
                let cum = self.change(user_id, *amount, at);
                self.row_at.insert(key, self.rows.len());
                self.rows.push(TransactionRow {
                    user_id,
                    transaction_key: transaction_key.clone(),
                    kind: kind.as_str(),
                    amount: *amount,
                    cum,
                    at,
                    reason: reason.clone(),
                    admin_id: *admin_id,
                    usage_graph_id: None,
                    usage_execution_id: None,
                    usage_node_count: 0,
                    usage_start_time: None,
                });
            }
            CreditEvent::NodeExecutionCharged { amount, usage, at, .. }
            | CreditEvent::TokensCharged { amount, usage, at, .. } => {
                if *amount == 0 {
                    return true;
                }
                // A run's usage counts the node executions charged, and adds
                // what their tokens cost without counting them again.
                let nodes = i32::from(matches!(event, CreditEvent::NodeExecutionCharged { .. }));
                let at = micros(*at);
                let cum = self.change(user_id, -*amount, at);
                let key = (user_id, format!("usage-{}", usage.graph_exec_id));
                match self.row_at.get(&key) {
                    Some(&i) if self.rows[i].kind != "USAGE" => return false,
                    Some(&i) => {
                        let row = &mut self.rows[i];
                        row.amount -= *amount;
                        (row.cum, row.at) = (cum, at);
                        row.usage_node_count += nodes;
                    }
                    None => {
                        self.row_at.insert(key.clone(), self.rows.len());
                        self.rows.push(TransactionRow {
                            user_id,
                            transaction_key: key.1,
                            kind: "USAGE",
                            amount: -*amount,
                            cum,
                            at,
                            reason: None,
                            admin_id: None,
                            usage_graph_id: Some(usage.graph_id),
                            usage_execution_id: Some(usage.graph_exec_id),
                            usage_node_count: nodes,
                            usage_start_time: Some(at),
                        });
                    }
                }
            }
        }
        true
    }
}

/// The batch's events as one statement, up to the first the fold leaves to
/// the event-by-event path, with how many events that is.
pub(crate) fn statement(
    events: &[(Uuid, CreditEvent)],
    args: &mut PgArguments,
) -> Result<Option<(&'static str, usize)>, ProjectionError> {
    let mut fold = Fold::default();
    let covered = events.iter().position(|(user, event)| !fold.apply(*user, event)).unwrap_or(events.len());
    if covered < events.len() {
        // The fold went past what it covers: the runner asks again.
        return Ok(Some((STATEMENT, covered)));
    }
    bind(args, json(&fold.balances)?)?;
    bind(args, json(&fold.rows)?)?;
    Ok(Some((STATEMENT, covered)))
}

/// The writes, each guarded by the checkpoint move (`ck`): `$6` the users'
/// balance changes, `$7` the transaction rows. Grants keep an entry already
/// there; usage adds to its run's entry, as the event-by-event path does.
const STATEMENT: &str = "\
b AS (SELECT * FROM jsonb_to_recordset($6::jsonb) AS b(user_id uuid, delta bigint, at timestamptz)), \
old AS (SELECT user_id, balance FROM rm_credit_balances WHERE user_id IN (SELECT user_id FROM b)), \
bal AS (INSERT INTO rm_credit_balances (user_id, balance, updated_at) \
  SELECT user_id, delta, at FROM b WHERE EXISTS (SELECT FROM ck) \
  ON CONFLICT (user_id) DO UPDATE SET balance = rm_credit_balances.balance + excluded.balance, \
    updated_at = excluded.updated_at), \
t AS (SELECT * FROM jsonb_to_recordset($7::jsonb) AS t(user_id uuid, transaction_key text, kind text, \
  amount bigint, cum bigint, at timestamptz, reason text, admin_id uuid, usage_graph_id uuid, \
  usage_execution_id uuid, usage_node_count int, usage_start_time timestamptz)), \
tx AS (INSERT INTO rm_credit_transactions (user_id, transaction_key, kind, amount, running_balance, \
    transaction_time, reason, admin_id, usage_graph_id, usage_execution_id, usage_node_count, usage_start_time) \
  SELECT t.user_id, t.transaction_key, t.kind, t.amount, coalesce(old.balance, 0) + t.cum, t.at, t.reason, \
    t.admin_id, t.usage_graph_id, t.usage_execution_id, t.usage_node_count, t.usage_start_time \
  FROM t LEFT JOIN old ON old.user_id = t.user_id WHERE EXISTS (SELECT FROM ck) \
  ON CONFLICT (user_id, transaction_key) DO UPDATE SET \
    amount = CASE WHEN excluded.kind = 'USAGE' THEN rm_credit_transactions.amount + excluded.amount \
      ELSE rm_credit_transactions.amount END, \
    running_balance = CASE WHEN excluded.kind = 'USAGE' THEN excluded.running_balance \
      ELSE rm_credit_transactions.running_balance END, \
    transaction_time = CASE WHEN excluded.kind = 'USAGE' THEN excluded.transaction_time \
      ELSE rm_credit_transactions.transaction_time END, \
    usage_node_count = CASE WHEN excluded.kind = 'USAGE' \
      THEN rm_credit_transactions.usage_node_count + excluded.usage_node_count \
      ELSE rm_credit_transactions.usage_node_count END)";
