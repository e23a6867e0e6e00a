//! Graphs over HTTP: read-your-writes, id reassignment, versions, validation,
//! request-shape errors, isolation, deletion, idempotency, the block catalog.

use std::collections::{HashMap, HashSet};

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{blocks, sample_graph, send, spawn_app, spawn_app_with, TestApp};
use crate::support::{
    agent_graph_ids, assert_error, assert_field_error, event_count, id_of, library_page, listed_graph_ids, user,
};

/// POST a graph and return the position header with the body.
async fn create_with_position(app: &TestApp, owner: uuid::Uuid, graph: Value) -> (Option<String>, Value) {
    let response =
        app.request(Method::POST, "/api/graphs", owner).json(&json!({ "graph": graph })).send().await.expect("send");
    assert_eq!(response.status().as_u16(), 200);
    let position = response.headers().get("x-event-position").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (position, response.json().await.expect("json"))
}

/// A draft for `PUT /api/graphs/{id}`: the sample graph renamed, with the id.
fn new_version(id: &str, name: &str) -> Value {
    let mut draft = sample_graph(name);
    draft["id"] = json!(id);
    draft
}

/// POST a graph expected to fail validation; return the body.
async fn rejected(app: &TestApp, graph: Value) -> Value {
    let (status, body) = app.post("/api/graphs", user(), &json!({ "graph": graph })).await;
    assert_eq!(status, 400, "{body}");
    assert_error(&body, "graph_validation_error");
    body
}

/// The served node id → the node, and link endpoints in terms of blocks.
fn nodes_by_id(graph: &Value) -> HashMap<String, Value> {
    graph["nodes"].as_array().expect("nodes").iter().map(|n| (id_of(n), n.clone())).collect()
}

#[tokio::test]
async fn created_graph_is_readable_at_once() {
    let app = spawn_app().await;
    let owner = user();
    let (position, graph) = create_with_position(&app, owner, sample_graph("Greeter")).await;
    let position: i64 = position.expect("X-Event-Position header").parse().expect("an integer position");
    assert!(position > 0, "position {position}");
    assert_eq!(graph["name"], "Greeter");
    assert_eq!(graph["version"], 1);
    assert_eq!(graph["is_active"], true);
    assert_eq!(graph["user_id"], owner.to_string());
    let id = id_of(&graph);
    uuid::Uuid::parse_str(&id).expect("graph id is a uuid");

    // No sleep: the write is visible to the very next reads.
    assert_eq!(listed_graph_ids(&app, owner).await, vec![id.clone()]);
    let (status, fetched) = app.get(&format!("/api/graphs/{id}"), owner).await;
    assert_eq!(status, 200, "{fetched}");
    // The response is built from the saved event, the read model by the
    // projector: both must give the same GraphModel.
    assert_eq!(fetched, graph);
}

#[tokio::test]
async fn event_position_grows_with_each_command() {
    let app = spawn_app().await;
    let owner = user();
    let (first, _) = create_with_position(&app, owner, sample_graph("one")).await;
    let (second, _) = create_with_position(&app, owner, sample_graph("two")).await;
    let first: i64 = first.expect("header").parse().expect("int");
    let second: i64 = second.expect("header").parse().expect("int");
    assert!(second > first, "{second} > {first}");
}

