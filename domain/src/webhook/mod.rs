//! Webhooks: an address outside senders deliver to, which starts runs of
//! the triggered preset it belongs to.
//!
//! Two aggregates. A `Webhook` (`webhook-<id>`) is created with its preset,
//! holds the secret deliveries are signed with (sealed: the log never sees
//! it in clear), is pinged by its owner and deleted with its preset. Each
//! accepted delivery is a `WebhookDelivery` stream of its own, named from
//! the webhook and the delivery id, appended at version 0 together with the
//! run it starts: a delivery id can only ever be accepted once, whatever
//! races, and deliveries with different ids never contend on one stream,
//! nor does the webhook's stream grow with its traffic.

#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::{derived_id, Aggregate, EventType};
use crate::credential::SealedSecret;

/// Longest delivery id a sender may name.
pub const MAX_DELIVERY_ID_CHARS: usize = 200;

/// Facts about a webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum WebhookEvent {
    /// A webhook was set up for a triggered preset.
    WebhookCreated {
        /// Whose.
        user_id: Uuid,
        /// Whose deliveries it takes (`generic_webhook`).
        provider: String,
        /// The provider's webhook type (`plain`).
        webhook_type: String,
        /// The preset it starts.
        preset_id: Uuid,
        /// The preset's graph.
        graph_id: Uuid,
        /// Its version.
        graph_version: i32,
        /// The signing secret, sealed under a data key kept outside the log.
        secret: SealedSecret,
        /// When.
        at: DateTime<Utc>,
    },
    /// Its owner pinged it.
    WebhookPinged {
        /// When.
        at: DateTime<Utc>,
    },
    /// It was deleted with its preset; its secret's key was destroyed.
    WebhookDeleted {
        /// When.
        at: DateTime<Utc>,
    },
}

impl EventType for WebhookEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::WebhookCreated { .. } => "WebhookCreated",
            Self::WebhookPinged { .. } => "WebhookPinged",
            Self::WebhookDeleted { .. } => "WebhookDeleted",
        }
    }
}

/// Facts about one delivery to a webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum DeliveryEvent {
    /// A signed delivery was accepted and started a run.
    WebhookDeliveryAccepted {
        /// The webhook.
        webhook_id: Uuid,
        /// The sender's id of the delivery (or the body's SHA-256).
        delivery_id: String,
        /// The run it started.
        execution_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
}

impl EventType for DeliveryEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::WebhookDeliveryAccepted { .. } => "WebhookDeliveryAccepted",
        }
    }
}

/// Why a webhook command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The id is taken.
    #[error("webhook already exists")]
    AlreadyExists,
    /// No such webhook, not the caller's, or not of the provider named.
    #[error("webhook not found")]
    NotFound,
    /// It was deleted.
    #[error("webhook was deleted")]
    Gone,
    /// A delivery id that is empty, too long or not printable ASCII.
    #[error("delivery id must be 1 to {MAX_DELIVERY_ID_CHARS} printable ASCII characters")]
    InvalidDeliveryId,
}

/// Commands on a webhook.
#[derive(Debug, Clone)]
pub enum WebhookCommand {
    /// Set one up.
    Create {
        /// Whose.
        user_id: Uuid,
        /// Provider.
        provider: String,
        /// Webhook type.
        webhook_type: String,
        /// The preset it starts.
        preset_id: Uuid,
        /// The graph.
        graph_id: Uuid,
        /// Its version.
        graph_version: i32,
        /// The sealed secret.
        secret: SealedSecret,
        /// The clock.
        now: DateTime<Utc>,
    },
    /// Ping it, as `user_id`.
    Ping {
        /// Who asks.
        user_id: Uuid,
        /// The clock.
        now: DateTime<Utc>,
    },
    /// Delete it (its preset goes); a second deletion changes nothing.
    Delete {
        /// The clock.
        now: DateTime<Utc>,
    },
}

/// State of a webhook, folded from its stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Webhook {
    /// Whose, once created.
    pub user_id: Option<Uuid>,
    /// Provider.
    pub provider: String,
    /// Webhook type.
    pub webhook_type: String,
    /// The preset it starts.
    pub preset_id: Uuid,
    /// The sealed secret.
    pub secret: Option<SealedSecret>,
    /// When it was last pinged.
    pub last_pinged_at: Option<DateTime<Utc>>,
    /// Deleted.
    pub is_deleted: bool,
}

impl Webhook {
    /// The webhook exists, is not deleted and is `user`'s.
    pub fn is_visible_to(&self, user: Uuid) -> bool {
        self.user_id == Some(user) && !self.is_deleted
    }

