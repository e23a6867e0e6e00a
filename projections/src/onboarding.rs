//! The onboarding read model (`rm_onboarding`) and its query, which adds
//! what the user's runs say (how many, the last, the days in a row).

use chrono::{DateTime, Utc};
use domain::aggregate::Aggregate;
use domain::onboarding::{Onboarding, OnboardingEvent};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::projector::{BoxFuture, ProjectionError, StreamProjector};
use crate::query::QueryError;

/// Name of the onboarding projection.
pub const NAME: &str = "onboarding";

/// Builds `rm_onboarding` from onboarding streams.
pub struct OnboardingProjector;

impl StreamProjector for OnboardingProjector {
    type Source = Onboarding;
    const NAME: &'static str = NAME;
    const TABLES: &'static [&'static str] = &["rm_onboarding"];

    fn apply<'a>(
        &'a self,
        id: Uuid,
        event: <Onboarding as Aggregate>::Event,
        conn: &'a mut PgConnection,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            let at = match &event {
                OnboardingEvent::OnboardingUpdated { at, .. }
                | OnboardingEvent::OnboardingStepCompleted { at, .. }
                | OnboardingEvent::OnboardingReset { at } => *at,
            };
            sqlx::query(
                "INSERT INTO rm_onboarding (user_id, updated_at) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING",
            )
            .bind(id)
            .bind(at)
            .execute(&mut *conn)
            .await?;
            match event {
                OnboardingEvent::OnboardingUpdated { patch, at } => {
                    sqlx::query(
                        "UPDATE rm_onboarding SET wallet_shown = coalesce($2, wallet_shown), \
                           notified = coalesce($3, notified), usage_reason = coalesce($4, usage_reason), \
                           integrations = coalesce($5, integrations), \
                           other_integrations = coalesce($6, other_integrations), \
                           selected_store_listing_version_id = coalesce($7, selected_store_listing_version_id), \
                           agent_input = coalesce($8::json, agent_input), \
                           onboarding_agent_execution_id = coalesce($9, onboarding_agent_execution_id), \
                           updated_at = $10 WHERE user_id = $1",
                    )
                    .bind(id)
                    .bind(patch.wallet_shown)
                    .bind(patch.notified.map(|n| json!(n)))
                    .bind(patch.usage_reason)
                    .bind(patch.integrations.map(|i| json!(i)))
                    .bind(patch.other_integrations)
                    .bind(patch.selected_store_listing_version_id)
                    // As text: a jsonb parameter would expand numbers first.
                    .bind(patch.agent_input.map(|input| Value::Object(input).to_string()))
                    .bind(patch.onboarding_agent_execution_id)
                    .bind(at)
                    .execute(conn)
                    .await?;
                }
                OnboardingEvent::OnboardingStepCompleted { step, at } => {
                    sqlx::query(
                        "UPDATE rm_onboarding SET completed_steps = completed_steps || jsonb_build_array($2::text), \
                           updated_at = $3 WHERE user_id = $1 AND NOT completed_steps ? $2",
                    )
                    .bind(id)
                    .bind(step)
                    .bind(at)
                    .execute(conn)
                    .await?;
                }
                OnboardingEvent::OnboardingReset { at } => {
                    sqlx::query("DELETE FROM rm_onboarding WHERE user_id = $1").bind(id).execute(&mut *conn).await?;
                    sqlx::query("INSERT INTO rm_onboarding (user_id, updated_at) VALUES ($1, $2)")
                        .bind(id)
                        .bind(at)
                        .execute(conn)
                        .await?;
                }
            }
            Ok(())
        })
    }
}

