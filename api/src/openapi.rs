//! The OpenAPI 3.1 document, generated from the handlers, and a docs page.

use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr, Required};
use utoipa::{Modify, OpenApi};

use crate::metrics::__path_render;
use crate::routes::*;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "AutoGPT Agent Server (event-sourced)", description = "Wire-compatible AutoGPT Platform backend API"),
    paths(
        health, ensure_user, update_email, get_timezone, set_timezone, get_preferences, set_preferences, list_blocks, execute_block,
        list_graphs, create_graph, get_graph, update_graph, delete_graph, list_graph_versions, get_graph_version,
        set_active_version, update_graph_settings,
        execute_graph, stop_execution, list_executions, list_graph_executions, get_execution,
        delete_execution, share_execution, unshare_execution, get_shared_execution,
        crate::routes::replay::replay_execution, crate::routes::replay::fork_execution,
        crate::routes::replay::execution_timeline,
        get_credits, get_transactions, add_credits, users_history,
        list_agents, list_favorites, get_agent, get_agent_by_graph, update_agent, delete_agent, fork_agent,
        add_marketplace_agent, get_agent_by_store_version,
        list_projections, rebuild_projection, verify_log, render, crate::live::ws::upgrade,
        crate::routes::store::list_agents, crate::routes::store::get_agent, crate::routes::store::get_agent_by_version,
        crate::routes::store::get_agent_graph, crate::routes::store::download_agent, crate::routes::store::list_creators,
        crate::routes::store::get_creator,
        crate::routes::submissions::list_submissions, crate::routes::submissions::create_submission,
        crate::routes::submissions::edit_submission, crate::routes::submissions::delete_submission,
        crate::routes::submissions::get_profile, crate::routes::submissions::update_profile,
        crate::routes::submissions::my_agents, crate::routes::submissions::review_agent,
        crate::routes::submissions::admin_listings, crate::routes::submissions::review_submission,
        crate::routes::submissions::admin_download,
        crate::routes::presets::list_presets, crate::routes::presets::create_preset, crate::routes::presets::get_preset,
        crate::routes::presets::update_preset, crate::routes::presets::delete_preset,
        crate::routes::presets::execute_preset,
        crate::routes::audit::read_stream, crate::routes::audit::read_log, crate::routes::audit::state_at,
        create_api_key, list_api_keys, get_api_key, revoke_api_key, suspend_api_key, update_permissions,
        external_me, external_list_blocks, external_execute_block, external_execute_graph, external_execution_results,
        create_schedule, list_graph_schedules, list_schedules, delete_schedule,
        crate::routes::external_store::external_store_agents, crate::routes::external_store::external_store_agent,
        crate::routes::external_store::external_store_creators, crate::routes::external_store::external_store_creator,
        crate::routes::integrations::create_credentials, crate::routes::integrations::list_all_credentials,
        crate::routes::integrations::list_credentials, crate::routes::integrations::get_credentials,
        crate::routes::integrations::delete_credentials, crate::routes::integrations::list_providers,
        crate::routes::integrations::list_system_providers, crate::routes::integrations::provider_names,
        crate::routes::integrations::provider_constants, crate::routes::integrations::provider_enum_example,
        crate::routes::webhooks::setup_trigger, crate::routes::webhooks::webhook_ingress,
        crate::routes::webhooks::webhook_ping,
        crate::routes::reviews::pending_reviews, crate::routes::reviews::execution_reviews,
        crate::routes::reviews::review_action,
        crate::routes::builder::get_suggestions, crate::routes::builder::get_categories,
        crate::routes::builder::get_blocks, crate::routes::builder::get_blocks_batch,
        crate::routes::builder::get_providers, crate::routes::builder::search_menu, crate::routes::builder::get_counts,
        crate::routes::onboarding::get_onboarding, crate::routes::onboarding::update_onboarding,
        crate::routes::onboarding::complete_step, crate::routes::onboarding::reset_onboarding,
        crate::routes::onboarding::recommended_agents, crate::routes::onboarding::onboarding_enabled,
        crate::routes::files::upload_file, crate::routes::files::download_file, crate::routes::files::upload_media,
        crate::routes::files::get_media, crate::routes::store_search::search,
        crate::routes::analytics::execution_analytics, crate::routes::analytics::analytics_config,
        crate::routes::analytics::accuracy_trends,
    ),
    tags((name = "auth"), (name = "blocks"), (name = "graphs"), (name = "credits"), (name = "library"), (name = "schedules"), (name = "admin"), (name = "health"), (name = "live"), (name = "store"), (name = "presets"), (name = "audit"), (name = "api-keys"), (name = "external"), (name = "integrations"), (name = "review"), (name = "builder"), (name = "onboarding"), (name = "files")),
    components(schemas(crate::routes::SortBy, crate::routes::store::AgentSortBy, crate::routes::store::CreatorSortBy)),
    modifiers(&CommonResponses, &Constraints, &ApiKeyScheme)
)]
struct ApiDoc;