#[tokio::test]
async fn node_ids_are_reassigned_and_links_remapped() {
    let app = spawn_app().await;
    let mut draft = sample_graph("remap");
    draft["id"] = json!("client-chosen-id");
    let graph = app.create_graph(user(), draft).await;
    assert_ne!(graph["id"], "client-chosen-id", "POST assigns a new graph id");

    let nodes = nodes_by_id(&graph);
    assert_eq!(nodes.len(), 4);
    for submitted in ["a", "b", "t", "p"] {
        assert!(!nodes.contains_key(submitted), "submitted node id {submitted} was kept");
    }
    let links = graph["links"].as_array().expect("links");
    assert_eq!(links.len(), 3);
    let link_ids: HashSet<&str> = links.iter().filter_map(|l| l["id"].as_str()).collect();
    assert_eq!(link_ids.len(), 3, "each link has its own id: {links:?}");
    // Each link's ends point at served nodes, wired as submitted: the
    // "Hello" store feeds values_#_a, "World" feeds values_#_b, the template
    // feeds the printer.
    let input_of = |id: &Value| nodes[id.as_str().expect("id")]["input_default"]["input"].clone();
    let block_of = |id: &Value| nodes[id.as_str().expect("id")]["block_id"].clone();
    let mut wiring = HashSet::new();
    for link in links {
        let (source, sink) = (&link["source_id"], &link["sink_id"]);
        assert!(nodes.contains_key(source.as_str().unwrap_or("")), "dangling source {link}");
        assert!(nodes.contains_key(sink.as_str().unwrap_or("")), "dangling sink {link}");
        let from = if block_of(source) == blocks::STORE_VALUE { input_of(source) } else { block_of(source) };
        wiring.insert((from.to_string(), block_of(sink).to_string(), link["sink_name"].to_string()));
    }
    let expected: HashSet<(String, String, String)> = [
        (json!("Hello"), json!(blocks::FILL_TEMPLATE), json!("values_#_a")),
        (json!("World"), json!(blocks::FILL_TEMPLATE), json!("values_#_b")),
        (json!(blocks::FILL_TEMPLATE), json!(blocks::PRINT), json!("text")),
    ]
    .into_iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(wiring, expected);
}

#[tokio::test]
async fn links_from_static_output_blocks_are_forced_static() {
    let app = spawn_app().await;
    let graph = app.create_graph(user(), sample_graph("static")).await;
    let nodes = nodes_by_id(&graph);
    for link in graph["links"].as_array().expect("links") {
        let source_block = &nodes[link["source_id"].as_str().expect("id")]["block_id"];
        let from_store = source_block == blocks::STORE_VALUE;
        assert_eq!(link["is_static"], from_store, "is_static must be {from_store} for {link}");
    }
}

#[tokio::test]
async fn put_saves_the_next_version_and_versions_are_listed_newest_first() {
    let app = spawn_app().await;
    let owner = user();
    let id = id_of(&app.create_graph(owner, sample_graph("v1")).await);

    let mut draft = new_version(&id, "v2");
    draft["version"] = json!(1); // the client's number is ignored
    let (status, v2) = app.put(&format!("/api/graphs/{id}"), owner, &draft).await;
    assert_eq!(status, 200, "{v2}");
    assert_eq!(
        (v2["id"].as_str(), v2["version"].as_i64(), v2["name"].as_str()),
        (Some(id.as_str()), Some(2), Some("v2"))
    );

    let (_, latest) = app.get(&format!("/api/graphs/{id}"), owner).await;
    assert_eq!(latest["version"], 2, "no version → the highest");
    let (status, versions) = app.get(&format!("/api/graphs/{id}/versions"), owner).await;
    assert_eq!(status, 200, "{versions}");
    let numbers: Vec<i64> = versions.as_array().expect("list").iter().filter_map(|v| v["version"].as_i64()).collect();
    assert_eq!(numbers, vec![2, 1]);
    let (status, v1) = app.get(&format!("/api/graphs/{id}/versions/1"), owner).await;
    assert_eq!(status, 200, "{v1}");
    assert_eq!((v1["version"].as_i64(), v1["name"].as_str()), (Some(1), Some("v1")));
    let (status, by_query) = app.get(&format!("/api/graphs/{id}?version=1"), owner).await;
    assert_eq!((status, by_query["name"].as_str()), (200, Some("v1")));

    let (status, body) = app.get(&format!("/api/graphs/{id}/versions/9"), owner).await;
    assert_eq!(status, 404, "{body}");
    assert_error(&body, "not_found");
    let (status, body) = app.get(&format!("/api/graphs/{id}/versions/one"), owner).await;
    assert_eq!(status, 422, "{body}");
    assert_error(&body, "validation_error");
}

