//! The builder's block menu (AutoGPT's `/api/builder`): suggestions, block
//! categories, blocks by category, kind or provider, blocks by id,
//! integration providers, one search over blocks, the caller's library and
//! the store, and the menu's counts. Blocks come from the static catalog,
//! agents from the library and store read models, paged in SQL.

mod catalog;
mod search;

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::Router;
use projections::query::Pagination;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use self::catalog::{BlockInfo, BlockTypeFilter, Provider};
use self::search::SearchFilter;
use super::{check_page, default_page, in_range, PageQuery};
use crate::consistency::reads;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::Query;
use crate::state::{AppState, Caller};

pub(crate) use search::{__path_search_menu, search_menu};

pub(super) fn router(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .route("/builder/suggestions", get(get_suggestions))
        .route("/builder/categories", get(get_categories))
        .route("/builder/blocks", get(get_blocks))
        .route("/builder/blocks/batch", get(get_blocks_batch))
        .route("/builder/providers", get(get_providers))
        .route("/builder/search", get(search_menu))
        .route("/builder/counts", get(get_counts));
    let names = &[projections::library::NAME, projections::graphs::NAME, projections::store::NAME];
    reads(routes, state, names)
}

/// Longest `search_query`. These limits are spelled again as numbers in
/// the handlers' `params` (the document's bounds), which must stay equal.
const MAX_QUERY_CHARS: usize = 500;
/// Longest `category`, `provider`, `search_id`, block id or creator name.
const MAX_NAME_CHARS: usize = 100;
/// Most ids in one `blocks/batch`.
const MAX_BLOCK_IDS: usize = 100;
/// Most creators one search may name.
const MAX_CREATORS: usize = 20;
/// Most `filter` values (there are four kinds).
const MAX_FILTERS: usize = 4;

/// A 422 naming `field` unless `value` has at most `max` characters
/// (JSON Schema's `maxLength` counts characters, not bytes).
fn check_chars(field: &str, value: Option<&str>, max: usize) -> ApiResult<()> {
    match value {
        Some(text) if text.chars().count() > max => Err(ApiError::unprocessable(
            format!("{field} must be at most {max} characters"),
            vec![FieldError::new(field, format!("at most {max} characters"), "string_too_long", text.into())],
        )),
        _ => Ok(()),
    }
}

/// Every value of the repeated query parameter `key`, in order: `Query`
/// reads one value a key, and these parameters are lists
/// (`?block_ids=a&block_ids=b`), each checked against its item and count
/// limits.
fn list(raw: Option<&str>, key: &str, min: usize, max: usize, max_chars: usize) -> ApiResult<Vec<String>> {
    let values: Vec<String> = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .collect();
    if values.len() < min || values.len() > max {
        let message = if min > 0 { format!("between {min} and {max} values") } else { format!("at most {max} values") };
        let kind = if values.is_empty() { "missing" } else { "too_long" };
        return Err(ApiError::unprocessable(
            format!("{key}: {message}"),
            vec![FieldError::new(key, message, kind, values.len().into())],
        ));
    }
    for value in &values {
        check_chars(key, Some(value), max_chars)?;
    }
    Ok(values)
}

/// `""` is no filter, as AutoGPT's truthiness check reads it.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// Menu suggestions (AutoGPT's `SuggestionsResponse`).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SuggestionsResponse {
    /// Prompts for AutoGPT's assistant, which this server does not have.
    otto_suggestions: Vec<String>,
    /// The caller's recent searches (none are recorded).
    recent_searches: Vec<SearchEntry>,
    /// Integration providers worth a look.
    providers: Vec<String>,
    /// Blocks worth a look.
    top_blocks: Vec<BlockInfo>,
}

/// A past search (AutoGPT's `SearchEntry`); served only as the item type
/// of an empty list, since searches are not recorded here.
#[allow(dead_code)]
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SearchEntry {
    /// The text searched for.
    search_query: Option<String>,
    /// The kinds searched.
    filter: Option<Vec<SearchFilter>>,
    /// The creators searched.
    by_creator: Option<Vec<String>>,
    /// The search's id.
    search_id: Option<String>,
}

/// Suggestions for the block menu: AutoGPT's assistant and search history
/// are not served here, so those lists are empty; the top blocks are the
/// first the catalog offers (AutoGPT ranks by recent runs, and without any
/// it falls back to the same order).
#[utoipa::path(get, path = "/api/builder/suggestions", operation_id = "getV2Get builder suggestions", tag = "builder",
    responses((status = 200, description = "Suggestions", body = SuggestionsResponse)))]
