//! The block catalog, and running one block on its own.

use std::sync::OnceLock;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use executor::blocks::{self, BlockContext, Step};
use executor::MAX_REQUESTS;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract;
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/blocks", get(list_blocks)).route("/blocks/{block_id}/execute", post(execute_block))
}

/// The static catalog, rendered once.
fn rendered() -> &'static Value {
    static BLOCKS: OnceLock<Value> = OnceLock::new();
    BLOCKS.get_or_init(|| Value::Array(domain::blocks::catalog().iter().map(|b| b.to_api_json()).collect()))
}

/// List available blocks.
#[utoipa::path(get, path = "/api/blocks", operation_id = "getV1List available blocks", tag = "blocks",
    responses((status = 200, description = "All enabled blocks: id, name, schemas, costs, …", body = Vec<Object>), (status = 401, description = "Not authenticated", body = ErrorBody)))]
pub(crate) async fn list_blocks(_user: AuthUser) -> Json<&'static Value> {
    Json(rendered())
}

/// Run one block on the given input, outside any graph, and answer what it
/// yielded, pin by pin. Nothing is recorded or charged; a wait the block
/// asks for (CountdownTimer) is skipped; the blocks that remember for an
/// agent (Persist/RetrieveInformation) run only inside a graph run.
#[utoipa::path(post, path = "/api/blocks/{block_id}/execute", operation_id = "postV1Execute graph block", tag = "blocks",
    params(("block_id" = String, Path)),
    request_body(content = Object, content_type = "application/json"),
    responses((status = 200, description = "Each output pin's values", body = std::collections::HashMap<String, Vec<serde_json::Value>>),
        (status = 400, description = "The block failed", body = ErrorBody)))]
pub(crate) async fn execute_block(
    State(state): State<AppState>,
    user: AuthUser,
    axum::extract::Path(block_id): axum::extract::Path<String>,
    extract::Json(input): extract::Json<Map<String, Value>>,
) -> ApiResult<Json<Map<String, Value>>> {
    run_block(&state, user.user_id, &block_id, input).await.map(Json)
}

/// The catalog as the external API serves it: without costs, which are the
/// platform's business, not a key holder's.
pub(crate) fn catalog_without_costs() -> &'static Value {
    static BLOCKS: OnceLock<Value> = OnceLock::new();
    BLOCKS.get_or_init(|| {
        let mut blocks = rendered().clone();
        for block in blocks.as_array_mut().into_iter().flatten() {
            if let Some(block) = block.as_object_mut() {
                block.remove("costs");
            }
        }
        blocks
    })
}

/// Run one block for `user_id` on `input` (over the schema's defaults) and
/// collect each output pin's values: what both APIs' execute routes answer.
pub(crate) async fn run_block(
    state: &AppState,
    user_id: Uuid,
    block_id: &str,
    input: Map<String, Value>,
) -> ApiResult<Map<String, Value>> {
    let block = domain::blocks::find(block_id).filter(|b| blocks::is_supported(b.id));
    let block = block.ok_or_else(|| ApiError::not_found(format!("Block #{block_id} not found.")))?;
    let ctx = BlockContext {
        user_id,
        execution_id: Uuid::nil(),
        graph_id: Uuid::nil(),
        node_exec_id: Uuid::nil(),
        user_timezone: None,
        now: chrono::Utc::now(),
        recorded_as: None,
    };
    let mut defaults = block_defaults(block);
    defaults.extend(input);
    let input = domain::execution::pins::merge_dynamic_pins(&defaults);
    // A block that calls out does so through the executor's client (its
    // limits and SSRF guard), with the caller's credentials.
    let outcome = state.executor.outside().drive(&state.commands, block.id, &input, &ctx, MAX_REQUESTS).await;
    if let Some(error) = outcome.error {
        return Err(ApiError::bad_request(error));
    }
    let mut outputs = Map::new();
    for step in outcome.steps {
        match step {
            Step::Yield(pin, value) => {
                if let Value::Array(values) = outputs.entry(pin).or_insert_with(|| Value::Array(vec![])) {
                    values.push(value);
                }
            }
            Step::Sleep(_) => {}
            Step::Persist { .. } | Step::Recall { .. } => {
                return Err(ApiError::bad_request(
                    "This block remembers for an agent: it runs only inside a graph run",
                ));
            }
        }
    }
    Ok(outputs)
}

/// The defaults the block's input schema declares.
fn block_defaults(block: &domain::blocks::Block) -> Map<String, Value> {
    block.input_schema["properties"]
        .as_object()
        .map(|props| props.iter().filter_map(|(k, v)| v.get("default").map(|d| (k.clone(), d.clone()))).collect())
        .unwrap_or_default()
}
