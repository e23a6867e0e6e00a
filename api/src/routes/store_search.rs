//! `GET /api/store/search`: AutoGPT's unified search over store agents,
//! blocks and documentation, answered from the store's full-text read model
//! (`rm_store_agents.search`: title, sub-heading, categories, description,
//! weighted). AutoGPT ranks by embeddings and text together; this server
//! has no embeddings, so a result's score is its text rank alone
//! (`semantic_score` null) and only store agents are indexed: asking for
//! blocks or documentation alone finds nothing.

use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use projections::query::Pagination;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sqlx::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{check_page, default_page};
use crate::consistency::reads;
use crate::error::{ApiError, ApiResult, ErrorBody, FieldError};
use crate::extract::Query;
use crate::state::AppState;

pub(super) fn router(state: &AppState) -> Router<AppState> {
    reads(Router::new().route("/store/search", get(search)), state, &[projections::store::NAME])
}

/// Longest `query`, in characters.
const MAX_QUERY_CHARS: usize = 500;

/// What the search may look through (AutoGPT's `ContentType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum ContentType {
    /// Listed store agents.
    StoreAgent,
    /// Blocks (not indexed here).
    Block,
    /// Documentation pages (not indexed here).
    Documentation,
}

/// One result (AutoGPT's `UnifiedSearchResult`).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UnifiedSearchResult {
    /// Always `STORE_AGENT` here.
    content_type: String,
    /// The agent's listed version.
    content_id: String,
    /// The text searched: title, sub-heading, description, categories.
    searchable_text: String,
    /// The agent's name, categories, slug, creator and image.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Map<String, Value>>,
    /// When the listing last changed.
    updated_at: Option<DateTime<Utc>>,
    /// The ranking score (the text rank: there are no embeddings).
    combined_score: Option<f64>,
    /// Always null: this server has no embeddings.
    semantic_score: Option<f64>,
    /// The full-text rank, 0 to 1.
    lexical_score: Option<f64>,
}

/// A page of results (AutoGPT's `UnifiedSearchResponse`).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UnifiedSearchResponse {
    /// The results on this page, best first.
    results: Vec<UnifiedSearchResult>,
    /// Where the page is among all results.
    pagination: Pagination,
}

fn twenty() -> i64 {
    20
}

/// The scalar parameters (`content_types`, a list, is read from the raw
/// query).
#[derive(Debug, Deserialize)]
pub(crate) struct SearchQuery {
    query: String,
    #[serde(default = "default_page")]
    page: i64,
    #[serde(default = "twenty")]
    page_size: i64,
}

/// Store agents matching `query` (web-search syntax: words, `"phrases"`,
/// `or`, `-word`), best first, one page.
#[utoipa::path(get, path = "/api/store/search", operation_id = "getV2Unified search across all content types", tag = "store",
    params(("query" = String, Query, max_length = 500),
        ("content_types" = inline(Option<Vec<ContentType>>), Query, max_items = 3,
            description = "STORE_AGENT, BLOCK, DOCUMENTATION; none: all. Only store agents are indexed here"),
        ("page" = Option<i64>, Query, minimum = 1, maximum = 1000),
        ("page_size" = Option<i64>, Query, minimum = 1, maximum = 100)),
    security(()),
    responses((status = 200, description = "One page of results", body = UnifiedSearchResponse),
        (status = 422, description = "A parameter out of bounds", body = ErrorBody)))]
pub(crate) async fn search(
    State(state): State<AppState>,
    Query(q): Query<SearchQuery>,
    RawQuery(raw): RawQuery,
) -> ApiResult<axum::Json<UnifiedSearchResponse>> {
    if q.query.chars().count() > MAX_QUERY_CHARS {
        let message = format!("at most {MAX_QUERY_CHARS} characters");
        return Err(ApiError::unprocessable(
            format!("query must be {message}"),
            vec![FieldError::new("query", message, "string_too_long", Value::Null)],
        ));
    }
    check_page(q.page, q.page_size)?;
    let types = content_types(raw.as_deref())?;
    if !types.is_empty() && !types.contains(&ContentType::StoreAgent) {
        return Ok(axum::Json(UnifiedSearchResponse {
            results: vec![],
            pagination: Pagination::of(0, q.page, q.page_size),
        }));
    }
    Ok(axum::Json(store_agents(state.pool(), &q).await?))
}

