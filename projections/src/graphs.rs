//! The graphs read model (`rm_graphs`: every version, which is active) and
//! its queries.

use std::sync::LazyLock;

use domain::aggregate::Aggregate;
use domain::graph::{view, Graph, GraphEvent, GraphVersion};
use serde_json::Value;
use sqlx::postgres::PgArguments;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::projector::{bind, BoxFuture, ProjectionError, StreamProjector};
use crate::query::QueryError;

/// Builds `rm_graphs` from graph streams.
pub struct GraphsProjector;

/// Name of the graphs projection.
pub const NAME: &str = "graphs";

/// The stored model and its live `is_active` flag, folded in by [`served`].
const MODEL: &str = "model, is_active";

/// The served model: the stored one with `is_active` after `version`, where
/// a freshly created model has it.
fn served((mut model, is_active): (Value, bool)) -> Value {
    if let Some(fields) = model.as_object_mut() {
        let at = fields.keys().position(|k| k == "version").map_or(0, |i| i + 1);
        fields.shift_insert(at, "is_active".into(), Value::Bool(is_active));
    }
    model
}

/// `GraphMeta`: the served model without its nodes, links and creation time.
fn meta(row: (Value, bool)) -> Value {
    let mut model = served(row);
    if let Some(fields) = model.as_object_mut() {
        for key in ["nodes", "links", "created_at"] {
            fields.shift_remove(key);
        }
    }
    model
}

impl StreamProjector for GraphsProjector {
    type Source = Graph;
    const NAME: &'static str = NAME;
    const TABLES: &'static [&'static str] = &["rm_graphs"];

    const BULK: bool = true;

    /// A batch of first versions only (the common case: graphs being
    /// created) has no sibling to deactivate: one multi-row insert.
    fn bulk(
        &self,
        events: &[(Uuid, GraphEvent)],
        args: &mut PgArguments,
    ) -> Result<Option<(&'static str, usize)>, ProjectionError> {
        let mut rows = GraphRows::default();
        for (_, event) in events {
            match event {
                GraphEvent::GraphCreated { user_id, graph, at } if graph.version == 1 => {
                    rows.push(graph, *user_id, *at)?
                }
                _ => return Ok(None),
            }
        }
        rows.add_to(args)?;
        Ok(Some((BULK_INSERT.as_str(), events.len())))
    }

    fn apply<'a>(
        &'a self,
        id: Uuid,
        event: <Graph as Aggregate>::Event,
        conn: &'a mut PgConnection,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            match event {
                GraphEvent::GraphCreated { user_id, graph, at }
                | GraphEvent::GraphVersionCreated { user_id, graph, at } => {
                    // A first version has no sibling to deactivate.
                    if graph.is_active && graph.version > 1 {
                        sqlx::query("UPDATE rm_graphs SET is_active = false WHERE id = $1 AND is_active")
                            .bind(graph.id)
                            .execute(&mut *conn)
                            .await?;
                    }
                    insert_version(conn, &graph, user_id, at).await?;
                }
                GraphEvent::GraphActiveVersionSet { version, .. } => {
                    sqlx::query("UPDATE rm_graphs SET is_active = (version = $2) WHERE id = $1")
                        .bind(id)
                        .bind(version)
                        .execute(conn)
                        .await?;
                }
                GraphEvent::GraphDeleted { .. } => {
                    sqlx::query("DELETE FROM rm_graphs WHERE id = $1").bind(id).execute(conn).await?;
                }
            }
            Ok(())
        })
    }
}

async fn insert_version(
    conn: &mut PgConnection,
    graph: &GraphVersion,
    user_id: Uuid,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), sqlx::Error> {
    let is_active = graph.is_active || graph.version == 1;
    let model = stored_model(graph, user_id, at)?;
    sqlx::query(INSERT_ONE.as_str())
        .bind(graph.id)
        .bind(graph.version)
        .bind(user_id)
        .bind(is_active)
        .bind(&graph.name)
        .bind(at)
        .bind(model)
        .execute(conn)
        .await?;
    Ok(())
}

/// The model as `rm_graphs` keeps it: `is_active` lives in its own column,
/// and queries fold it back in (see [`served`]).
fn stored_model(graph: &GraphVersion, user_id: Uuid, at: chrono::DateTime<chrono::Utc>) -> Result<String, sqlx::Error> {
    serde_json::to_string(&view::GraphModel::new(graph, user_id, at, None)).map_err(|e| sqlx::Error::Encode(e.into()))
}

/// The start of every version insert.
const INSERT_INTO: &str = "INSERT INTO rm_graphs (id, version, user_id, is_active, name, created_at, model)";

/// A version already projected (events applied again) is left as it is.
const ON_CONFLICT: &str = "ON CONFLICT (id, version) DO NOTHING";

/// Inserts one version.
static INSERT_ONE: LazyLock<String> =
    LazyLock::new(|| format!("{INSERT_INTO} VALUES ($1, $2, $3, $4, $5, $6, $7::json) {ON_CONFLICT}"));

/// Inserts a batch's first versions, as data-modifying CTE for the runner
/// (arrays unnested in the select list, as the event store's append does).
static BULK_INSERT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "ins AS ({INSERT_INTO} SELECT unnest($6::uuid[]), unnest($7::int4[]), unnest($8::uuid[]), true, \
           unnest($9::text[]), unnest($10::timestamptz[]), unnest($11::text[])::json \
         WHERE EXISTS (SELECT FROM ck) {ON_CONFLICT})"
    )
});

