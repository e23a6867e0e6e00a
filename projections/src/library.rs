//! The library read model (`rm_library_agents`) and its queries, which join
//! the graphs read model for names and schemas.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use domain::aggregate::Aggregate;
use domain::graph::{view, Graph, GraphVersion};
use domain::library::{GraphSettings, LibraryAgent, LibraryAgentEvent};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{PgConnection, PgPool, Row};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::projector::{bind, BoxFuture, ProjectionError, StreamProjector};
pub use crate::query::Pagination;
use crate::query::QueryError;

/// Builds `rm_library_agents` from library agent streams.
pub struct LibraryProjector;

/// Name of the library projection.
pub const NAME: &str = "library_agents";

impl StreamProjector for LibraryProjector {
    type Source = LibraryAgent;
    const NAME: &'static str = NAME;
    const TABLES: &'static [&'static str] = &["rm_library_agents"];

    const BULK: bool = true;

    /// A batch that only adds agents, each once (the common case: graphs
    /// being created), is one multi-row upsert.
    fn bulk(
        &self,
        events: &[(Uuid, LibraryAgentEvent)],
        args: &mut PgArguments,
    ) -> Result<Option<(&'static str, usize)>, ProjectionError> {
        let mut rows = AddedRows::default();
        for (_, event) in events {
            let LibraryAgentEvent::LibraryAgentAdded {
                library_agent_id,
                user_id,
                graph_id,
                graph_version,
                is_created_by_user,
                at,
            } = event
            else {
                return Ok(None);
            };
            // An upsert may touch a row only once per statement.
            if rows.ids.contains(library_agent_id) {
                return Ok(None);
            }
            rows.ids.push(*library_agent_id);
            rows.users.push(*user_id);
            rows.graphs.push(*graph_id);
            rows.versions.push(*graph_version);
            rows.created_by_user.push(*is_created_by_user);
            rows.at.push(*at);
        }
        bind(args, rows.ids)?;
        bind(args, rows.users)?;
        bind(args, rows.graphs)?;
        bind(args, rows.versions)?;
        bind(args, rows.created_by_user)?;
        bind(args, rows.at)?;
        bind(args, json!(GraphSettings::default()))?;
        Ok(Some((BULK_ADD.as_str(), events.len())))
    }

    fn apply<'a>(
        &'a self,
        id: Uuid,
        event: <LibraryAgent as Aggregate>::Event,
        conn: &'a mut PgConnection,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            match event {
                LibraryAgentEvent::LibraryAgentAdded {
                    library_agent_id,
                    user_id,
                    graph_id,
                    graph_version,
                    is_created_by_user,
                    at,
                } => {
                    sqlx::query(ADD_ONE.as_str())
                        .bind(library_agent_id)
                        .bind(user_id)
                        .bind(graph_id)
                        .bind(graph_version)
                        .bind(is_created_by_user)
                        .bind(json!(GraphSettings::default()))
                        .bind(at)
                        .execute(conn)
                        .await?;
                }
                LibraryAgentEvent::LibraryAgentUpdated { patch, at, .. } => {
                    sqlx::query(
                        "UPDATE rm_library_agents SET auto_update_version = coalesce($2, auto_update_version), \
                           graph_version = coalesce($3, graph_version), is_favorite = coalesce($4, is_favorite), \
                           is_archived = coalesce($5, is_archived), settings = coalesce($6, settings), updated_at = $7 \
                         WHERE id = $1",
                    )
                    .bind(id)
                    .bind(patch.auto_update_version)
                    .bind(patch.graph_version)
                    .bind(patch.is_favorite)
                    .bind(patch.is_archived)
                    .bind(patch.settings.map(|s| json!(s)))
                    .bind(at)
                    .execute(conn)
                    .await?;
                }
                LibraryAgentEvent::LibraryAgentDeleted { at, .. } => {
                    sqlx::query("UPDATE rm_library_agents SET is_deleted = true, updated_at = $2 WHERE id = $1")
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

const ADD_COLUMNS: &str =
    "(id, user_id, graph_id, graph_version, is_created_by_user, settings, created_at, updated_at)";

/// Adding an agent again (a graph re-added after removal) starts it afresh.
const ADD_CONFLICT: &str = "ON CONFLICT (id) DO UPDATE SET graph_version = EXCLUDED.graph_version, \
     auto_update_version = true, is_favorite = false, is_archived = false, is_deleted = false, \
     settings = EXCLUDED.settings, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at";

/// Adds a batch's agents, as data-modifying CTE for the runner (arrays
/// unnested in the select list, as the event store's append does).
static BULK_ADD: LazyLock<String> = LazyLock::new(|| {
    format!(
        "ins AS (INSERT INTO rm_library_agents {ADD_COLUMNS} \
         SELECT unnest($6::uuid[]), unnest($7::uuid[]), unnest($8::uuid[]), unnest($9::int4[]), \
           unnest($10::bool[]), $12::jsonb, unnest($11::timestamptz[]), unnest($11::timestamptz[]) \
         WHERE EXISTS (SELECT FROM ck) {ADD_CONFLICT})"
    )
});

/// Adds one agent.
static ADD_ONE: LazyLock<String> = LazyLock::new(|| {
    format!("INSERT INTO rm_library_agents {ADD_COLUMNS} VALUES ($1, $2, $3, $4, $5, $6, $7, $7) {ADD_CONFLICT}")
});

/// Columns of [`BULK_ADD`].
#[derive(Default)]
struct AddedRows {
    ids: Vec<Uuid>,
    users: Vec<Uuid>,
    graphs: Vec<Uuid>,
    versions: Vec<i32>,
    created_by_user: Vec<bool>,
    at: Vec<DateTime<Utc>>,
}

const SELECT: &str = "SELECT a.id, a.user_id, a.graph_id, a.graph_version, a.is_favorite, a.settings, \
     a.created_at, a.updated_at, g.model, g.user_id AS graph_owner, \
     (SELECT max(x.version) FROM rm_graphs x WHERE x.id = a.graph_id) AS latest_version, \
     (SELECT json_build_object('id', s.listing_id, 'name', s.agent_name, 'slug', s.slug, 'image', s.agent_image, \
        'creator', json_build_object('name', coalesce(p.name, s.creator), 'id', s.owner_id, 'slug', s.creator, \
          'avatar', s.creator_avatar)) \
      FROM rm_store_agents s LEFT JOIN rm_store_profiles p ON p.user_id = s.owner_id \
      WHERE s.graph_id = a.graph_id) AS marketplace_listing, \
     runs.run_status, runs.new_output \
     FROM rm_library_agents a LEFT JOIN rm_graphs g ON g.id = a.graph_id AND g.version = a.graph_version \
     CROSS JOIN LATERAL (SELECT \
         CASE WHEN bool_or(e.status = 'FAILED') THEN 'ERROR' WHEN bool_or(e.status = 'QUEUED') THEN 'WAITING' \
           WHEN bool_or(e.status = 'RUNNING') THEN 'HEALTHY' ELSE 'COMPLETED' END AS run_status, \
         coalesce(bool_or(e.status = 'COMPLETED' AND e.ended_at > now() - interval '7 days'), false) AS new_output \
       FROM rm_graph_executions e WHERE e.graph_id = a.graph_id AND e.user_id = a.user_id AND NOT e.is_deleted) runs";

/// How to order a library listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LibrarySort {
    /// Most recently updated first.
    UpdatedAt,
    /// Most recently added first.
    CreatedAt,
}

