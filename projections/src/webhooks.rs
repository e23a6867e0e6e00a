//! The webhooks read model (`rm_webhooks`): what a triggered preset serves
//! of its webhook. The signing secret is never here; answers show it masked.

use std::collections::HashMap;

use domain::aggregate::Aggregate;
use domain::webhook::{Webhook, WebhookEvent};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::{PgConnection, PgPool, Row};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::projector::{BoxFuture, ProjectionError, StreamProjector};
use crate::query::QueryError;

/// Name of the webhooks projection.
pub const NAME: &str = "webhooks";

/// How a secret is shown after the one answer that hands it over
/// (pydantic's `SecretStr`).
pub const MASK: &str = "**********";

/// Builds `rm_webhooks` from webhook streams.
pub struct WebhooksProjector;

impl StreamProjector for WebhooksProjector {
    type Source = Webhook;
    const NAME: &'static str = NAME;
    const TABLES: &'static [&'static str] = &["rm_webhooks"];

    fn apply<'a>(
        &'a self,
        id: Uuid,
        event: <Webhook as Aggregate>::Event,
        conn: &'a mut PgConnection,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            match event {
                WebhookEvent::WebhookCreated {
                    user_id,
                    provider,
                    webhook_type,
                    preset_id,
                    graph_id,
                    graph_version,
                    at,
                    ..
                } => {
                    sqlx::query(
                        "INSERT INTO rm_webhooks (id, user_id, provider, webhook_type, preset_id, graph_id, \
                           graph_version, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(id)
                    .bind(user_id)
                    .bind(provider)
                    .bind(webhook_type)
                    .bind(preset_id)
                    .bind(graph_id)
                    .bind(graph_version)
                    .bind(at)
                    .execute(conn)
                    .await?;
                }
                WebhookEvent::WebhookPinged { at } => {
                    sqlx::query("UPDATE rm_webhooks SET last_pinged_at = $2 WHERE id = $1")
                        .bind(id)
                        .bind(at)
                        .execute(conn)
                        .await?;
                }
                WebhookEvent::WebhookDeleted { .. } => {
                    sqlx::query("UPDATE rm_webhooks SET is_deleted = true WHERE id = $1")
                        .bind(id)
                        .execute(conn)
                        .await?;
                }
            }
            Ok(())
        })
    }
}

/// A webhook as served (AutoGPT's `Webhook`). Manual webhooks have no
/// credentials, resource, events or provider-side id: those are empty.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Webhook)]
pub struct WebhookView {
    /// The webhook.
    #[schema(required = false)]
    pub id: String,
    /// Whose.
    pub user_id: String,
    /// The provider it takes deliveries for.
    pub provider: String,
    /// Credentials it was registered with (none for manual webhooks).
    pub credentials_id: String,
    /// The provider's webhook type.
    pub webhook_type: String,
    /// The provider-side resource (none for manual webhooks).
    pub resource: String,
    /// Events subscribed to (none: every delivery counts).
    pub events: Vec<String>,
    /// Provider-specific configuration.
    #[schema(value_type = Object, required = false)]
    pub config: Map<String, Value>,
    /// The signing secret: in clear only in the answer that set the
    /// webhook up, masked everywhere else.
    pub secret: String,
    /// The provider's id of it (none for manual webhooks).
    pub provider_webhook_id: String,
    /// Where deliveries go: the server's `PLATFORM_BASE_URL` (when set)
    /// followed by the ingress path.
    pub url: String,
}

/// The path deliveries to a webhook are posted to.
pub fn ingress_path(provider: &str, id: Uuid) -> String {
    format!("/api/integrations/{provider}/webhooks/{id}/ingress")
}

/// The live webhooks among `ids`, by id.
pub async fn webhooks_by_id(pool: &PgPool, ids: &[Uuid]) -> Result<HashMap<Uuid, WebhookView>, QueryError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query(
        "SELECT id, user_id, provider, webhook_type FROM rm_webhooks WHERE id = ANY($1) AND NOT is_deleted",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        let id: Uuid = row.try_get("id")?;
        let provider: String = row.try_get("provider")?;
        let webhook_type: String = row.try_get("webhook_type")?;
        out.insert(id, WebhookView::manual(id, row.try_get("user_id")?, provider, webhook_type));
    }
    Ok(out)
}

impl WebhookView {
    /// A manual webhook (no provider-side registration), its secret masked
    /// and its `url` the ingress path.
    pub fn manual(id: Uuid, user_id: Uuid, provider: String, webhook_type: String) -> Self {
        Self {
            id: id.to_string(),
            user_id: user_id.to_string(),
            url: ingress_path(&provider, id),
            provider,
            credentials_id: String::new(),
            webhook_type,
            resource: String::new(),
            events: vec![],
            config: Map::new(),
            secret: MASK.into(),
            provider_webhook_id: String::new(),
        }
    }
}