pub(crate) async fn get_suggestions(_caller: Caller) -> axum::Json<SuggestionsResponse> {
    let top = catalog::menu().filter(|b| {
        use domain::blocks::BlockType::{Agent, Input, Output};
        !matches!(b.block_type, Input | Output | Agent)
    });
    axum::Json(SuggestionsResponse {
        otto_suggestions: vec![],
        recent_searches: vec![],
        providers: catalog::providers().iter().take(6).map(|p| p.name.to_owned()).collect(),
        top_blocks: top.take(5).map(BlockInfo::of).collect(),
    })
}

/// A category and its first blocks (AutoGPT's `BlockCategoryResponse`).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BlockCategoryResponse {
    /// The category, lower case (`ai`, `basic`, ...).
    name: String,
    /// Blocks in it.
    total_blocks: i64,
    /// Its first `blocks_per_category` blocks.
    blocks: Vec<BlockInfo>,
}

fn three() -> i64 {
    3
}

/// Query of `GET /api/builder/categories`.
#[derive(Debug, Deserialize)]
pub(crate) struct CategoriesQuery {
    #[serde(default = "three")]
    blocks_per_category: i64,
}

/// Every category with its block count and first blocks, by name.
#[utoipa::path(get, path = "/api/builder/categories", operation_id = "getV2Get builder block categories", tag = "builder",
    params(("blocks_per_category" = Option<i64>, Query, minimum = 0, maximum = 100)),
    responses((status = 200, description = "The categories", body = Vec<BlockCategoryResponse>)))]
pub(crate) async fn get_categories(
    _caller: Caller,
    Query(q): Query<CategoriesQuery>,
) -> ApiResult<axum::Json<Vec<BlockCategoryResponse>>> {
    in_range("blocks_per_category", q.blocks_per_category, 0, 100)?;
    let mut categories: BTreeMap<String, BlockCategoryResponse> = BTreeMap::new();
    for block in catalog::menu() {
        for (category, _) in &block.categories {
            let name = category.to_lowercase();
            let entry = categories.entry(name.clone()).or_insert(BlockCategoryResponse {
                name,
                total_blocks: 0,
                blocks: vec![],
            });
            entry.total_blocks += 1;
            if (entry.blocks.len() as i64) < q.blocks_per_category {
                entry.blocks.push(BlockInfo::of(block));
            }
        }
    }
    Ok(axum::Json(categories.into_values().collect()))
}

/// A page of blocks (AutoGPT's `BlockResponse`).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BlockResponse {
    /// The blocks on this page.
    blocks: Vec<BlockInfo>,
    /// Where the page is.
    pagination: Pagination,
}

fn fifty() -> i64 {
    50
}

/// Query of `GET /api/builder/blocks`.
#[derive(Debug, Deserialize)]
pub(crate) struct BlocksQuery {
    #[serde(default)]
    category: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<BlockTypeFilter>,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default = "default_page")]
    page: i64,
    #[serde(default = "fifty")]
    page_size: i64,
}

/// The menu's blocks, one page, of a category, a kind and a provider (each
/// optional). AutoGPT refuses more than one filter at once; here they
/// combine, so every request the schema allows is answered.
#[utoipa::path(get, path = "/api/builder/blocks", operation_id = "getV2Get builder blocks", tag = "builder",
    params(("category" = Option<String>, Query, max_length = 100), ("type" = inline(Option<BlockTypeFilter>), Query),
        ("provider" = Option<String>, Query, max_length = 100),
        ("page" = Option<i64>, Query, minimum = 1, maximum = 1000),
        ("page_size" = Option<i64>, Query, minimum = 1, maximum = 100)),
    responses((status = 200, description = "One page", body = BlockResponse)))]
pub(crate) async fn get_blocks(_caller: Caller, Query(q): Query<BlocksQuery>) -> ApiResult<axum::Json<BlockResponse>> {
    check_page(q.page, q.page_size)?;
    check_chars("category", q.category.as_deref(), MAX_NAME_CHARS)?;
    check_chars("provider", q.provider.as_deref(), MAX_NAME_CHARS)?;
    let (category, provider) = (given(&q.category), given(&q.provider));
    let matching: Vec<_> = catalog::menu()
        .filter(|b| category.is_none_or(|c| catalog::in_category(b, c)))
        .filter(|b| q.kind.is_none_or(|kind| kind.admits(b)))
        .filter(|b| provider.is_none_or(|p| catalog::providers_of(b).any(|named| named == p)))
        .collect();
    let skip = Pagination::offset(q.page, q.page_size) as usize;
    Ok(axum::Json(BlockResponse {
        blocks: matching.iter().skip(skip).take(q.page_size as usize).map(|b| BlockInfo::of(b)).collect(),
        pagination: Pagination::of(matching.len() as i64, q.page, q.page_size),
    }))
}

