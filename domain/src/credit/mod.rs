//! The credit ledger: one per user, every grant and every charge an event on
//! it. Charges are decided against the ledger's version, so a user's racing
//! runs are serialized by the expected-version check and the balance can
//! never go below zero.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::{Aggregate, EventType};

/// AutoGPT's `CreditTransactionType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = CreditTransactionType))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TransactionType {
    /// Bought credits.
    TopUp,
    /// Spent on runs.
    Usage,
    /// Given (the starting grant, an admin).
    Grant,
    /// Given back.
    Refund,
    /// A card check.
    CardCheck,
}

impl TransactionType {
    /// The wire name, e.g. `"GRANT"`.
    pub fn as_str(self) -> &'static str {
        match self {
            TransactionType::TopUp => "TOP_UP",
            TransactionType::Usage => "USAGE",
            TransactionType::Grant => "GRANT",
            TransactionType::Refund => "REFUND",
            TransactionType::CardCheck => "CARD_CHECK",
        }
    }
}

/// What a node execution was charged for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// The run.
    pub graph_exec_id: Uuid,
    /// Its graph.
    pub graph_id: Uuid,
    /// The node execution.
    pub node_exec_id: Uuid,
    /// Its node.
    pub node_id: String,
    /// Its block.
    pub block_id: String,
}

/// Facts about a user's credits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum CreditEvent {
    /// Credits were added (a grant, a top-up, a refund) or, with a negative
    /// amount, taken away by an admin.
    CreditsAdded {
        /// Whose.
        user_id: Uuid,
        /// How many (1 credit = $0.01).
        amount: i64,
        /// Its key in the history.
        transaction_key: String,
        /// What kind.
        kind: TransactionType,
        /// Why (an admin's comment).
        reason: Option<String>,
        /// The admin who added them.
        admin_id: Option<Uuid>,
        /// When.
        at: DateTime<Utc>,
    },
    /// A node execution was counted and charged (`amount` may be 0: every
    /// node execution counts towards the per-count charge).
    NodeExecutionCharged {
        /// Whose.
        user_id: Uuid,
        /// How many credits.
        amount: i64,
        /// What for.
        usage: Usage,
        /// When.
        at: DateTime<Utc>,
    },
    /// The tokens a node's model call used were charged, once the model
    /// answered. Never more than was left: the tokens are spent already.
    TokensCharged {
        /// Whose.
        user_id: Uuid,
        /// How many credits.
        amount: i64,
        /// Prompt and completion tokens together.
        tokens: u64,
        /// What for.
        usage: Usage,
        /// When.
        at: DateTime<Utc>,
    },
}

impl EventType for CreditEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::CreditsAdded { .. } => "CreditsAdded",
            Self::NodeExecutionCharged { .. } => "NodeExecutionCharged",
            Self::TokensCharged { .. } => "TokensCharged",
        }
    }
}

/// How charging works: what a new user starts with and the charge per
/// count of node executions (AutoGPT: 1500, and 1 credit every 100th).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreditRules {
    /// Credits a user's ledger opens with.
    pub starting_grant: i64,
    /// Every this many node executions of a user cost...
    pub count_threshold: u64,
    /// ...this many credits.
    pub cost_per_threshold: i64,
    /// Credits per 1,000 tokens a model call used, rounded up per call (0:
    /// tokens are free, and a model block costs its model's price alone).
    pub credits_per_1k_tokens: i64,
}

impl Default for CreditRules {
    fn default() -> Self {
        Self { starting_grant: 1500, count_threshold: 100, cost_per_threshold: 1, credits_per_1k_tokens: 1 }
    }
}

impl CreditRules {
    /// What `tokens` of one model call cost.
    pub fn cost_of_tokens(&self, tokens: u64) -> i64 {
        let tokens = i64::try_from(tokens).unwrap_or(i64::MAX);
        let per_1k = self.credits_per_1k_tokens.max(0);
        tokens.saturating_mul(per_1k).saturating_add(999) / 1000
    }
}

/// The transaction key of the starting grant.
pub const STARTING_GRANT_KEY: &str = "STARTING-GRANT";

/// Why a credit command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreditError {
    /// The charge is more than the balance.
    #[error("Insufficient balance: {balance} credits left, {amount} needed")]
    InsufficientBalance {
        /// What is left.
        balance: i64,
        /// What was needed.
        amount: i64,
    },
}

