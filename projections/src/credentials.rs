//! The credentials read model (`rm_credentials`): what each credential
//! shows, never its secret (the sealed secret stays in the log, its key
//! outside it), and the queries the integrations routes answer from.

use domain::aggregate::Aggregate;
use domain::credential::{Credential, CredentialEvent, CredentialKind};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::projector::{BoxFuture, ProjectionError, StreamProjector};
use crate::query::QueryError;

/// Name of the credentials projection.
pub const NAME: &str = "credentials";

/// Most credentials one listing answers (a user with more sees the oldest
/// this many).
pub const MAX_LISTED: i64 = 1000;

/// Builds `rm_credentials` from credential streams.
pub struct CredentialsProjector;

impl StreamProjector for CredentialsProjector {
    type Source = Credential;
    const NAME: &'static str = NAME;
    const TABLES: &'static [&'static str] = &["rm_credentials"];

    fn apply<'a>(
        &'a self,
        id: Uuid,
        event: <Credential as Aggregate>::Event,
        conn: &'a mut PgConnection,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            match event {
                CredentialEvent::CredentialCreated { user_id, meta, at, .. } => {
                    sqlx::query(
                        "INSERT INTO rm_credentials (id, user_id, provider, type, title, host, header_names, scopes, \
                           expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(id)
                    .bind(user_id)
                    .bind(&meta.provider)
                    .bind(meta.kind.as_str())
                    .bind(&meta.title)
                    .bind(&meta.host)
                    .bind(serde_json::json!(meta.header_names))
                    .bind(serde_json::json!(meta.scopes))
                    .bind(meta.expires_at)
                    .bind(at)
                    .execute(conn)
                    .await?;
                }
                CredentialEvent::CredentialDeleted { .. } => {
                    sqlx::query("DELETE FROM rm_credentials WHERE id = $1").bind(id).execute(conn).await?;
                }
            }
            Ok(())
        })
    }
}

/// A credential as listed (AutoGPT's `CredentialsMetaResponse`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = CredentialsMetaResponse)]
pub struct CredentialMetaView {
    /// Its id.
    pub id: String,
    /// The integration.
    pub provider: String,
    /// The kind of secret.
    #[serde(rename = "type")]
    #[schema(value_type = String, pattern = "^(api_key|oauth2|user_password|host_scoped)$")]
    pub kind: String,
    /// Its title.
    #[schema(required = true)]
    pub title: Option<String>,
    /// OAuth scopes (none here).
    #[schema(required = true)]
    pub scopes: Option<Vec<String>>,
    /// The account name (OAuth only; never a stored user name, which is secret).
    #[schema(required = true)]
    pub username: Option<String>,
    /// For host-scoped credentials, the host.
    pub host: Option<String>,
    /// Its header names (host-scoped; not part of AutoGPT's answer).
    #[serde(skip)]
    pub header_names: Vec<String>,
    /// When an API key expires, Unix seconds.
    #[serde(skip)]
    pub expires_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct CredentialRow {
    id: Uuid,
    provider: String,
    #[sqlx(rename = "type")]
    kind: String,
    title: Option<String>,
    host: Option<String>,
    header_names: serde_json::Value,
    scopes: serde_json::Value,
    expires_at: Option<i64>,
}

impl From<CredentialRow> for CredentialMetaView {
    fn from(row: CredentialRow) -> Self {
        let strings = |v: serde_json::Value| serde_json::from_value::<Vec<String>>(v).unwrap_or_default();
        let scopes = strings(row.scopes);
        CredentialMetaView {
            id: row.id.to_string(),
            provider: row.provider,
            scopes: (row.kind == CredentialKind::OAuth2.as_str()).then_some(scopes),
            kind: row.kind,
            title: row.title,
            username: None,
            host: row.host,
            header_names: strings(row.header_names),
            expires_at: row.expires_at,
        }
    }
}

const COLUMNS: &str = "id, provider, type, title, host, header_names, scopes, expires_at";

/// The user's credentials, of one provider or all, oldest first.
pub async fn list_credentials(
    pool: &PgPool,
    user_id: Uuid,
    provider: Option<&str>,
) -> Result<Vec<CredentialMetaView>, QueryError> {
    let rows: Vec<CredentialRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM rm_credentials WHERE user_id = $1 AND ($2::text IS NULL OR provider = $2) \
         ORDER BY created_at, id LIMIT $3"
    ))
    .bind(user_id)
    .bind(provider)
    .bind(MAX_LISTED)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// One of the user's credentials, if it is of `provider`.
pub async fn get_credential(
    pool: &PgPool,
    user_id: Uuid,
    provider: &str,
    id: Uuid,
) -> Result<Option<CredentialMetaView>, QueryError> {
    let row: Option<CredentialRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM rm_credentials WHERE id = $1 AND user_id = $2 AND provider = $3"
    ))
    .bind(id)
    .bind(user_id)
    .bind(provider)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Into::into))
}
