//! Webhook-triggered presets: setting one up (a webhook with a fresh
//! signing secret, sealed, and its preset, in one append), accepting signed
//! deliveries (each delivery id starts one run, however often or however
//! concurrently it is delivered), pings, and the webhook's end with its
//! preset.

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::OsRng;
use domain::execution::{engine, ExecutionEvent, GraphExecution};
use domain::graph::{credentials, trigger, GraphError};
use domain::preset::{Preset, PresetEvent};
use domain::quota::QuotaKind;
use domain::webhook::{delivery_stream_id, Webhook, WebhookCommand, WebhookDelivery, WebhookError};
use eventlog::EventStore;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::execution::runnable_version;
use super::quota::Place;
use super::Commands;
use crate::context::CommandContext;
use crate::error::CommandError;
use crate::uow::{decide_on, retry_on_conflict, Outcome, UnitOfWork};
use crate::vault::{Vault, VaultError};

const WEBHOOK: &str = "Webhook";

/// The prefix of a signature header's value: `sha256=<hex>`.
pub const SIGNATURE_PREFIX: &str = "sha256=";

/// A triggered preset to set up (AutoGPT's `TriggeredPresetSetupRequest`).
#[derive(Debug, Clone)]
pub struct TriggerSetup {
    /// The graph.
    pub graph_id: Uuid,
    /// Its version.
    pub graph_version: i32,
    /// The preset's name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// The trigger block's inputs: the preset's inputs.
    pub trigger_config: Map<String, Value>,
    /// Credentials for the graph's credentials inputs.
    pub agent_credentials: Map<String, Value>,
}

/// A webhook's signing secret in clear. Lives in memory and in the one
/// answer that sets the webhook up; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// The secret itself, for the setup answer.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

/// What setting a trigger up made.
#[derive(Debug, Clone)]
pub struct TriggeredPreset {
    /// The preset.
    pub preset_id: Uuid,
    /// Its webhook.
    pub webhook_id: Uuid,
    /// The webhook's provider.
    pub provider: &'static str,
    /// The webhook's type.
    pub webhook_type: &'static str,
    /// The webhook's signing secret, for the caller to hand to its sender.
    pub secret: WebhookSecret,
    /// When both were created.
    pub at: chrono::DateTime<chrono::Utc>,
}

/// A delivery whose signature was verified.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The webhook.
    pub webhook_id: Uuid,
    /// The sender's delivery id (see [`default_delivery_id`]).
    pub delivery_id: String,
    /// The delivered JSON object.
    pub payload: Map<String, Value>,
}

/// What became of a delivery.
#[derive(Debug, Clone)]
pub enum DeliveryOutcome {
    /// It started a run, now or (a repeated delivery) before.
    Started {
        /// What was appended (nothing for a repeat).
        outcome: Outcome,
        /// The run.
        execution_id: Uuid,
        /// The delivery id had been accepted before.
        duplicate: bool,
    },
    /// The preset is inactive: nothing ran, nothing was recorded, so the
    /// same delivery may start a run once the preset is active again.
    Skipped(Outcome),
}

impl From<WebhookError> for CommandError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::AlreadyExists => CommandError::Conflict,
            WebhookError::NotFound | WebhookError::Gone => CommandError::NotFound(WEBHOOK),
            // Checked at the edge before a delivery gets here.
            WebhookError::InvalidDeliveryId => CommandError::Graph(GraphError::Invalid(e.to_string())),
        }
    }
}

/// What a sender puts in the signature header for `body`: HMAC-SHA256 of
/// the raw body under the secret's UTF-8 bytes, in lower-case hex.
pub fn webhook_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac(secret.as_bytes());
    mac.update(body);
    format!("{SIGNATURE_PREFIX}{}", eventlog::seal::hex(&mac.finalize().into_bytes()))
}

/// The delivery id of a delivery that names none: its body's SHA-256, so
/// that a sender repeating the same body is still answered with one run.
pub fn default_delivery_id(body: &[u8]) -> String {
    eventlog::seal::hex(&Sha256::digest(body))
}