/// State of one user's credits.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CreditLedger {
    /// Anything recorded yet (the starting grant comes with the first).
    pub opened: bool,
    /// Credits left.
    pub balance: i64,
    /// Node executions counted.
    pub node_executions: u64,
}

impl CreditLedger {
    /// The balance a user sees: a ledger with nothing recorded yet holds the
    /// starting grant it will open with.
    pub fn balance_or_grant(&self, rules: &CreditRules) -> i64 {
        if self.opened {
            self.balance
        } else {
            rules.starting_grant
        }
    }

    /// The starting grant, when the ledger has not opened yet. Dated a
    /// microsecond before what opened it: the history pages by time, and
    /// two entries at one instant would straddle a page boundary.
    fn opening(&self, user_id: Uuid, rules: &CreditRules, at: DateTime<Utc>) -> Option<CreditEvent> {
        let at = at - chrono::Duration::microseconds(1);
        (!self.opened).then(|| CreditEvent::CreditsAdded {
            user_id,
            amount: rules.starting_grant,
            transaction_key: STARTING_GRANT_KEY.to_owned(),
            kind: TransactionType::Grant,
            reason: Some("Starting credits".into()),
            admin_id: None,
            at,
        })
    }

    /// Add (or, negative, remove) credits.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &self,
        user_id: Uuid,
        amount: i64,
        transaction_key: String,
        kind: TransactionType,
        reason: Option<String>,
        admin_id: Option<Uuid>,
        rules: &CreditRules,
        at: DateTime<Utc>,
    ) -> Vec<CreditEvent> {
        let mut events: Vec<CreditEvent> = self.opening(user_id, rules, at).into_iter().collect();
        events.push(CreditEvent::CreditsAdded { user_id, amount, transaction_key, kind, reason, admin_id, at });
        events
    }

    /// Count a node execution and charge it its block cost plus, on every
    /// `count_threshold`th, the per-count cost; refused when that is more
    /// than the balance.
    pub fn charge(
        &self,
        user_id: Uuid,
        block_cost: i64,
        usage: Usage,
        rules: &CreditRules,
        at: DateTime<Utc>,
    ) -> Result<Vec<CreditEvent>, CreditError> {
        let count = self.node_executions + 1;
        let per_count = if rules.count_threshold > 0 && count.is_multiple_of(rules.count_threshold) {
            rules.cost_per_threshold
        } else {
            0
        };
        let amount = block_cost.max(0) + per_count;
        let balance = self.balance_or_grant(rules);
        if amount > 0 && amount > balance {
            return Err(CreditError::InsufficientBalance { balance, amount });
        }
        let mut events: Vec<CreditEvent> = self.opening(user_id, rules, at).into_iter().collect();
        events.push(CreditEvent::NodeExecutionCharged { user_id, amount, usage, at });
        Ok(events)
    }
}

impl CreditLedger {
    /// Charge the tokens a node's model call used, after the call: at most
    /// the balance left (the call cannot be taken back), and nothing when
    /// the tokens cost nothing.
    pub fn charge_tokens(
        &self,
        user_id: Uuid,
        tokens: u64,
        usage: Usage,
        rules: &CreditRules,
        at: DateTime<Utc>,
    ) -> Vec<CreditEvent> {
        let amount = rules.cost_of_tokens(tokens).min(self.balance_or_grant(rules).max(0));
        if amount == 0 {
            return vec![];
        }
        let mut events: Vec<CreditEvent> = self.opening(user_id, rules, at).into_iter().collect();
        events.push(CreditEvent::TokensCharged { user_id, amount, tokens, usage, at });
        events
    }
}

impl Aggregate for CreditLedger {
    type Event = CreditEvent;
    const STREAM_PREFIX: &'static str = "credits";

    fn evolve(&mut self, event: &CreditEvent) {
        self.opened = true;
        match event {
            CreditEvent::CreditsAdded { amount, .. } => self.balance += amount,
            CreditEvent::NodeExecutionCharged { amount, .. } => {
                self.balance -= amount;
                self.node_executions += 1;
            }
            CreditEvent::TokensCharged { amount, .. } => self.balance -= amount,
        }
    }
}

#[cfg(test)]
mod tests;
