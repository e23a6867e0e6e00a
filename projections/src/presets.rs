//! The presets read model (`rm_presets`) and its queries.

use chrono::{DateTime, Utc};
use domain::aggregate::Aggregate;
use domain::preset::{Preset, PresetEvent};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::projector::{BoxFuture, ProjectionError, StreamProjector};
use crate::query::{Pagination, QueryError};

/// Name of the presets projection.
pub const NAME: &str = "presets";

/// Builds `rm_presets` from preset streams.
pub struct PresetsProjector;

impl StreamProjector for PresetsProjector {
    type Source = Preset;
    const NAME: &'static str = NAME;
    const TABLES: &'static [&'static str] = &["rm_presets"];

    fn apply<'a>(
        &'a self,
        id: Uuid,
        event: <Preset as Aggregate>::Event,
        conn: &'a mut PgConnection,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            match event {
                PresetEvent::PresetCreated {
                    user_id,
                    graph_id,
                    graph_version,
                    name,
                    description,
                    inputs,
                    credentials,
                    is_active,
                    webhook_id,
                    at,
                } => {
                    sqlx::query(
                        "INSERT INTO rm_presets (id, user_id, graph_id, graph_version, name, description, inputs, \
                           credentials, is_active, created_at, updated_at, webhook_id) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11) ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(id)
                    .bind(user_id)
                    .bind(graph_id)
                    .bind(graph_version)
                    .bind(name)
                    .bind(description)
                    .bind(Value::Object(inputs))
                    .bind(Value::Object(credentials))
                    .bind(is_active)
                    .bind(at)
                    .bind(webhook_id)
                    .execute(conn)
                    .await?;
                }
                PresetEvent::PresetUpdated { patch, at } => {
                    sqlx::query(
                        "UPDATE rm_presets SET inputs = coalesce($2, inputs), credentials = coalesce($3, credentials), \
                           name = coalesce($4, name), description = coalesce($5, description), \
                           is_active = coalesce($6, is_active), updated_at = $7 WHERE id = $1",
                    )
                    .bind(id)
                    .bind(patch.inputs.map(Value::Object))
                    .bind(patch.credentials.map(Value::Object))
                    .bind(patch.name)
                    .bind(patch.description)
                    .bind(patch.is_active)
                    .bind(at)
                    .execute(conn)
                    .await?;
                }
                PresetEvent::PresetDeleted { at } => {
                    sqlx::query("UPDATE rm_presets SET is_deleted = true, updated_at = $2 WHERE id = $1")
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

/// A preset as served (AutoGPT's `LibraryAgentPreset`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = LibraryAgentPreset)]
pub struct PresetView {
    /// The graph.
    pub graph_id: Uuid,
    /// Its version.
    pub graph_version: i32,
    /// Inputs by name.
    #[schema(value_type = Object)]
    pub inputs: Map<String, Value>,
    /// Credentials by field.
    #[schema(value_type = Object)]
    pub credentials: Map<String, Value>,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Active flag.
    pub is_active: bool,
    /// The webhook that triggers it, if any.
    pub webhook_id: Option<String>,
    /// The preset.
    pub id: Uuid,
    /// Whose.
    pub user_id: Uuid,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// The webhook that triggers it (its secret masked), if any.
    #[schema(required = true)]
    pub webhook: Option<crate::webhooks::WebhookView>,
}

/// A page of presets.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = LibraryAgentPresetResponse)]
pub struct PresetPage {
    /// The presets.
    pub presets: Vec<PresetView>,
    /// Where this page is.
    pub pagination: Pagination,
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn view_of(row: &PgRow) -> Result<PresetView, sqlx::Error> {
    Ok(PresetView {
        graph_id: row.try_get("graph_id")?,
        graph_version: row.try_get("graph_version")?,
        inputs: object(row.try_get("inputs")?),
        credentials: object(row.try_get("credentials")?),
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        is_active: row.try_get("is_active")?,
        webhook_id: row.try_get::<Option<Uuid>, _>("webhook_id")?.map(|id| id.to_string()),
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        webhook: None,
    })
}

const COLUMNS: &str = "id, user_id, graph_id, graph_version, name, description, inputs, credentials, is_active, \
     created_at, updated_at, webhook_id";

/// The user's presets of a graph, newest first.
pub async fn list_presets(
    pool: &PgPool,
    user_id: Uuid,
    graph_id: Uuid,
    page: i64,
    page_size: i64,
) -> Result<PresetPage, QueryError> {
    let filter = "WHERE user_id = $1 AND graph_id = $2 AND NOT is_deleted";
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM rm_presets {filter}"))
        .bind(user_id)
        .bind(graph_id)
        .fetch_one(pool)
        .await?;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM rm_presets {filter} ORDER BY updated_at DESC, id LIMIT $3 OFFSET $4"
    ))
    .bind(user_id)
    .bind(graph_id)
    .bind(page_size)
    .bind(Pagination::offset(page, page_size))
    .fetch_all(pool)
    .await?;
    let mut presets = rows.iter().map(view_of).collect::<Result<Vec<_>, _>>()?;
    attach_webhooks(pool, &mut presets).await?;
    Ok(PresetPage { presets, pagination: Pagination::of(total, page, page_size) })
}

/// One of the user's presets.
pub async fn get_preset(pool: &PgPool, user_id: Uuid, id: Uuid) -> Result<Option<PresetView>, QueryError> {
    let row =
        sqlx::query(&format!("SELECT {COLUMNS} FROM rm_presets WHERE id = $1 AND user_id = $2 AND NOT is_deleted"))
            .bind(id)
            .bind(user_id)
            .fetch_optional(pool)
            .await?;
    let mut found: Vec<PresetView> = row.as_ref().map(view_of).transpose()?.into_iter().collect();
    attach_webhooks(pool, &mut found).await?;
    Ok(found.pop())
}

/// Fill in the webhooks of triggered presets, in one query.
async fn attach_webhooks(pool: &PgPool, presets: &mut [PresetView]) -> Result<(), QueryError> {
    let ids: Vec<Uuid> = presets.iter().filter_map(|p| p.webhook_id.as_deref()?.parse().ok()).collect();
    let mut webhooks = crate::webhooks::webhooks_by_id(pool, &ids).await?;
    for preset in presets {
        let id = preset.webhook_id.as_deref().and_then(|id| id.parse().ok());
        preset.webhook = id.and_then(|id| webhooks.remove(&id));
    }
    Ok(())
}