/// What to list.
#[derive(Debug, Clone)]
pub struct LibraryQuery {
    /// Case-insensitive substring of name or description.
    pub search_term: Option<String>,
    /// Order.
    pub sort: LibrarySort,
    /// 1-based page.
    pub page: i64,
    /// Page size.
    pub page_size: i64,
    /// Only favourites.
    pub favorites_only: bool,
}

/// One page of a user's library: `{agents, pagination}`.
pub async fn list_agents(pool: &PgPool, user_id: Uuid, q: &LibraryQuery) -> Result<LibraryAgentPage, QueryError> {
    let filter = "WHERE a.user_id = $1 AND NOT a.is_deleted AND NOT a.is_archived AND (NOT $2 OR a.is_favorite) \
                  AND ($3::text IS NULL OR g.name ILIKE $3 ESCAPE '\\' OR g.model->>'description' ILIKE $3 ESCAPE '\\')";
    let pattern =
        q.search_term.as_deref().filter(|s| !s.trim().is_empty()).map(|s| format!("%{}%", like_escape(s.trim())));
    let order = match q.sort {
        LibrarySort::UpdatedAt => "a.updated_at DESC, a.id",
        LibrarySort::CreatedAt => "a.created_at DESC, a.id",
    };
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM rm_library_agents a LEFT JOIN rm_graphs g ON g.id = a.graph_id AND g.version = a.graph_version {filter}"
    ))
    .bind(user_id)
    .bind(q.favorites_only)
    .bind(&pattern)
    .fetch_one(pool)
    .await?;
    let rows = sqlx::query(&format!("{SELECT} {filter} ORDER BY {order} LIMIT $4 OFFSET $5"))
        .bind(user_id)
        .bind(q.favorites_only)
        .bind(&pattern)
        .bind(q.page_size)
        .bind(Pagination::offset(q.page, q.page_size))
        .fetch_all(pool)
        .await?;
    let agents = rows.iter().map(agent_view).collect::<Result<Vec<_>, _>>()?;
    Ok(LibraryAgentPage { agents, pagination: Pagination::of(total, q.page, q.page_size) })
}