/// Adds to every operation the error answers the shared machinery can give,
/// whatever the handler: authentication (401), a request that does not fit
/// its schema (422, also for a malformed `X-Consistency-Token`), an id that
/// names nothing (404), admin routes (403), a query whose consistency token
/// the read models have not reached (503 with `Retry-After`), and for
/// commands an oversized body (413), a conflict or an idempotency key in use
/// (409), and `202` when the change is committed but its body cannot be
/// built yet.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in &mut openapi.paths.paths {
            if !(path.starts_with("/api/") || path.starts_with("/external-api/") || path == "/metrics") {
                continue;
            }
            let operations = [
                (false, item.get.as_mut()),
                (true, item.post.as_mut()),
                (true, item.put.as_mut()),
                (true, item.patch.as_mut()),
                (true, item.delete.as_mut()),
            ];
            for (mutating, op) in operations {
                let Some(op) = op else { continue };
                let mut add = |status: &str, description: &str| {
                    op.responses.responses.entry(status.to_owned()).or_insert_with(|| error_response(description));
                };
                add("401", "Not authenticated");
                add("429", "Too many requests: the caller's rate limit (see Retry-After)");
                add("422", "The request does not fit its schema");
                if path.starts_with("/api/admin") || path == "/metrics" {
                    add("403", "Admin access required");
                }
                if path.contains('{') {
                    add("404", "Not found");
                }
                if mutating {
                    add("409", "Modified concurrently, or the Idempotency-Key is in use by a running request");
                    add("413", "The request body is too large");
                    op.responses.responses.entry("202".to_owned()).or_insert_with(|| {
                        RefOr::T(
                            ResponseBuilder::new()
                                .description(
                                    "Committed, but the body cannot be built yet: read again with X-Consistency-Token",
                                )
                                .build(),
                        )
                    });
                } else {
                    add("503", "The read models have not reached X-Consistency-Token yet (see Retry-After)");
                }
            }
        }
    }
}

/// Rules the server enforces that derive attributes cannot state: what an
/// e-mail address must look like (`domain::user`'s check: one `@`, a dot in
/// the domain part, not at its ends, no whitespace once trimmed) and the
/// IANA timezone names a timezone must be one of.
struct Constraints;

/// `domain::user::plausible_email` as a pattern. Whitespace is spelled out
/// as Unicode's White_Space set, which Rust's `trim` and `is_whitespace`
/// use: `\s` means three different sets in ECMA (adds U+FEFF), Python (adds
/// U+001C..U+001F) and Rust, so a client's generator and our check would
/// disagree on the edges.
const EMAIL_PATTERN: &str = concat!(
    r"^[\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*",
    r"[^@\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+@",
    r"[^@.\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]",
    r"[^@\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*\.",
    r"[^@\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*",
    r"[^@.\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]",
    r"[\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
);

impl Modify for Constraints {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let email = ObjectBuilder::new().schema_type(Type::String).pattern(Some(EMAIL_PATTERN)).build();
        let body = RequestBodyBuilder::new()
            .content("application/json", ContentBuilder::new().schema(Some(email)).build())
            .description(Some("The new e-mail address (a JSON string)"))
            .required(Some(Required::True))
            .build();
        if let Some(op) = openapi.paths.paths.get_mut("/api/auth/user/email").and_then(|p| p.post.as_mut()) {
            op.request_body = Some(body);
        }
        // A run may be started with no body at all (AutoGPT's is optional).
        let execute = openapi.paths.paths.get_mut("/api/graphs/{graph_id}/execute/{graph_version}");
        if let Some(body) = execute.and_then(|p| p.post.as_mut()).and_then(|op| op.request_body.as_mut()) {
            body.required = Some(Required::False);
        }
        let zones: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect();
        let timezone = ObjectBuilder::new().schema_type(Type::String).enum_values(Some(zones)).build();
        let request = ObjectBuilder::new().property("timezone", timezone).required("timezone").build();
        if let Some(components) = openapi.components.as_mut() {
            components.schemas.insert("UpdateTimezoneRequest".into(), RefOr::T(Schema::Object(request)));
        }
    }
}

/// The `X-API-Key` header scheme the external routes name in their
/// `security`.
struct ApiKeyScheme;

impl Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
        let scheme = SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-API-Key",
            "An API key from POST /api/api-keys; each route needs one permission (scope) of it",
        )));
        openapi.components.get_or_insert_with(Default::default).add_security_scheme("APIKeyHeader", scheme);
    }
}

fn error_response(description: &str) -> RefOr<Response> {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
    RefOr::T(ResponseBuilder::new().description(description).content("application/json", content).build())
}

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

#[cfg(test)]
mod tests {
    use super::EMAIL_PATTERN;

    /// The pattern a client validates against accepts exactly what the
    /// domain accepts, on the characters where regex dialects differ.
    #[test]
    fn the_email_pattern_agrees_with_the_domain_check() {
        let pattern = regex::Regex::new(EMAIL_PATTERN).unwrap();
        let edges = ['\u{85}', '\u{a0}', '\u{feff}', '\u{1c}', '\u{1f}', '\u{200b}', '\u{3000}', '\t', ' ', '@', '.'];
        let mut cases =
            vec!["a@b.c".to_owned(), "a@b".to_owned(), "@b.c".to_owned(), "a@.b.c".to_owned(), "a@b.c.".to_owned()];
        for c in edges {
            for shape in ["{c}a@b.c", "a{c}@b.c", "a@b{c}.c", "a@b.c{c}", "a@{c}b.c", "{c}{c}a@b.c{c}"] {
                cases.push(shape.replace("{c}", &c.to_string()));
            }
        }
        for case in cases {
            let domain = domain::user::plausible_email(case.trim());
            assert_eq!(pattern.is_match(&case), domain, "{case:?}: pattern and domain disagree");
        }
    }
}
