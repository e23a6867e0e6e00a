//! The User aggregate: a platform account, keyed by the JWT `sub`.

mod command;
mod event;

pub use command::{plausible_email, UserCommand};
pub use event::UserEvent;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::aggregate::Aggregate;

/// The timezone a user has before choosing one, as AutoGPT serves it.
pub const TIMEZONE_NOT_SET: &str = "not-set";

/// Why a user command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// The user has never been registered (no `POST /api/auth/user` yet).
    #[error("User not found")]
    NotFound,
    /// The e-mail address is not plausible.
    #[error("Invalid email address: {0}")]
    InvalidEmail(String),
    /// The timezone is not an IANA name the caller validated.
    #[error("Invalid timezone: {0}")]
    InvalidTimezone(String),
    /// The daily e-mail limit is out of range.
    #[error("daily_limit must be between 0 and {MAX_DAILY_EMAILS}, not {0}")]
    InvalidDailyLimit(i64),
}

/// Most notification e-mails a day a user may ask for.
pub const MAX_DAILY_EMAILS: i64 = 1000;

/// AutoGPT's `NotificationType` names: the notifications a user can opt
/// out of (all are wanted until then).
pub const NOTIFICATION_TYPES: [&str; 12] = [
    "AGENT_RUN",
    "ZERO_BALANCE",
    "LOW_BALANCE",
    "BLOCK_EXECUTION_FAILED",
    "CONTINUOUS_AGENT_ERROR",
    "DAILY_SUMMARY",
    "WEEKLY_SUMMARY",
    "MONTHLY_SUMMARY",
    "REFUND_REQUEST",
    "REFUND_PROCESSED",
    "AGENT_APPROVED",
    "AGENT_REJECTED",
];

/// State of one user, folded from its stream.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct User {
    /// Set once the user is registered.
    pub id: Option<Uuid>,
    /// Current e-mail address.
    pub email: String,
    /// Display name, from the token at registration.
    pub name: Option<String>,
    /// Chosen IANA timezone or [`TIMEZONE_NOT_SET`].
    pub timezone: String,
    /// When the account was registered.
    pub created_at: Option<DateTime<Utc>>,
    /// When anything about it last changed.
    pub updated_at: Option<DateTime<Utc>>,
}

impl Aggregate for User {
    type Event = UserEvent;
    const STREAM_PREFIX: &'static str = "user";

    fn evolve(&mut self, event: &UserEvent) {
        match event {
            UserEvent::UserRegistered { user_id, email, name, at } => {
                self.id = Some(*user_id);
                self.email.clone_from(email);
                self.name.clone_from(name);
                self.timezone = TIMEZONE_NOT_SET.to_owned();
                self.created_at = Some(*at);
                self.updated_at = Some(*at);
            }
            UserEvent::UserEmailChanged { email, at } => {
                self.email.clone_from(email);
                self.updated_at = Some(*at);
            }
            UserEvent::UserTimezoneSet { timezone, at } => {
                self.timezone.clone_from(timezone);
                self.updated_at = Some(*at);
            }
            UserEvent::NotificationPreferencesSet { at, .. } => self.updated_at = Some(*at),
        }
    }
}

#[cfg(test)]
mod tests;
