//! The library over HTTP: listing, search, pagination, sorting, favourites,
//! pinned versions, settings, forking, deletion and isolation.

use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{sample_graph, send, spawn_app, TestApp};
use crate::support::{agent_graph_ids, assert_error, id_of, library_page, listed_graph_ids, user};

/// Create a graph named `name` with `description`; return its id.
async fn graph(app: &TestApp, owner: Uuid, name: &str, description: &str) -> String {
    let mut draft = sample_graph(name);
    draft["description"] = json!(description);
    id_of(&app.create_graph(owner, draft).await)
}

/// The library agent of a graph.
async fn agent_of(app: &TestApp, owner: Uuid, graph_id: &str) -> Value {
    let (status, agent) = app.get(&format!("/api/library/agents/by-graph/{graph_id}"), owner).await;
    assert_eq!(status, 200, "{agent}");
    agent
}

fn names(page: &Value) -> Vec<&str> {
    page["agents"].as_array().expect("agents").iter().filter_map(|a| a["name"].as_str()).collect()
}

#[tokio::test]
async fn created_graph_is_in_the_library_at_once() {
    let app = spawn_app().await;
    let owner = user();
    let id = graph(&app, owner, "Summariser", "sums things up").await;
    let page = library_page(&app, "/api/library/agents", owner).await;
    assert_eq!(page["pagination"], json!({"total_items": 1, "total_pages": 1, "current_page": 1, "page_size": 15}));
    let agent = &page["agents"][0];
    assert_eq!(agent["graph_id"], id);
    assert_eq!(agent["graph_version"], 1);
    assert_eq!(agent["name"], "Summariser");
    assert_eq!(agent["description"], "sums things up");
    assert_eq!(agent["is_latest_version"], true);
    assert_eq!(agent["can_access_graph"], true);
    assert_eq!(agent["is_favorite"], false);
    Uuid::parse_str(agent["id"].as_str().expect("agent id")).expect("agent id is a uuid");
}

#[tokio::test]
async fn search_term_matches_name_or_description_case_insensitively() {
    let app = spawn_app().await;
    let owner = user();
    graph(&app, owner, "Alpha report", "weekly").await;
    graph(&app, owner, "Beta summary", "uses ALPHA data").await;
    graph(&app, owner, "Gamma 100%", "plain").await;

    let page = library_page(&app, "/api/library/agents?search_term=alpha", owner).await;
    let mut found = names(&page);
    found.sort_unstable();
    assert_eq!(found, vec!["Alpha report", "Beta summary"]);
    assert_eq!(page["pagination"]["total_items"], 2);

    let page = library_page(&app, "/api/library/agents?search_term=REPORT", owner).await;
    assert_eq!(names(&page), vec!["Alpha report"]);
    // LIKE wildcards are literal characters.
    let page = library_page(&app, "/api/library/agents?search_term=%25", owner).await;
    assert_eq!(names(&page), vec!["Gamma 100%"]);
    let page = library_page(&app, "/api/library/agents?search_term=zzz", owner).await;
    assert_eq!(page["pagination"]["total_items"], 0);
    assert_eq!(page["agents"], json!([]));
}

#[tokio::test]
async fn pages_split_the_library_without_overlap() {
    let app = spawn_app().await;
    let owner = user();
    for name in ["one", "two", "three"] {
        graph(&app, owner, name, "").await;
    }
    let first = library_page(&app, "/api/library/agents?page=1&page_size=2", owner).await;
    assert_eq!(first["pagination"], json!({"total_items": 3, "total_pages": 2, "current_page": 1, "page_size": 2}));
    let second = library_page(&app, "/api/library/agents?page=2&page_size=2", owner).await;
    assert_eq!(second["pagination"]["current_page"], 2);
    let (a, b) = (agent_graph_ids(&first), agent_graph_ids(&second));
    assert_eq!((a.len(), b.len()), (2, 1));
    assert!(b.iter().all(|id| !a.contains(id)), "pages overlap: {a:?} {b:?}");
    let beyond = library_page(&app, "/api/library/agents?page=3&page_size=2", owner).await;
    assert_eq!(beyond["agents"], json!([]));

    for query in ["page=0", "page_size=0", "page=-1", "page=abc"] {
        let (status, body) = app.get(&format!("/api/library/agents?{query}"), owner).await;
        assert_eq!(status, 422, "{query}: {body}");
        assert_error(&body, "validation_error");
    }
}

