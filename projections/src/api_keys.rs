//! The API keys read model (`rm_api_keys`) and its queries. Usage times
//! come from `api_key_usage`, which the API writes (telemetry, not events).

use chrono::{DateTime, Utc};
use domain::aggregate::Aggregate;
use domain::api_key::{ApiKey, ApiKeyEvent, ApiKeyPermission, ApiKeyStatus};
use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::projector::{BoxFuture, ProjectionError, StreamProjector};
use crate::query::QueryError;

/// Builds `rm_api_keys` from API key streams.
pub struct ApiKeysProjector;

/// Name of the API keys projection.
pub const NAME: &str = "api_keys";

fn scope_names(scopes: &[ApiKeyPermission]) -> Vec<String> {
    scopes.iter().filter_map(|s| serde_json::to_value(s).ok()?.as_str().map(str::to_owned)).collect()
}

impl StreamProjector for ApiKeysProjector {
    type Source = ApiKey;
    const NAME: &'static str = NAME;
    const TABLES: &'static [&'static str] = &["rm_api_keys"];

    fn apply<'a>(
        &'a self,
        id: Uuid,
        event: <ApiKey as Aggregate>::Event,
        conn: &'a mut PgConnection,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            match event {
                ApiKeyEvent::ApiKeyCreated { key_id, user_id, name, description, scopes, secret, expires_at, at } => {
                    sqlx::query(
                        "INSERT INTO rm_api_keys (id, user_id, name, description, scopes, status, head, tail, lookup, \
                           created_at, expires_at) VALUES ($1, $2, $3, $4, $5, 'ACTIVE', $6, $7, $8, $9, $10) \
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(key_id)
                    .bind(user_id)
                    .bind(name)
                    .bind(description)
                    .bind(scope_names(&scopes))
                    .bind(secret.head)
                    .bind(secret.tail)
                    .bind(secret.lookup)
                    .bind(at)
                    .bind(expires_at)
                    .execute(conn)
                    .await?;
                }
                ApiKeyEvent::ApiKeySuspended { .. } => {
                    sqlx::query("UPDATE rm_api_keys SET status = 'SUSPENDED' WHERE id = $1 AND status = 'ACTIVE'")
                        .bind(id)
                        .execute(conn)
                        .await?;
                }
                ApiKeyEvent::ApiKeyRevoked { at, .. } => {
                    sqlx::query("UPDATE rm_api_keys SET status = 'REVOKED', revoked_at = $2 WHERE id = $1")
                        .bind(id)
                        .bind(at)
                        .execute(conn)
                        .await?;
                }
                ApiKeyEvent::ApiKeyPermissionsUpdated { scopes, .. } => {
                    sqlx::query("UPDATE rm_api_keys SET scopes = $2 WHERE id = $1")
                        .bind(id)
                        .bind(scope_names(&scopes))
                        .execute(conn)
                        .await?;
                }
            }
            Ok(())
        })
    }
}

/// AutoGPT's `APIKeyInfo`: a key as its owner sees it, never its secret.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = APIKeyInfo)]
pub struct ApiKeyInfo {
    /// The key id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// The key's first 8 characters.
    pub head: String,
    /// The key's last 8 characters.
    pub tail: String,
    /// Whether it works.
    pub status: ApiKeyStatus,
    /// What it grants.
    pub scopes: Vec<ApiKeyPermission>,
    /// Optional description.
    pub description: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last used (updated at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it expires (keys here do not expire).
    pub expires_at: Option<DateTime<Utc>>,
    /// Whose key.
    pub user_id: Uuid,
    /// Always `api_key`.
    #[serde(rename = "type")]
    pub kind: &'static str,
}

impl ApiKeyInfo {
    /// The served key from the aggregate's state (`None` before it exists):
    /// what a command answers without waiting for this model.
    pub fn from_state(key: &ApiKey, last_used_at: Option<DateTime<Utc>>) -> Option<Self> {
        let secret = key.secret.as_ref()?;
        Some(Self {
            id: key.id?,
            name: key.name.clone(),
            head: secret.head.clone(),
            tail: secret.tail.clone(),
            status: key.status,
            scopes: key.scopes.clone(),
            description: key.description.clone(),
            created_at: key.created_at?,
            last_used_at,
            revoked_at: key.revoked_at,
            expires_at: key.expires_at,
            user_id: key.user_id?,
            kind: "api_key",
        })
    }

