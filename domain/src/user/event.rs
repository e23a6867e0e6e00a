use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::EventType;

/// Facts about a user account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum UserEvent {
    /// The account was first seen (first authenticated `POST /api/auth/user`).
    UserRegistered {
        /// The JWT subject.
        user_id: Uuid,
        /// E-mail address from the token.
        email: String,
        /// Display name from the token's metadata, if any.
        name: Option<String>,
        /// When it happened.
        at: DateTime<Utc>,
    },
    /// The user changed its e-mail address.
    UserEmailChanged {
        /// The new address.
        email: String,
        /// When it happened.
        at: DateTime<Utc>,
    },
    /// The user chose which notifications it wants, where, and how many
    /// e-mails a day at most.
    NotificationPreferencesSet {
        /// Where notifications go.
        email: String,
        /// Wanted or not, by AutoGPT's `NotificationType` name; types not
        /// named keep their default (wanted).
        preferences: std::collections::BTreeMap<String, bool>,
        /// Most e-mails a day.
        daily_limit: i64,
        /// When it happened.
        at: DateTime<Utc>,
    },
    /// The user chose a timezone.
    UserTimezoneSet {
        /// IANA timezone name.
        timezone: String,
        /// When it happened.
        at: DateTime<Utc>,
    },
}

impl EventType for UserEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::UserRegistered { .. } => "UserRegistered",
            Self::UserEmailChanged { .. } => "UserEmailChanged",
            Self::UserTimezoneSet { .. } => "UserTimezoneSet",
            Self::NotificationPreferencesSet { .. } => "NotificationPreferencesSet",
        }
    }
}
