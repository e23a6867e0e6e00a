//! Creators, profiles and the graphs a user may submit.

use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::views::*;
use crate::library::like_escape;
use crate::query::{Pagination, QueryError};

/// How to order creators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreatorSort {
    /// Best rated first.
    AgentRating,
    /// Most run first.
    AgentRuns,
    /// Most agents first.
    NumAgents,
}

fn links_of(row: &PgRow) -> Result<Vec<String>, sqlx::Error> {
    let raw: Value = row.try_get("links")?;
    Ok(serde_json::from_value(raw).unwrap_or_default())
}

/// One page of creators with at least one listed agent.
pub async fn creators(
    pool: &PgPool,
    featured: bool,
    search: Option<String>,
    sort: Option<CreatorSort>,
    page: i64,
    page_size: i64,
) -> Result<CreatorsResponse, QueryError> {
    let pattern = search.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(|s| format!("%{}%", like_escape(s)));
    let order = match sort {
        Some(CreatorSort::AgentRating) => "agent_rating DESC",
        Some(CreatorSort::AgentRuns) => "agent_runs DESC",
        Some(CreatorSort::NumAgents) => "num_agents DESC",
        None => "p.username",
    };
    let rows = sqlx::query(&format!(
        "SELECT p.name, p.username, p.description, p.avatar_url, p.is_featured, count(*) AS num_agents, \
           avg(a.rating)::float8 AS agent_rating, sum(a.runs)::int8 AS agent_runs, count(*) OVER () AS total \
         FROM rm_store_profiles p JOIN rm_store_agents a ON a.owner_id = p.user_id \
         WHERE (NOT $1 OR p.is_featured) AND ($2::text IS NULL OR p.username ILIKE $2 ESCAPE '\\' \
           OR p.name ILIKE $2 ESCAPE '\\' OR p.description ILIKE $2 ESCAPE '\\') \
         GROUP BY p.user_id ORDER BY {order}, p.username LIMIT $3 OFFSET $4"
    ))
    .bind(featured)
    .bind(&pattern)
    .bind(page_size)
    .bind(Pagination::offset(page, page_size))
    .fetch_all(pool)
    .await?;
    let total = rows.first().map(|r| r.try_get("total")).transpose()?.unwrap_or(0);
    let creators = rows
        .iter()
        .map(|r| {
            Ok(Creator {
                name: r.try_get("name")?,
                username: r.try_get("username")?,
                description: r.try_get("description")?,
                avatar_url: r.try_get("avatar_url")?,
                num_agents: r.try_get("num_agents")?,
                agent_rating: r.try_get("agent_rating")?,
                agent_runs: r.try_get("agent_runs")?,
                is_featured: r.try_get("is_featured")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(CreatorsResponse { creators, pagination: Pagination::of(total, page, page_size) })
}

/// A creator's page, by username (any case).
pub async fn creator(pool: &PgPool, username: &str) -> Result<Option<CreatorDetails>, QueryError> {
    let Some(row) = sqlx::query(
        "SELECT p.user_id, p.name, p.username, p.description, p.links, p.avatar_url, \
           coalesce(avg(a.rating), 0)::float8 AS agent_rating, coalesce(sum(a.runs), 0)::int8 AS agent_runs \
         FROM rm_store_profiles p LEFT JOIN rm_store_agents a ON a.owner_id = p.user_id \
         WHERE p.username = $1 GROUP BY p.user_id",
    )
    .bind(username.to_lowercase())
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let user_id: Uuid = row.try_get("user_id")?;
    let top_categories: Vec<String> = sqlx::query_scalar(
        "SELECT c FROM rm_store_agents a, unnest(a.categories) c WHERE a.owner_id = $1 \
         GROUP BY c ORDER BY count(*) DESC, c LIMIT 5",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    Ok(Some(CreatorDetails {
        name: row.try_get("name")?,
        username: row.try_get("username")?,
        description: row.try_get("description")?,
        links: links_of(&row)?,
        avatar_url: row.try_get("avatar_url")?,
        agent_rating: row.try_get("agent_rating")?,
        agent_runs: row.try_get("agent_runs")?,
        top_categories,
    }))
}

/// The user's own profile, if written.
pub async fn profile(pool: &PgPool, user_id: Uuid) -> Result<Option<ProfileView>, QueryError> {
    let row =
        sqlx::query("SELECT name, username, description, links, avatar_url FROM rm_store_profiles WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(pool)
            .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(ProfileView {
        name: row.try_get("name")?,
        username: row.try_get("username")?,
        description: row.try_get("description")?,
        links: links_of(&row)?,
        avatar_url: Some(row.try_get("avatar_url")?),
    }))
}

/// The user's graphs (active versions), newest first: what can be submitted.
pub async fn my_agents(
    pool: &PgPool,
    user_id: Uuid,
    page: i64,
    page_size: i64,
) -> Result<MyAgentsResponse, QueryError> {
    let rows = sqlx::query(
        "SELECT id, version, name, coalesce(model->>'description', '') AS description, created_at, \
           model->>'recommended_schedule_cron' AS cron, count(*) OVER () AS total \
         FROM rm_graphs WHERE user_id = $1 AND is_active ORDER BY created_at DESC, id LIMIT $2 OFFSET $3",
    )
    .bind(user_id)
    .bind(page_size)
    .bind(Pagination::offset(page, page_size))
    .fetch_all(pool)
    .await?;
    let total = match rows.first() {
        Some(r) => r.try_get("total")?,
        None => {
            sqlx::query_scalar("SELECT count(*) FROM rm_graphs WHERE user_id = $1 AND is_active")
                .bind(user_id)
                .fetch_one(pool)
                .await?
        }
    };
    let agents = rows
        .iter()
        .map(|r| {
            Ok(MyAgent {
                agent_id: r.try_get("id")?,
                agent_version: r.try_get("version")?,
                agent_name: r.try_get("name")?,
                agent_image: None,
                description: r.try_get("description")?,
                last_edited: r.try_get("created_at")?,
                recommended_schedule_cron: r.try_get("cron")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(MyAgentsResponse { agents, pagination: Pagination::of(total, page, page_size) })
}
