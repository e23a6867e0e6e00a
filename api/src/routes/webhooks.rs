//! Webhook-triggered presets: setting one up, the ingress its sender posts
//! deliveries to, and the owner's ping.
//!
//! A delivery is signed: `X-Webhook-Signature: sha256=<hex>`, the HMAC-SHA256
//! of the raw body under the webhook's secret (the one the setup answer
//! handed over, as UTF-8 bytes). `X-Delivery-Id` names the delivery (else
//! the body's SHA-256 does): each delivery id starts one run, and a repeat is
//! answered with that run. These routes stay outside the idempotency layer,
//! whose record would keep the setup answer's secret; deliveries carry their
//! own idempotency in their delivery id.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use commands::services::{default_delivery_id, Delivery, DeliveryOutcome, TriggerSetup, TriggeredPreset};
use domain::webhook::{valid_delivery_id, Webhook, WebhookError, MAX_DELIVERY_ID_CHARS};
use projections::presets::{PresetPage, PresetView};
use projections::webhooks::WebhookView;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::parse_id;
use crate::consistency::Committed;
use crate::error::{ApiError, ApiResult, ErrorBody, FieldError};
use crate::extract::{parse_json, Json};
use crate::state::{AppState, Caller};

/// The header a delivery's signature comes in.
pub const SIGNATURE_HEADER: &str = "x-webhook-signature";
/// The header naming a delivery.
pub const DELIVERY_ID_HEADER: &str = "x-delivery-id";
/// Largest delivery body; larger ones are refused (413) before anything
/// else is done with them.
pub const MAX_DELIVERY_BYTES: usize = 1 << 20;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/library/presets/setup-trigger", post(setup_trigger))
        .route("/integrations/{provider}/webhooks/{webhook_id}/ingress", post(webhook_ingress))
        .route("/integrations/webhooks/{webhook_id}/ping", post(webhook_ping))
}

/// Where ingress URLs start: `PLATFORM_BASE_URL` (AutoGPT's setting) when
/// set, else nothing, and the URL is the path on this server.
fn platform_base_url() -> &'static str {
    static BASE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BASE.get_or_init(|| std::env::var("PLATFORM_BASE_URL").unwrap_or_default().trim().trim_end_matches('/').to_owned())
}

fn absolute(webhook: &mut WebhookView) {
    let base = platform_base_url();
    if !base.is_empty() && webhook.url.starts_with('/') {
        webhook.url = format!("{base}{}", webhook.url);
    }
}

/// A preset as served, its webhook's URL absolute when the server knows
/// its public address.
pub(crate) fn with_ingress_url(mut preset: PresetView) -> PresetView {
    if let Some(webhook) = preset.webhook.as_mut() {
        absolute(webhook);
    }
    preset
}

/// A page of presets as served (see [`with_ingress_url`]).
pub(crate) fn page_with_ingress_urls(mut page: PresetPage) -> PresetPage {
    page.presets = page.presets.into_iter().map(with_ingress_url).collect();
    page
}

/// Body of `POST /api/library/presets/setup-trigger`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = TriggeredPresetSetupRequest)]
pub(crate) struct SetupTrigger {
    name: String,
    #[serde(default)]
    description: String,
    graph_id: String,
    graph_version: i32,
    /// The trigger block's inputs (e.g. `constants`): the preset's inputs.
    #[schema(value_type = Object)]
    trigger_config: Map<String, Value>,
    /// Credentials for the graph's credentials inputs, by input name.
    #[serde(default)]
    #[schema(value_type = Object)]
    agent_credentials: Map<String, Value>,
}

