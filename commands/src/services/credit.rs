//! Credits: the balance, charging node executions, admins adding credits.
//! Charges go to the user's ledger stream at its expected version; a small
//! in-memory copy of each ledger spares re-reading its whole stream for
//! every charge (only the events after the copy's version are read).

use domain::aggregate::Aggregate;
use domain::credit::{CreditError, CreditLedger, TransactionType, Usage};
use eventlog::EventStore;
use uuid::Uuid;

use super::Commands;
use crate::context::CommandContext;
use crate::error::CommandError;
use crate::uow::{retry_on_conflict, Outcome, UnitOfWork, MAX_ATTEMPTS};

/// What charging a node execution did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Charged {
    /// Charged this many credits (0: counted only).
    Paid(i64),
    /// Refused: the balance is too low.
    Refused(CreditError),
}

impl<S: EventStore> Commands<S> {
    /// A user's ledger as the log has it now.
    async fn ledger(&self, user_id: Uuid) -> Result<(CreditLedger, i64), CommandError> {
        let loaded = self.ledgers.load(&self.store, user_id).await?;
        Ok((loaded.state, loaded.version))
    }

    /// A user's balance (the starting grant before anything was recorded).
    pub async fn balance(&self, user_id: Uuid) -> Result<i64, CommandError> {
        Ok(self.ledger(user_id).await?.0.balance_or_grant(&self.credit_rules))
    }

    /// Count a node execution on its user's ledger and charge it, before it
    /// runs. The same node execution is charged once, however often asked.
    pub async fn charge_node(&self, user_id: Uuid, block_cost: i64, usage: Usage) -> Result<Charged, CommandError> {
        for _ in 0..MAX_ATTEMPTS * 4 {
            let (ledger, version) = self.ledger(user_id).await?;
            let now = self.now();
            let events = match ledger.charge(user_id, block_cost, usage.clone(), &self.credit_rules, now) {
                Ok(events) => events,
                Err(refused) => return Ok(Charged::Refused(refused)),
            };
            // The opening grant is an append of its own, keyed once per
            // user, so the charge's id depends on the node execution alone.
            let (key, events) = if ledger.opened {
                (format!("charge/{}", usage.node_exec_id), events)
            } else {
                ("open".to_owned(), events.into_iter().take(1).collect())
            };
            // Event ids derive from the key: the same charge (a resumed
            // node) or the same opening is stored once.
            let ctx = CommandContext::keyed(user_id, key);
            let mut uow = UnitOfWork::new(&self.store, &ctx);
            uow.record::<CreditLedger>(user_id, version, &events)?;
            match uow.commit().await {
                // Opened (by us or a racing charge): now charge.
                Ok(_) if !ledger.opened => continue,
                Ok(outcome) => {
                    let amount = match (&events[0], outcome.appended) {
                        (domain::credit::CreditEvent::NodeExecutionCharged { amount, .. }, n) if n > 0 => *amount,
                        _ => 0,
                    };
                    return Ok(Charged::Paid(amount));
                }
                Err(CommandError::Conflict) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(CommandError::Conflict)
    }

    /// An admin adds (or, negative, removes) credits; answers the new
    /// balance and the transaction's key.
    pub async fn add_credits(
        &self,
        ctx: &CommandContext,
        admin_id: Uuid,
        user_id: Uuid,
        amount: i64,
        comments: String,
    ) -> Result<(Outcome, i64, String), CommandError> {
        let key = ctx.new_id("credit-transaction").to_string();
        retry_on_conflict(|| async {
            let mut uow = UnitOfWork::new(&self.store, ctx);
            let (mut ledger, version) = uow.load::<CreditLedger>(user_id).await?;
            let events = ledger.add(
                user_id,
                amount,
                key.clone(),
                TransactionType::Grant,
                Some(comments.clone()),
                Some(admin_id),
                &self.credit_rules,
                self.now(),
            );
            uow.record::<CreditLedger>(user_id, version, &events)?;
            let outcome = uow.commit().await?;
            for event in &events {
                ledger.evolve(event);
            }
            Ok((outcome, ledger.balance, key.clone()))
        })
        .await
    }
}
