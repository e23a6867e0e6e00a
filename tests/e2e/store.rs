//! The store as creators, admins and shoppers use it: the submission
//! lifecycle, listing pages (filters, sorting, paging, full-text ranking),
//! reviews, profiles, and adding a listed agent to a library to run it.

use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{greeting_graph, send, spawn_app, TestApp};
use crate::support::{admin_request, assert_error, event_count, events_of_type, id_of, user};

fn submission(graph_id: &str, slug: &str, name: &str) -> Value {
    json!({"agent_id": graph_id, "agent_version": 1, "slug": slug, "name": name, "sub_heading": format!("{name} sub"),
           "description": format!("{name} does things"), "categories": ["tools"], "image_urls": ["https://img/1.png"]})
}

pub(crate) async fn submit(app: &TestApp, owner: Uuid, graph_id: &str, slug: &str, name: &str) -> Value {
    let (status, body) = app.post("/api/store/submissions", owner, &submission(graph_id, slug, name)).await;
    assert_eq!(status, 200, "{body}");
    body
}

pub(crate) async fn review(app: &TestApp, admin: Uuid, version_id: &str, approve: bool) -> (u16, Value) {
    let body = json!({"store_listing_version_id": version_id, "is_approved": approve, "comments": "checked",
                      "internal_comments": "looked at it"});
    let path = format!("/api/store/admin/submissions/{version_id}/review");
    send(admin_request(app, Method::POST, &path, admin).json(&body)).await
}

/// A graph of `owner`'s, submitted under `slug` and approved.
async fn listed(app: &TestApp, owner: Uuid, slug: &str, name: &str, description: &str, category: &str) -> String {
    let graph_id = id_of(&app.create_graph(owner, greeting_graph()).await);
    let mut body = submission(&graph_id, slug, name);
    body["description"] = json!(description);
    body["categories"] = json!([category]);
    let (status, submitted) = app.post("/api/store/submissions", owner, &body).await;
    assert_eq!(status, 200, "{submitted}");
    let version = submitted["store_listing_version_id"].as_str().unwrap().to_owned();
    assert_eq!(review(app, user(), &version, true).await.0, 200);
    version
}

