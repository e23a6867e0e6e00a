//! One module per resource, merged here under `/api` and its alias `/api/v1`.

mod admin;
pub(crate) mod analytics;
mod api_keys;
pub(crate) mod audit;
mod blocks;
pub(crate) mod builder;
mod console;
mod credits;
mod executions;
mod external;
pub(crate) mod external_store;
pub(crate) mod files;
mod graphs;
mod health;
pub(crate) mod integrations;
mod library;
pub(crate) mod onboarding;
pub(crate) mod presets;
pub(crate) mod replay;
pub(crate) mod reviews;
mod schedules;
pub(crate) mod store;
pub(crate) mod store_search;
pub(crate) mod submissions;
mod users;
pub(crate) mod webhooks;

use axum::Router;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// The routes under `/api`.
pub fn api(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .merge(users::router(state))
        .merge(blocks::router())
        .merge(builder::router(state))
        .merge(graphs::router(state))
        .merge(executions::router(state))
        .merge(replay::router())
        .merge(credits::router(state))
        .merge(library::router(state))
        .merge(onboarding::router(state))
        .merge(schedules::router(state))
        .merge(store::router(state))
        .merge(presets::router(state))
        .merge(reviews::router(state))
        .merge(submissions::router(state))
        .merge(store_search::router(state))
        .merge(analytics::router(state))
        .merge(admin::router())
        .merge(audit::router());
    // API keys, credentials and webhook setup stay outside the idempotency
    // layer: its record would keep a secret (see `api_keys`,
    // `integrations`, `webhooks`).
    crate::idempotency::keyed(routes, state)
        .merge(api_keys::router(state))
        .merge(integrations::router(state))
        .merge(webhooks::router())
        // Uploads stay outside too: content-addressed, a retry stores
        // nothing new, and the layer would hold whole files in memory.
        .merge(files::router())
}

/// The routes under `/external-api/v1`, authenticated by API key.
pub fn external(state: &AppState) -> Router<AppState> {
    external::router(state)
}

/// Routes outside `/api`: health, metrics and the admin console's page.
pub fn root() -> Router<AppState> {
    health::router().route("/metrics", axum::routing::get(crate::metrics::render)).merge(console::router())
}

/// The first page, when a listing's query names none.
pub(crate) fn default_page() -> i64 {
    1
}

fn page_size_default<const SIZE: i64>() -> i64 {
    SIZE
}

/// `?page&page_size` of a listing whose pages hold `SIZE` items unless
/// asked otherwise.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct PageQuery<const SIZE: i64> {
    /// 1-based.
    #[serde(default = "default_page")]
    pub page: i64,
    /// Items per page.
    #[serde(default = "page_size_default::<SIZE>")]
    pub page_size: i64,
}

impl<const SIZE: i64> PageQuery<SIZE> {
    /// The query, unless [`check_page`] refuses it.
    pub fn checked(self) -> Result<Self, ApiError> {
        check_page(self.page, self.page_size)?;
        Ok(self)
    }
}

/// The deepest page a listing serves: with at most 100 items a page, an
/// OFFSET of under 100,000 rows, so no request makes Postgres walk and drop
/// millions of rows.
pub(crate) const MAX_PAGE: i64 = 1000;

/// A 422 unless the page is 1 (AutoGPT refuses a page below 1) to
/// [`MAX_PAGE`] and holds 1 to 100 items.
pub(crate) fn check_page(page: i64, page_size: i64) -> Result<(), ApiError> {
    in_range("page", page, 1, MAX_PAGE)?;
    in_range("page_size", page_size, 1, 100)
}

/// A 422 naming `field` unless `lo <= value <= hi`.
pub(crate) fn in_range(field: &str, value: i64, lo: i64, hi: i64) -> Result<(), ApiError> {
    if (lo..=hi).contains(&value) {
        return Ok(());
    }
    let message = format!("must be between {lo} and {hi}");
    Err(ApiError::unprocessable(
        format!("{field} {message}"),
        vec![crate::error::FieldError::new(field, message, "range", serde_json::json!(value))],
    ))
}

/// A 422 naming `field` when `text` holds more than `max` characters (a
/// body field whose bound the schema states as `maxLength`).
pub(crate) fn at_most_chars(field: &str, text: &str, max: usize) -> Result<(), ApiError> {
    if text.chars().count() <= max {
        return Ok(());
    }
    let message = format!("{field} must be at most {max} characters");
    Err(ApiError::unprocessable(
        message.clone(),
        vec![crate::error::FieldError::new(field, message, "string_too_long", serde_json::Value::Null)],
    ))
}

/// Parse an integer path parameter (a graph version); anything else is a
/// 422 naming `field`, as FastAPI answers.
pub(crate) fn int_path(raw: &str, field: &str) -> Result<i32, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::unprocessable(
            format!("Invalid path parameter: {field}"),
            vec![crate::error::FieldError::new(field, "must be an integer", "int_parsing", serde_json::json!(raw))],
        )
    })
}

/// Parse an id from the path; anything that is not a uuid names nothing,
/// so it is a 404 like any unknown id.
pub(crate) fn parse_id(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found(format!("{what} not found")))
}

pub(crate) use admin::SchedulerReport;
pub(crate) use admin::{__path_list_projections, __path_rebuild_projection, __path_verify_log, ExecutorReport};
pub(crate) use api_keys::{
    __path_create_api_key, __path_get_api_key, __path_list_api_keys, __path_revoke_api_key, __path_suspend_api_key,
    __path_update_permissions,
};
pub(crate) use blocks::{__path_execute_block, __path_list_blocks};
pub(crate) use credits::{__path_add_credits, __path_get_credits, __path_get_transactions, __path_users_history};
pub(crate) use executions::{
    __path_delete_execution, __path_execute_graph, __path_get_execution, __path_get_shared_execution,
    __path_list_executions, __path_list_graph_executions, __path_share_execution, __path_stop_execution,
    __path_unshare_execution,
};
pub(crate) use external::{
    __path_external_execute_block, __path_external_execute_graph, __path_external_execution_results,
    __path_external_list_blocks, __path_external_me,
};
pub use files::FileStore;
pub(crate) use graphs::{
    __path_create_graph, __path_delete_graph, __path_get_graph, __path_get_graph_version, __path_list_graph_versions,
    __path_list_graphs, __path_set_active_version, __path_update_graph, __path_update_graph_settings,
};
pub(crate) use health::__path_health;
pub(crate) use library::SortBy;
pub(crate) use library::{
    __path_add_marketplace_agent, __path_delete_agent, __path_fork_agent, __path_get_agent, __path_get_agent_by_graph,
    __path_get_agent_by_store_version, __path_list_agents, __path_list_favorites, __path_update_agent,
};
pub(crate) use schedules::{
    __path_create_schedule, __path_delete_schedule, __path_list_graph_schedules, __path_list_schedules,
};
pub(crate) use users::{
    __path_ensure_user, __path_get_preferences, __path_get_timezone, __path_set_preferences, __path_set_timezone,
    __path_update_email,
};
