//! The Credential aggregate: a secret a user stores once (an API key, a
//! user name and password, headers for one host) and names by id in the
//! graphs it runs. The log keeps only its ciphertext, sealed under a key of
//! its own that lives outside the log: deleting the credential destroys
//! that key, so what the log still holds can never be read again.

#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::{Aggregate, EventType};

/// Longest provider name.
pub const MAX_PROVIDER_CHARS: usize = 100;
/// What stands for a secret wherever one would be shown.
pub const MASK: &str = "**********";
/// Longest title.
pub const MAX_TITLE_CHARS: usize = 255;
/// Longest host pattern.
pub const MAX_HOST_CHARS: usize = 255;
/// Most headers a host-scoped credential may carry.
pub const MAX_HEADERS: usize = 50;
/// Largest sealed secret (base64 of the ciphertext), so that one event
/// stays small.
pub const MAX_SEALED_CHARS: usize = 64 * 1024;

/// What kind of secret a credential holds (AutoGPT's `CredentialsType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CredentialKind {
    /// A bearer API key.
    ApiKey,
    /// An OAuth2 token (the provider flows are not served here).
    #[serde(rename = "oauth2")]
    OAuth2,
    /// A user name and password.
    UserPassword,
    /// Headers added to requests to one host.
    HostScoped,
}

impl CredentialKind {
    /// The wire name, e.g. `"api_key"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::OAuth2 => "oauth2",
            Self::UserPassword => "user_password",
            Self::HostScoped => "host_scoped",
        }
    }
}

/// A secret as the log keeps it: AES-256-GCM ciphertext under the data key
/// named by `key_id`, which is stored outside the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    /// The cipher, `A256GCM`.
    pub alg: String,
    /// Which data key sealed it.
    pub key_id: String,
    /// The nonce, base64.
    pub nonce: String,
    /// The ciphertext with its tag, base64.
    pub ciphertext: String,
}

/// What a credential shows without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialMeta {
    /// The integration it is for (any name, e.g. "openai").
    pub provider: String,
    /// The kind of secret.
    pub kind: CredentialKind,
    /// A title the user chose.
    pub title: Option<String>,
    /// For host-scoped credentials: the host it applies to.
    pub host: Option<String>,
    /// For host-scoped credentials: the names of its headers (their values
    /// are secret).
    #[serde(default)]
    pub header_names: Vec<String>,
    /// When an API key expires, Unix seconds.
    pub expires_at: Option<i64>,
    /// OAuth scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// Facts about a credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum CredentialEvent {
    /// A user stored a credential.
    CredentialCreated {
        /// Whose.
        user_id: Uuid,
        /// What it shows.
        meta: Box<CredentialMeta>,
        /// The secret, sealed.
        secret: SealedSecret,
        /// When.
        at: DateTime<Utc>,
    },
    /// The user deleted it; its data key was destroyed first.
    CredentialDeleted {
        /// When.
        at: DateTime<Utc>,
    },
}

impl EventType for CredentialEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::CredentialCreated { .. } => "CredentialCreated",
            Self::CredentialDeleted { .. } => "CredentialDeleted",
        }
    }
}

/// Why a credential command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// The provider name is empty or too long.
    #[error("provider must be 1 to {MAX_PROVIDER_CHARS} characters of letters, digits, '-', '_' or '.'")]
    InvalidProvider,
    /// The title is too long.
    #[error("title must be at most {MAX_TITLE_CHARS} characters")]
    InvalidTitle,
    /// A host-scoped credential names no host, or too long a one.
    #[error("host must be 1 to {MAX_HOST_CHARS} characters")]
    InvalidHost,
    /// Too many headers.
    #[error("at most {MAX_HEADERS} headers")]
    TooManyHeaders,
    /// The sealed secret is too large.
    #[error("the secret is too large")]
    SecretTooLarge,
    /// The id is taken.
    #[error("credentials already exist")]
    AlreadyExists,
    /// Not the user's, or deleted.
    #[error("credentials not found")]
    NotFound,
}

/// Commands on a credential.
#[derive(Debug, Clone)]
pub enum CredentialCommand {
    /// Store a sealed credential.
    Create {
        /// Whose.
        user_id: Uuid,
        /// What it shows.
        meta: Box<CredentialMeta>,
        /// The sealed secret.
        secret: SealedSecret,
        /// The clock.
        now: DateTime<Utc>,
    },
    /// Delete it (after its data key was destroyed).
    Delete {
        /// Who asks.
        user_id: Uuid,
        /// The clock.
        now: DateTime<Utc>,
    },
}

/// State of a credential, folded from its stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Credential {
    /// Whose, once created.
    pub user_id: Option<Uuid>,
    /// What it shows.
    pub meta: Option<CredentialMeta>,
    /// The sealed secret.
    pub secret: Option<SealedSecret>,
    /// Deleted.
    pub is_deleted: bool,
}

/// Whether `provider` is a provider name: 1 to [`MAX_PROVIDER_CHARS`]
/// letters, digits, `-`, `_` or `.`.
pub fn valid_provider(provider: &str) -> bool {
    (1..=MAX_PROVIDER_CHARS).contains(&provider.chars().count())
        && provider.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Credential {
    /// The credential exists, is not deleted and is `user`'s.
    pub fn is_visible_to(&self, user: Uuid) -> bool {
        self.user_id == Some(user) && !self.is_deleted
    }

    /// The events a command leads to, or why it is refused.
    pub fn decide(&self, command: CredentialCommand) -> Result<Vec<CredentialEvent>, CredentialError> {
        match command {
            CredentialCommand::Create { user_id, meta, secret, now } => {
                if self.user_id.is_some() {
                    return Err(CredentialError::AlreadyExists);
                }
                if !valid_provider(&meta.provider) {
                    return Err(CredentialError::InvalidProvider);
                }
                if meta.title.as_ref().is_some_and(|t| t.chars().count() > MAX_TITLE_CHARS) {
                    return Err(CredentialError::InvalidTitle);
                }
                if meta.kind == CredentialKind::HostScoped
                    && !meta.host.as_ref().is_some_and(|h| (1..=MAX_HOST_CHARS).contains(&h.trim().chars().count()))
                {
                    return Err(CredentialError::InvalidHost);
                }
                if meta.header_names.len() > MAX_HEADERS {
                    return Err(CredentialError::TooManyHeaders);
                }
                if secret.ciphertext.len() > MAX_SEALED_CHARS {
                    return Err(CredentialError::SecretTooLarge);
                }
                Ok(vec![CredentialEvent::CredentialCreated { user_id, meta, secret, at: now }])
            }
            CredentialCommand::Delete { user_id, now } => {
                if !self.is_visible_to(user_id) {
                    return Err(CredentialError::NotFound);
                }
                Ok(vec![CredentialEvent::CredentialDeleted { at: now }])
            }
        }
    }
}

impl Aggregate for Credential {
    type Event = CredentialEvent;
    const STREAM_PREFIX: &'static str = "credential";

    fn evolve(&mut self, event: &CredentialEvent) {
        match event {
            CredentialEvent::CredentialCreated { user_id, meta, secret, .. } => {
                self.user_id = Some(*user_id);
                self.meta = Some(CredentialMeta::clone(meta));
                self.secret = Some(secret.clone());
            }
            CredentialEvent::CredentialDeleted { .. } => self.is_deleted = true,
        }
    }
}
