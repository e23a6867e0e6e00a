//! Credits: the balance, charging node executions, admins adding credits.
//! Charges go to the user's ledger stream at its expected version; a small
//! in-memory copy of each ledger spares re-reading its whole stream for
//! every charge (only the events after the copy's version are read).

use domain::aggregate::Aggregate;
use domain::credit::{CreditError, CreditEvent, CreditLedger, TransactionType, Usage};
use domain::execution::{ExecutionEvent, GraphExecution};
use eventlog::EventStore;
use uuid::Uuid;

use super::Commands;
use crate::context::CommandContext;
use crate::error::CommandError;
use crate::uow::{retry_on_conflict, Outcome, UnitOfWork, MAX_ATTEMPTS};

/// What a run step charges on its user's ledger.
#[derive(Debug, Clone, PartialEq)]
pub enum Charge {
    /// A node execution starts for the first time: it is counted, and
    /// charged its block's cost for its input (refused past the balance).
    Start {
        /// What the charge is for.
        usage: Usage,
        /// The block's cost (the count's share is added by the ledger).
        block_cost: i64,
    },
    /// A node's model call was answered: its tokens are charged (never
    /// refused: they are spent already).
    Tokens {
        /// What the charge is for.
        usage: Usage,
        /// Prompt and completion tokens together.
        tokens: u64,
    },
}

/// What appending a charged run step did.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    /// Appended: the run's stream is at this version.
    Appended(i64),
    /// Another writer moved the run's stream first; nothing was appended.
    Moved,
    /// The user's balance does not cover this node execution's charge;
    /// nothing was appended.
    Refused {
        /// The node execution refused.
        node_exec_id: Uuid,
        /// Why.
        error: CreditError,
    },
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

    /// Every charge of `charges`, in order, on `ledger`; the node execution
    /// whose start its balance does not cover, if one does not fit.
    fn charge_all(
        &self,
        ledger: &CreditLedger,
        user_id: Uuid,
        charges: &[Charge],
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<CreditEvent>, (Uuid, CreditError)> {
        let mut working = ledger.clone();
        let mut events = Vec::with_capacity(charges.len());
        for charge in charges {
            let charged = match charge {
                Charge::Start { usage, block_cost } => working
                    .charge(user_id, *block_cost, usage.clone(), &self.credit_rules, at)
                    .map_err(|refused| (usage.node_exec_id, refused))?,
                Charge::Tokens { usage, tokens } => {
                    working.charge_tokens(user_id, *tokens, usage.clone(), &self.credit_rules, at)
                }
            };
            for event in &charged {
                working.evolve(event);
            }
            events.extend(charged);
        }
        Ok(events)
    }

    /// Append a step the executor decided for a run at `expected_version`,
    /// with its charges on the user's ledger in the same transaction. Event
    /// ids derive from the run and the version, so a step appended twice (a
    /// worker retrying after a lost answer) is stored once; a step decided
    /// against a stale version finds the run moved (another worker, or a
    /// stop, got there first). A node execution is charged exactly when it
    /// first starts, and a model call's tokens with its recorded answer, so
    /// a takeover, which sees the start and reuses the answer, never charges
    /// them again, and a run that lost its claim charges nothing. A conflict
    /// on the ledger alone (another run of the user charged first) is
    /// decided again here; one on the run is the caller's to decide again.
    pub async fn append_charged_run_step(
        &self,
        state: &GraphExecution,
        expected_version: i64,
        events: &[ExecutionEvent],
        charges: &[Charge],
    ) -> Result<StepOutcome, CommandError> {
        let Some(execution_id) = state.id else { return Ok(StepOutcome::Appended(expected_version)) };
        let user_id = state.user_id;
        let ctx = super::execution::run_step_context(state, execution_id, expected_version);
        for _ in 0..MAX_ATTEMPTS * 4 {
            let mut uow = UnitOfWork::new(&self.store, &ctx);
            if !charges.is_empty() {
                uow.take_turn(user_id, &self.ledgers).await;
                let at = self.now();
                let decide = |ledger: &CreditLedger| self.charge_all(ledger, user_id, charges, at);
                let decided = match uow.decide_on_kept(user_id, &self.ledgers, decide) {
                    Some(Ok(decided)) => Ok(decided),
                    // A refusal appends nothing, so nothing checks the kept
                    // ledger against the log: decide it again on the log's
                    // (another instance may have added credits).
                    _ => {
                        self.ledgers.forget(user_id);
                        let (ledger, version) = uow.load_cached::<CreditLedger>(user_id, &self.ledgers).await?;
                        decide(&ledger).map(|events| (events, version))
                    }
                };
                let (charged, ledger_version) = match decided {
                    Ok(decided) => decided,
                    Err((node_exec_id, error)) => return Ok(StepOutcome::Refused { node_exec_id, error }),
                };
                uow.record::<CreditLedger>(user_id, ledger_version, &charged)?;
                uow.keep_after_commit(&self.ledgers, user_id, ledger_version, &charged);
            }
            uow.record::<GraphExecution>(execution_id, expected_version, events)?;
            match uow.commit().await {
                Ok(_) => return Ok(StepOutcome::Appended(expected_version + events.len() as i64)),
                Err(CommandError::Conflict) if charges.is_empty() => return Ok(StepOutcome::Moved),
                Err(CommandError::Conflict) => {
                    let stream = domain::aggregate::stream_name::<GraphExecution>(execution_id);
                    if !self.store.read_stream(&stream, expected_version).await?.is_empty() {
                        return Ok(StepOutcome::Moved);
                    }
                }
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