#[tokio::test]
async fn active_version_decides_what_the_list_shows() {
    let app = spawn_app().await;
    let owner = user();
    let id = id_of(&app.create_graph(owner, sample_graph("first")).await);
    let (status, _) = app.put(&format!("/api/graphs/{id}"), owner, &new_version(&id, "second")).await;
    assert_eq!(status, 200);
    let (_, list) = app.get("/api/graphs", owner).await;
    assert_eq!((list[0]["version"].as_i64(), list[0]["name"].as_str()), (Some(2), Some("second")), "{list}");

    let body = json!({"active_graph_version": 1});
    let (status, answer) = app.put(&format!("/api/graphs/{id}/versions/active"), owner, &body).await;
    assert_eq!((status, answer), (200, Value::Null));
    let (_, list) = app.get("/api/graphs", owner).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!((list[0]["version"].as_i64(), list[0]["name"].as_str()), (Some(1), Some("first")), "{list}");
    let (_, versions) = app.get(&format!("/api/graphs/{id}/versions"), owner).await;
    let active: Vec<(i64, bool)> = versions
        .as_array()
        .expect("list")
        .iter()
        .map(|v| (v["version"].as_i64().unwrap_or(0), v["is_active"].as_bool().unwrap_or(false)))
        .collect();
    assert_eq!(active, vec![(2, false), (1, true)]);

    let body = json!({"active_graph_version": 7});
    let (status, body) = app.put(&format!("/api/graphs/{id}/versions/active"), owner, &body).await;
    assert_eq!(status, 404, "{body}");
    assert_error(&body, "not_found");
}

#[tokio::test]
async fn put_with_another_id_in_the_body_is_400() {
    let app = spawn_app().await;
    let owner = user();
    let id = id_of(&app.create_graph(owner, sample_graph("g")).await);
    let other = uuid::Uuid::new_v4().to_string();
    let (status, body) = app.put(&format!("/api/graphs/{id}"), owner, &new_version(&other, "x")).await;
    assert_eq!(status, 400, "{body}");
    assert_error(&body, "bad_request");
    let (_, versions) = app.get(&format!("/api/graphs/{id}/versions"), owner).await;
    assert_eq!(versions.as_array().map(Vec::len), Some(1), "no version was added");
}

#[tokio::test]
async fn unknown_block_is_reported_on_its_node() {
    let app = spawn_app().await;
    let mut graph = sample_graph("bad block");
    graph["nodes"][1]["block_id"] = json!("00000000-0000-0000-0000-000000000000");
    let body = rejected(&app, graph).await;
    assert!(body["node_errors"]["b"]["block_id"].is_string(), "{body}");
    assert_eq!(body["node_errors"].as_object().map(|o| o.len()), Some(1), "only node b is at fault: {body}");
}

#[tokio::test]
async fn links_to_missing_pins_are_reported_per_node_and_pin() {
    let app = spawn_app().await;
    let mut graph = sample_graph("bad pins");
    graph["links"][2]["sink_name"] = json!("no_such_input");
    graph["links"][0]["source_name"] = json!("no_such_output");
    let body = rejected(&app, graph).await;
    assert!(body["node_errors"]["p"]["no_such_input"].is_string(), "{body}");
    assert!(body["node_errors"]["a"]["no_such_output"].is_string(), "{body}");
}

#[tokio::test]
async fn links_to_missing_nodes_are_reported() {
    let app = spawn_app().await;
    let mut graph = sample_graph("ghost");
    graph["links"][2]["sink_id"] = json!("ghost");
    let body = rejected(&app, graph).await;
    assert!(body["node_errors"]["ghost"]["text"].is_string(), "{body}");
}

