//! Onboarding (`/api/onboarding`): the UI's walk-through of a new user,
//! kept per user; AutoGPT's UI reads and writes it as it goes.

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use domain::onboarding::OnboardingPatch;
use projections::onboarding::{self, OnboardingView};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::consistency::{reads, Committed};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, Query};
use crate::state::{AppState, Caller};

/// Store agents suggested to a new user.
const RECOMMENDED: i64 = 4;

pub(super) fn router(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .route("/onboarding", get(get_onboarding).patch(update_onboarding))
        .route("/onboarding/step", post(complete_step))
        .route("/onboarding/reset", post(reset_onboarding))
        .route("/onboarding/agents", get(recommended_agents))
        .route("/onboarding/enabled", get(onboarding_enabled));
    reads(routes, state, &[onboarding::NAME])
}

/// AutoGPT's `OnboardingStep`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum OnboardingStep {
    Welcome,
    UsageReason,
    Integrations,
    AgentChoice,
    AgentNewRun,
    AgentInput,
    Congrats,
    VisitCopilot,
    GetResults,
    MarketplaceVisit,
    MarketplaceAddAgent,
    MarketplaceRunAgent,
    BuilderSaveAgent,
    ReRunAgent,
    ScheduleAgent,
    RunAgents,
    #[serde(rename = "RUN_3_DAYS")]
    Run3Days,
    TriggerWebhook,
    #[serde(rename = "RUN_14_DAYS")]
    Run14Days,
    #[serde(rename = "RUN_AGENTS_100")]
    RunAgents100,
    BuilderOpen,
    BuilderRunAgent,
}

impl OnboardingStep {
    fn name(self) -> String {
        serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
    }
}

/// The steps a client may complete itself (`POST /api/onboarding/step`);
/// the others the platform completes.
const CLIENT_STEPS: [OnboardingStep; 10] = [
    OnboardingStep::Welcome,
    OnboardingStep::UsageReason,
    OnboardingStep::Integrations,
    OnboardingStep::AgentChoice,
    OnboardingStep::AgentNewRun,
    OnboardingStep::AgentInput,
    OnboardingStep::Congrats,
    OnboardingStep::VisitCopilot,
    OnboardingStep::MarketplaceVisit,
    OnboardingStep::BuilderOpen,
];

/// Body of `PATCH /api/onboarding` (`UserOnboardingUpdate`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = UserOnboardingUpdate)]
pub(crate) struct OnboardingUpdate {
    #[serde(default)]
    wallet_shown: Option<bool>,
    #[serde(default)]
    #[schema(max_items = 22)]
    notified: Option<Vec<OnboardingStep>>,
    #[serde(default)]
    #[schema(max_length = 1000)]
    usage_reason: Option<String>,
    #[serde(default)]
    #[schema(max_items = 50)]
    integrations: Option<Vec<IntegrationName>>,
    #[serde(default)]
    #[schema(max_length = 1000)]
    other_integrations: Option<String>,
    #[serde(default)]
    #[schema(max_length = 100)]
    selected_store_listing_version_id: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    agent_input: Option<Map<String, Value>>,
    #[serde(default)]
    #[schema(max_length = 100)]
    onboarding_agent_execution_id: Option<String>,
}

/// An integration's name, as the UI lists it.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(value_type = String, pattern = r"^[\s\S]{0,100}$")]
pub(crate) struct IntegrationName(String);

fn too_long(field: &str, text: Option<&String>, max: usize) -> ApiResult<()> {
    text.map_or(Ok(()), |text| super::at_most_chars(field, text, max))
}

impl OnboardingUpdate {
    fn into_patch(self) -> ApiResult<OnboardingPatch> {
        too_long("usageReason", self.usage_reason.as_ref(), 1000)?;
        too_long("otherIntegrations", self.other_integrations.as_ref(), 1000)?;
        too_long("selectedStoreListingVersionId", self.selected_store_listing_version_id.as_ref(), 100)?;
        too_long("onboardingAgentExecutionId", self.onboarding_agent_execution_id.as_ref(), 100)?;
        let integrations = self.integrations.map(|names| names.into_iter().map(|n| n.0).collect::<Vec<_>>());
        for name in integrations.iter().flatten() {
            too_long("integrations", Some(name), 100)?;
        }
        if self.notified.as_ref().is_some_and(|n| n.len() > 22) || integrations.as_ref().is_some_and(|i| i.len() > 50) {
            let message = "too many items";
            let error = crate::error::FieldError::new("body", message, "too_long", Value::Null);
            return Err(crate::error::ApiError::unprocessable(message, vec![error]));
        }
        Ok(OnboardingPatch {
            wallet_shown: self.wallet_shown,
            notified: self.notified.map(|steps| steps.into_iter().map(OnboardingStep::name).collect()),
            usage_reason: self.usage_reason,
            integrations,
            other_integrations: self.other_integrations,
            selected_store_listing_version_id: self.selected_store_listing_version_id,
            agent_input: self.agent_input,
            onboarding_agent_execution_id: self.onboarding_agent_execution_id,
        })
    }
}

