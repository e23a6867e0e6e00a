//! Bounds on what one request can make the server do: a block's counts,
//! sizes and waits are limited (a run's node fails, a direct run of the
//! block answers 400), and a run whose nodes could never all get their
//! required inputs is refused before anything is recorded.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{blocks, spawn_app};
use crate::support::{event_count, id_of, user};

const COUNTDOWN: &str = "d67a9c52-5e4e-11e2-bcfd-0800200c9a71";
const CREATE_LIST: &str = "a912d5c7-6e00-4542-b2a9-8034136930e4";

#[tokio::test]
async fn a_huge_countdown_is_refused_at_once_by_the_block_route() {
    let app = spawn_app().await;
    let caller = user();
    let path = format!("/api/blocks/{COUNTDOWN}/execute");
    let started = Instant::now();
    // Once a list of a trillion steps (the memory ran out long before).
    let (status, body) = app.post(&path, caller, &json!({"repeat": 1_000_000_000_000_u64})).await;
    assert_eq!(status, 400, "{body}");
    assert!(started.elapsed() < Duration::from_secs(5), "answered fast: {:?}", started.elapsed());
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("Repeat must be between 1 and 1000, got 1000000000000"), "{body}");
    // Once an overflow: a panic (500) in a debug build, a short wait after
    // wrapping in a release one.
    let (status, body) = app.post(&path, caller, &json!({"minutes": u64::MAX})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("exceeds max 604800 seconds")), "{body}");
    // Once a list padded up to the index (an overflow, or an allocation
    // that aborted the process).
    let list_path = format!("/api/blocks/{CREATE_LIST}/execute");
    let (status, body) = app.post(&list_path, caller, &json!({"values_$_18446744073709551615": 1})).await;
    assert_eq!((status, &body), (200, &json!({"list": [[]]})), "the pin past the bound is left out");
    let (status, body) = app.post(&path, caller, &json!({"repeat": 2, "input_message": "m"})).await;
    assert_eq!((status, body), (200, json!({"output_message": ["m", "m"]})), "within the bounds it runs");
}

#[tokio::test]
async fn a_node_past_a_bound_fails_and_the_run_goes_on_to_complete() {
    let app = spawn_app().await;
    let owner = user();
    let graph = json!({
        "name": "bounded", "description": "",
        "nodes": [
            {"id": "timer", "block_id": COUNTDOWN, "input_default": {"minutes": u64::MAX}},
            {"id": "store", "block_id": blocks::STORE_VALUE, "input_default": {"input": "still runs"}}
        ],
        "links": []
    });
    let graph_id = id_of(&app.create_graph(owner, graph).await);
    let (status, queued) = app.post(&format!("/api/graphs/{graph_id}/execute/1"), owner, &json!({"inputs": {}})).await;
    assert_eq!(status, 200, "{queued}");
    let run_id = queued["id"].as_str().expect("run id");
    // Before the bound, the overflow panicked the block's task: its node
    // stayed in flight and the run never ended.
    let run = app.run_ended(owner, &graph_id, run_id, Duration::from_secs(15)).await;
    assert_eq!(run["status"], "COMPLETED", "a failed node does not fail the run: {run}");
    let nodes = run["node_executions"].as_array().expect("node executions");
    let node = |block: &str| nodes.iter().find(|n| n["block_id"] == block).expect("node").clone();
    let timer = node(COUNTDOWN);
    assert_eq!(timer["status"], "FAILED", "{run}");
    let error = timer["output_data"]["error"][0].as_str().unwrap_or_default();
    assert!(error.starts_with("raised by CountdownTimerBlock with message: Total wait of"), "{run}");
    assert!(error.ends_with(&format!("block_id: {COUNTDOWN}")), "{run}");
    let store = node(blocks::STORE_VALUE);
    assert_eq!((&store["status"], &store["output_data"]), (&json!("COMPLETED"), &json!({"output": ["still runs"]})));
}