#[tokio::test]
async fn agent_input_needs_a_name() {
    let app = spawn_app().await;
    let graph = |defaults: Value| {
        json!({
            "name": "inputs", "description": "",
            "nodes": [
                {"id": "in", "block_id": blocks::AGENT_INPUT, "input_default": defaults},
                {"id": "p", "block_id": blocks::PRINT}
            ],
            "links": [{"source_id": "in", "sink_id": "p", "source_name": "result", "sink_name": "text"}]
        })
    };
    let body = rejected(&app, graph(json!({"value": "x"}))).await;
    assert!(body["node_errors"]["in"]["name"].is_string(), "{body}");
    let body = rejected(&app, graph(json!({"name": "credentials"}))).await;
    assert!(body["node_errors"]["in"]["name"].is_string(), "reserved name: {body}");

    let ok = app.create_graph(user(), graph(json!({"name": "topic"}))).await;
    assert_eq!(ok["input_schema"]["required"], json!(["topic"]), "{ok}");
}

#[tokio::test]
async fn dynamic_pins_are_accepted() {
    let app = spawn_app().await;
    let mut graph = sample_graph("dynamic");
    graph["links"][0]["sink_name"] = json!("values_#_x");
    graph["links"][1]["sink_name"] = json!("values_$_0");
    let served = app.create_graph(user(), graph).await;
    let sinks: HashSet<&str> =
        served["links"].as_array().expect("links").iter().filter_map(|l| l["sink_name"].as_str()).collect();
    assert!(sinks.contains("values_#_x") && sinks.contains("values_$_0"), "{sinks:?}");
}

