//! Who runs a command and how its ids are made: the acting user, the
//! correlation of everything one request causes, and ids derived from an
//! idempotency key so that a retried request lands on the same streams.

use eventlog::store::{new_event_id, EventMetadata};
use uuid::Uuid;

/// Who is asking, and how to correlate what follows.
#[derive(Debug, Clone, Default)]
pub struct CommandContext {
    /// The acting user.
    pub user_id: Option<Uuid>,
    /// Correlation id shared by everything this request causes.
    pub correlation_id: Uuid,
    /// HTTP request id.
    pub request_id: Option<String>,
    /// Client-supplied idempotency key: event ids are derived from it, so a
    /// repeated request appends nothing new.
    pub idempotency_key: Option<String>,
}

impl CommandContext {
    /// A context for `user` with a fresh correlation id.
    pub fn for_user(user: Uuid) -> Self {
        Self { user_id: Some(user), correlation_id: Uuid::new_v4(), ..Self::default() }
    }

    /// A context for `user` whose event ids derive from `key`, as with an
    /// idempotency key: what the system itself appends once per key (a
    /// charge per node execution, a stored value per node execution).
    pub fn keyed(user: Uuid, key: String) -> Self {
        Self { idempotency_key: Some(key), ..Self::for_user(user) }
    }

    /// A fresh id for a new aggregate: derived from the idempotency key when
    /// there is one, so a retried create lands on the same stream. Otherwise
    /// time-ordered (v7), so new streams, and the read-model rows keyed by
    /// the id, are added at the right edge of their indexes instead of on a
    /// random page each.
    pub fn new_id(&self, purpose: &str) -> Uuid {
        match &self.idempotency_key {
            Some(key) => Uuid::new_v5(&self.idempotency_scope(), format!("{purpose}/{key}").as_bytes()),
            None => Uuid::now_v7(),
        }
    }

    fn idempotency_scope(&self) -> Uuid {
        self.user_id.unwrap_or(Uuid::nil())
    }

    /// The id of the `index`th event a command appends to `stream`.
    pub fn event_id(&self, stream: &str, index: usize) -> Uuid {
        match &self.idempotency_key {
            Some(key) => Uuid::new_v5(&self.idempotency_scope(), format!("event/{key}/{stream}/{index}").as_bytes()),
            None => new_event_id(),
        }
    }

    pub(crate) fn metadata(&self) -> EventMetadata {
        EventMetadata {
            correlation_id: self.correlation_id,
            causation_id: Some(self.correlation_id),
            user_id: self.user_id,
            request_id: self.request_id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_derive_stable_ids() {
        let user = Uuid::new_v4();
        let ctx = CommandContext { idempotency_key: Some("k1".into()), ..CommandContext::for_user(user) };
        assert_eq!(ctx.new_id("graph"), ctx.new_id("graph"));
        assert_eq!(ctx.event_id("s", 0), ctx.event_id("s", 0));
        assert_ne!(ctx.event_id("s", 0), ctx.event_id("s", 1));
        let plain = CommandContext::for_user(user);
        assert_ne!(plain.new_id("graph"), plain.new_id("graph"));
    }
}