async fn answer(
    state: &AppState,
    caller: &Caller,
    outcome: &commands::Outcome,
) -> Committed<axum::Json<OnboardingView>> {
    let user = caller.user.user_id;
    let read = async { Ok(Some(axum::Json(onboarding::onboarding(state.pool(), user).await?))) };
    state.answer_read(outcome, read, async { Ok(None) }).await
}

/// The caller's onboarding.
#[utoipa::path(get, path = "/api/onboarding", operation_id = "getV1Onboarding state", tag = "onboarding",
    responses((status = 200, description = "The onboarding", body = OnboardingView)))]
pub(crate) async fn get_onboarding(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<OnboardingView>> {
    Ok(axum::Json(onboarding::onboarding(state.pool(), caller.user.user_id).await?))
}

/// Save what the onboarding UI chose.
#[utoipa::path(patch, path = "/api/onboarding", operation_id = "patchV1Update onboarding state", tag = "onboarding",
    request_body = OnboardingUpdate,
    responses((status = 200, description = "The onboarding", body = OnboardingView),
        (status = 422, description = "A field too long or an unknown step", body = ErrorBody)))]
pub(crate) async fn update_onboarding(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<OnboardingUpdate>,
) -> ApiResult<Committed<axum::Json<OnboardingView>>> {
    let patch = body.into_patch()?;
    let outcome = state.commands.update_onboarding(&caller.ctx, caller.user.user_id, patch).await?;
    Ok(answer(&state, &caller, &outcome).await)
}

/// Query of `POST /api/onboarding/step`.
#[derive(Debug, Deserialize)]
pub(crate) struct StepQuery {
    step: OnboardingStep,
}

/// Complete an onboarding step (once).
#[utoipa::path(post, path = "/api/onboarding/step", operation_id = "postV1Complete onboarding step", tag = "onboarding",
    params(("step" = String, Query, pattern = "^(WELCOME|USAGE_REASON|INTEGRATIONS|AGENT_CHOICE|AGENT_NEW_RUN|AGENT_INPUT|CONGRATS|VISIT_COPILOT|MARKETPLACE_VISIT|BUILDER_OPEN)$")),
    responses((status = 200, description = "The onboarding", body = OnboardingView),
        (status = 422, description = "Not a step a client completes", body = ErrorBody)))]
pub(crate) async fn complete_step(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<StepQuery>,
) -> ApiResult<Committed<axum::Json<OnboardingView>>> {
    if !CLIENT_STEPS.contains(&q.step) {
        let message = format!("{} is completed by the platform, not by a client", q.step.name());
        let error = crate::error::FieldError::new("step", message.clone(), "enum", Value::String(q.step.name()));
        return Err(crate::error::ApiError::unprocessable(message, vec![error]));
    }
    let outcome = state.commands.complete_onboarding_step(&caller.ctx, caller.user.user_id, &q.step.name()).await?;
    Ok(answer(&state, &caller, &outcome).await)
}

/// Start the onboarding over.
#[utoipa::path(post, path = "/api/onboarding/reset", operation_id = "postV1Reset onboarding progress", tag = "onboarding",
    responses((status = 200, description = "The onboarding, empty", body = OnboardingView)))]
pub(crate) async fn reset_onboarding(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Committed<axum::Json<OnboardingView>>> {
    let outcome = state.commands.reset_onboarding(&caller.ctx, caller.user.user_id).await?;
    Ok(answer(&state, &caller, &outcome).await)
}

/// Store agents to suggest to a new user: the most run.
#[utoipa::path(get, path = "/api/onboarding/agents", operation_id = "getV1Recommended onboarding agents",
    tag = "onboarding", responses((status = 200, description = "Store agents", body = Vec<projections::store::StoreAgentDetails>)))]
pub(crate) async fn recommended_agents(
    State(state): State<AppState>,
    _caller: Caller,
) -> ApiResult<axum::Json<Vec<projections::store::StoreAgentDetails>>> {
    let mut agents = Vec::new();
    for version in onboarding::recommended_versions(state.pool(), RECOMMENDED).await? {
        agents.extend(projections::store::agent_by_version(state.pool(), version).await?);
    }
    Ok(axum::Json(agents))
}

/// Whether onboarding is offered (always, here).
#[utoipa::path(get, path = "/api/onboarding/enabled", operation_id = "getV1Is onboarding enabled", tag = "onboarding",
    responses((status = 200, description = "Offered", body = bool, content_type = "application/json")))]
pub(crate) async fn onboarding_enabled(_caller: Caller) -> axum::Json<bool> {
    axum::Json(true)
}