#[tokio::test]
async fn malformed_json_is_422() {
    let app = spawn_app().await;
    let request = app.request(Method::POST, "/api/graphs", user()).header("content-type", "application/json");
    let (status, body) = send(request.body(r#"{"graph": "#)).await;
    assert_eq!(status, 422, "{body}");
    assert_error(&body, "validation_error");
    assert!(body["errors"].as_array().is_some_and(|e| !e.is_empty()), "{body}");
}

#[tokio::test]
async fn missing_required_field_is_422_naming_it() {
    let app = spawn_app().await;
    let mut graph = sample_graph("nameless");
    graph.as_object_mut().expect("object").remove("name");
    let (status, body) = app.post("/api/graphs", user(), &json!({ "graph": graph })).await;
    assert_eq!(status, 422, "{body}");
    assert_field_error(&body, "graph.name");

    let (status, body) = app.post("/api/graphs", user(), &json!({})).await;
    assert_eq!(status, 422, "{body}");
    assert_field_error(&body, "graph");
}

#[tokio::test]
async fn wrongly_typed_field_is_422() {
    let app = spawn_app().await;
    let mut graph = sample_graph("typed");
    graph["nodes"] = json!("not a list");
    let (status, body) = app.post("/api/graphs", user(), &json!({ "graph": graph })).await;
    assert_eq!(status, 422, "{body}");
    assert_field_error(&body, "graph.nodes");
}

#[tokio::test]
async fn oversized_body_is_413() {
    let app = spawn_app_with(|config| config.body_limit = 1024).await;
    let mut graph = sample_graph("big");
    graph["description"] = json!("x".repeat(4096));
    let (status, body) = app.post("/api/graphs", user(), &json!({ "graph": graph })).await;
    assert_eq!(status, 413, "{body}");
    assert_error(&body, "payload_too_large");
    assert_eq!(event_count(&app).await, 0);
}

#[tokio::test]
async fn other_users_cannot_see_or_touch_a_graph() {
    let app = spawn_app().await;
    let (alice, bob) = (user(), user());
    let id = id_of(&app.create_graph(alice, sample_graph("private")).await);
    let base = format!("/api/graphs/{id}");
    let attempts = [
        app.get(&base, bob).await,
        app.get(&format!("{base}?version=1"), bob).await,
        app.get(&format!("{base}/versions"), bob).await,
        app.get(&format!("{base}/versions/1"), bob).await,
        app.put(&base, bob, &new_version(&id, "hijacked")).await,
        app.put(&format!("{base}/versions/active"), bob, &json!({"active_graph_version": 1})).await,
        app.patch(&format!("{base}/settings"), bob, &json!({"human_in_the_loop_safe_mode": false})).await,
        app.delete(&base, bob).await,
    ];
    for (i, (status, body)) in attempts.iter().enumerate() {
        assert_eq!(*status, 404, "attempt {i}: {body}");
        assert_error(body, "not_found");
    }
    assert!(listed_graph_ids(&app, bob).await.is_empty());
    // Alice's graph is untouched.
    let (status, graph) = app.get(&base, alice).await;
    assert_eq!((status, graph["name"].as_str(), graph["version"].as_i64()), (200, Some("private"), Some(1)));
}

#[tokio::test]
async fn malformed_graph_id_is_404() {
    let app = spawn_app().await;
    let (status, body) = app.get("/api/graphs/not-a-uuid", user()).await;
    assert_eq!(status, 404, "{body}");
    assert_error(&body, "not_found");
}

#[tokio::test]
async fn delete_removes_every_version_and_the_library_entry() {
    let app = spawn_app().await;
    let owner = user();
    let keep = id_of(&app.create_graph(owner, sample_graph("keep")).await);
    let id = id_of(&app.create_graph(owner, sample_graph("doomed")).await);
    let (status, _) = app.put(&format!("/api/graphs/{id}"), owner, &new_version(&id, "doomed v2")).await;
    assert_eq!(status, 200);

    let (status, body) = app.delete(&format!("/api/graphs/{id}"), owner).await;
    assert_eq!((status, body), (200, json!({"version_counts": 2})));
    for path in
        [format!("/api/graphs/{id}"), format!("/api/graphs/{id}/versions"), format!("/api/graphs/{id}/versions/1")]
    {
        let (status, body) = app.get(&path, owner).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    assert_eq!(listed_graph_ids(&app, owner).await, vec![keep.clone()]);
    let page = library_page(&app, "/api/library/agents", owner).await;
    assert_eq!(agent_graph_ids(&page), vec![keep]);
    let (status, _) = app.get(&format!("/api/library/agents/by-graph/{id}"), owner).await;
    assert_eq!(status, 404);

    let (status, body) = app.delete(&format!("/api/graphs/{id}"), owner).await;
    assert_eq!(status, 404, "deleting twice: {body}");
}

#[tokio::test]
async fn rejected_commands_append_nothing() {
    let app = spawn_app().await;
    let owner = user();
    let id = id_of(&app.create_graph(owner, sample_graph("base")).await);
    let before = event_count(&app).await;
    assert!(before > 0, "creating a graph appends events");

    let mut bad = sample_graph("bad");
    bad["nodes"][0]["block_id"] = json!("nope");
    let (status, _) = app.post("/api/graphs", owner, &json!({ "graph": bad })).await;
    assert_eq!(status, 400);
    let request = app.request(Method::POST, "/api/graphs", owner).header("content-type", "application/json");
    let (status, _) = send(request.body("{\"graph\": ")).await;
    assert_eq!(status, 422);
    let (status, _) = app.put(&format!("/api/graphs/{id}"), owner, &new_version("other", "x")).await;
    assert_eq!(status, 400);
    let (status, _) =
        app.put(&format!("/api/graphs/{id}/versions/active"), owner, &json!({"active_graph_version": 5})).await;
    assert_eq!(status, 404);
    assert_eq!(event_count(&app).await, before, "the log is unchanged");
}

#[tokio::test]
async fn idempotency_key_makes_create_happen_once() {
    let app = spawn_app().await;
    let (owner, other) = (user(), user());
    let post = |who, key: &str| {
        let request = app.request(Method::POST, "/api/graphs", who).header("Idempotency-Key", key.to_owned());
        send(request.json(&json!({"graph": sample_graph("once")})))
    };
    let (status, first) = post(owner, "create-1").await;
    assert_eq!(status, 200, "{first}");
    let after_first = event_count(&app).await;
    let (status, second) = post(owner, "create-1").await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second, first, "same key, same graph, answered from the read model");
    assert_eq!(event_count(&app).await, after_first, "the retry appended nothing");
    assert_eq!(listed_graph_ids(&app, owner).await.len(), 1);

    let (_, third) = post(owner, "create-2").await;
    assert_ne!(id_of(&third), id_of(&first), "another key, another graph");
    let (status, theirs) = post(other, "create-1").await;
    assert_eq!(status, 200, "{theirs}");
    assert_ne!(id_of(&theirs), id_of(&first), "keys are scoped per user");
    assert_eq!(listed_graph_ids(&app, other).await, vec![id_of(&theirs)]);
}

#[tokio::test]
async fn block_catalog_lists_blocks_with_schemas() {
    let app = spawn_app().await;
    let (status, body) = app.get("/api/blocks", user()).await;
    assert_eq!(status, 200, "{body}");
    let list = body.as_array().expect("a list");
    let find = |id: &str| list.iter().find(|b| b["id"] == id).unwrap_or_else(|| panic!("block {id} not listed"));
    let store = find(blocks::STORE_VALUE);
    assert_eq!(store["name"], "StoreValueBlock");
    assert_eq!(store["staticOutput"], true);
    assert!(store["inputSchema"]["properties"]["input"].is_object(), "{store}");
    assert!(store["outputSchema"]["properties"]["output"].is_object(), "{store}");
    assert_eq!(find(blocks::PRINT)["staticOutput"], false);
    for id in [blocks::FILL_TEMPLATE, blocks::AGENT_INPUT, blocks::AGENT_OUTPUT] {
        find(id);
    }
    let ids: HashSet<&str> = list.iter().filter_map(|b| b["id"].as_str()).collect();
    assert_eq!(ids.len(), list.len(), "block ids are unique");

    let (status, body) = send(app.anonymous(Method::GET, "/api/blocks")).await;
    assert_eq!(status, 401, "{body}");
}

#[tokio::test]
async fn idempotency_key_makes_a_retried_put_return_the_same_version() {
    let app = spawn_app().await;
    let owner = user();
    let id = id_of(&app.create_graph(owner, sample_graph("v1")).await);
    let put = || {
        let request =
            app.request(Method::PUT, &format!("/api/graphs/{id}"), owner).header("Idempotency-Key", "save-v2");
        send(request.json(&new_version(&id, "v2")))
    };
    let (status, first) = put().await;
    assert_eq!((status, first["version"].as_i64()), (200, Some(2)), "{first}");
    let after_first = event_count(&app).await;
    let (status, retry) = put().await;
    assert_eq!(status, 200, "{retry}");
    assert_eq!(retry["version"], 2, "the retry answers the version the first request saved");
    assert_eq!(event_count(&app).await, after_first, "the retry appended nothing");
}

#[tokio::test]
async fn for_export_blanks_the_owner_on_the_graph_and_on_one_version() {
    let app = spawn_app().await;
    let owner = user();
    let id = id_of(&app.create_graph(owner, sample_graph("export me")).await);
    for path in [format!("/api/graphs/{id}?for_export=true"), format!("/api/graphs/{id}/versions/1?for_export=true")] {
        let (status, body) = app.get(&path, owner).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["user_id"], "", "{path}");
        assert_eq!(body["name"], "export me", "{path}");
    }
    let (_, whole) = app.get(&format!("/api/graphs/{id}/versions/1"), owner).await;
    assert_eq!(whole["user_id"], owner.to_string(), "without the flag the owner stays");
}
