use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ApiKeyPermission, StoredSecret};
use crate::aggregate::EventType;

/// Facts about an API key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum ApiKeyEvent {
    /// A user made a key; only what checks and shows its secret is kept.
    ApiKeyCreated {
        /// The key id.
        key_id: Uuid,
        /// Whose key.
        user_id: Uuid,
        /// Display name.
        name: String,
        /// Optional description.
        description: Option<String>,
        /// What it grants.
        scopes: Vec<ApiKeyPermission>,
        /// What is kept of the secret.
        secret: StoredSecret,
        /// When it stops working, if ever.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<DateTime<Utc>>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The key stopped working until further notice.
    ApiKeySuspended {
        /// Whose key.
        user_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// The key stopped working for good.
    ApiKeyRevoked {
        /// Whose key.
        user_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// The key now grants these scopes instead.
    ApiKeyPermissionsUpdated {
        /// Whose key.
        user_id: Uuid,
        /// What it grants from now on.
        scopes: Vec<ApiKeyPermission>,
        /// When.
        at: DateTime<Utc>,
    },
}

impl EventType for ApiKeyEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::ApiKeyCreated { .. } => "ApiKeyCreated",
            Self::ApiKeySuspended { .. } => "ApiKeySuspended",
            Self::ApiKeyRevoked { .. } => "ApiKeyRevoked",
            Self::ApiKeyPermissionsUpdated { .. } => "ApiKeyPermissionsUpdated",
        }
    }
}
