//! Command handlers, one module per area. Each loads what it needs, lets the
//! pure domain decide, and appends everything a request changes atomically.

mod api_key;
mod credential;
mod credit;
mod execution;
mod graph;
mod library;
mod onboarding;
mod preset;
mod quota;
mod replay;
mod review;
mod schedule;
mod store;
mod user;
mod webhook;

pub use api_key::{ApiKeyChange, NewApiKey};
pub use credential::{secret_fits, NewCredential, OpenCredential, Secret};
pub use graph::CreatedGraph;
pub use library::AgentFromLog;
pub use preset::{NewPreset, PresetSource};
pub use replay::ReplayRequest;
pub use review::ReviewDecision;
pub use store::{Submission, Submitted};
pub use webhook::{
    default_delivery_id, webhook_signature, Delivery, DeliveryOutcome, TriggerSetup, TriggeredPreset, WebhookSecret,
    SIGNATURE_PREFIX,
};

use eventlog::EventStore;

pub use credit::{Charge, StepOutcome};
pub use execution::{RunChange, RunRequest};
pub use schedule::{FireOutcome, ScheduleRequest};

use domain::credit::CreditRules;

use crate::clock::Clock;

/// The command side of the application, over any event store.
#[derive(Debug, Clone)]
pub struct Commands<S> {
    store: S,
    clock: Clock,
    credit_rules: CreditRules,
    ledgers: crate::cache::StateCache<domain::credit::CreditLedger>,
    quota_states: crate::cache::StateCache<domain::quota::Quota>,
    vault: Option<crate::vault::Vault>,
    quotas: domain::quota::QuotaLimits,
}

impl<S: EventStore> Commands<S> {
    /// Handlers appending to `store`, on the system clock.
    pub fn new(store: S) -> Self {
        Self::with_clock(store, Clock::system())
    }

    /// Handlers appending to `store`, reading the time from `clock`.
    pub fn with_clock(store: S, clock: Clock) -> Self {
        Self {
            store,
            clock,
            credit_rules: CreditRules::default(),
            ledgers: crate::cache::StateCache::default(),
            quota_states: crate::cache::StateCache::default(),
            vault: None,
            quotas: domain::quota::QuotaLimits::default(),
        }
    }

    /// The same handlers charging by `rules`.
    pub fn with_credit_rules(mut self, rules: CreditRules) -> Self {
        self.credit_rules = rules;
        self
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// The same handlers sealing and opening credentials with `vault`.
    pub fn with_vault(mut self, vault: crate::vault::Vault) -> Self {
        self.vault = Some(vault);
        self
    }

    /// How credits are charged.
    pub fn credit_rules(&self) -> &CreditRules {
        &self.credit_rules
    }

    /// An aggregate's state and stream version, read outside any command
    /// (for the executor and the blocks; nothing is appended).
    pub(crate) async fn read<A: domain::aggregate::Aggregate>(
        &self,
        id: uuid::Uuid,
    ) -> Result<(A, i64), crate::CommandError> {
        let ctx = crate::CommandContext::default();
        crate::uow::UnitOfWork::new(&self.store, &ctx).load::<A>(id).await
    }

    /// The underlying store.
    pub fn store(&self) -> &S {
        &self.store
    }
}
