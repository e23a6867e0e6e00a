//! What the phases write: event payloads and metadata, and the graph that
//! (d), (e) and (g) create.

use commands::EventMetadata;
use domain::graph::GraphDraft;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::Res;

const STORE_VALUE_BLOCK: &str = "1ff065e9-88e8-4358-9d82-8dc91f622ba9";

/// The payload every event phase writes: about the size of a small domain
/// event, encoded as a command encodes its events.
pub fn payload(seq: i64) -> Box<RawValue> {
    let value = json!({ "seq": seq, "name": "bench", "description": "an event of a typical size for this log", "tags": ["a", "b"] });
    serde_json::value::to_raw_value(&value).expect("a JSON value always encodes")
}

/// The metadata of one command (its events share it).
pub fn metadata() -> EventMetadata {
    let correlation_id = Uuid::new_v4();
    EventMetadata {
        correlation_id,
        causation_id: Some(correlation_id),
        user_id: Some(Uuid::new_v4()),
        request_id: None,
    }
}

/// The body (d) posts: a small valid graph, two StoreValue nodes, the first
/// feeding the second.
pub fn graph_body() -> Value {
    json!({ "graph": {
        "name": "bench", "description": "two StoreValue nodes and a link",
        "nodes": [
            {"id": "a", "block_id": STORE_VALUE_BLOCK, "input_default": {"input": "Hello"}},
            {"id": "b", "block_id": STORE_VALUE_BLOCK}
        ],
        "links": [{"source_id": "a", "sink_id": "b", "source_name": "output", "sink_name": "input"}]
    }})
}

/// The graph of [`graph_body`] as the route hands it to `create_graph`.
pub fn graph_draft() -> Res<GraphDraft> {
    let mut body = graph_body();
    Ok(serde_json::from_value(body["graph"].take())?)
}

/// A token for `user`, valid for an hour, signed as the server expects.
pub fn token(auth: &api::config::AuthConfig, user: Uuid) -> Res<String> {
    token_as(auth, user, "authenticated")
}

/// A bearer token for `user` with `role` (`admin` for the admin routes).
pub fn token_as(auth: &api::config::AuthConfig, user: Uuid, role: &str) -> Res<String> {
    let claims = api::auth::Claims {
        sub: user.to_string(),
        aud: api::auth::AUDIENCE.into(),
        exp: chrono::Utc::now().timestamp() + 3600,
        role: Some(role.into()),
        email: Some(format!("{}@example.com", user.simple())),
        user_metadata: None,
    };
    Ok(api::auth::sign(auth, &claims)?)
}