/// Columns of [`BULK_INSERT`].
#[derive(Default)]
struct GraphRows {
    ids: Vec<Uuid>,
    versions: Vec<i32>,
    users: Vec<Uuid>,
    names: Vec<String>,
    created: Vec<chrono::DateTime<chrono::Utc>>,
    models: Vec<String>,
}

impl GraphRows {
    fn push(
        &mut self,
        graph: &GraphVersion,
        user_id: Uuid,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), ProjectionError> {
        let model = stored_model(graph, user_id, at)?;
        self.ids.push(graph.id);
        self.versions.push(graph.version);
        self.users.push(user_id);
        self.names.push(graph.name.clone());
        self.created.push(at);
        self.models.push(model);
        Ok(())
    }

    fn add_to(self, args: &mut PgArguments) -> Result<(), ProjectionError> {
        bind(args, self.ids)?;
        bind(args, self.versions)?;
        bind(args, self.users)?;
        bind(args, self.names)?;
        bind(args, self.created)?;
        bind(args, self.models)
    }
}

/// A user's graphs as `GraphMeta`, active versions, newest first (first 250).
pub async fn list_graphs(pool: &PgPool, user_id: Uuid) -> Result<Vec<Value>, QueryError> {
    let sql = format!(
        "SELECT {MODEL} FROM rm_graphs WHERE user_id = $1 AND is_active ORDER BY created_at DESC, id LIMIT 250"
    );
    let rows = sqlx::query_as(&sql).bind(user_id).fetch_all(pool).await?;
    Ok(rows.into_iter().map(meta).collect())
}

/// One version of a user's graph; without a version, the highest one.
pub async fn get_graph(
    pool: &PgPool,
    user_id: Uuid,
    graph_id: Uuid,
    version: Option<i32>,
) -> Result<Option<Value>, QueryError> {
    // Two statements rather than `$3 IS NULL OR …`, so each keeps a cached plan.
    let row = match version {
        Some(version) => {
            let sql = format!("SELECT {MODEL} FROM rm_graphs WHERE id = $1 AND user_id = $2 AND version = $3");
            sqlx::query_as(&sql).bind(graph_id).bind(user_id).bind(version).fetch_optional(pool).await?
        }
        None => {
            let sql =
                format!("SELECT {MODEL} FROM rm_graphs WHERE id = $1 AND user_id = $2 ORDER BY version DESC LIMIT 1");
            sqlx::query_as(&sql).bind(graph_id).bind(user_id).fetch_optional(pool).await?
        }
    };
    Ok(row.map(served))
}

/// Whether the store lists version `g.version` of graph `g.id` as approved:
/// the versions of a creator's graph anyone else may read.
const APPROVED_IN_STORE: &str = "EXISTS (SELECT FROM rm_store_versions v \
     JOIN rm_store_listings l ON l.listing_id = v.listing_id \
     WHERE l.graph_id = g.id AND v.agent_version = g.version AND v.status = 'APPROVED' \
       AND NOT v.is_deleted AND NOT l.is_deleted)";

/// One version of anyone's graph that the store lists as approved; without
/// a version, the highest such. Versions saved since, pending, rejected or
/// withdrawn are not found: only approved ones leave their creator's
/// account. The whole model, as stored: whoever serves it to someone other
/// than the creator strips it for export.
pub async fn get_approved_version(
    pool: &PgPool,
    graph_id: Uuid,
    version: Option<i32>,
) -> Result<Option<Value>, QueryError> {
    let row = match version {
        Some(version) => {
            let sql =
                format!("SELECT {MODEL} FROM rm_graphs g WHERE g.id = $1 AND g.version = $2 AND {APPROVED_IN_STORE}");
            sqlx::query_as(&sql).bind(graph_id).bind(version).fetch_optional(pool).await?
        }
        None => {
            let sql = format!(
                "SELECT {MODEL} FROM rm_graphs g WHERE g.id = $1 AND {APPROVED_IN_STORE} ORDER BY g.version DESC LIMIT 1"
            );
            sqlx::query_as(&sql).bind(graph_id).fetch_optional(pool).await?
        }
    };
    Ok(row.map(served))
}

/// Every version of a user's graph, newest first.
pub async fn list_versions(pool: &PgPool, user_id: Uuid, graph_id: Uuid) -> Result<Vec<Value>, QueryError> {
    let sql = format!("SELECT {MODEL} FROM rm_graphs WHERE id = $1 AND user_id = $2 ORDER BY version DESC");
    let rows = sqlx::query_as(&sql).bind(graph_id).bind(user_id).fetch_all(pool).await?;
    Ok(rows.into_iter().map(served).collect())
}

/// One version of anyone's graph (the store shows published ones): the
/// whole model, or its `GraphMeta` when `meta_only`.
pub async fn get_published_version(
    pool: &PgPool,
    graph_id: Uuid,
    version: i32,
    meta_only: bool,
) -> Result<Option<Value>, QueryError> {
    let sql = format!("SELECT {MODEL} FROM rm_graphs WHERE id = $1 AND version = $2");
    let row = sqlx::query_as(&sql).bind(graph_id).bind(version).fetch_optional(pool).await?;
    Ok(row.map(if meta_only { meta } else { served }))
}
