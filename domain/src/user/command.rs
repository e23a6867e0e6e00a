use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{User, UserError, UserEvent};

/// What a caller may ask of a user account.
#[derive(Debug, Clone, PartialEq)]
pub enum UserCommand {
    /// Register the user if it is new; a no-op otherwise.
    EnsureUser {
        /// The JWT subject.
        user_id: Uuid,
        /// E-mail from the token.
        email: String,
        /// Name from the token, if any.
        name: Option<String>,
        /// The clock.
        now: DateTime<Utc>,
    },
    /// Change the e-mail address.
    UpdateEmail {
        /// New address.
        email: String,
        /// The clock.
        now: DateTime<Utc>,
    },
    /// Choose notifications; the caller has checked the type names.
    SetNotificationPreferences {
        /// Where notifications go.
        email: String,
        /// Wanted or not, by type name.
        preferences: std::collections::BTreeMap<String, bool>,
        /// Most e-mails a day (0 to [`super::MAX_DAILY_EMAILS`]).
        daily_limit: i64,
        /// The clock.
        now: DateTime<Utc>,
    },
    /// Choose a timezone; the caller has checked it is a known IANA name.
    SetTimezone {
        /// IANA name.
        timezone: String,
        /// The clock.
        now: DateTime<Utc>,
    },
}

impl User {
    /// Decide which events a command produces against this state.
    pub fn decide(&self, command: UserCommand) -> Result<Vec<UserEvent>, UserError> {
        match command {
            UserCommand::EnsureUser { user_id, email, name, now } => {
                if self.id.is_some() {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::UserRegistered { user_id, email, name, at: now }])
            }
            UserCommand::UpdateEmail { email, now } => {
                self.id.ok_or(UserError::NotFound)?;
                let email = email.trim().to_owned();
                if !plausible_email(&email) {
                    return Err(UserError::InvalidEmail(email));
                }
                if email == self.email {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::UserEmailChanged { email, at: now }])
            }
            UserCommand::SetNotificationPreferences { email, preferences, daily_limit, now } => {
                self.id.ok_or(UserError::NotFound)?;
                let email = email.trim().to_owned();
                if !plausible_email(&email) {
                    return Err(UserError::InvalidEmail(email));
                }
                if !(0..=super::MAX_DAILY_EMAILS).contains(&daily_limit) {
                    return Err(UserError::InvalidDailyLimit(daily_limit));
                }
                Ok(vec![UserEvent::NotificationPreferencesSet { email, preferences, daily_limit, at: now }])
            }
            UserCommand::SetTimezone { timezone, now } => {
                self.id.ok_or(UserError::NotFound)?;
                if timezone.is_empty() {
                    return Err(UserError::InvalidTimezone(timezone));
                }
                if timezone == self.timezone {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::UserTimezoneSet { timezone, at: now }])
            }
        }
    }
}

/// One `@` with text on both sides and a dot in the domain: enough to catch
/// typos without rejecting unusual but valid addresses. Takes the address
/// already trimmed, as `UpdateEmail` does.
pub fn plausible_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.contains(char::is_whitespace)
                && !domain.contains('@')
        }
        None => false,
    }
}
