//! The store's queries. Listing pages read only `rm_store_agents` (one row
//! per listed agent, with its search vector), so a page is one indexed
//! statement however many listings there are.

use chrono::{DateTime, Utc};
use domain::store::{SubmissionDetails, SubmissionStatus};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use super::views::*;
use crate::library::like_escape;
use crate::query::{Pagination, QueryError};

/// How to order store agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreSort {
    /// Best rated first.
    Rating,
    /// Most run first.
    Runs,
    /// By title.
    Name,
    /// Most recently changed first.
    UpdatedAt,
}

/// A store page request.
#[derive(Debug, Clone, Default)]
pub struct StoreQuery {
    /// Only featured agents.
    pub featured: bool,
    /// Only this creator's (username).
    pub creator: Option<String>,
    /// Order; full-text rank comes first when searching.
    pub sort: Option<StoreSort>,
    /// Full-text search over title, sub-heading, categories, description.
    pub search: Option<String>,
    /// Only agents in this category.
    pub category: Option<String>,
    /// 1-based page.
    pub page: i64,
    /// Items per page.
    pub page_size: i64,
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Add the `WHERE` clause of `q`: only the filters asked for are in the
/// statement, so each shape keeps a plan that uses its index.
fn push_filters(sql: &mut QueryBuilder<'_, Postgres>, q: &StoreQuery) {
    sql.push(" FROM rm_store_agents WHERE true");
    if q.featured {
        sql.push(" AND is_featured");
    }
    if let Some(creator) = non_empty(&q.creator) {
        sql.push(" AND creator = ").push_bind(creator.to_lowercase());
    }
    if let Some(category) = non_empty(&q.category) {
        sql.push(" AND categories @> ARRAY[").push_bind(category.to_owned()).push("]::text[]");
    }
    if let Some(text) = non_empty(&q.search) {
        sql.push(" AND search @@ websearch_to_tsquery('english', ").push_bind(text.to_owned()).push(")");
    }
}

async fn count_matches(pool: &PgPool, q: &StoreQuery) -> Result<i64, sqlx::Error> {
    let mut count: QueryBuilder<Postgres> = QueryBuilder::new("SELECT count(*)");
    push_filters(&mut count, q);
    count.build_query_scalar().fetch_one(pool).await
}

/// One page of listed agents, and how many match. A search ranks every
/// match anyway, so it counts them in the same statement; a plain listing
/// counts in a statement of its own, since a window count there would make
/// Postgres read every row before it could stop at the page.
pub async fn list_agents(pool: &PgPool, q: &StoreQuery) -> Result<StoreAgentsResponse, QueryError> {
    let search = non_empty(&q.search);
    let total: Option<i64> = match search {
        Some(_) => None,
        None => Some(count_matches(pool, q).await?),
    };
    let mut sql: QueryBuilder<Postgres> = QueryBuilder::new(
        "SELECT slug, agent_name, agent_image, creator, creator_avatar, sub_heading, description, runs, rating",
    );
    if search.is_some() {
        sql.push(", count(*) OVER () AS total");
    }
    push_filters(&mut sql, q);
    sql.push(" ORDER BY ");
    if let Some(text) = search {
        sql.push("ts_rank(search, websearch_to_tsquery('english', ").push_bind(text.to_owned()).push(")) DESC, ");
    }
    sql.push(match q.sort {
        Some(StoreSort::Rating) => "rating DESC",
        Some(StoreSort::Runs) => "runs DESC",
        Some(StoreSort::Name) => "agent_name",
        Some(StoreSort::UpdatedAt) | None => "updated_at DESC",
    });
    sql.push(", listing_id LIMIT ")
        .push_bind(q.page_size)
        .push(" OFFSET ")
        .push_bind(Pagination::offset(q.page, q.page_size));
    let rows = if total == Some(0) { vec![] } else { sql.build().fetch_all(pool).await? };
    let total = match (total, rows.first()) {
        (Some(total), _) => total,
        (None, Some(row)) => row.try_get("total")?,
        // A search page past the last: ask for the count alone.
        (None, None) => count_matches(pool, q).await?,
    };
    let agents = rows.iter().map(StoreAgent::of_row).collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(StoreAgentsResponse { agents, pagination: Pagination::of(total, q.page, q.page_size) })
}

/// The listed agent `slug` of creator `username`.
pub async fn agent_by_slug(
    pool: &PgPool,
    username: &str,
    slug: &str,
    with_changelog: bool,
) -> Result<Option<StoreAgentDetails>, QueryError> {
    let found: Option<(Uuid, Uuid)> =
        sqlx::query_as("SELECT listing_id, version_id FROM rm_store_agents WHERE creator = $1 AND slug = $2")
            .bind(username.to_lowercase())
            .bind(slug.to_lowercase())
            .fetch_optional(pool)
            .await?;
    match found {
        Some((listing, version)) => detail_of(pool, listing, version, with_changelog).await,
        None => Ok(None),
    }
}

/// An approved version of a listing, in full.
pub async fn agent_by_version(pool: &PgPool, version_id: Uuid) -> Result<Option<StoreAgentDetails>, QueryError> {
    match version_ref(pool, version_id).await? {
        Some(v) if v.status == SubmissionStatus::Approved => detail_of(pool, v.listing_id, version_id, false).await,
        _ => Ok(None),
    }
}

async fn detail_of(
    pool: &PgPool,
    listing_id: Uuid,
    version_id: Uuid,
    with_changelog: bool,
) -> Result<Option<StoreAgentDetails>, QueryError> {
    let Some(row) = sqlx::query(concat!(
        "SELECT l.slug, l.graph_id, l.updated_at, l.active_version_id, v.details, \
           coalesce(p.username, '') AS creator, coalesce(p.avatar_url, '') AS creator_avatar, \
           coalesce(r.runs, 0) AS runs, ",
        listing_rating!(),
        " AS rating \
         FROM rm_store_listings l JOIN rm_store_versions v ON v.version_id = $2 AND v.listing_id = l.listing_id \
         LEFT JOIN rm_store_profiles p ON p.user_id = l.owner_id LEFT JOIN rm_graph_runs r ON r.graph_id = l.graph_id \
         WHERE l.listing_id = $1 AND NOT l.is_deleted"
    ))
    .bind(listing_id)
    .bind(version_id)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let approved: Vec<(i32, i32, Option<String>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT version, agent_version, details->>'changes_summary', submitted_at FROM rm_store_versions \
         WHERE listing_id = $1 AND status = 'APPROVED' AND NOT is_deleted ORDER BY version",
    )
    .bind(listing_id)
    .fetch_all(pool)
    .await?;
    let details = details_of(&row)?;
    let graph_id: Uuid = row.try_get("graph_id")?;
    Ok(Some(StoreAgentDetails {
        store_listing_version_id: version_id,
        slug: row.try_get("slug")?,
        agent_name: details.name,
        agent_video: details.video_url.unwrap_or_default(),
        agent_output_demo: details.agent_output_demo_url.unwrap_or_default(),
        agent_image: details.image_urls,
        creator: row.try_get("creator")?,
        creator_avatar: row.try_get("creator_avatar")?,
        sub_heading: details.sub_heading,
        description: details.description,
        instructions: details.instructions,
        categories: details.categories,
        runs: row.try_get("runs")?,
        rating: row.try_get("rating")?,
        versions: approved.iter().map(|v| v.0.to_string()).collect(),
        agent_graph_versions: approved.iter().map(|v| v.1.to_string()).collect(),
        agent_graph_id: graph_id.to_string(),
        last_updated: row.try_get("updated_at")?,
        recommended_schedule_cron: details.recommended_schedule_cron,
        active_version_id: row.try_get("active_version_id")?,
        has_approved_version: !approved.is_empty(),
        changelog: with_changelog.then(|| {
            approved
                .iter()
                .rev()
                .map(|(version, _, summary, at)| ChangelogEntry {
                    version: version.to_string(),
                    changes_summary: summary.clone().unwrap_or_default(),
                    date: *at,
                })
                .collect()
        }),
    }))
}

fn details_of(row: &PgRow) -> Result<SubmissionDetails, sqlx::Error> {
    let raw: Value = row.try_get("details")?;
    serde_json::from_value(raw).map_err(|e| sqlx::Error::Decode(e.into()))
}

/// Where a listing version belongs.
#[derive(Debug, Clone, Copy)]
pub struct VersionRef {
    /// Its listing.
    pub listing_id: Uuid,
    /// The creator.
    pub owner_id: Uuid,
    /// The graph.
    pub graph_id: Uuid,
    /// The graph version it publishes.
    pub agent_version: i32,
    /// Review state.
    pub status: SubmissionStatus,
}

/// The listing, creator and graph of a version not withdrawn.
pub async fn version_ref(pool: &PgPool, version_id: Uuid) -> Result<Option<VersionRef>, QueryError> {
    let row: Option<(Uuid, Uuid, Uuid, i32, String)> = sqlx::query_as(
        "SELECT l.listing_id, l.owner_id, l.graph_id, v.agent_version, v.status FROM rm_store_versions v \
         JOIN rm_store_listings l ON l.listing_id = v.listing_id \
         WHERE v.version_id = $1 AND NOT v.is_deleted AND NOT l.is_deleted",
    )
    .bind(version_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(listing_id, owner_id, graph_id, agent_version, status)| VersionRef {
        listing_id,
        owner_id,
        graph_id,
        agent_version,
        status: status_of(&status),
    }))
}

