use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    normalize_scopes, ApiKey, ApiKeyError, ApiKeyEvent, ApiKeyPermission, ApiKeyStatus, StoredSecret,
    MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS,
};

/// What a user may ask of one of its API keys.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiKeyCommand {
    /// Make a key.
    CreateApiKey {
        /// The new key's id.
        key_id: Uuid,
        /// Whose key.
        user_id: Uuid,
        /// Display name (trimmed; 1 to [`MAX_NAME_CHARS`] characters).
        name: String,
        /// Optional description.
        description: Option<String>,
        /// What it grants.
        scopes: Vec<ApiKeyPermission>,
        /// What is kept of its secret.
        secret: StoredSecret,
        /// When it stops working, if ever (in the future).
        expires_at: Option<DateTime<Utc>>,
        /// The clock.
        now: DateTime<Utc>,
    },
    /// Stop the key working until further notice.
    SuspendApiKey {
        /// Caller.
        user_id: Uuid,
        /// The clock.
        now: DateTime<Utc>,
    },
    /// Stop the key working for good.
    RevokeApiKey {
        /// Caller.
        user_id: Uuid,
        /// The clock.
        now: DateTime<Utc>,
    },
    /// Replace the scopes the key grants.
    UpdatePermissions {
        /// Caller.
        user_id: Uuid,
        /// What it grants from now on.
        scopes: Vec<ApiKeyPermission>,
        /// The clock.
        now: DateTime<Utc>,
    },
}

impl ApiKey {
    /// Decide which events a command produces against this state. Asking
    /// for what already holds (suspending a suspended key, granting the
    /// scopes it has) appends nothing; a revoked key is not found.
    pub fn decide(&self, command: ApiKeyCommand) -> Result<Vec<ApiKeyEvent>, ApiKeyError> {
        match command {
            ApiKeyCommand::CreateApiKey { key_id, user_id, name, description, scopes, secret, expires_at, now } => {
                if self.id.is_some() {
                    return Err(ApiKeyError::AlreadyExists);
                }
                let name = name.trim().to_owned();
                if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
                    return Err(ApiKeyError::InvalidName);
                }
                if description.as_ref().is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_CHARS) {
                    return Err(ApiKeyError::InvalidDescription);
                }
                if expires_at.is_some_and(|t| t <= now) {
                    return Err(ApiKeyError::InvalidExpiry);
                }
                Ok(vec![ApiKeyEvent::ApiKeyCreated {
                    key_id,
                    user_id,
                    name,
                    description,
                    scopes: normalize_scopes(scopes),
                    secret,
                    expires_at,
                    at: now,
                }])
            }
            ApiKeyCommand::SuspendApiKey { user_id, now } => {
                self.ensure_visible(user_id)?;
                if self.status == ApiKeyStatus::Suspended {
                    return Ok(vec![]);
                }
                Ok(vec![ApiKeyEvent::ApiKeySuspended { user_id, at: now }])
            }
            ApiKeyCommand::RevokeApiKey { user_id, now } => {
                self.ensure_visible(user_id)?;
                Ok(vec![ApiKeyEvent::ApiKeyRevoked { user_id, at: now }])
            }
            ApiKeyCommand::UpdatePermissions { user_id, scopes, now } => {
                self.ensure_visible(user_id)?;
                let scopes = normalize_scopes(scopes);
                if scopes == self.scopes {
                    return Ok(vec![]);
                }
                Ok(vec![ApiKeyEvent::ApiKeyPermissionsUpdated { user_id, scopes, at: now }])
            }
        }
    }

    /// Refuse unless the key exists, is `user`'s and is not revoked:
    /// another user's key is as unknown as a missing one.
    pub fn ensure_visible(&self, user: Uuid) -> Result<(), ApiKeyError> {
        if self.is_visible_to(user) {
            Ok(())
        } else {
            Err(ApiKeyError::NotFound)
        }
    }
}