fn hmac(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; the error case cannot happen.
    <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
}

/// Whether `header` (`sha256=<hex>`) signs `body` under `secret`. The
/// comparison takes the same time wherever the first difference is.
fn signature_matches(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(("sha256" | "SHA256", given)) = header.trim().split_once('=') else { return false };
    let Some(given) = crate::vault::hex_bytes(given) else { return false };
    let mut mac = hmac(secret);
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// 32 random bytes in hex, as AutoGPT makes webhook secrets.
fn fresh_secret() -> WebhookSecret {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    WebhookSecret(eventlog::seal::hex(&bytes))
}

impl<S: EventStore> Commands<S> {
    fn webhook_vault(&self) -> Result<&Vault, CommandError> {
        self.vault.as_ref().ok_or(CommandError::Vault(VaultError::BadKey("no vault configured".into())))
    }

    /// Set up a webhook-triggered preset of a graph version the user may
    /// run, whose graph has exactly one webhook trigger node: the webhook
    /// with a fresh secret (sealed before anything is appended, after
    /// everything is checked, so a refused request leaves nothing) and the
    /// preset, appended together.
    pub async fn setup_trigger(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        setup: TriggerSetup,
    ) -> Result<(Outcome, TriggeredPreset), CommandError> {
        // The user's quota stream is shared with their other creates: a
        // conflict there is decided again, like any other.
        retry_on_conflict(|| self.setup_trigger_once(ctx, user_id, setup.clone())).await
    }

    async fn setup_trigger_once(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        setup: TriggerSetup,
    ) -> Result<(Outcome, TriggeredPreset), CommandError> {
        let mut uow = UnitOfWork::new(&self.store, ctx);
        let graph = runnable_version(&mut uow, user_id, setup.graph_id, Some(setup.graph_version)).await?;
        let (_, provider, webhook_type) = trigger::sole_webhook_node(&graph).map_err(GraphError::Invalid)?;
        let (webhook_id, preset_id, now) = (ctx.new_id("webhook"), ctx.new_id("preset"), self.now());
        let (existing, version) = uow.load::<Webhook>(webhook_id).await?;
        let create = |secret| WebhookCommand::Create {
            user_id,
            provider: provider.to_owned(),
            webhook_type: webhook_type.to_owned(),
            preset_id,
            graph_id: setup.graph_id,
            graph_version: setup.graph_version,
            secret,
            now,
        };
        // Decided once on a placeholder: a retried request (same idempotency
        // key, same webhook id) must not replace the data key of the secret
        // the first one stored.
        let placeholder = domain::credential::SealedSecret {
            alg: crate::vault::ALG.into(),
            key_id: String::new(),
            nonce: String::new(),
            ciphertext: String::new(),
        };
        existing.decide(create(placeholder))?;
        self.move_place(&mut uow, user_id, (QuotaKind::Preset, preset_id), Place::Take).await?;
        let secret = fresh_secret();
        let vault = self.webhook_vault()?;
        let sealed = vault.seal(webhook_id, secret.expose().as_bytes()).await.map_err(CommandError::Vault)?;
        let events = existing.decide(create(sealed))?;
        let preset = PresetEvent::PresetCreated {
            user_id,
            graph_id: setup.graph_id,
            graph_version: setup.graph_version,
            name: setup.name,
            description: setup.description,
            inputs: setup.trigger_config,
            credentials: setup.agent_credentials,
            is_active: true,
            webhook_id: Some(webhook_id),
            at: now,
        };
        uow.record::<Webhook>(webhook_id, version, &events)?;
        uow.record::<Preset>(preset_id, 0, &[preset])?;
        let outcome = uow.commit().await?;
        Ok((outcome, TriggeredPreset { preset_id, webhook_id, provider, webhook_type, secret, at: now }))
    }

    /// A webhook's state, as the log has it.
    pub async fn webhook(&self, webhook_id: Uuid) -> Result<Webhook, CommandError> {
        Ok(self.read::<Webhook>(webhook_id).await?.0)
    }

    /// Whether `signature` (the header's value) signs `body` with the
    /// webhook's secret. A webhook whose secret was destroyed meanwhile
    /// (deleted) is not found.
    pub async fn webhook_signature_matches(
        &self,
        webhook_id: Uuid,
        webhook: &Webhook,
        body: &[u8],
        signature: &str,
    ) -> Result<bool, CommandError> {
        let sealed = webhook.secret.as_ref().ok_or(CommandError::NotFound(WEBHOOK))?;
        let secret = match self.webhook_vault()?.open(webhook_id, sealed).await {
            Ok(secret) => secret,
            Err(VaultError::Shredded) => return Err(CommandError::NotFound(WEBHOOK)),
            Err(e) => return Err(CommandError::Vault(e)),
        };
        Ok(signature_matches(&secret, body, signature))
    }

    /// Accept a verified delivery: queue a run of the webhook's preset with
    /// the payload as its trigger node's input, and record the delivery,
    /// in one append. The run's id and every event id derive from the
    /// webhook and the delivery id, so of any number of deliveries of one id
    /// one append succeeds; the others find it and answer its run.
    pub async fn accept_delivery(&self, delivery: Delivery) -> Result<DeliveryOutcome, CommandError> {
        let Delivery { webhook_id, delivery_id, payload } = delivery;
        let user_id = self.webhook(webhook_id).await?.user_id.ok_or(CommandError::NotFound(WEBHOOK))?;
        let ctx = CommandContext::keyed(user_id, format!("webhook/{webhook_id}/{delivery_id}"));
        let stream = delivery_stream_id(webhook_id, &delivery_id);
        retry_on_conflict(|| async {
            let mut uow = UnitOfWork::new(&self.store, &ctx);
            let (webhook, _) = uow.load::<Webhook>(webhook_id).await?;
            let (recorded, version) = uow.load::<WebhookDelivery>(stream).await?;
            let execution_id = ctx.new_id("execution");
            let accepted = webhook.accept_delivery(webhook_id, &recorded, &delivery_id, execution_id, self.now())?;
            if accepted.is_empty() {
                let execution_id = recorded.execution_id.unwrap_or(execution_id);
                return Ok(DeliveryOutcome::Started { outcome: uow.commit().await?, execution_id, duplicate: true });
            }
            let (preset, _) = uow.load::<Preset>(webhook.preset_id).await?;
            if preset.is_deleted || preset.user_id != Some(user_id) {
                return Err(CommandError::NotFound(WEBHOOK));
            }
            if !preset.is_active {
                return Ok(DeliveryOutcome::Skipped(uow.commit().await?));
            }
            self.queue_triggered_run(&mut uow, &preset, webhook.preset_id, payload.clone()).await?;
            uow.record::<WebhookDelivery>(stream, version, &accepted)?;
            let outcome = uow.commit().await?;
            Ok(DeliveryOutcome::Started { duplicate: outcome.appended == 0, outcome, execution_id })
        })
        .await
    }

    /// Queue a run of `preset` started by a delivery: the trigger node gets
    /// the preset's inputs (its trigger config) and the payload as its input
    /// mask, AutoGPT's `nodes_input_masks`; the graph's own inputs get none.
    async fn queue_triggered_run(
        &self,
        uow: &mut UnitOfWork<'_, S>,
        preset: &Preset,
        preset_id: Uuid,
        payload: Map<String, Value>,
    ) -> Result<(), CommandError> {
        let user_id = preset.user_id.ok_or(CommandError::NotFound(WEBHOOK))?;
        let graph = runnable_version(uow, user_id, preset.graph_id, Some(preset.graph_version)).await?;
        let (trigger_node, _, _) = trigger::sole_webhook_node(&graph).map_err(GraphError::Invalid)?;
        let mut masks = self.credential_masks(&graph, user_id, &preset.credentials).await?;
        let mut mask = match masks.remove(&trigger_node.id) {
            Some(Value::Object(credentials)) => credentials,
            _ => Map::new(),
        };
        mask.extend(preset.inputs.clone());
        mask.insert("payload".into(), Value::Object(payload));
        masks.insert(trigger_node.id.clone(), Value::Object(mask));
        let execution_id = uow.context().new_id("execution");
        let masked = credentials::with_masks(&graph, &masks);
        let mut queued = engine::queue_run(&masked, execution_id, user_id, Map::new(), Some(preset_id), self.now())
            .map_err(CommandError::Run)?;
        if let ExecutionEvent::ExecutionQueued { node_input_masks, .. } = &mut queued {
            *node_input_masks = masks;
        }
        uow.record::<GraphExecution>(execution_id, 0, std::slice::from_ref(&queued))
    }

    /// Ping one of the user's webhooks. A manual webhook has no provider to
    /// ask for a test delivery, so the ping records that its owner checked
    /// it is alive.
    pub async fn ping_webhook(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        webhook_id: Uuid,
    ) -> Result<Outcome, CommandError> {
        let now = self.now();
        let (outcome, _) = decide_on::<Webhook, _, _>(&self.store, ctx, webhook_id, |webhook| {
            Ok(webhook.decide(WebhookCommand::Ping { user_id, now })?)
        })
        .await?;
        Ok(outcome)
    }

    /// Record the end of a deleted preset's webhook in `uow`; answers the
    /// webhook whose key is to be destroyed once that is committed.
    pub(super) async fn retire_webhook(
        &self,
        uow: &mut UnitOfWork<'_, S>,
        preset: &Preset,
    ) -> Result<Option<Uuid>, CommandError> {
        let Some(webhook_id) = preset.webhook_id else { return Ok(None) };
        let (webhook, version) = uow.load::<Webhook>(webhook_id).await?;
        if webhook.user_id.is_none() {
            return Ok(None);
        }
        let events = webhook.decide(WebhookCommand::Delete { now: self.now() })?;
        uow.record::<Webhook>(webhook_id, version, &events)?;
        Ok(Some(webhook_id))
    }

    /// Destroy a deleted webhook's secret key. The webhook is already
    /// refused as deleted, so a failure here is logged, not answered.
    pub(super) async fn shred_webhook_key(&self, webhook_id: Uuid) {
        let Ok(vault) = self.webhook_vault() else { return };
        if let Err(e) = vault.shred(webhook_id).await {
            tracing::warn!(%webhook_id, error = %e, "could not destroy a deleted webhook's key");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_of_the_body_and_compared_whole() {
        // RFC 4231, test case 2.
        let expected = "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(webhook_signature("Jefe", b"what do ya want for nothing?"), expected);
        let body = br#"{"message":"hi"}"#;
        let signed = webhook_signature("s3cret", body);
        assert!(signature_matches(b"s3cret", body, &signed));
        assert!(signature_matches(b"s3cret", body, &signed.to_uppercase().replace("SHA256=", "sha256=")));
        assert!(!signature_matches(b"other", body, &signed));
        assert!(!signature_matches(b"s3cret", br#"{"message":"ho"}"#, &signed));
        assert!(!signature_matches(b"s3cret", body, &signed[..signed.len() - 2]));
        assert!(!signature_matches(b"s3cret", body, signed.trim_start_matches(SIGNATURE_PREFIX)));
        assert!(!signature_matches(b"s3cret", body, "sha256=zz"));
        assert!(!signature_matches(b"s3cret", body, ""));
    }

    #[test]
    fn secrets_are_fresh_hex_and_never_debug_printed() {
        let (a, b) = (fresh_secret(), fresh_secret());
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 64);
        assert!(a.expose().bytes().all(|c| c.is_ascii_hexdigit()));
        assert!(!format!("{a:?}").contains(a.expose()));
        assert_eq!(default_delivery_id(b"x").len(), 64);
    }
}