/// The `content_types` named (repeated parameter), at most one of each.
fn content_types(raw: Option<&str>) -> ApiResult<Vec<ContentType>> {
    let named: Vec<String> = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "content_types")
        .map(|(_, v)| v.into_owned())
        .collect();
    let refuse = |message: &str, input: Value| {
        ApiError::unprocessable(
            format!("content_types: {message}"),
            vec![FieldError::new("content_types", message, "invalid", input)],
        )
    };
    if named.len() > 3 {
        return Err(refuse("at most 3 values", named.len().into()));
    }
    named
        .into_iter()
        .map(|name| {
            serde_json::from_value(Value::String(name.clone()))
                .map_err(|_| refuse("must be one of STORE_AGENT, BLOCK, DOCUMENTATION", Value::String(name)))
        })
        .collect()
}

/// One page of listed agents matching the query, ranked, counted in the
/// same statement (every match is ranked anyway); a page past the last
/// counts alone.
async fn store_agents(pool: &sqlx::PgPool, q: &SearchQuery) -> Result<UnifiedSearchResponse, sqlx::Error> {
    // Normalisation 32 maps the rank into [0, 1), the range AutoGPT's
    // scores have.
    let rows = sqlx::query(
        "SELECT version_id, agent_name, sub_heading, description, categories, slug, creator, agent_image, \
                updated_at, ts_rank(search, q, 32)::float8 AS rank, count(*) OVER () AS total \
         FROM rm_store_agents, websearch_to_tsquery('english', $1) q \
         WHERE search @@ q ORDER BY rank DESC, listing_id LIMIT $2 OFFSET $3",
    )
    .bind(&q.query)
    .bind(q.page_size)
    .bind(Pagination::offset(q.page, q.page_size))
    .fetch_all(pool)
    .await?;
    let total: i64 = match rows.first() {
        Some(row) => row.try_get("total")?,
        None => {
            sqlx::query_scalar(
                "SELECT count(*) FROM rm_store_agents, websearch_to_tsquery('english', $1) q WHERE search @@ q",
            )
            .bind(&q.query)
            .fetch_one(pool)
            .await?
        }
    };
    let results = rows.iter().map(result_of).collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(UnifiedSearchResponse { results, pagination: Pagination::of(total, q.page, q.page_size) })
}

fn result_of(row: &sqlx::postgres::PgRow) -> Result<UnifiedSearchResult, sqlx::Error> {
    let version: Uuid = row.try_get("version_id")?;
    let name: String = row.try_get("agent_name")?;
    let sub_heading: String = row.try_get("sub_heading")?;
    let description: String = row.try_get("description")?;
    let categories: Vec<String> = row.try_get("categories")?;
    let rank: f64 = row.try_get("rank")?;
    let text = [name.as_str(), &sub_heading, &description, &categories.join(" ")]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let metadata = json!({
        "name": name,
        "categories": categories,
        "slug": row.try_get::<String, _>("slug")?,
        "creator": row.try_get::<String, _>("creator")?,
        "agent_image": row.try_get::<String, _>("agent_image")?,
    });
    Ok(UnifiedSearchResult {
        content_type: "STORE_AGENT".into(),
        content_id: version.to_string(),
        searchable_text: text,
        metadata: metadata.as_object().cloned(),
        updated_at: Some(row.try_get("updated_at")?),
        combined_score: Some(rank),
        semantic_score: None,
        lexical_score: Some(rank),
    })
}