/// The schema of one item of a list parameter (a block id, a creator's
/// name): a string of at most [`MAX_NAME_CHARS`] characters. Only a type
/// for the document, never a value: the items are read as strings.
pub(crate) enum ShortText {}

impl utoipa::PartialSchema for ShortText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new().schema_type(Type::String).max_length(Some(MAX_NAME_CHARS)).into()
    }
}

impl ToSchema for ShortText {}

/// The blocks of the given ids, in the order asked; unknown ids are left
/// out.
#[utoipa::path(get, path = "/api/builder/blocks/batch", operation_id = "getV2Get specific blocks", tag = "builder",
    params(("block_ids" = inline(Vec<ShortText>), Query, min_items = 1, max_items = 100)),
    responses((status = 200, description = "The blocks found", body = Vec<BlockInfo>)))]
pub(crate) async fn get_blocks_batch(
    _caller: Caller,
    // Read for the shared extractor's refusal of NUL in any parameter.
    Query(_): Query<serde::de::IgnoredAny>,
    RawQuery(raw): RawQuery,
) -> ApiResult<axum::Json<Vec<BlockInfo>>> {
    let ids = list(raw.as_deref(), "block_ids", 1, MAX_BLOCK_IDS, MAX_NAME_CHARS)?;
    Ok(axum::Json(ids.iter().filter_map(|id| domain::blocks::find(id)).map(BlockInfo::of).collect()))
}

/// A page of providers (AutoGPT's `ProviderResponse`).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProviderResponse {
    /// The providers on this page.
    providers: Vec<Provider>,
    /// Where the page is.
    pagination: Pagination,
}

/// The integration providers blocks take credentials for, with how many
/// blocks take each.
#[utoipa::path(get, path = "/api/builder/providers", operation_id = "getV2Get builder integration providers", tag = "builder",
    params(("page" = Option<i64>, Query, minimum = 1, maximum = 1000),
        ("page_size" = Option<i64>, Query, minimum = 1, maximum = 100)),
    responses((status = 200, description = "One page", body = ProviderResponse)))]
pub(crate) async fn get_providers(
    _caller: Caller,
    Query(q): Query<PageQuery<50>>,
) -> ApiResult<axum::Json<ProviderResponse>> {
    let q = q.checked()?;
    let all = catalog::providers();
    let skip = Pagination::offset(q.page, q.page_size) as usize;
    Ok(axum::Json(ProviderResponse {
        providers: all.iter().skip(skip).take(q.page_size as usize).cloned().collect(),
        pagination: Pagination::of(all.len() as i64, q.page, q.page_size),
    }))
}

/// The menu's counts (AutoGPT's `CountResponse`).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CountResponse {
    /// Blocks in the menu.
    all_blocks: i64,
    /// Graph input blocks.
    input_blocks: i64,
    /// Blocks that are neither inputs nor outputs.
    action_blocks: i64,
    /// Graph output blocks.
    output_blocks: i64,
    /// Blocks that need credentials.
    integrations: i64,
    /// Listed store agents.
    marketplace_agents: i64,
    /// The caller's library agents.
    my_agents: i64,
}

/// How many blocks of each kind, store agents and library agents there are.
#[utoipa::path(get, path = "/api/builder/counts", operation_id = "getV2Get builder item counts", tag = "builder",
    responses((status = 200, description = "The counts", body = CountResponse)))]
pub(crate) async fn get_counts(State(state): State<AppState>, caller: Caller) -> ApiResult<axum::Json<CountResponse>> {
    let (marketplace_agents, my_agents) = projections::builder::agent_counts(state.pool(), caller.user.user_id).await?;
    let count = |kind: BlockTypeFilter| catalog::menu().filter(|b| kind.admits(b)).count() as i64;
    Ok(axum::Json(CountResponse {
        all_blocks: count(BlockTypeFilter::All),
        input_blocks: count(BlockTypeFilter::Input),
        action_blocks: count(BlockTypeFilter::Action),
        output_blocks: count(BlockTypeFilter::Output),
        integrations: catalog::menu().filter(|b| catalog::is_integration(b)).count() as i64,
        marketplace_agents,
        my_agents,
    }))
}