/// The listing the store shows under `username`/`slug`.
pub async fn listing_by_slug(pool: &PgPool, username: &str, slug: &str) -> Result<Option<Uuid>, QueryError> {
    Ok(sqlx::query_scalar("SELECT listing_id FROM rm_store_agents WHERE creator = $1 AND slug = $2")
        .bind(username.to_lowercase())
        .bind(slug.to_lowercase())
        .fetch_optional(pool)
        .await?)
}

fn status_of(s: &str) -> SubmissionStatus {
    match s {
        "APPROVED" => SubmissionStatus::Approved,
        "REJECTED" => SubmissionStatus::Rejected,
        "DRAFT" => SubmissionStatus::Draft,
        _ => SubmissionStatus::Pending,
    }
}

const SUBMISSION: &str = concat!(
    "SELECT v.version_id, v.listing_id, v.version, v.agent_version, v.details, v.status, \
       v.submitted_at, v.reviewer_id, v.review_comments, v.internal_comments, v.reviewed_at, l.graph_id, l.slug, \
       coalesce(r.runs, 0) AS runs, ",
    listing_rating!(),
    " AS rating, count(*) OVER () AS total \
     FROM rm_store_versions v JOIN rm_store_listings l ON l.listing_id = v.listing_id \
     LEFT JOIN rm_graph_runs r ON r.graph_id = l.graph_id"
);