fn slugs(page: &Value) -> Vec<&str> {
    page["agents"].as_array().unwrap().iter().map(|a| a["slug"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn a_submission_goes_from_pending_to_listed_and_back_as_the_reference_says() {
    let app = spawn_app().await;
    let (owner, admin, stranger) = (user(), user(), user());
    let graph_id = id_of(&app.create_graph(owner, greeting_graph()).await);
    let first = submit(&app, owner, &graph_id, "greeter", "Greeter").await;
    assert_eq!(first["status"], "PENDING");
    assert_eq!(first["version"], 1);
    let v1 = first["store_listing_version_id"].as_str().unwrap().to_owned();
    let (_, page) = app.get("/api/store/agents", owner).await;
    assert_eq!(page["agents"], json!([]), "nothing listed before approval");

    let mut edit = submission(&graph_id, "greeter", "Greeter Pro");
    edit.as_object_mut().unwrap().retain(|k, _| !["agent_id", "agent_version", "slug"].contains(&k.as_str()));
    let (status, edited) = app.put(&format!("/api/store/submissions/{v1}"), owner, &edit).await;
    assert_eq!((status, edited["name"].as_str()), (200, Some("Greeter Pro")), "{edited}");
    let (status, _) = app.put(&format!("/api/store/submissions/{v1}"), stranger, &edit).await;
    assert_eq!(status, 404, "only the creator edits");

    let (status, body) = review(&app, user(), &v1, true).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .post(
            &format!("/api/store/admin/submissions/{v1}/review"),
            stranger,
            &json!({"store_listing_version_id": v1, "is_approved": true, "comments": ""}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_error(&body, "forbidden");
    let (status, approved) = review(&app, admin, &v1, true).await;
    assert_eq!((status, approved["status"].as_str()), (200, Some("APPROVED")), "{approved}");
    assert_eq!(approved["internal_comments"], "looked at it", "admins see internal comments");

    let (_, page) = app.get("/api/store/agents", stranger).await;
    assert_eq!(slugs(&page), ["greeter"]);
    let creator = page["agents"][0]["creator"].as_str().unwrap().to_owned();
    assert!(creator.starts_with("creator-"), "a default profile: {creator}");
    let (status, detail) = app.get(&format!("/api/store/agents/{}/GREETER", creator.to_uppercase()), stranger).await;
    assert_eq!(status, 200, "any case: {detail}");
    assert_eq!(detail["agent_name"], "Greeter Pro");
    assert_eq!(detail["agentGraphId"], graph_id.as_str());
    assert_eq!(detail["versions"], json!(["1"]));

    let (status, body) = app.put(&format!("/api/store/submissions/{v1}"), owner, &edit).await;
    assert_eq!(status, 400, "an approved version is not edited: {body}");
    let (status, _) = app.delete(&format!("/api/store/submissions/{v1}"), owner).await;
    assert_eq!(status, 400, "an approved version is never deleted");

    // A second version approved, then rejected: the store falls back to v1.
    let mut second = submission(&graph_id, "ignored", "Greeter Two");
    second["changes_summary"] = json!("louder");
    let (_, second) = app.post("/api/store/submissions", owner, &second).await;
    assert_eq!((second["version"].as_i64(), second["slug"].as_str()), (Some(2), Some("greeter")), "{second}");
    let v2 = second["store_listing_version_id"].as_str().unwrap().to_owned();
    review(&app, admin, &v2, true).await;
    let path = format!("/api/store/agents/{creator}/greeter?include_changelog=true");
    let (_, detail) = app.get(&path, stranger).await;
    assert_eq!(
        (detail["agent_name"].as_str(), detail["active_version_id"].as_str()),
        (Some("Greeter Two"), Some(v2.as_str()))
    );
    assert_eq!(detail["changelog"][0]["changes_summary"], "louder");
    review(&app, admin, &v2, false).await;
    let (_, detail) = app.get(&path, stranger).await;
    assert_eq!(detail["active_version_id"], v1.as_str(), "rejecting the active version falls back: {detail}");

    // A pending third version is withdrawn; another user cannot withdraw.
    let third = submit(&app, owner, &graph_id, "greeter", "Greeter Three").await;
    let v3 = third["store_listing_version_id"].as_str().unwrap();
    assert_eq!(app.delete(&format!("/api/store/submissions/{v3}"), stranger).await.0, 404);
    assert_eq!(app.delete(&format!("/api/store/submissions/{v3}"), owner).await, (200, json!(true)));
    let (_, mine) = app.get("/api/store/submissions", owner).await;
    assert_eq!(mine["pagination"]["total_items"], 2, "{mine}");

    let (status, listings) =
        send(admin_request(&app, Method::GET, "/api/store/admin/listings?status=APPROVED", admin)).await;
    assert_eq!(status, 200, "{listings}");
    assert_eq!(listings["listings"][0]["versions"].as_array().unwrap().len(), 2);
    assert_eq!(app.get("/api/store/admin/listings", owner).await.0, 403);

    let download = app.anonymous(Method::GET, &format!("/api/store/download/agents/{v1}")).send().await.unwrap();
    assert_eq!(download.status(), 200);
    let disposition = download.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert_eq!(disposition, format!("attachment; filename=agent_{graph_id}_v1.json"));
    let file: Value = download.json().await.unwrap();
    assert_eq!(file["nodes"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        app.anonymous(Method::GET, &format!("/api/store/download/agents/{v2}")).send().await.unwrap().status(),
        404,
        "a rejected version is not downloadable"
    );

    let (status, body) = app.post("/api/store/submissions", stranger, &submission(&graph_id, "mine", "Stolen")).await;
    assert_eq!(status, 404, "only the owner submits a graph: {body}");
    let before = events_of_type(&app, "StoreVersionSubmitted").await;
    let (status, _) = app.post("/api/store/submissions", owner, &submission(&graph_id, "x", "  ")).await;
    assert_eq!(status, 400);
    let (status, _) = app.get("/api/store/agents?page=0", owner).await;
    assert_eq!(status, 422);
    assert_eq!(events_of_type(&app, "StoreVersionSubmitted").await, before, "refused submissions append nothing");
}

#[tokio::test]
async fn store_pages_filter_sort_page_and_rank_full_text_matches() {
    let app = spawn_app().await;
    let (alice, bob) = (user(), user());
    let (status, _) = app
        .post(
            "/api/store/profile",
            alice,
            &json!({"name": "Alice", "username": "Alice",
        "description": "builds", "links": [], "avatar_url": "https://a/1.png"}),
        )
        .await;
    assert_eq!(status, 200);
    listed(&app, alice, "weather-now", "Weather Now", "Forecasts for your city", "weather").await;
    listed(&app, alice, "umbrella", "Umbrella Helper", "Tells you when the weather turns", "lifestyle").await;
    listed(&app, bob, "stocks", "Stock Watch", "Market prices", "finance").await;
    listed(&app, bob, "news", "News Digest", "Headlines every morning", "news").await;
    listed(&app, bob, "recipes", "Recipe Finder", "Dinner ideas", "lifestyle").await;

    let (_, page) = app.get("/api/store/agents?search_query=weather", bob).await;
    assert_eq!(slugs(&page), ["weather-now", "umbrella"], "a title match ranks above a description match");
    let (_, past) = app.get("/api/store/agents?search_query=weather&page=3&page_size=1", bob).await;
    assert_eq!((past["agents"].clone(), past["pagination"]["total_items"].clone()), (json!([]), json!(2)), "{past}");
    let (_, page) = app.get("/api/store/agents?search_query=forecasting", bob).await;
    assert_eq!(slugs(&page), ["weather-now"], "stemmed: {page}");
    let (_, page) = app.get("/api/store/agents?category=lifestyle&sorted_by=name", bob).await;
    assert_eq!(slugs(&page), ["recipes", "umbrella"]);
    let (_, page) = app.get("/api/store/agents?creator=alice&sorted_by=name", bob).await;
    assert_eq!(slugs(&page), ["umbrella", "weather-now"]);
    let (_, page) = app.get("/api/store/agents?sorted_by=name&page=2&page_size=2", bob).await;
    assert_eq!(slugs(&page), ["stocks", "umbrella"]);
    assert_eq!(page["pagination"], json!({"total_items": 5, "total_pages": 3, "current_page": 2, "page_size": 2}));
    let (_, page) = app.get("/api/store/agents?search_query=%22or%20((", bob).await;
    assert!(page["agents"].is_array(), "any search text is safe: {page}");

    let (_, creators) = app.get("/api/store/creators?sorted_by=num_agents", bob).await;
    let names: Vec<&str> =
        creators["creators"].as_array().unwrap().iter().map(|c| c["username"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 2);
    assert_eq!(creators["creators"][0]["num_agents"], 3);
    let (status, page) = app.get("/api/store/creator/ALICE", bob).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["name"], "Alice");
    let mut top = page["top_categories"].as_array().unwrap().clone();
    top.sort_by_key(|c| c.as_str().unwrap().to_owned());
    assert_eq!(top, [json!("lifestyle"), json!("weather")]);
    let (status, body) = app
        .post(
            "/api/store/profile",
            bob,
            &json!({"name": "Bob", "username": "alice",
        "description": "", "links": [], "avatar_url": ""}),
        )
        .await;
    assert_eq!(status, 409, "a username is held by its first user: {body}");
}

#[tokio::test]
async fn reviews_aggregate_and_a_listed_agent_runs_from_another_users_library() {
    let app = spawn_app().await;
    let (creator, shopper, critic) = (user(), user(), user());
    let version = listed(&app, creator, "greeter", "Greeter", "Says hello", "tools").await;
    let (_, page) = app.get("/api/store/agents", shopper).await;
    let username = page["agents"][0]["creator"].as_str().unwrap().to_owned();
    let path = format!("/api/store/agents/{username}/greeter/review");
    for (who, score) in [(shopper, 4), (critic, 2), (shopper, 5)] {
        let (status, body) = app.post(&path, who, &json!({"store_listing_version_id": version, "score": score})).await;
        assert_eq!((status, body["score"].as_i64()), (200, Some(score)), "{body}");
    }
    let (status, _) = app.post(&path, critic, &json!({"store_listing_version_id": version, "score": 9})).await;
    assert_eq!(status, 400);
    let (_, detail) = app.get(&format!("/api/store/agents/{username}/greeter"), shopper).await;
    assert_eq!(detail["rating"], 3.5, "the latest review of each user counts: {detail}");

    let (status, agent) = app.post("/api/library/agents", shopper, &json!({"store_listing_version_id": version})).await;
    assert_eq!(status, 201, "{agent}");
    assert_eq!(agent["can_access_graph"], false, "the graph stays the creator's");
    assert_eq!(agent["marketplace_listing"]["slug"], "greeter", "{agent}");
    assert_eq!(agent["marketplace_listing"]["creator"]["slug"], username.as_str());
    assert_eq!(agent["image_url"], "https://img/1.png");
    let (status, found) = app.get(&format!("/api/library/agents/marketplace/{version}"), shopper).await;
    assert_eq!((status, found["id"].clone()), (200, agent["id"].clone()));
    assert_eq!(app.get(&format!("/api/library/agents/marketplace/{version}"), critic).await.0, 404);
    let graph_id = agent["graph_id"].as_str().unwrap();
    let (status, queued) =
        app.post(&format!("/api/graphs/{graph_id}/execute/1"), shopper, &json!({"inputs": {"name": "Shop"}})).await;
    assert_eq!(status, 200, "a library agent from the store runs: {queued}");
    let run =
        app.run_ended(shopper, graph_id, queued["id"].as_str().unwrap(), std::time::Duration::from_secs(15)).await;
    assert_eq!(run["outputs"], json!({"greeting": ["Hello, Shop!"]}));
    let (_, agent) = app.get(&format!("/api/library/agents/{}", agent["id"].as_str().unwrap()), shopper).await;
    assert_eq!((agent["status"].as_str(), agent["new_output"].as_bool()), (Some("COMPLETED"), Some(true)), "{agent}");
    let (status, _) =
        app.post(&format!("/api/graphs/{graph_id}/execute/1"), critic, &json!({"inputs": {"name": "x"}})).await;
    assert_eq!(status, 404, "not in the critic's library");
    // Run counts trail the run by a moment (a run does not wait for the store).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, detail) = app.get(&format!("/api/store/agents/{username}/greeter"), shopper).await;
        if detail["runs"] == 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "runs come from execution events: {detail}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn presets_save_inputs_merge_them_under_a_runs_own_and_stay_their_users() {
    let app = spawn_app().await;
    let (owner, stranger) = (user(), user());
    let graph = app.create_graph(owner, greeting_graph()).await;
    let graph_id = id_of(&graph);
    let body = json!({"graph_id": graph_id, "graph_version": 1, "inputs": {"name": "Preset"}, "credentials": {},
                      "name": "mine", "description": "greets"});
    let (status, preset) = app.post("/api/library/presets", owner, &body).await;
    assert_eq!(status, 200, "{preset}");
    assert_eq!((preset["inputs"].clone(), preset["is_active"].clone()), (json!({"name": "Preset"}), json!(true)));
    let id = preset["id"].as_str().unwrap().to_owned();
    assert_eq!(app.post("/api/library/presets", stranger, &body).await.0, 404, "not the stranger's graph");

    let (status, run) = app.post(&format!("/api/library/presets/{id}/execute"), owner, &json!({})).await;
    assert_eq!((status, run["preset_id"].as_str()), (200, Some(id.as_str())), "{run}");
    let ended = app.run_ended(owner, &graph_id, run["id"].as_str().unwrap(), std::time::Duration::from_secs(15)).await;
    assert_eq!(ended["outputs"], json!({"greeting": ["Hello, Preset!"]}));
    let (_, run) =
        app.post(&format!("/api/library/presets/{id}/execute"), owner, &json!({"inputs": {"name": "Over"}})).await;
    let ended = app.run_ended(owner, &graph_id, run["id"].as_str().unwrap(), std::time::Duration::from_secs(15)).await;
    assert_eq!(ended["outputs"], json!({"greeting": ["Hello, Over!"]}), "the body's inputs win");

    let (status, from_run) = app
        .post(
            "/api/library/presets",
            owner,
            &json!({"graph_execution_id": run["id"], "name": "again", "description": ""}),
        )
        .await;
    assert_eq!((status, from_run["inputs"].clone()), (200, json!({"name": "Over"})), "{from_run}");

    let (status, patched) =
        app.patch(&format!("/api/library/presets/{id}"), owner, &json!({"name": "renamed", "is_active": false})).await;
    assert_eq!((status, patched["name"].as_str(), patched["is_active"].as_bool()), (200, Some("renamed"), Some(false)));
    assert_eq!(app.patch(&format!("/api/library/presets/{id}"), stranger, &json!({"name": "x"})).await.0, 404);
    assert_eq!(app.post(&format!("/api/library/presets/{id}/execute"), stranger, &json!({})).await.0, 404);
    let (_, page) = app.get(&format!("/api/library/presets?graph_id={graph_id}"), owner).await;
    assert_eq!(page["pagination"]["total_items"], 2, "{page}");
    let (_, page) = app.get(&format!("/api/library/presets?graph_id={graph_id}"), stranger).await;
    assert_eq!(page["presets"], json!([]));
    assert_eq!(app.delete(&format!("/api/library/presets/{id}"), owner).await.0, 204);
    assert_eq!(app.get(&format!("/api/library/presets/{id}"), owner).await.0, 404);
    let (_, page) = app.get(&format!("/api/library/presets?graph_id={graph_id}"), owner).await;
    assert_eq!(page["pagination"]["total_items"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_many_racing_for_one_username_or_slug_exactly_one_wins() {
    let app = spawn_app().await;
    let racers: Vec<Uuid> = (0..16).map(|_| user()).collect();
    let profile = json!({"name": "Me", "username": "popular", "description": "", "links": [], "avatar_url": ""});
    let answers =
        futures_util::future::join_all(racers.iter().map(|u| app.post("/api/store/profile", *u, &profile))).await;
    let won = answers.iter().filter(|(status, _)| *status == 200).count();
    let taken = answers.iter().filter(|(status, _)| *status == 409).count();
    assert_eq!((won, taken), (1, 15), "{answers:?}");
    assert_eq!(events_of_type(&app, "NameClaimed").await, 1);

    let owner = user();
    let mut graphs = Vec::new();
    for _ in 0..8 {
        graphs.push(id_of(&app.create_graph(owner, greeting_graph()).await));
    }
    let bodies: Vec<Value> = graphs.iter().map(|g| submission(g, "same-slug", "Same")).collect();
    let answers =
        futures_util::future::join_all(bodies.iter().map(|b| app.post("/api/store/submissions", owner, b))).await;
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "one listing holds the slug: {statuses:?}");
    assert!(statuses.iter().all(|s| [200, 409].contains(s)), "{statuses:?}");
    assert_eq!(events_of_type(&app, "StoreListingCreated").await, 1, "the losers appended nothing");
}

#[tokio::test]
async fn the_store_is_read_through_the_external_api_with_a_read_store_key() {
    let app = spawn_app().await;
    let (creator, reader) = (user(), user());
    listed(&app, creator, "greeter", "Greeter", "Says hello", "tools").await;
    let (_, with_scope) =
        crate::api_keys::id_and_secret(&crate::api_keys::create_key(&app, reader, &["READ_STORE"]).await);
    let (_, without) =
        crate::api_keys::id_and_secret(&crate::api_keys::create_key(&app, reader, &["READ_BLOCK"]).await);
    let get = |path: &str, key: &str| {
        send(app.anonymous(Method::GET, &format!("/external-api/v1{path}")).header("X-API-Key", key.to_owned()))
    };
    let (status, page) = get("/store/agents?search_query=hello", &with_scope).await;
    assert_eq!((status, slugs(&page)), (200, vec!["greeter"]), "{page}");
    let creator_name = page["agents"][0]["creator"].as_str().unwrap().to_owned();
    let (status, detail) = get(&format!("/store/agents/{creator_name}/greeter"), &with_scope).await;
    assert_eq!((status, detail["agent_name"].as_str()), (200, Some("Greeter")));
    let (status, creators) = get("/store/creators", &with_scope).await;
    assert_eq!((status, creators["creators"][0]["username"].as_str()), (200, Some(creator_name.as_str())));
    let (status, _) = get(&format!("/store/creators/{creator_name}"), &with_scope).await;
    assert_eq!(status, 200);
    assert_eq!(get("/store/agents", &without).await.0, 403, "READ_STORE is needed");
    assert_eq!(get("/store/agents", "agpt_nonsense").await.0, 401);
}

/// A store agent in another user's library: the creator's graph with v1
/// listed and approved and v2 saved since, unpublished.
struct Held {
    creator: Uuid,
    holder: Uuid,
    graph_id: String,
    agent_id: String,
}

/// The graph of `creator` saved anew (a version of its own, not listed).
async fn save_version(app: &TestApp, creator: Uuid, graph_id: &str, greeting: &str) {
    let mut draft = greeting_graph();
    draft["id"] = json!(graph_id);
    draft["nodes"][1]["input_default"]["format"] = json!(greeting);
    let (status, saved) = app.put(&format!("/api/graphs/{graph_id}"), creator, &draft).await;
    assert_eq!(status, 200, "{saved}");
}

async fn held(app: &TestApp) -> Held {
    let (creator, holder) = (user(), user());
    let listing_version = listed(app, creator, "greeter", "Greeter", "Says hello", "tools").await;
    let (_, detail) = app.get(&format!("/api/store/agents/{listing_version}"), holder).await;
    let graph_id = detail["agentGraphId"].as_str().unwrap_or_else(|| panic!("{detail}")).to_owned();
    save_version(app, creator, &graph_id, "Unreleased, {{name}}!").await;
    let body = json!({"store_listing_version_id": listing_version});
    let (status, agent) = app.post("/api/library/agents", holder, &body).await;
    assert_eq!((status, agent["graph_version"].as_i64()), (201, Some(1)), "{agent}");
    Held { creator, holder, graph_id, agent_id: id_of(&agent) }
}

#[tokio::test]
async fn a_store_agents_holder_reads_only_approved_versions_and_never_the_creators_secrets() {
    let app = spawn_app().await;
    let h = held(&app).await;
    let g = &h.graph_id;
    for path in [format!("/api/graphs/{g}?version=2"), format!("/api/graphs/{g}/versions/2")] {
        let (status, body) = app.get(&path, h.holder).await;
        assert_eq!(status, 404, "{path}: an unpublished version is as if absent: {body}");
    }
    for path in
        [format!("/api/graphs/{g}?version=1"), format!("/api/graphs/{g}/versions/1"), format!("/api/graphs/{g}")]
    {
        let (status, body) = app.get(&path, h.holder).await;
        assert_eq!((status, body["version"].as_i64()), (200, Some(1)), "{path}: the approved version: {body}");
        assert_eq!(body["user_id"], "", "{path}: served as exported");
    }
    let (status, _) = app.get(&format!("/api/graphs/{g}?version=1"), user()).await;
    assert_eq!(status, 200, "an approved version is public, as the store's download is");
    let (_, own) = app.get(&format!("/api/graphs/{g}"), h.creator).await;
    assert_eq!((own["version"].as_i64(), own["user_id"].as_str()), (Some(2), Some(h.creator.to_string().as_str())));
}

#[tokio::test]
async fn a_store_agents_holder_pins_only_approved_versions() {
    let app = spawn_app().await;
    let h = held(&app).await;
    let path = format!("/api/library/agents/{}", h.agent_id);
    let events = event_count(&app).await;
    let (status, body) = app.patch(&path, h.holder, &json!({"graph_version": 2})).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(event_count(&app).await, events, "nothing appended");
    let (status, body) = app.patch(&path, h.holder, &json!({"graph_version": 1, "is_favorite": true})).await;
    assert_eq!((status, body["graph_version"].as_i64()), (200, Some(1)), "{body}");
    let (status, body) = app.patch(&path, h.creator, &json!({"graph_version": 2})).await;
    assert_eq!(status, 404, "not the creator's agent: {body}");
    let own = format!("/api/library/agents/by-graph/{}", h.graph_id);
    let (_, mine) = app.get(&own, h.creator).await;
    let (status, body) =
        app.patch(&format!("/api/library/agents/{}", id_of(&mine)), h.creator, &json!({"graph_version": 1})).await;
    assert_eq!((status, body["graph_version"].as_i64()), (200, Some(1)), "the creator pins any of its own: {body}");
}

#[tokio::test]
async fn a_store_agents_holder_runs_only_approved_versions() {
    let app = spawn_app().await;
    let h = held(&app).await;
    let g = &h.graph_id;
    let events = event_count(&app).await;
    let (status, body) =
        app.post(&format!("/api/graphs/{g}/execute/2"), h.holder, &json!({"inputs": {"name": "B"}})).await;
    assert_eq!(status, 404, "{body}");
    let preset = json!({"graph_id": g, "graph_version": 2, "inputs": {"name": "B"}, "credentials": {},
                        "name": "sneaky", "description": ""});
    let (status, body) = app.post("/api/library/presets", h.holder, &preset).await;
    assert_eq!(status, 404, "{body}");
    let schedule = json!({"name": "nightly", "cron": "0 3 * * *", "inputs": {"name": "B"}, "graph_version": 2});
    let (status, body) = app.post(&format!("/api/graphs/{g}/schedules"), h.holder, &schedule).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(event_count(&app).await, events, "nothing appended");

    let (status, queued) =
        app.post(&format!("/api/graphs/{g}/execute/1"), h.holder, &json!({"inputs": {"name": "B"}})).await;
    assert_eq!(status, 200, "{queued}");
    let run = app.run_ended(h.holder, g, queued["id"].as_str().unwrap(), std::time::Duration::from_secs(15)).await;
    assert_eq!(run["outputs"], json!({"greeting": ["Hello, B!"]}));
    let (status, queued) =
        app.post(&format!("/api/graphs/{g}/execute/2"), h.creator, &json!({"inputs": {"name": "A"}})).await;
    assert_eq!(status, 200, "the creator runs any of its versions: {queued}");
}

#[tokio::test]
async fn a_store_agents_holder_forks_only_a_version_that_is_still_approved() {
    let app = spawn_app().await;
    let h = held(&app).await;
    let admin = user();
    // v2 listed and approved, pinned by the holder, then rejected.
    let mut second = submission(&h.graph_id, "greeter", "Greeter Two");
    second["agent_version"] = json!(2);
    let (status, submitted) = app.post("/api/store/submissions", h.creator, &second).await;
    assert_eq!(status, 200, "{submitted}");
    let v2 = submitted["store_listing_version_id"].as_str().unwrap().to_owned();
    assert_eq!(review(&app, admin, &v2, true).await.0, 200);
    let path = format!("/api/library/agents/{}", h.agent_id);
    let (status, body) = app.patch(&path, h.holder, &json!({"graph_version": 2})).await;
    assert_eq!((status, body["graph_version"].as_i64()), (200, Some(2)), "an approved version is pinned: {body}");
    assert_eq!(app.get(&format!("/api/graphs/{}/versions/2", h.graph_id), h.holder).await.0, 200);
    assert_eq!(review(&app, admin, &v2, false).await.0, 200);

    let fork = format!("/api/library/agents/{}/fork", h.agent_id);
    let events = event_count(&app).await;
    let (status, body) = send(app.request(Method::POST, &fork, h.holder)).await;
    assert_eq!(status, 404, "a rejected version is not forked: {body}");
    let (status, body) =
        app.post(&format!("/api/graphs/{}/execute/2", h.graph_id), h.holder, &json!({"inputs": {"name": "x"}})).await;
    assert_eq!(status, 404, "nor run: {body}");
    assert_eq!(app.get(&format!("/api/graphs/{}/versions/2", h.graph_id), h.holder).await.0, 404, "nor read");
    assert_eq!(event_count(&app).await, events, "nothing appended");

    let (status, _) = app.patch(&path, h.holder, &json!({"graph_version": 1})).await;
    assert_eq!(status, 200);
    let (status, forked) = send(app.request(Method::POST, &fork, h.holder)).await;
    assert_eq!(status, 200, "{forked}");
    let copy = forked["graph_id"].as_str().unwrap();
    let (_, copied) = app.get(&format!("/api/graphs/{copy}"), h.holder).await;
    assert_eq!(
        (copied["forked_from_version"].as_i64(), copied["nodes"][1]["input_default"]["format"].as_str()),
        (Some(1), Some("Hello, {{name}}!")),
        "{copied}"
    );
}

#[tokio::test]
async fn a_downloaded_agent_holds_neither_its_creators_id_nor_their_credentials() {
    let app = spawn_app().await;
    let (creator, admin) = (user(), user());
    let sub_graph = id_of(&app.create_graph(creator, crate::helpers::echo_graph()).await);
    let credential = Uuid::new_v4();
    let mut graph = greeting_graph();
    graph["nodes"].as_array_mut().unwrap().extend([
        json!({"id": "keyed", "block_id": crate::helpers::blocks::STORE_VALUE, "input_default": {
            "input": "x",
            "credentials": {"id": credential, "provider": "openai", "type": "api_key", "title": "creator's key"}}}),
        json!({"id": "sub", "block_id": "e189baac-8c20-45a1-94a7-55177ea42565", "input_default": {
            "user_id": creator, "graph_id": sub_graph, "graph_version": 1, "inputs": {},
            "input_schema": {"type": "object", "properties": {"n": {}}}, "output_schema": {"type": "object", "properties": {"echo": {}}}}}),
    ]);
    let graph_id = id_of(&app.create_graph(creator, graph).await);
    let (status, submitted) =
        app.post("/api/store/submissions", creator, &submission(&graph_id, "keyed", "Keyed")).await;
    assert_eq!(status, 200, "{submitted}");
    let version = submitted["store_listing_version_id"].as_str().unwrap().to_owned();
    let admin_path = format!("/api/store/admin/submissions/download/{version}");
    let download = |path: String, admin_user: Option<Uuid>| {
        let request = match admin_user {
            Some(a) => admin_request(&app, Method::GET, &path, a),
            None => app.anonymous(Method::GET, &path),
        };
        async move {
            let response = request.send().await.expect("download");
            (response.status().as_u16(), response.text().await.expect("body"))
        }
    };
    let leaks = |file: &str| file.contains(&creator.to_string()) || file.contains(&credential.to_string());
    let (status, file) = download(admin_path.clone(), Some(admin)).await;
    assert_eq!(status, 200, "{file}");
    assert!(!leaks(&file), "the admin's download is the export view: {file}");
    assert_eq!(review(&app, admin, &version, true).await.0, 200);
    let (status, file) = download(format!("/api/store/download/agents/{version}"), None).await;
    assert_eq!(status, 200, "{file}");
    assert!(!leaks(&file), "the public download is the export view: {file}");
    let exported: Value = serde_json::from_str(&file).unwrap();
    assert_eq!(exported["user_id"], "");
    assert_eq!(exported["nodes"].as_array().map(Vec::len), Some(5), "{exported}");
    let (_, own) = app.get(&format!("/api/graphs/{graph_id}"), creator).await;
    assert!(leaks(&own.to_string()), "the creator's own copy keeps both");
}