/// Set up a webhook-triggered preset of a graph whose version has exactly
/// one webhook trigger node. The answer is the only one that shows the
/// webhook's secret: deliveries must be signed with it.
#[utoipa::path(post, path = "/api/library/presets/setup-trigger", operation_id = "postV2SetupTrigger", tag = "presets",
    request_body = SetupTrigger,
    responses((status = 200, description = "The preset, its webhook with its secret (shown only here)", body = PresetView),
        (status = 400, description = "The graph has no webhook trigger node, or several", body = ErrorBody),
        (status = 404, description = "No such graph or version for the caller", body = ErrorBody),
        (status = 429, description = "Quota reached: the caller holds as many as allowed; delete some first", body = ErrorBody)))]
pub(crate) async fn setup_trigger(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<SetupTrigger>,
) -> ApiResult<Committed<axum::Json<PresetView>>> {
    let graph_id = parse_id(&body.graph_id, "Graph")?;
    let user_id = caller.user.user_id;
    let setup = TriggerSetup {
        graph_id,
        graph_version: body.graph_version,
        name: body.name,
        description: body.description,
        trigger_config: body.trigger_config,
        agent_credentials: body.agent_credentials,
    };
    let (outcome, made) = state.commands.setup_trigger(&caller.ctx, user_id, setup.clone()).await?;
    let view = with_ingress_url(setup_answer(user_id, setup, &made));
    // Built from what was decided, not read back: the read models never
    // hold the secret, and this answer must carry it.
    Ok(state.answer(&outcome, axum::Json(view)).await)
}

fn setup_answer(user_id: Uuid, setup: TriggerSetup, made: &TriggeredPreset) -> PresetView {
    let mut webhook = WebhookView::manual(made.webhook_id, user_id, made.provider.into(), made.webhook_type.into());
    webhook.secret = made.secret.expose().to_owned();
    PresetView {
        graph_id: setup.graph_id,
        graph_version: setup.graph_version,
        inputs: setup.trigger_config,
        credentials: setup.agent_credentials,
        name: setup.name,
        description: setup.description,
        is_active: true,
        webhook_id: Some(made.webhook_id.to_string()),
        id: made.preset_id,
        user_id,
        created_at: made.at,
        updated_at: made.at,
        webhook: Some(webhook),
    }
}

/// What the ingress answers a delivery.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookDeliveryResponse)]
pub(crate) struct DeliveryAnswer {
    /// The delivery's id: `X-Delivery-Id`, else the body's SHA-256.
    delivery_id: String,
    /// The run it started; null when the preset is inactive.
    graph_exec_id: Option<String>,
    /// The delivery id had been accepted before: this is its run.
    duplicate: bool,
}

fn refused(e: WebhookError) -> ApiError {
    match e {
        WebhookError::Gone => ApiError::new(StatusCode::GONE, "gone", "Webhook was deleted"),
        _ => ApiError::not_found("Webhook not found"),
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn capped_body(headers: &HeaderMap, body: Body) -> ApiResult<axum::body::Bytes> {
    let too_large =
        || ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "Webhook payload is too large");
    let declared = header(headers, "content-length").and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_DELIVERY_BYTES) {
        return Err(too_large());
    }
    // The only way reading a body with a declared length under the cap
    // fails here is going past the cap (or the sender going away).
    axum::body::to_bytes(body, MAX_DELIVERY_BYTES).await.map_err(|_| too_large())
}

fn delivery_id_of(headers: &HeaderMap, body: &[u8]) -> ApiResult<String> {
    let Some(raw) = headers.get(DELIVERY_ID_HEADER) else { return Ok(default_delivery_id(body)) };
    let id = raw.to_str().unwrap_or_default().trim();
    if valid_delivery_id(id) {
        return Ok(id.to_owned());
    }
    let message = format!("X-Delivery-Id must be 1 to {MAX_DELIVERY_ID_CHARS} printable ASCII characters");
    let input = json!(String::from_utf8_lossy(raw.as_bytes()));
    Err(ApiError::unprocessable(message.clone(), vec![FieldError::new("X-Delivery-Id", message, "invalid", input)]))
}