    /// Whether a delivery addressed to `provider` may be considered: the
    /// webhook exists for that provider and is not deleted.
    pub fn takes_deliveries_for(&self, provider: &str) -> Result<(), WebhookError> {
        if self.user_id.is_none() || self.provider != provider {
            return Err(WebhookError::NotFound);
        }
        if self.is_deleted {
            return Err(WebhookError::Gone);
        }
        Ok(())
    }

    /// The events a command leads to, or why it is refused.
    pub fn decide(&self, command: WebhookCommand) -> Result<Vec<WebhookEvent>, WebhookError> {
        match command {
            WebhookCommand::Create {
                user_id,
                provider,
                webhook_type,
                preset_id,
                graph_id,
                graph_version,
                secret,
                now,
            } => {
                if self.user_id.is_some() {
                    return Err(WebhookError::AlreadyExists);
                }
                Ok(vec![WebhookEvent::WebhookCreated {
                    user_id,
                    provider,
                    webhook_type,
                    preset_id,
                    graph_id,
                    graph_version,
                    secret,
                    at: now,
                }])
            }
            WebhookCommand::Ping { user_id, now } => {
                if !self.is_visible_to(user_id) {
                    return Err(WebhookError::NotFound);
                }
                Ok(vec![WebhookEvent::WebhookPinged { at: now }])
            }
            WebhookCommand::Delete { now } => match (self.user_id, self.is_deleted) {
                (None, _) => Err(WebhookError::NotFound),
                (Some(_), true) => Ok(vec![]),
                (Some(_), false) => Ok(vec![WebhookEvent::WebhookDeleted { at: now }]),
            },
        }
    }

    /// The events of accepting delivery `delivery_id`, whose stream is in
    /// state `delivery`, as the start of run `execution_id`. A delivery
    /// already accepted decides nothing (the sender retried): the run it
    /// started is the answer.
    pub fn accept_delivery(
        &self,
        webhook_id: Uuid,
        delivery: &WebhookDelivery,
        delivery_id: &str,
        execution_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<DeliveryEvent>, WebhookError> {
        if !valid_delivery_id(delivery_id) {
            return Err(WebhookError::InvalidDeliveryId);
        }
        self.takes_deliveries_for(&self.provider)?;
        if delivery.execution_id.is_some() {
            return Ok(vec![]);
        }
        Ok(vec![DeliveryEvent::WebhookDeliveryAccepted {
            webhook_id,
            delivery_id: delivery_id.to_owned(),
            execution_id,
            at: now,
        }])
    }
}

impl Aggregate for Webhook {
    type Event = WebhookEvent;
    const STREAM_PREFIX: &'static str = "webhook";

    fn evolve(&mut self, event: &WebhookEvent) {
        match event {
            WebhookEvent::WebhookCreated { user_id, provider, webhook_type, preset_id, secret, .. } => {
                *self = Self {
                    user_id: Some(*user_id),
                    provider: provider.clone(),
                    webhook_type: webhook_type.clone(),
                    preset_id: *preset_id,
                    secret: Some(secret.clone()),
                    last_pinged_at: None,
                    is_deleted: false,
                };
            }
            WebhookEvent::WebhookPinged { at } => self.last_pinged_at = Some(*at),
            WebhookEvent::WebhookDeleted { .. } => self.is_deleted = true,
        }
    }
}

/// A delivery id as a sender may give it: printable ASCII, bounded, so it
/// can be named in a stream id's derivation and a header without surprises.
pub fn valid_delivery_id(id: &str) -> bool {
    (1..=MAX_DELIVERY_ID_CHARS).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// The id of the stream of delivery `delivery_id` to `webhook_id`.
pub fn delivery_stream_id(webhook_id: Uuid, delivery_id: &str) -> Uuid {
    derived_id(webhook_id, &format!("delivery/{delivery_id}"))
}

/// One delivery to a webhook, folded from its own stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WebhookDelivery {
    /// The webhook, once accepted.
    pub webhook_id: Option<Uuid>,
    /// The sender's delivery id.
    pub delivery_id: Option<String>,
    /// The run it started.
    pub execution_id: Option<Uuid>,
}

impl Aggregate for WebhookDelivery {
    type Event = DeliveryEvent;
    const STREAM_PREFIX: &'static str = "webhook_delivery";

    fn evolve(&mut self, event: &DeliveryEvent) {
        match event {
            DeliveryEvent::WebhookDeliveryAccepted { webhook_id, delivery_id, execution_id, .. } => {
                self.webhook_id = Some(*webhook_id);
                self.delivery_id = Some(delivery_id.clone());
                self.execution_id = Some(*execution_id);
            }
        }
    }
}