/// One of a user's library agents by id.
pub async fn get_agent(pool: &PgPool, user_id: Uuid, id: Uuid) -> Result<Option<LibraryAgentView>, QueryError> {
    let row = sqlx::query(&format!("{SELECT} WHERE a.id = $1 AND a.user_id = $2 AND NOT a.is_deleted"))
        .bind(id)
        .bind(user_id)
        .fetch_optional(pool)
        .await?;
    Ok(row.as_ref().map(agent_view).transpose()?)
}

/// A user's library agent for a graph (optionally a given version).
pub async fn get_agent_by_graph(
    pool: &PgPool,
    user_id: Uuid,
    graph_id: Uuid,
    version: Option<i32>,
) -> Result<Option<LibraryAgentView>, QueryError> {
    let row = sqlx::query(&format!(
        "{SELECT} WHERE a.graph_id = $1 AND a.user_id = $2 AND NOT a.is_deleted AND ($3::int IS NULL OR a.graph_version = $3)"
    ))
    .bind(graph_id)
    .bind(user_id)
    .bind(version)
    .fetch_optional(pool)
    .await?;
    Ok(row.as_ref().map(agent_view).transpose()?)
}

pub(crate) fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// Everything a served library agent is made of, from a read-model row or
/// from the log: one builder, so both answer the same shape.
#[derive(Debug, Clone)]
pub struct AgentSource {
    /// Library agent id.
    pub id: Uuid,
    /// Whose library.
    pub user_id: Uuid,
    /// The graph.
    pub graph_id: Uuid,
    /// The version it runs.
    pub graph_version: i32,
    /// Favourite flag.
    pub is_favorite: bool,
    /// Per-user settings.
    pub settings: Value,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// The served GraphModel of that version, if known.
    pub model: Option<Value>,
    /// The graph's owner, if known.
    pub graph_owner: Option<Uuid>,
    /// The graph's highest version, if known.
    pub latest_version: Option<i32>,
    /// The graph's store listing, when it is listed.
    pub marketplace_listing: Option<Value>,
    /// Derived from the user's runs of the graph (see [`LibraryAgentView::status`]).
    pub run_status: Option<String>,
    /// A run completed in the last 7 days.
    pub new_output: bool,
}

impl AgentSource {
    fn of_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            graph_id: row.try_get("graph_id")?,
            graph_version: row.try_get("graph_version")?,
            is_favorite: row.try_get("is_favorite")?,
            settings: row.try_get("settings")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            model: row.try_get("model")?,
            graph_owner: row.try_get("graph_owner")?,
            latest_version: row.try_get("latest_version")?,
            marketplace_listing: row.try_get("marketplace_listing")?,
            run_status: row.try_get("run_status")?,
            new_output: row.try_get("new_output")?,
        })
    }

    /// From the aggregates' state as the log has it (`None` for an agent
    /// that is not there).
    pub fn from_state(
        agent: &LibraryAgent,
        graph: &Graph,
        version: Option<(&GraphVersion, DateTime<Utc>)>,
    ) -> Option<Self> {
        let created_at = agent.created_at?;
        let model = version.and_then(|(v, at)| {
            let owner = graph.owner.unwrap_or_default();
            serde_json::to_value(view::GraphModel::new(v, owner, at, None)).ok()
        });
        Some(Self {
            id: agent.id?,
            user_id: agent.user_id?,
            graph_id: agent.graph_id?,
            graph_version: agent.graph_version,
            is_favorite: agent.is_favorite,
            settings: json!(agent.settings),
            created_at,
            updated_at: agent.updated_at.unwrap_or(created_at),
            model,
            graph_owner: graph.owner,
            latest_version: graph.versions.last().copied(),
            marketplace_listing: None,
            run_status: None,
            new_output: false,
        })
    }

    /// The LibraryAgent as served.
    pub fn to_view(&self) -> LibraryAgentView {
        let model = self.model.as_ref();
        // The graph may not be projected yet; serve the wire shape regardless.
        let field = |k: &str| model.and_then(|m| m.get(k)).filter(|v| !v.is_null()).cloned();
        let text = |k: &str| field(k).and_then(|v| v.as_str().map(str::to_owned));
        let flag = |k: &str| field(k).and_then(|v| v.as_bool()).unwrap_or(false);
        let listing = self.marketplace_listing.as_ref().filter(|l| !l.is_null());
        let listed = |path: &str| listing.and_then(|l| l.pointer(path)).and_then(Value::as_str).map(str::to_owned);
        LibraryAgentView {
            id: self.id,
            graph_id: self.graph_id,
            graph_version: self.graph_version,
            owner_user_id: self.user_id,
            image_url: listed("/image").filter(|i| !i.is_empty()),
            creator_name: listed("/creator/name").unwrap_or_default(),
            creator_image_url: listed("/creator/avatar").unwrap_or_default(),
            status: self.run_status.clone().unwrap_or_else(|| "COMPLETED".into()),
            created_at: self.created_at,
            updated_at: self.updated_at,
            name: text("name").unwrap_or_default(),
            description: text("description").unwrap_or_default(),
            instructions: text("instructions"),
            input_schema: field("input_schema").unwrap_or_else(|| json!({})),
            output_schema: field("output_schema").unwrap_or_else(|| json!({})),
            credentials_input_schema: field("credentials_input_schema"),
            has_external_trigger: flag("has_external_trigger"),
            has_human_in_the_loop: flag("has_human_in_the_loop"),
            has_sensitive_action: flag("has_sensitive_action"),
            trigger_setup_info: field("trigger_setup_info"),
            new_output: self.new_output,
            can_access_graph: self.graph_owner == Some(self.user_id),
            is_latest_version: self.latest_version.is_none_or(|l| l <= self.graph_version),
            is_favorite: self.is_favorite,
            recommended_schedule_cron: text("recommended_schedule_cron"),
            settings: serde_json::from_value(self.settings.clone()).unwrap_or_default(),
            marketplace_listing: listing.and_then(|l| serde_json::from_value(l.clone()).ok()),
        }
    }
}

