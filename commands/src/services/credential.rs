//! Credentials: stored sealed, listed without their secrets, deleted by
//! destroying their data key, and opened only for the worker that calls
//! out with them.

use std::collections::BTreeMap;

use domain::aggregate::Aggregate;
use domain::credential::{Credential, CredentialCommand, CredentialError, CredentialKind, CredentialMeta};
use eventlog::EventStore;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Commands;
use crate::context::CommandContext;
use crate::error::CommandError;
use crate::uow::{decide_on, Outcome, UnitOfWork};
use crate::vault::{Vault, VaultError};

/// A credential's secret in clear: only ever in memory, sealed before it
/// is stored. `Debug` shows which fields are set, never their values.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Secret {
    /// An API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// A user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// A password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Headers for a host.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("username", &self.username.as_ref().map(|_| "***"))
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A credential to store.
#[derive(Debug, Clone)]
pub struct NewCredential {
    /// What it shows.
    pub meta: CredentialMeta,
    /// Its secret.
    pub secret: Secret,
}

/// A credential opened for use: what it shows and its secret.
#[derive(Debug, Clone)]
pub struct OpenCredential {
    /// Its id.
    pub id: Uuid,
    /// What it shows.
    pub meta: CredentialMeta,
    /// Its secret.
    pub secret: Secret,
}

impl From<CredentialError> for CommandError {
    fn from(e: CredentialError) -> Self {
        match e {
            CredentialError::NotFound => CommandError::NotFound("Credentials"),
            other => CommandError::Credential(other),
        }
    }
}

impl<S: EventStore> Commands<S> {
    fn vault(&self) -> Result<&Vault, CommandError> {
        self.vault.as_ref().ok_or(CommandError::Vault(VaultError::BadKey("no vault configured".into())))
    }

    /// Store a credential for `user_id`, sealed. Answers its id and state.
    pub async fn create_credential(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        new: NewCredential,
    ) -> Result<(Outcome, Uuid, Credential), CommandError> {
        let id = ctx.new_id("credential");
        let plain = serde_json::to_vec(&new.secret).map_err(|_| CommandError::Vault(VaultError::Encrypt))?;
        let mut uow = UnitOfWork::new(&self.store, ctx);
        let (state, version) = uow.load::<Credential>(id).await?;
        // The decision runs on a placeholder first, so that a refused
        // command leaves no data key behind.
        let check = domain::credential::SealedSecret {
            alg: crate::vault::ALG.into(),
            key_id: String::new(),
            nonce: String::new(),
            ciphertext: String::new(),
        };
        state.decide(CredentialCommand::Create {
            user_id,
            meta: Box::new(new.meta.clone()),
            secret: check,
            now: self.now(),
        })?;
        let secret = self.vault()?.seal(id, &plain).await.map_err(CommandError::Vault)?;
        let events =
            state.decide(CredentialCommand::Create { user_id, meta: Box::new(new.meta), secret, now: self.now() })?;
        uow.record::<Credential>(id, version, &events)?;
        let outcome = uow.commit().await?;
        Ok((outcome, id, Credential::from_events(&events)))
    }

    /// Delete one of the user's credentials: its data key is destroyed
    /// first, so the ciphertext in the log is unreadable from then on.
    pub async fn delete_credential(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        id: Uuid,
    ) -> Result<Outcome, CommandError> {
        let (state, _) = self.read::<Credential>(id).await?;
        if !state.is_visible_to(user_id) {
            return Err(CommandError::NotFound("Credentials"));
        }
        self.vault()?.shred(id).await.map_err(CommandError::Vault)?;
        let now = self.now();
        let (outcome, _) = decide_on::<Credential, _, _>(&self.store, ctx, id, |credential| {
            Ok(credential.decide(CredentialCommand::Delete { user_id, now })?)
        })
        .await?;
        Ok(outcome)
    }

    /// One of the user's credentials with its secret, for a call made with
    /// it. A credential that is not the user's is not found; one that
    /// cannot be opened is an error, never an empty secret.
    pub async fn open_credential(&self, user_id: Uuid, id: Uuid) -> Result<OpenCredential, CommandError> {
        let (state, _) = self.read::<Credential>(id).await?;
        let (true, Some(meta), Some(sealed)) = (state.is_visible_to(user_id), state.meta, state.secret) else {
            return Err(CommandError::NotFound("Credentials"));
        };
        let plain = self.vault()?.open(id, &sealed).await.map_err(CommandError::Vault)?;
        let secret = serde_json::from_slice(&plain).map_err(|_| CommandError::Vault(VaultError::Decrypt))?;
        Ok(OpenCredential { id, meta, secret })
    }

    /// A credential of the user's that may be named in a run: it exists and
    /// is theirs (its secret is not opened).
    pub async fn credential_meta(&self, user_id: Uuid, id: Uuid) -> Result<Option<CredentialMeta>, CommandError> {
        let (state, _) = self.read::<Credential>(id).await?;
        Ok(state.is_visible_to(user_id).then_some(state.meta).flatten())
    }
}

/// Whether a kind of credential carries the secret fields it needs.
pub fn secret_fits(kind: CredentialKind, secret: &Secret) -> bool {
    match kind {
        CredentialKind::ApiKey => secret.api_key.as_ref().is_some_and(|k| !k.is_empty()),
        CredentialKind::UserPassword => secret.username.is_some() && secret.password.is_some(),
        CredentialKind::HostScoped => true,
        CredentialKind::OAuth2 => false,
    }
}