#[tokio::test]
async fn sort_by_created_at_lists_newest_first_and_rejects_unknown_keys() {
    let app = spawn_app().await;
    let owner = user();
    let first = graph(&app, owner, "older", "").await;
    let second = graph(&app, owner, "newer", "").await;
    // Touch the older one so that updatedAt and createdAt orders differ.
    let agent = agent_of(&app, owner, &first).await;
    let (status, _) =
        app.patch(&format!("/api/library/agents/{}", id_of(&agent)), owner, &json!({"is_favorite": true})).await;
    assert_eq!(status, 200);

    let page = library_page(&app, "/api/library/agents?sort_by=createdAt", owner).await;
    assert_eq!(agent_graph_ids(&page), vec![second.clone(), first.clone()]);
    let page = library_page(&app, "/api/library/agents?sort_by=updatedAt", owner).await;
    assert_eq!(agent_graph_ids(&page), vec![first, second]);

    let (status, body) = app.get("/api/library/agents?sort_by=name", owner).await;
    assert_eq!(status, 422, "{body}");
    assert_error(&body, "validation_error");
}

#[tokio::test]
async fn agent_is_found_by_id_and_by_graph() {
    let app = spawn_app().await;
    let owner = user();
    let graph_id = graph(&app, owner, "findable", "").await;
    let by_graph = agent_of(&app, owner, &graph_id).await;
    let (status, by_id) = app.get(&format!("/api/library/agents/{}", id_of(&by_graph)), owner).await;
    assert_eq!(status, 200, "{by_id}");
    assert_eq!(by_id, by_graph);
    assert_eq!(by_id["graph_id"], graph_id);

    let (status, pinned) = app.get(&format!("/api/library/agents/by-graph/{graph_id}?version=1"), owner).await;
    assert_eq!((status, pinned["id"].clone()), (200, by_id["id"].clone()));
    for path in [
        format!("/api/library/agents/by-graph/{graph_id}?version=2"),
        format!("/api/library/agents/by-graph/{}", Uuid::new_v4()),
        format!("/api/library/agents/{}", Uuid::new_v4()),
        "/api/library/agents/not-a-uuid".to_owned(),
    ] {
        let (status, body) = app.get(&path, owner).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_error(&body, "not_found");
    }
}

#[tokio::test]
async fn favourites_list_only_favourite_agents() {
    let app = spawn_app().await;
    let owner = user();
    let liked = graph(&app, owner, "liked", "").await;
    graph(&app, owner, "plain", "").await;
    let agent = agent_of(&app, owner, &liked).await;
    let path = format!("/api/library/agents/{}", id_of(&agent));

    let (status, updated) = app.patch(&path, owner, &json!({"is_favorite": true})).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["is_favorite"], true);
    let favourites = library_page(&app, "/api/library/agents/favorites", owner).await;
    assert_eq!(agent_graph_ids(&favourites), vec![liked.clone()]);
    assert_eq!(favourites["pagination"]["total_items"], 1);

    let (status, _) = app.patch(&path, owner, &json!({"is_favorite": false})).await;
    assert_eq!(status, 200);
    let favourites = library_page(&app, "/api/library/agents/favorites", owner).await;
    assert_eq!(favourites["agents"], json!([]));
}