#[tokio::test]
async fn a_run_is_refused_when_a_node_reached_only_by_links_misses_a_required_input() {
    let app = spawn_app().await;
    let owner = user();
    // The template gets its values by a link, but nothing sets its format.
    let graph = json!({
        "name": "no format", "description": "",
        "nodes": [
            {"id": "a", "block_id": blocks::STORE_VALUE, "input_default": {"input": "x"}},
            {"id": "t", "block_id": blocks::FILL_TEMPLATE, "input_default": {}}
        ],
        "links": [{"source_id": "a", "sink_id": "t", "source_name": "output", "sink_name": "values_#_a"}]
    });
    let created = app.create_graph(owner, graph).await;
    let graph_id = id_of(&created);
    let nodes = created["nodes"].as_array().expect("nodes");
    let template = nodes.iter().find(|n| n["block_id"] == blocks::FILL_TEMPLATE).expect("template node");
    let template_id = template["id"].as_str().expect("node id");
    let before = event_count(&app).await;
    let (status, body) = app.post(&format!("/api/graphs/{graph_id}/execute/1"), owner, &json!({"inputs": {}})).await;
    assert_eq!(status, 400, "{body}");
    let detail = &body["detail"];
    assert_eq!(detail["type"], "validation_error", "{body}");
    assert_eq!(detail["message"], "Graph validation failed", "{body}");
    let expected: Value = json!({ template_id: {"format": "This field is required"} });
    assert_eq!(detail["node_errors"], expected, "only the template, only its format: {body}");
    assert_eq!(event_count(&app).await, before, "a refused run appends nothing");
}

#[tokio::test]
async fn graphs_are_capped_in_nodes_links_and_lengths_and_a_large_one_validates_quickly() {
    let app = crate::helpers::spawn_app().await;
    let owner = crate::support::user();
    const STORE_VALUE: &str = "1ff065e9-88e8-4358-9d82-8dc91f622ba9";
    let chain = |n: usize| {
        let nodes: Vec<serde_json::Value> = (0..n)
            .map(|i| serde_json::json!({"id": format!("n{i}"), "block_id": STORE_VALUE, "input_default": {"input": i}}))
            .collect();
        let links: Vec<serde_json::Value> = (1..n)
            .map(|i| {
                serde_json::json!({"source_id": format!("n{}", i - 1), "sink_id": format!("n{i}"),
                "source_name": "output", "sink_name": "data"})
            })
            .collect();
        serde_json::json!({"graph": {"name": "chain", "description": "", "nodes": nodes, "links": links}})
    };
    let started = std::time::Instant::now();
    let (status, body) = app.post("/api/graphs", owner, &chain(2000)).await;
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "took {:?}", started.elapsed());
    let before = crate::support::event_count(&app).await;
    let (status, body) = app.post("/api/graphs", owner, &chain(2001)).await;
    assert_eq!(status, 422, "{body}");
    crate::support::assert_field_error(&body, "nodes");
    let long_name =
        serde_json::json!({"graph": {"name": "n".repeat(501), "description": "", "nodes": [], "links": []}});
    let (status, body) = app.post("/api/graphs", owner, &long_name).await;
    assert_eq!(status, 422, "{body}");
    crate::support::assert_field_error(&body, "name");
    assert_eq!(crate::support::event_count(&app).await, before, "a refused graph appended");
}

#[tokio::test]
async fn a_template_that_doubles_a_value_stops_at_its_memory_limit_and_the_server_goes_on() {
    let app = spawn_app().await;
    let caller = user();
    let path = format!("/api/blocks/{}/execute", blocks::FILL_TEMPLATE);
    // 2^31 bytes after 31 doublings: rendered in the server's own process,
    // gigabytes; in the renderer's, refused at its limit.
    let doubling = "{% set ns = namespace(s='x') %}{% for i in range(31) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}\
                    {{ ns.s|length }}";
    let (status, body) = app.post(&path, caller, &json!({"format": doubling, "values": {}})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("exceeded its limits")), "{body}");
    // The same constructs within bounds render, in the renderer.
    let small = doubling.replace("range(31)", "range(3)");
    let (status, body) = app.post(&path, caller, &json!({"format": small, "values": {}})).await;
    assert_eq!((status, body), (200, json!({"output": ["8"]})));
    let (status, body) = app.post(&path, caller, &json!({"format": "{{ a ~ b }}", "values": {"a": 1, "b": "c"}})).await;
    assert_eq!((status, body), (200, json!({"output": ["1c"]})));
    let (status, _) = app.get("/health", caller).await;
    assert_eq!(status, 200, "the server is still there");
}
