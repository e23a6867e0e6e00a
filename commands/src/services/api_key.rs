use domain::api_key::{ApiKey, ApiKeyCommand, ApiKeyEvent, ApiKeyPermission, StoredSecret};
use domain::quota::QuotaKind;
use domain::Aggregate;
use eventlog::EventStore;
use uuid::Uuid;

use super::quota::Place;
use super::Commands;
use crate::context::CommandContext;
use crate::error::CommandError;
use crate::uow::{retry_on_conflict, Outcome, UnitOfWork};

/// A key to make: what the user asked for, and what is kept of the secret
/// the API generated (the secret itself never comes this far).
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// Display name.
    pub name: String,
    /// Optional description.
    pub description: Option<String>,
    /// What it grants.
    pub scopes: Vec<ApiKeyPermission>,
    /// Hash, lookup digest, head and tail of the secret.
    pub secret: StoredSecret,
    /// When it stops working, if ever.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A change to one of a user's keys.
#[derive(Debug, Clone)]
pub enum ApiKeyChange {
    /// Stop it working until further notice.
    Suspend,
    /// Stop it working for good.
    Revoke,
    /// Grant these scopes instead.
    SetPermissions(Vec<ApiKeyPermission>),
}

impl<S: EventStore> Commands<S> {
    /// Make a key for `user_id`. Its id derives from the idempotency key
    /// when there is one, so a retried create lands on the same stream and
    /// is refused there rather than making a second key.
    pub async fn create_api_key(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        key: NewApiKey,
    ) -> Result<(Outcome, ApiKey), CommandError> {
        let key_id = ctx.new_id("api_key");
        self.decide_on_key(ctx, user_id, key_id, |state| {
            Ok(state.decide(ApiKeyCommand::CreateApiKey {
                key_id,
                user_id,
                name: key.name.clone(),
                description: key.description.clone(),
                scopes: key.scopes.clone(),
                secret: key.secret.clone(),
                expires_at: key.expires_at,
                now: self.now(),
            })?)
        })
        .await
    }

    /// Decide on a key and append, with its quota place: taken by a new
    /// key, given back by a revoked one, in the same append.
    async fn decide_on_key<F>(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        key_id: Uuid,
        decide: F,
    ) -> Result<(Outcome, ApiKey), CommandError>
    where
        F: Fn(&ApiKey) -> Result<Vec<ApiKeyEvent>, CommandError>,
    {
        retry_on_conflict(|| async {
            let mut uow = UnitOfWork::new(&self.store, ctx);
            let (mut state, version) = uow.load::<ApiKey>(key_id).await?;
            let events = decide(&state)?;
            for event in &events {
                match event {
                    ApiKeyEvent::ApiKeyCreated { .. } => {
                        self.move_place(&mut uow, user_id, (QuotaKind::ApiKey, key_id), Place::Take).await?;
                    }
                    ApiKeyEvent::ApiKeyRevoked { .. } => {
                        self.move_place(&mut uow, user_id, (QuotaKind::ApiKey, key_id), Place::GiveBack).await?;
                    }
                    _ => {}
                }
            }
            uow.record::<ApiKey>(key_id, version, &events)?;
            let outcome = uow.commit().await?;
            for event in &events {
                state.evolve(event);
            }
            Ok((outcome, state))
        })
        .await
    }

    /// Suspend, revoke or re-scope one of `user_id`'s keys; answers the key
    /// as it now stands.
    pub async fn change_api_key(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        key_id: Uuid,
        change: ApiKeyChange,
    ) -> Result<(Outcome, ApiKey), CommandError> {
        self.decide_on_key(ctx, user_id, key_id, |state| {
            let now = self.now();
            let command = match &change {
                ApiKeyChange::Suspend => ApiKeyCommand::SuspendApiKey { user_id, now },
                ApiKeyChange::Revoke => ApiKeyCommand::RevokeApiKey { user_id, now },
                ApiKeyChange::SetPermissions(scopes) => {
                    ApiKeyCommand::UpdatePermissions { user_id, scopes: scopes.clone(), now }
                }
            };
            Ok(state.decide(command)?)
        })
        .await
    }

    /// A key as the log has it now: what authenticating a request checks,
    /// so a key revoked or suspended a moment ago is refused at once,
    /// whatever the read models or any cache hold.
    pub async fn api_key(&self, key_id: Uuid) -> Result<ApiKey, CommandError> {
        Ok(self.read::<ApiKey>(key_id).await?.0)
    }
}
