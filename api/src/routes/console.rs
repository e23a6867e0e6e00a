//! The admin console: one page, its script and its stylesheet, compiled into
//! the binary so a deployment is still one file.
//!
//! The page itself is public (it is where an admin signs in); everything it
//! shows comes from the admin-only JSON routes, called from the browser with
//! the admin's bearer token. The page is not an API operation, so it is not
//! in the OpenAPI document.

use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;

use crate::state::AppState;

const INDEX: &str = include_str!("../../assets/admin/index.html");
const SCRIPT: &str = include_str!("../../assets/admin/app.js");
const STYLE: &str = include_str!("../../assets/admin/app.css");

/// The cache policy of every asset: they change with the binary, and an
/// admin who upgrades should not run yesterday's script against today's API.
const NO_CACHE: (header::HeaderName, &str) = (header::CACHE_CONTROL, "no-cache");

/// `/admin` (also `/admin/`, which a browser may be given) and its assets.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(index))
        .route("/admin/", get(index))
        .route("/admin/app.js", get(script))
        .route("/admin/app.css", get(style))
}

async fn index() -> impl IntoResponse {
    ([NO_CACHE], Html(INDEX))
}

async fn script() -> impl IntoResponse {
    ([NO_CACHE, (header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT)
}

async fn style() -> impl IntoResponse {
    ([NO_CACHE, (header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE)
}