    fn of_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        let scopes: Vec<String> = row.try_get("scopes")?;
        let status: String = row.try_get("status")?;
        Ok(Self {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            head: row.try_get("head")?,
            tail: row.try_get("tail")?,
            // An unreadable status refuses rather than grants.
            status: parse(&status).unwrap_or(ApiKeyStatus::Revoked),
            scopes: scopes.iter().filter_map(|s| parse(s)).collect(),
            description: row.try_get("description")?,
            created_at: row.try_get("created_at")?,
            last_used_at: row.try_get("last_used_at")?,
            revoked_at: row.try_get("revoked_at")?,
            expires_at: row.try_get("expires_at")?,
            user_id: row.try_get("user_id")?,
            kind: "api_key",
        })
    }
}

/// A stored enum name back as the enum (`None` for a name this code does not know).
fn parse<T: serde::de::DeserializeOwned>(name: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}

const SELECT: &str = "SELECT k.id, k.user_id, k.name, k.description, k.scopes, k.status, k.head, k.tail, \
     k.created_at, k.revoked_at, k.expires_at, u.last_used_at FROM rm_api_keys k LEFT JOIN api_key_usage u ON u.key_id = k.id";

/// A user's keys, newest first; revoked keys are gone (revoking deletes).
/// A key suspended stays listed.
pub async fn list_keys(pool: &PgPool, user_id: Uuid) -> Result<Vec<ApiKeyInfo>, QueryError> {
    let rows = sqlx::query(&format!(
        "{SELECT} WHERE k.user_id = $1 AND k.status <> 'REVOKED' ORDER BY k.created_at DESC, k.id"
    ))
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(ApiKeyInfo::of_row).collect::<Result<_, _>>()?)
}

/// One of a user's keys, unless revoked.
pub async fn get_key(pool: &PgPool, user_id: Uuid, id: Uuid) -> Result<Option<ApiKeyInfo>, QueryError> {
    let row = sqlx::query(&format!("{SELECT} WHERE k.id = $1 AND k.user_id = $2 AND k.status <> 'REVOKED'"))
        .bind(id)
        .bind(user_id)
        .fetch_optional(pool)
        .await?;
    Ok(row.as_ref().map(ApiKeyInfo::of_row).transpose()?)
}

/// The ids of the keys whose lookup digest is `lookup`: the candidates a
/// presented key is checked against (almost always one).
pub async fn candidates(pool: &PgPool, lookup: &str) -> Result<Vec<Uuid>, QueryError> {
    Ok(sqlx::query_scalar("SELECT id FROM rm_api_keys WHERE lookup = $1 LIMIT 8").bind(lookup).fetch_all(pool).await?)
}

/// When a key was last used, as recorded.
pub async fn last_used(pool: &PgPool, id: Uuid) -> Result<Option<DateTime<Utc>>, QueryError> {
    Ok(sqlx::query_scalar("SELECT last_used_at FROM api_key_usage WHERE key_id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?)
}

/// Record that a key was used at `at` (never moving the time back).
pub async fn record_use(pool: &PgPool, id: Uuid, at: DateTime<Utc>) -> Result<(), QueryError> {
    sqlx::query(
        "INSERT INTO api_key_usage (key_id, last_used_at) VALUES ($1, $2) ON CONFLICT (key_id) \
         DO UPDATE SET last_used_at = greatest(api_key_usage.last_used_at, EXCLUDED.last_used_at)",
    )
    .bind(id)
    .bind(at)
    .execute(pool)
    .await?;
    Ok(())
}
