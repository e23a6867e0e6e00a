use domain::user::{User, UserCommand};
use uuid::Uuid;

use super::Commands;
use crate::context::CommandContext;
use crate::error::CommandError;
use crate::uow::{decide_on, Outcome};
use eventlog::EventStore;

impl<S: EventStore> Commands<S> {
    /// Run a user command; answers the user as it is after it.
    async fn on_user(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        command: UserCommand,
    ) -> Result<(Outcome, User), CommandError> {
        decide_on::<User, _, _>(&self.store, ctx, user_id, |user| Ok(user.decide(command.clone())?)).await
    }

    /// Register the user on first sight (`POST /api/auth/user`).
    pub async fn ensure_user(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        email: String,
        name: Option<String>,
    ) -> Result<(Outcome, User), CommandError> {
        self.on_user(ctx, user_id, UserCommand::EnsureUser { user_id, email, name, now: self.now() }).await
    }

    /// Change the user's e-mail address.
    pub async fn update_email(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        email: String,
    ) -> Result<(Outcome, User), CommandError> {
        self.on_user(ctx, user_id, UserCommand::UpdateEmail { email, now: self.now() }).await
    }

    /// Set the user's timezone (an IANA name the caller has checked).
    pub async fn set_timezone(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        timezone: String,
    ) -> Result<(Outcome, User), CommandError> {
        self.on_user(ctx, user_id, UserCommand::SetTimezone { timezone, now: self.now() }).await
    }

    /// Choose the user's notifications.
    pub async fn set_notification_preferences(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        email: String,
        preferences: std::collections::BTreeMap<String, bool>,
        daily_limit: i64,
    ) -> Result<Outcome, CommandError> {
        let command = UserCommand::SetNotificationPreferences { email, preferences, daily_limit, now: self.now() };
        Ok(self.on_user(ctx, user_id, command).await?.0)
    }

    /// The timezone the user chose, if any (for blocks told to use it).
    pub async fn user_timezone(&self, user_id: Uuid) -> Result<Option<String>, CommandError> {
        let (user, _) = self.read::<User>(user_id).await?;
        Ok(Some(user.timezone).filter(|tz| !tz.is_empty() && tz != domain::user::TIMEZONE_NOT_SET))
    }
}
