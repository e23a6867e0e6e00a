//! The users read model (`rm_users`) and its queries.

use chrono::{DateTime, Utc};
use domain::aggregate::Aggregate;
use domain::user::{User, UserEvent};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool, Row};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::projector::{BoxFuture, ProjectionError, StreamProjector};
use crate::query::QueryError;

/// Builds `rm_users` from user streams.
pub struct UsersProjector;

/// Name of the users projection.
pub const NAME: &str = "users";

impl StreamProjector for UsersProjector {
    type Source = User;
    const NAME: &'static str = NAME;
    const TABLES: &'static [&'static str] = &["rm_users"];

    fn apply<'a>(
        &'a self,
        id: Uuid,
        event: <User as Aggregate>::Event,
        conn: &'a mut PgConnection,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            match event {
                UserEvent::UserRegistered { user_id, email, name, at } => {
                    sqlx::query(
                        "INSERT INTO rm_users (id, email, name, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(user_id)
                    .bind(email)
                    .bind(name)
                    .bind(at)
                    .execute(conn)
                    .await?;
                }
                UserEvent::UserEmailChanged { email, at } => {
                    sqlx::query("UPDATE rm_users SET email = $2, updated_at = $3 WHERE id = $1")
                        .bind(id)
                        .bind(email)
                        .bind(at)
                        .execute(conn)
                        .await?;
                }
                UserEvent::NotificationPreferencesSet { email, preferences, daily_limit, at } => {
                    sqlx::query(
                        "UPDATE rm_users SET notification_email = $2, notification_preferences = $3, \
                           daily_email_limit = $4, updated_at = $5 WHERE id = $1",
                    )
                    .bind(id)
                    .bind(email)
                    .bind(serde_json::json!(preferences))
                    .bind(daily_limit)
                    .bind(at)
                    .execute(conn)
                    .await?;
                }
                UserEvent::UserTimezoneSet { timezone, at } => {
                    sqlx::query("UPDATE rm_users SET timezone = $2, updated_at = $3 WHERE id = $1")
                        .bind(id)
                        .bind(timezone)
                        .bind(at)
                        .execute(conn)
                        .await?;
                }
            }
            Ok(())
        })
    }
}

/// A user as AutoGPT serves it from `POST /api/auth/user`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct UserView {
    /// The user id (the token's subject).
    pub id: Uuid,
    /// E-mail address.
    pub email: String,
    /// Always true: the identity provider verified it.
    pub email_verified: bool,
    /// Display name.
    pub name: Option<String>,
    /// Registration time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Free-form metadata (empty).
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// Encrypted integrations blob (empty).
    pub integrations: String,
    /// Payment customer id (payments are not served).
    pub stripe_customer_id: Option<String>,
    /// Automatic top-up settings (payments are not served).
    #[schema(value_type = Option<Object>)]
    pub top_up_config: Option<Value>,
    /// Notification e-mails per day.
    pub max_emails_per_day: i32,
    /// Notification preferences, all on.
    pub notify_on_agent_run: bool,
    /// See `notify_on_agent_run`.
    pub notify_on_zero_balance: bool,
    /// See `notify_on_agent_run`.
    pub notify_on_low_balance: bool,
    /// See `notify_on_agent_run`.
    pub notify_on_block_execution_failed: bool,
    /// See `notify_on_agent_run`.
    pub notify_on_continuous_agent_error: bool,
    /// See `notify_on_agent_run`.
    pub notify_on_daily_summary: bool,
    /// See `notify_on_agent_run`.
    pub notify_on_weekly_summary: bool,
    /// See `notify_on_agent_run`.
    pub notify_on_monthly_summary: bool,
    /// IANA timezone or `not-set`.
    pub timezone: String,
}

impl UserView {
    /// The served user from its stored fields.
    fn new(
        id: Uuid,
        email: String,
        name: Option<String>,
        timezone: String,
        at: (DateTime<Utc>, DateTime<Utc>),
    ) -> Self {
        Self {
            id,
            email,
            email_verified: true,
            name,
            created_at: at.0,
            updated_at: at.1,
            metadata: json!({}),
            integrations: String::new(),
            stripe_customer_id: None,
            top_up_config: None,
            max_emails_per_day: 3,
            notify_on_agent_run: true,
            notify_on_zero_balance: true,
            notify_on_low_balance: true,
            notify_on_block_execution_failed: true,
            notify_on_continuous_agent_error: true,
            notify_on_daily_summary: true,
            notify_on_weekly_summary: true,
            notify_on_monthly_summary: true,
            timezone,
        }
    }

    /// The served user from the aggregate's state (`None` before it is
    /// registered): what a command answers without waiting for this model.
    pub fn from_state(user: &User) -> Option<Self> {
        let (id, created) = (user.id?, user.created_at?);
        let at = (created, user.updated_at.unwrap_or(created));
        Some(Self::new(id, user.email.clone(), user.name.clone(), user.timezone.clone(), at))
    }
}

/// A user, if registered.
pub async fn get_user(pool: &PgPool, id: Uuid) -> Result<Option<UserView>, QueryError> {
    let row = sqlx::query("SELECT id, email, name, timezone, created_at, updated_at FROM rm_users WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let at = (row.try_get("created_at")?, row.try_get("updated_at")?);
    Ok(Some(UserView::new(
        row.try_get("id")?,
        row.try_get("email")?,
        row.try_get("name")?,
        row.try_get("timezone")?,
        at,
    )))
}

/// A user's timezone, if the user exists.
pub async fn get_timezone(pool: &PgPool, id: Uuid) -> Result<Option<String>, QueryError> {
    Ok(sqlx::query_scalar("SELECT timezone FROM rm_users WHERE id = $1").bind(id).fetch_optional(pool).await?)
}

/// A user's notification settings (AutoGPT's `NotificationPreference`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = NotificationPreference)]
pub struct NotificationPreferenceView {
    /// The user.
    pub user_id: Uuid,
    /// Where notifications go (the account's address until chosen).
    pub email: String,
    /// Every notification type, wanted or not.
    #[schema(value_type = Object, required = false)]
    pub preferences: std::collections::BTreeMap<String, bool>,
    /// Most e-mails a day.
    #[schema(required = false)]
    pub daily_limit: i64,
    /// E-mails sent today (none are sent here).
    #[schema(required = false)]
    pub emails_sent_today: i64,
    /// When the daily count last started again.
    #[schema(required = false)]
    pub last_reset_date: DateTime<Utc>,
}

/// The user's notification settings, every type listed; `None` for a user
/// never registered.
pub async fn notification_preferences(
    pool: &PgPool,
    id: Uuid,
) -> Result<Option<NotificationPreferenceView>, QueryError> {
    let row: Option<(String, Option<String>, Value, i32)> = sqlx::query_as(
        "SELECT email, notification_email, notification_preferences, daily_email_limit FROM rm_users WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(email, chosen, stored, daily_limit)| {
        let stored: std::collections::BTreeMap<String, bool> = serde_json::from_value(stored).unwrap_or_default();
        let preferences = domain::user::NOTIFICATION_TYPES
            .iter()
            .map(|t| ((*t).to_owned(), stored.get(*t).copied().unwrap_or(true)))
            .collect();
        let today = Utc::now().date_naive().and_hms_opt(0, 0, 0).map(|d| d.and_utc()).unwrap_or_else(Utc::now);
        NotificationPreferenceView {
            user_id: id,
            email: chosen.unwrap_or(email),
            preferences,
            daily_limit: i64::from(daily_limit),
            emails_sent_today: 0,
            last_reset_date: today,
        }
    }))
}