fn submission_of(row: &PgRow, for_admin: bool) -> Result<StoreSubmission, sqlx::Error> {
    let details = details_of(row)?;
    let status: String = row.try_get("status")?;
    Ok(StoreSubmission {
        listing_id: row.try_get("listing_id")?,
        agent_id: row.try_get("graph_id")?,
        agent_version: row.try_get("agent_version")?,
        name: details.name,
        sub_heading: details.sub_heading,
        slug: row.try_get("slug")?,
        description: details.description,
        instructions: details.instructions,
        image_urls: details.image_urls,
        date_submitted: row.try_get("submitted_at")?,
        status: status_of(&status),
        runs: row.try_get("runs")?,
        rating: row.try_get("rating")?,
        store_listing_version_id: row.try_get("version_id")?,
        version: row.try_get("version")?,
        // Which admin reviewed is the platform's business, not the submitter's.
        reviewer_id: if for_admin { row.try_get("reviewer_id")? } else { None },
        review_comments: row.try_get("review_comments")?,
        internal_comments: if for_admin { row.try_get("internal_comments")? } else { None },
        reviewed_at: row.try_get("reviewed_at")?,
        changes_summary: details.changes_summary,
        video_url: details.video_url,
        agent_output_demo_url: details.agent_output_demo_url,
        categories: details.categories,
    })
}

