//! The OpenAPI 3.1 document, generated from the handlers, and a docs page.

use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;

use crate::metrics::__path_render;
use crate::routes::*;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "AutoGPT Agent Server (event-sourced)", description = "Wire-compatible AutoGPT Platform backend API"),
    paths(
        health, ensure_user, update_email, get_timezone, set_timezone, list_blocks,
        list_graphs, create_graph, get_graph, update_graph, delete_graph, list_graph_versions, get_graph_version,
        set_active_version, update_graph_settings,
        list_agents, list_favorites, get_agent, get_agent_by_graph, update_agent, delete_agent, fork_agent,
        list_projections, render,
    ),
    tags((name = "auth"), (name = "blocks"), (name = "graphs"), (name = "library"), (name = "admin"), (name = "health"))
)]
struct ApiDoc;

/// `/openapi.json` and `/docs`.
pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(spec)).route("/docs", get(docs))
}

async fn spec() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

async fn docs() -> Html<&'static str> {
    Html(
        r##"<!doctype html>
<html><head><meta charset="utf-8"><title>AutoGPT-ES API</title>
<link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script>
</body></html>"##,
    )
}