#[tokio::test]
async fn pinning_a_nonexistent_version_is_404() {
    let app = spawn_app().await;
    let owner = user();
    let graph_id = graph(&app, owner, "pinned", "").await;
    let agent = agent_of(&app, owner, &graph_id).await;
    let path = format!("/api/library/agents/{}", id_of(&agent));
    let (status, body) = app.patch(&path, owner, &json!({"graph_version": 5})).await;
    assert_eq!(status, 404, "{body}");
    assert_error(&body, "not_found");
    assert_eq!(agent_of(&app, owner, &graph_id).await["graph_version"], 1);

    let (status, body) = app.patch(&path, owner, &json!({"graph_version": "two"})).await;
    assert_eq!(status, 422, "{body}");
    assert_error(&body, "validation_error");
}

#[tokio::test]
async fn agent_follows_the_active_graph_version() {
    let app = spawn_app().await;
    let owner = user();
    let graph_id = graph(&app, owner, "evolving", "").await;
    let mut v2 = sample_graph("evolved");
    v2["id"] = json!(graph_id);
    let (status, _) = app.put(&format!("/api/graphs/{graph_id}"), owner, &v2).await;
    assert_eq!(status, 200);
    let agent = agent_of(&app, owner, &graph_id).await;
    assert_eq!((agent["graph_version"].as_i64(), agent["name"].as_str()), (Some(2), Some("evolved")), "{agent}");
    assert_eq!(agent["is_latest_version"], true);

    let body = json!({"active_graph_version": 1});
    let (status, _) = app.put(&format!("/api/graphs/{graph_id}/versions/active"), owner, &body).await;
    assert_eq!(status, 200);
    let agent = agent_of(&app, owner, &graph_id).await;
    assert_eq!((agent["graph_version"].as_i64(), agent["name"].as_str()), (Some(1), Some("evolving")), "{agent}");
    assert_eq!(agent["is_latest_version"], false);
}

