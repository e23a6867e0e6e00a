//! The users read model (`rm_users`) and its queries.

use chrono::{DateTime, Utc};
use domain::aggregate::Aggregate;
use domain::user::{User, UserEvent};
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::projector::{BoxFuture, ProjectionError, StreamProjector};

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
pub async fn get_user(pool: &PgPool, id: Uuid) -> Result<Option<Value>, sqlx::Error> {
    let row = sqlx::query("SELECT id, email, name, timezone, created_at, updated_at FROM rm_users WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let created: DateTime<Utc> = row.try_get("created_at")?;
    let updated: DateTime<Utc> = row.try_get("updated_at")?;
    Ok(Some(json!({
        "id": row.try_get::<Uuid, _>("id")?,
        "email": row.try_get::<String, _>("email")?,
        "email_verified": true,
        "name": row.try_get::<Option<String>, _>("name")?,
        "created_at": created,
        "updated_at": updated,
        "metadata": {},
        "integrations": "",
        "stripe_customer_id": null,
        "top_up_config": null,
        "max_emails_per_day": 3,
        "notify_on_agent_run": true,
        "notify_on_zero_balance": true,
        "notify_on_low_balance": true,
        "notify_on_block_execution_failed": true,
        "notify_on_continuous_agent_error": true,
        "notify_on_daily_summary": true,
        "notify_on_weekly_summary": true,
        "notify_on_monthly_summary": true,
        "timezone": row.try_get::<String, _>("timezone")?,
    })))
}

/// A user's timezone, if the user exists.
pub async fn get_timezone(pool: &PgPool, id: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT timezone FROM rm_users WHERE id = $1").bind(id).fetch_optional(pool).await
}