/// AutoGPT's `LibraryAgent`: a user's library entry with its graph's
/// name, description and schemas.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = LibraryAgent)]
pub struct LibraryAgentView {
    /// Library agent id.
    pub id: Uuid,
    /// The graph.
    pub graph_id: Uuid,
    /// The version it runs.
    pub graph_version: i32,
    /// Whose library.
    pub owner_user_id: Uuid,
    /// Picture (none yet).
    #[schema(required = true)]
    pub image_url: Option<String>,
    /// Creator's name (store listings; empty).
    pub creator_name: String,
    /// Creator's picture (of a store listing; empty otherwise).
    pub creator_image_url: String,
    /// AutoGPT's LibraryAgentStatus, from the user's runs of the graph: any
    /// FAILED one makes it `ERROR`, else a QUEUED one `WAITING`, else a
    /// RUNNING one `HEALTHY`, else `COMPLETED`.
    pub status: String,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// The graph's name.
    pub name: String,
    /// The graph's description.
    pub description: String,
    /// The graph's instructions.
    pub instructions: Option<String>,
    /// JSON schema of the graph's inputs.
    #[schema(value_type = Object)]
    pub input_schema: Value,
    /// JSON schema of the graph's outputs.
    #[schema(value_type = Object)]
    pub output_schema: Value,
    /// JSON schema of the credentials the graph needs.
    #[schema(value_type = Option<Object>, required = true)]
    pub credentials_input_schema: Option<Value>,
    /// Triggered by a webhook.
    pub has_external_trigger: bool,
    /// Has human-in-the-loop blocks.
    pub has_human_in_the_loop: bool,
    /// Has sensitive actions.
    pub has_sensitive_action: bool,
    /// Webhook trigger setup.
    #[schema(value_type = Option<domain::graph::trigger::GraphTriggerInfo>)]
    pub trigger_setup_info: Option<Value>,
    /// New output since last seen.
    pub new_output: bool,
    /// The user owns the graph.
    pub can_access_graph: bool,
    /// It runs the graph's highest version.
    pub is_latest_version: bool,
    /// Favourite flag.
    pub is_favorite: bool,
    /// Suggested schedule.
    pub recommended_schedule_cron: Option<String>,
    /// Per-user settings.
    pub settings: GraphSettings,
    /// Its store listing, when the graph is listed.
    pub marketplace_listing: Option<MarketplaceListing>,
}

/// Where a library agent is listed in the store.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, ToSchema)]
pub struct MarketplaceListing {
    /// The listing.
    pub id: Uuid,
    /// Its title.
    pub name: String,
    /// Its URL name.
    pub slug: String,
    /// Its creator.
    pub creator: MarketplaceListingCreator,
}

/// The creator of a listing.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, ToSchema)]
pub struct MarketplaceListingCreator {
    /// Display name.
    pub name: String,
    /// The user.
    pub id: Uuid,
    /// Username.
    pub slug: String,
}

/// One page of a user's library (AutoGPT's `LibraryAgentResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = LibraryAgentResponse)]
pub struct LibraryAgentPage {
    /// The agents on this page.
    pub agents: Vec<LibraryAgentView>,
    /// Where the page is.
    pub pagination: Pagination,
}

fn agent_view(row: &PgRow) -> Result<LibraryAgentView, sqlx::Error> {
    Ok(AgentSource::of_row(row)?.to_view())
}