/// The user's submissions, newest first.
pub async fn submissions(
    pool: &PgPool,
    user_id: Uuid,
    page: i64,
    page_size: i64,
) -> Result<StoreSubmissionsResponse, QueryError> {
    let rows = sqlx::query(&format!(
        "{SUBMISSION} WHERE l.owner_id = $1 AND NOT v.is_deleted ORDER BY v.submitted_at DESC, v.version_id \
         LIMIT $2 OFFSET $3"
    ))
    .bind(user_id)
    .bind(page_size)
    .bind(Pagination::offset(page, page_size))
    .fetch_all(pool)
    .await?;
    let total = match rows.first() {
        Some(r) => r.try_get("total")?,
        None => {
            sqlx::query_scalar(
                "SELECT count(*) FROM rm_store_versions v JOIN rm_store_listings l ON l.listing_id = v.listing_id \
             WHERE l.owner_id = $1 AND NOT v.is_deleted",
            )
            .bind(user_id)
            .fetch_one(pool)
            .await?
        }
    };
    let submissions = rows.iter().map(|r| submission_of(r, false)).collect::<Result<Vec<_>, _>>()?;
    Ok(StoreSubmissionsResponse { submissions, pagination: Pagination::of(total, page, page_size) })
}

/// One submitted version (withdrawn ones included: a command's answer).
pub async fn submission(
    pool: &PgPool,
    version_id: Uuid,
    for_admin: bool,
) -> Result<Option<StoreSubmission>, QueryError> {
    let row =
        sqlx::query(&format!("{SUBMISSION} WHERE v.version_id = $1")).bind(version_id).fetch_optional(pool).await?;
    Ok(row.as_ref().map(|r| submission_of(r, for_admin)).transpose()?)
}

/// A listing of the admin page: id, slug, graph, active version, e-mail.
type ListingRow = (Uuid, String, Uuid, Option<Uuid>, Option<String>);

/// Listings with every version, for admins: those with a version in
/// `status`, matching `search` in slug, title or description.
pub async fn admin_listings(
    pool: &PgPool,
    status: Option<SubmissionStatus>,
    search: Option<String>,
    page: i64,
    page_size: i64,
) -> Result<StoreListingsWithVersionsResponse, QueryError> {
    let pattern = non_empty(&search).map(|s| format!("%{}%", like_escape(s)));
    let filter = "WHERE NOT l.is_deleted \
         AND ($1::text IS NULL OR EXISTS (SELECT FROM rm_store_versions v WHERE v.listing_id = l.listing_id \
              AND NOT v.is_deleted AND v.status = $1)) \
         AND ($2::text IS NULL OR l.slug ILIKE $2 ESCAPE '\\' OR EXISTS (SELECT FROM rm_store_versions v \
              WHERE v.listing_id = l.listing_id AND (v.details->>'name' ILIKE $2 ESCAPE '\\' \
              OR v.details->>'description' ILIKE $2 ESCAPE '\\')))";
    let status = status.map(SubmissionStatus::as_str);
    let listings: Vec<ListingRow> = sqlx::query_as(&format!(
        "SELECT l.listing_id, l.slug, l.graph_id, l.active_version_id, u.email FROM rm_store_listings l \
         LEFT JOIN rm_users u ON u.id = l.owner_id {filter} ORDER BY l.updated_at DESC, l.listing_id LIMIT $3 OFFSET $4"
    ))
    .bind(status)
    .bind(&pattern)
    .bind(page_size)
    .bind(Pagination::offset(page, page_size))
    .fetch_all(pool)
    .await?;
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM rm_store_listings l {filter}"))
        .bind(status)
        .bind(&pattern)
        .fetch_one(pool)
        .await?;
    let ids: Vec<Uuid> = listings.iter().map(|l| l.0).collect();
    let rows =
        sqlx::query(&format!("{SUBMISSION} WHERE v.listing_id = ANY($1) AND NOT v.is_deleted ORDER BY v.version DESC"))
            .bind(&ids)
            .fetch_all(pool)
            .await?;
    let mut versions = rows.iter().map(|r| submission_of(r, true)).collect::<Result<Vec<_>, _>>()?;
    let listings = listings
        .into_iter()
        .map(|(listing_id, slug, agent_id, active_version_id, creator_email)| {
            let (mine, rest): (Vec<_>, Vec<_>) = versions.drain(..).partition(|v| v.listing_id == listing_id);
            versions = rest;
            StoreListingWithVersions {
                listing_id,
                slug,
                agent_id,
                agent_version: mine.first().map_or(0, |v| v.agent_version),
                active_version_id,
                has_approved_version: mine.iter().any(|v| v.status == SubmissionStatus::Approved),
                creator_email,
                latest_version: mine.first().cloned(),
                versions: mine,
            }
        })
        .collect();
    Ok(StoreListingsWithVersionsResponse { listings, pagination: Pagination::of(total, page, page_size) })
}
