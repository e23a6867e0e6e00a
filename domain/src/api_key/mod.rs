//! The ApiKey aggregate: a key a user made for the external API, with the
//! scopes it grants and whether it still works. The secret itself never
//! reaches the domain: the handler passes in only its slow salted hash and
//! the non-secret parts a listing shows or a lookup needs.

mod command;
mod event;

pub use command::ApiKeyCommand;
pub use event::ApiKeyEvent;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::Aggregate;

/// What a key may be used for (AutoGPT's `APIKeyPermission`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = APIKeyPermission))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ApiKeyPermission {
    /// Read who the key belongs to.
    Identity,
    /// Run graphs.
    ExecuteGraph,
    /// Read graphs and their runs.
    ReadGraph,
    /// Run single blocks.
    ExecuteBlock,
    /// Read the block catalog.
    ReadBlock,
    /// Read the store.
    ReadStore,
    /// Use the copilot tools.
    UseTools,
    /// Manage integrations.
    ManageIntegrations,
    /// Read integrations.
    ReadIntegrations,
    /// Delete integrations.
    DeleteIntegrations,
}

/// Whether a key works (AutoGPT's `APIKeyStatus`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = APIKeyStatus))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ApiKeyStatus {
    /// Accepted.
    #[default]
    Active,
    /// Refused for good.
    Revoked,
    /// Refused; kept for the record.
    Suspended,
}

impl ApiKeyStatus {
    /// The status as stored and served.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Revoked => "REVOKED",
            Self::Suspended => "SUSPENDED",
        }
    }
}

/// What is kept of a secret: never the secret, only what checks it (a slow
/// salted hash), what finds its record (a short fast digest) and what a
/// listing shows (its first and last characters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSecret {
    /// The slow salted hash, as a PHC string.
    pub hash: String,
    /// A short fast digest of the key: an index to find candidates by,
    /// too short to stand in for the hash.
    pub lookup: String,
    /// The key's first characters.
    pub head: String,
    /// The key's last characters.
    pub tail: String,
}

/// The longest name a key may have.
pub const MAX_NAME_CHARS: usize = 255;
/// The longest description a key may have.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;

/// Why an API key command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyError {
    /// No such key for this user.
    #[error("API key not found")]
    NotFound,
    /// A key with this id exists already (a create retried with the same
    /// idempotency key: its secret was shown once and cannot be shown again).
    #[error("This API key was created already; its secret is shown only once")]
    AlreadyExists,
    /// The name is empty or too long.
    #[error("name must be 1 to {MAX_NAME_CHARS} characters")]
    InvalidName,
    /// The description is too long.
    #[error("description must be at most {MAX_DESCRIPTION_CHARS} characters")]
    InvalidDescription,
    /// The expiry is not in the future.
    #[error("expires_at must be in the future")]
    InvalidExpiry,
}

/// State of one API key, folded from its stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiKey {
    /// Set once created.
    pub id: Option<Uuid>,
    /// Whose key.
    pub user_id: Option<Uuid>,
    /// Display name.
    pub name: String,
    /// Optional description.
    pub description: Option<String>,
    /// What it grants, in a stable order, each once.
    pub scopes: Vec<ApiKeyPermission>,
    /// Whether it works.
    pub status: ApiKeyStatus,
    /// What is kept of its secret.
    pub secret: Option<StoredSecret>,
    /// When it was created.
    pub created_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// The key exists, is `user`'s and is not revoked: revoking is how a
    /// key is deleted, so a revoked key is gone for its owner too (its
    /// stream keeps the history).
    pub fn is_visible_to(&self, user: Uuid) -> bool {
        self.id.is_some() && self.user_id == Some(user) && self.status != ApiKeyStatus::Revoked
    }

    /// The key's time is up at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }

    /// The key is accepted for requests needing `scope`: active, and granting it.
    pub fn grants(&self, scope: ApiKeyPermission) -> bool {
        self.status == ApiKeyStatus::Active && self.scopes.contains(&scope)
    }
}

/// Scopes in the enum's order, each once, whatever the caller sent.
pub fn normalize_scopes(mut scopes: Vec<ApiKeyPermission>) -> Vec<ApiKeyPermission> {
    scopes.sort_unstable();
    scopes.dedup();
    scopes
}

impl Aggregate for ApiKey {
    type Event = ApiKeyEvent;
    const STREAM_PREFIX: &'static str = "api_key";

    fn evolve(&mut self, event: &ApiKeyEvent) {
        match event {
            ApiKeyEvent::ApiKeyCreated { key_id, user_id, name, description, scopes, secret, expires_at, at } => {
                *self = Self {
                    id: Some(*key_id),
                    user_id: Some(*user_id),
                    name: name.clone(),
                    description: description.clone(),
                    scopes: scopes.clone(),
                    status: ApiKeyStatus::Active,
                    secret: Some(secret.clone()),
                    created_at: Some(*at),
                    revoked_at: None,
                    expires_at: *expires_at,
                };
            }
            ApiKeyEvent::ApiKeySuspended { .. } => self.status = ApiKeyStatus::Suspended,
            ApiKeyEvent::ApiKeyRevoked { at, .. } => {
                self.status = ApiKeyStatus::Revoked;
                self.revoked_at = Some(*at);
            }
            ApiKeyEvent::ApiKeyPermissionsUpdated { scopes, .. } => self.scopes = scopes.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