/// A user's onboarding as served (AutoGPT's `UserOnboarding`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = UserOnboarding)]
pub struct OnboardingView {
    /// The user.
    pub user_id: Uuid,
    /// Steps completed.
    pub completed_steps: Vec<String>,
    /// The wallet was shown.
    pub wallet_shown: bool,
    /// Steps the user was notified of.
    pub notified: Vec<String>,
    /// Steps rewarded (no rewards are given here).
    pub rewarded_for: Vec<String>,
    /// Why the user came.
    #[schema(required = true)]
    pub usage_reason: Option<String>,
    /// Integrations the user wants.
    pub integrations: Vec<String>,
    /// Other integrations, in words.
    #[schema(required = true)]
    pub other_integrations: Option<String>,
    /// The store agent chosen.
    #[schema(required = true)]
    pub selected_store_listing_version_id: Option<String>,
    /// The inputs given to it.
    #[schema(value_type = Option<Object>, required = true)]
    pub agent_input: Option<Value>,
    /// Its run.
    #[schema(required = true)]
    pub onboarding_agent_execution_id: Option<String>,
    /// The user's runs.
    pub agent_runs: i64,
    /// When the user last ran an agent.
    #[schema(required = true)]
    pub last_run_at: Option<DateTime<Utc>>,
    /// Days in a row, up to the last run's, with a run.
    pub consecutive_run_days: i64,
}

#[derive(sqlx::FromRow)]
struct OnboardingRow {
    completed_steps: Value,
    wallet_shown: bool,
    notified: Value,
    usage_reason: Option<String>,
    integrations: Value,
    other_integrations: Option<String>,
    selected_store_listing_version_id: Option<String>,
    agent_input: Option<Value>,
    onboarding_agent_execution_id: Option<String>,
}

fn strings(value: Value) -> Vec<String> {
    serde_json::from_value(value).unwrap_or_default()
}

/// A user's onboarding (empty until the UI saves something).
pub async fn onboarding(pool: &PgPool, user_id: Uuid) -> Result<OnboardingView, QueryError> {
    let row: Option<OnboardingRow> = sqlx::query_as(
        "SELECT completed_steps, wallet_shown, notified, usage_reason, integrations, other_integrations, \
           selected_store_listing_version_id, agent_input, onboarding_agent_execution_id \
         FROM rm_onboarding WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(pool)
    .await?;
    // The days with a run, newest first, counted while they follow each
    // other (a year back at most, so the count stays cheap).
    let (agent_runs, last_run_at, consecutive_run_days): (i64, Option<DateTime<Utc>>, i64) = sqlx::query_as(
        "WITH days AS (SELECT DISTINCT created_at::date AS day FROM rm_graph_executions \
                       WHERE user_id = $1 AND created_at > now() - interval '366 days'), \
              ranked AS (SELECT day, row_number() OVER (ORDER BY day DESC) AS n FROM days) \
         SELECT (SELECT count(*) FROM rm_graph_executions WHERE user_id = $1), \
                (SELECT max(created_at) FROM rm_graph_executions WHERE user_id = $1), \
                (SELECT count(*) FROM ranked WHERE day = (SELECT max(day) FROM days) - (n - 1)::int)",
    )
    .bind(user_id)
    .fetch_one(pool)
    .await?;
    let row = row.unwrap_or(OnboardingRow {
        completed_steps: json!([]),
        wallet_shown: false,
        notified: json!([]),
        usage_reason: None,
        integrations: json!([]),
        other_integrations: None,
        selected_store_listing_version_id: None,
        agent_input: None,
        onboarding_agent_execution_id: None,
    });
    Ok(OnboardingView {
        user_id,
        completed_steps: strings(row.completed_steps),
        wallet_shown: row.wallet_shown,
        notified: strings(row.notified),
        rewarded_for: vec![],
        usage_reason: row.usage_reason,
        integrations: strings(row.integrations),
        other_integrations: row.other_integrations,
        selected_store_listing_version_id: row.selected_store_listing_version_id,
        agent_input: row.agent_input,
        onboarding_agent_execution_id: row.onboarding_agent_execution_id,
        agent_runs,
        last_run_at,
        consecutive_run_days,
    })
}

/// The store agents to suggest to a new user: the most run, at most `n`.
pub async fn recommended_versions(pool: &PgPool, n: i64) -> Result<Vec<Uuid>, QueryError> {
    Ok(sqlx::query_scalar("SELECT version_id FROM rm_store_agents ORDER BY runs DESC, listing_id LIMIT $1")
        .bind(n)
        .fetch_all(pool)
        .await?)
}