#[tokio::test]
async fn graph_settings_live_on_the_library_agent() {
    let app = spawn_app().await;
    let owner = user();
    let graph_id = graph(&app, owner, "careful", "").await;
    let defaults = json!({"human_in_the_loop_safe_mode": true, "sensitive_action_safe_mode": false});
    assert_eq!(agent_of(&app, owner, &graph_id).await["settings"], defaults);

    let path = format!("/api/graphs/{graph_id}/settings");
    let (status, settings) = app.patch(&path, owner, &json!({"human_in_the_loop_safe_mode": false})).await;
    assert_eq!(status, 200, "{settings}");
    let expected = json!({"human_in_the_loop_safe_mode": false, "sensitive_action_safe_mode": false});
    assert_eq!(settings, expected);
    assert_eq!(agent_of(&app, owner, &graph_id).await["settings"], expected);

    let (status, body) = app.patch(&path, owner, &json!({"human_in_the_loop_safe_mode": "no"})).await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = app.patch(&format!("/api/graphs/{}/settings", Uuid::new_v4()), owner, &expected).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn fork_copies_the_graph_into_a_new_agent() {
    let app = spawn_app().await;
    let owner = user();
    let original = graph(&app, owner, "Original", "to be copied").await;
    let agent = agent_of(&app, owner, &original).await;
    let (status, fork) =
        send(app.request(Method::POST, &format!("/api/library/agents/{}/fork", id_of(&agent)), owner)).await;
    assert_eq!(status, 200, "{fork}");
    assert_ne!(fork["id"], agent["id"], "a new library agent");
    let fork_graph = fork["graph_id"].as_str().expect("graph_id").to_owned();
    assert_ne!(fork_graph, original);
    assert_eq!(fork["name"], "Original (Copy)");

    let (status, copied) = app.get(&format!("/api/graphs/{fork_graph}"), owner).await;
    assert_eq!(status, 200, "{copied}");
    assert_eq!(copied["forked_from_id"], original);
    assert_eq!(copied["forked_from_version"], 1);
    assert_eq!(copied["name"], "Original (Copy)");
    let (_, source) = app.get(&format!("/api/graphs/{original}"), owner).await;
    assert_eq!(copied["nodes"].as_array().map(Vec::len), source["nodes"].as_array().map(Vec::len));
    assert_ne!(copied["nodes"][0]["id"], source["nodes"][0]["id"], "the copy has its own node ids");

    let mut graphs = listed_graph_ids(&app, owner).await;
    graphs.sort();
    let mut expected = vec![original, fork_graph];
    expected.sort();
    assert_eq!(graphs, expected);
    assert_eq!(library_page(&app, "/api/library/agents", owner).await["pagination"]["total_items"], 2);
}

#[tokio::test]
async fn deleted_agent_is_gone_from_the_library() {
    let app = spawn_app().await;
    let owner = user();
    let graph_id = graph(&app, owner, "short-lived", "").await;
    let kept = graph(&app, owner, "kept", "").await;
    let agent = agent_of(&app, owner, &graph_id).await;
    let path = format!("/api/library/agents/{}", id_of(&agent));

    let (status, body) = app.delete(&path, owner).await;
    assert_eq!((status, body), (204, Value::Null));
    let (status, body) = app.get(&path, owner).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = app.get(&format!("/api/library/agents/by-graph/{graph_id}"), owner).await;
    assert_eq!(status, 404);
    assert_eq!(agent_graph_ids(&library_page(&app, "/api/library/agents", owner).await), vec![kept]);
    let (status, _) = app.delete(&path, owner).await;
    assert_eq!(status, 404, "deleting twice");
    let (status, _) = app.patch(&path, owner, &json!({"is_favorite": true})).await;
    assert_eq!(status, 404, "a deleted agent cannot be updated");
}

#[tokio::test]
async fn other_users_get_404_for_an_agent() {
    let app = spawn_app().await;
    let (alice, bob) = (user(), user());
    let graph_id = graph(&app, alice, "alice's", "").await;
    let agent = agent_of(&app, alice, &graph_id).await;
    let path = format!("/api/library/agents/{}", id_of(&agent));
    let attempts = [
        app.get(&path, bob).await,
        app.get(&format!("/api/library/agents/by-graph/{graph_id}"), bob).await,
        app.patch(&path, bob, &json!({"is_favorite": true})).await,
        app.delete(&path, bob).await,
        send(app.request(Method::POST, &format!("{path}/fork"), bob)).await,
    ];
    for (i, (status, body)) in attempts.iter().enumerate() {
        assert_eq!(*status, 404, "attempt {i}: {body}");
        assert_error(body, "not_found");
    }
    assert_eq!(library_page(&app, "/api/library/agents", bob).await["pagination"]["total_items"], 0);
    assert!(listed_graph_ids(&app, bob).await.is_empty(), "no fork was created for bob");
    let (status, untouched) = app.get(&path, alice).await;
    assert_eq!((status, untouched["is_favorite"].as_bool()), (200, Some(false)), "{untouched}");
}

#[tokio::test]
async fn a_removed_agent_stays_removed_when_the_graph_gets_a_new_version() {
    let app = spawn_app().await;
    let owner = user();
    let graph = app.create_graph(owner, sample_graph("kept out")).await;
    let graph_id = graph["id"].as_str().unwrap().to_owned();
    let (_, agent) = app.get(&format!("/api/library/agents/by-graph/{graph_id}"), owner).await;
    let (status, _) = app.delete(&format!("/api/library/agents/{}", agent["id"].as_str().unwrap()), owner).await;
    assert_eq!(status, 204);
    let (status, _) = app.put(&format!("/api/graphs/{graph_id}"), owner, &sample_graph("kept out v2")).await;
    assert_eq!(status, 200);
    let (status, _) = app.get(&format!("/api/library/agents/by-graph/{graph_id}"), owner).await;
    assert_eq!(status, 404, "saving a version does not bring a removed agent back");
}
