//! A user's onboarding: the UI's choices and completed steps.

use domain::onboarding::{Onboarding, OnboardingEvent, OnboardingPatch};
use eventlog::EventStore;
use uuid::Uuid;

use super::Commands;
use crate::context::CommandContext;
use crate::error::CommandError;
use crate::uow::{decide_on, Outcome};

impl<S: EventStore> Commands<S> {
    /// Save what the UI chose (an empty change appends nothing).
    pub async fn update_onboarding(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        patch: OnboardingPatch,
    ) -> Result<Outcome, CommandError> {
        let now = self.now();
        let decided = decide_on::<Onboarding, _, _>(&self.store, ctx, user_id, |o| Ok(o.update(patch.clone(), now)));
        Ok(decided.await?.0)
    }

    /// Complete a step (once).
    pub async fn complete_onboarding_step(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        step: &str,
    ) -> Result<Outcome, CommandError> {
        let now = self.now();
        Ok(decide_on::<Onboarding, _, _>(&self.store, ctx, user_id, |o| Ok(o.complete(step, now))).await?.0)
    }

    /// Start the onboarding over.
    pub async fn reset_onboarding(&self, ctx: &CommandContext, user_id: Uuid) -> Result<Outcome, CommandError> {
        let now = self.now();
        let reset = |_: &Onboarding| Ok(vec![OnboardingEvent::OnboardingReset { at: now }]);
        Ok(decide_on::<Onboarding, _, _>(&self.store, ctx, user_id, reset).await?.0)
    }
}