/// Take a delivery for a webhook: no user auth, the signature is the
/// credential. Each delivery id starts one run of the webhook's preset with
/// the body (a JSON object) as the trigger node's `payload`.
#[utoipa::path(post, path = "/api/integrations/{provider}/webhooks/{webhook_id}/ingress",
    operation_id = "postV1WebhookIngressGeneric", tag = "integrations", security(()),
    params(("provider" = String, Path, description = "Provider where the webhook was registered"),
        ("webhook_id" = String, Path, description = "Our ID for the webhook"),
        ("X-Webhook-Signature" = String, Header, description = "`sha256=` and the hex HMAC-SHA256 of the raw body under the webhook's secret"),
        ("X-Delivery-Id" = Option<String>, Header, description = "The delivery's id (default: the body's SHA-256); a repeat starts no second run")),
    responses((status = 200, description = "Accepted: the run it started (or had started)", body = DeliveryAnswer),
        (status = 401, description = "Missing or invalid signature", body = ErrorBody),
        (status = 402, description = "The webhook's owner has no credits left", body = ErrorBody),
        (status = 404, description = "No such webhook for this provider", body = ErrorBody),
        (status = 410, description = "The webhook was deleted", body = ErrorBody),
        (status = 413, description = "The body is larger than 1 MiB", body = ErrorBody),
        (status = 422, description = "The body is not a JSON object, or the delivery id is malformed", body = ErrorBody)))]
pub(crate) async fn webhook_ingress(
    State(state): State<AppState>,
    Path((provider, webhook_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Committed<axum::Json<DeliveryAnswer>>> {
    let webhook_id = parse_id(&webhook_id, "Webhook")?;
    let webhook: Webhook = state.commands.webhook(webhook_id).await?;
    webhook.takes_deliveries_for(&provider).map_err(refused)?;
    let body = capped_body(&headers, body).await?;
    let signature = header(&headers, SIGNATURE_HEADER)
        .ok_or_else(|| ApiError::unauthorized("Missing X-Webhook-Signature header"))?;
    if !state.commands.webhook_signature_matches(webhook_id, &webhook, &body, signature).await? {
        return Err(ApiError::unauthorized("Invalid webhook signature"));
    }
    let payload: Map<String, Value> = parse_json(&body)?;
    let delivery_id = delivery_id_of(&headers, &body)?;
    let owner = webhook.user_id.ok_or_else(|| ApiError::not_found("Webhook not found"))?;
    super::executions::ensure_credits(&state, owner).await?;
    let delivery = Delivery { webhook_id, delivery_id: delivery_id.clone(), payload };
    let (outcome, answer) = match state.commands.accept_delivery(delivery).await? {
        DeliveryOutcome::Started { outcome, execution_id, duplicate } => {
            (outcome, DeliveryAnswer { delivery_id, graph_exec_id: Some(execution_id.to_string()), duplicate })
        }
        DeliveryOutcome::Skipped(outcome) => {
            (outcome, DeliveryAnswer { delivery_id, graph_exec_id: None, duplicate: false })
        }
    };
    Ok(state.answer(&outcome, axum::Json(answer)).await)
}

/// Ping one of the caller's webhooks: `true` once the ping is recorded.
#[utoipa::path(post, path = "/api/integrations/webhooks/{webhook_id}/ping", operation_id = "postV1WebhookPing",
    tag = "integrations", params(("webhook_id" = String, Path, description = "Our ID for the webhook")),
    responses((status = 200, description = "Pinged", body = bool, content_type = "application/json"),
        (status = 404, description = "No such webhook of the caller's", body = ErrorBody)))]
pub(crate) async fn webhook_ping(
    State(state): State<AppState>,
    caller: Caller,
    Path(webhook_id): Path<String>,
) -> ApiResult<Committed<axum::Json<bool>>> {
    let webhook_id = parse_id(&webhook_id, "Webhook")?;
    let outcome = state.commands.ping_webhook(&caller.ctx, caller.user.user_id, webhook_id).await?;
    Ok(state.answer(&outcome, axum::Json(true)).await)
}
