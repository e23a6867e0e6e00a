//! `GET /api/builder/search`: one ranked list over blocks, the caller's
//! library and the store, paged as a whole.
//!
//! AutoGPT scores every candidate, sorts them together and slices the page
//! in memory. Here the list is three runs one after the other: blocks
//! (AutoGPT boosts them above agents, so they lead there too) by how well
//! they match, then the caller's library agents in the library's order, then
//! store agents by full-text rank. A page is the part of those runs it
//! covers; the blocks are sliced in memory (a static catalog), each agent
//! run is read with LIMIT/OFFSET, so no request loads a whole table.

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use projections::library::LibraryAgentView;
use projections::query::Pagination;
use projections::store::StoreAgent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::catalog::{self, BlockInfo};
use super::{check_chars, fifty, list, ShortText, MAX_CREATORS, MAX_FILTERS, MAX_NAME_CHARS, MAX_QUERY_CHARS};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::Query;
use crate::routes::{check_page, default_page};
use crate::state::{AppState, Caller};

/// What `/search` looks through (AutoGPT's `FilterType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SearchFilter {
    /// Blocks that need no credentials.
    Blocks,
    /// Blocks that need credentials.
    Integrations,
    /// Listed store agents.
    MarketplaceAgents,
    /// The caller's library agents.
    MyAgents,
}

impl SearchFilter {
    const ALL: [SearchFilter; 4] = [Self::Blocks, Self::Integrations, Self::MarketplaceAgents, Self::MyAgents];

    fn as_str(self) -> &'static str {
        match self {
            Self::Blocks => "blocks",
            Self::Integrations => "integrations",
            Self::MarketplaceAgents => "marketplace_agents",
            Self::MyAgents => "my_agents",
        }
    }
}

/// One search result: a block, one of the caller's library agents or a
/// listed store agent.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum SearchItem {
    /// A block.
    Block(BlockInfo),
    /// One of the caller's library agents.
    LibraryAgent(Box<LibraryAgentView>),
    /// A listed store agent.
    StoreAgent(StoreAgent),
}

/// A page of search results (AutoGPT's `SearchResponse`).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SearchResponse {
    /// The results on this page.
    items: Vec<SearchItem>,
    /// The search's id: the one sent, else a new one.
    search_id: String,
    /// Matches of each kind (0 for kinds not searched).
    total_items: BTreeMap<String, i64>,
    /// Where the page is among all matches.
    pagination: Pagination,
}

/// The scalar parameters of `GET /api/builder/search` (the lists are read
/// from the raw query).
#[derive(Debug, Deserialize)]
pub(crate) struct SearchQuery {
    #[serde(default)]
    search_query: Option<String>,
    #[serde(default)]
    search_id: Option<String>,
    #[serde(default = "default_page")]
    page: i64,
    #[serde(default = "fifty")]
    page_size: i64,
}

/// The part of the whole result list a page still has to cover.
struct Window {
    /// Results before the page not yet passed.
    skip: i64,
    /// Results the page still wants.
    take: i64,
}

impl Window {
    /// Account for a run of `total` results of which `got` were taken.
    fn passed(&mut self, total: i64, got: usize) {
        self.skip = (self.skip - total).max(0);
        self.take -= got as i64;
    }
}

/// The kinds asked for; none named means all, as in AutoGPT.
fn filters(raw: Option<&str>) -> ApiResult<Vec<SearchFilter>> {
    let named = list(raw, "filter", 0, MAX_FILTERS, MAX_NAME_CHARS)?;
    if named.is_empty() {
        return Ok(SearchFilter::ALL.to_vec());
    }
    named
        .into_iter()
        .map(|name| {
            serde_json::from_value(Value::String(name.clone())).map_err(|_| {
                let message = "must be one of blocks, integrations, marketplace_agents, my_agents";
                ApiError::unprocessable(
                    format!("filter {message}"),
                    vec![FieldError::new("filter", message, "enum", Value::String(name))],
                )
            })
        })
        .collect()
}

/// Blocks, the caller's library agents and store agents matching
/// `search_query` (all of them without one), one page of the whole list.
#[utoipa::path(get, path = "/api/builder/search", operation_id = "getV2Builder search", tag = "builder",
    params(("search_query" = Option<String>, Query, max_length = 500),
        ("filter" = inline(Option<Vec<SearchFilter>>), Query, max_items = 4),
        ("search_id" = Option<String>, Query, max_length = 100),
        ("by_creator" = inline(Option<Vec<ShortText>>), Query, max_items = 20),
        ("page" = Option<i64>, Query, minimum = 1, maximum = 1000),
        ("page_size" = Option<i64>, Query, minimum = 1, maximum = 100)),
    responses((status = 200, description = "One page of matches", body = SearchResponse)))]
pub(crate) async fn search_menu(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SearchQuery>,
    RawQuery(raw): RawQuery,
) -> ApiResult<axum::Json<SearchResponse>> {
    check_page(q.page, q.page_size)?;
    check_chars("search_query", q.search_query.as_deref(), MAX_QUERY_CHARS)?;
    check_chars("search_id", q.search_id.as_deref(), MAX_NAME_CHARS)?;
    let wanted = filters(raw.as_deref())?;
    let creators = list(raw.as_deref(), "by_creator", 0, MAX_CREATORS, MAX_NAME_CHARS)?;
    let wants = |kind: SearchFilter| wanted.contains(&kind);
    let text = q.search_query.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let mut totals: BTreeMap<String, i64> = SearchFilter::ALL.iter().map(|f| (f.as_str().to_owned(), 0)).collect();
    let mut count = |kind: SearchFilter, n: i64| *totals.entry(kind.as_str().to_owned()).or_default() += n;
    let mut window = Window { skip: Pagination::offset(q.page, q.page_size), take: q.page_size };
    let mut items = Vec::new();

    let lowered = text.map(str::to_lowercase);
    let blocks = catalog::search(lowered.as_deref(), wants(SearchFilter::Blocks), wants(SearchFilter::Integrations));
    let integrations = blocks.iter().filter(|(_, integration)| *integration).count() as i64;
    count(SearchFilter::Integrations, integrations);
    count(SearchFilter::Blocks, blocks.len() as i64 - integrations);
    let page = blocks.iter().skip(window.skip as usize).take(window.take as usize);
    items.extend(page.map(|(block, _)| SearchItem::Block(BlockInfo::of(block))));
    window.passed(blocks.len() as i64, items.len());

    let pool = state.pool();
    if wants(SearchFilter::MyAgents) {
        let found =
            projections::builder::library_window(pool, caller.user.user_id, text, window.skip, window.take).await?;
        count(SearchFilter::MyAgents, found.total);
        window.passed(found.total, found.items.len());
        items.extend(found.items.into_iter().map(|a| SearchItem::LibraryAgent(Box::new(a))));
    }
    if wants(SearchFilter::MarketplaceAgents) {
        let found = projections::builder::store_window(pool, &creators, text, window.skip, window.take).await?;
        count(SearchFilter::MarketplaceAgents, found.total);
        window.passed(found.total, found.items.len());
        items.extend(found.items.into_iter().map(SearchItem::StoreAgent));
    }
    let total = totals.values().sum();
    Ok(axum::Json(SearchResponse {
        items,
        search_id: q.search_id.filter(|id| !id.is_empty()).unwrap_or_else(|| Uuid::new_v4().to_string()),
        total_items: totals,
        pagination: Pagination::of(total, q.page, q.page_size),
    }))
}
