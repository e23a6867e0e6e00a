//! Taking and giving back a user's quota places inside another command's
//! unit of work, so the place and the thing it counts are one append.

use domain::quota::{Quota, QuotaKind, QuotaLimits};
use eventlog::EventStore;
use uuid::Uuid;

use super::Commands;
use crate::error::CommandError;
use crate::uow::UnitOfWork;

/// Which way a quota place moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// A new resource takes one.
    Take,
    /// A deleted resource gives its own back.
    GiveBack,
}

impl<S: EventStore> Commands<S> {
    /// The same handlers holding users to `limits`.
    pub fn with_quotas(mut self, limits: QuotaLimits) -> Self {
        self.quotas = limits;
        self
    }

    /// The limits users are held to.
    pub fn quotas(&self) -> &QuotaLimits {
        &self.quotas
    }

    /// Take `user_id`'s place for a new `resource_id` of `kind` in `uow`
    /// (refused when the user holds as many as allowed), or give a deleted
    /// one's place back.
    pub(crate) async fn move_place(
        &self,
        uow: &mut UnitOfWork<'_, S>,
        user_id: Uuid,
        (kind, resource_id): (QuotaKind, Uuid),
        change: Place,
    ) -> Result<(), CommandError> {
        let decide = |quota: &Quota| match change {
            Place::Take => quota.take(kind, resource_id, self.quotas.of(kind), self.now()),
            Place::GiveBack => Ok(quota.give_back(kind, resource_id, self.now())),
        };
        uow.take_turn(user_id, &self.quota_states).await;
        let (events, version) = match uow.decide_on_kept(user_id, &self.quota_states, decide) {
            Some(Ok((events, version))) if !events.is_empty() => (events, version),
            // Only an append checks a kept state against the log. A decision
            // that appends nothing (a refusal, a place already taken or never
            // held) is made again on the log's state: another instance may
            // have moved this user's places.
            _ => {
                self.quota_states.forget(user_id);
                let (quota, version) = uow.load_cached::<Quota>(user_id, &self.quota_states).await?;
                (decide(&quota)?, version)
            }
        };
        uow.record_about::<Quota>(user_id, version, &events, resource_id)?;
        uow.keep_after_commit(&self.quota_states, user_id, version, &events);
        Ok(())
    }
}
