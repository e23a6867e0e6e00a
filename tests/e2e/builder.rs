//! The builder's block menu (`/api/builder`): every route's shape, the
//! block filters and paging, blocks by id, one search over blocks, the
//! caller's library (and nobody else's) and the store (approved listings
//! only), and the limits on what a client may send.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{blocks, greeting_graph, sample_graph, send, spawn_app, TestApp};
use crate::support::{admin_request, assert_error, id_of, user};

/// GET `path` as `user`, expecting 200.
async fn ok(app: &TestApp, path: &str, user: Uuid) -> Value {
    let (status, body) = app.get(path, user).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

fn names(items: &Value) -> Vec<&str> {
    items.as_array().expect("a list").iter().filter_map(|b| b["name"].as_str()).collect()
}

/// Every key AutoGPT's `BlockInfo` has, and nothing else.
#[track_caller]
fn assert_block_info(block: &Value) {
    let keys: HashSet<&str> = block.as_object().expect("an object").keys().map(String::as_str).collect();
    let expected = [
        "id",
        "name",
        "inputSchema",
        "outputSchema",
        "costs",
        "description",
        "categories",
        "contributors",
        "staticOutput",
        "uiType",
    ];
    assert_eq!(keys, expected.into_iter().collect(), "{block}");
}

/// A graph of `owner`'s listed in the store under `slug` and approved.
async fn listed(app: &TestApp, owner: Uuid, slug: &str, name: &str) -> String {
    let graph_id = id_of(&app.create_graph(owner, greeting_graph()).await);
    let body = json!({"agent_id": graph_id, "agent_version": 1, "slug": slug, "name": name,
        "sub_heading": format!("{name} sub"), "description": format!("{name} does things"),
        "categories": ["tools"], "image_urls": ["https://img/1.png"]});
    let (status, submitted) = app.post("/api/store/submissions", owner, &body).await;
    assert_eq!(status, 200, "{submitted}");
    submitted["store_listing_version_id"].as_str().unwrap().to_owned()
}

async fn approve(app: &TestApp, version_id: &str) {
    let body = json!({"store_listing_version_id": version_id, "is_approved": true, "comments": "ok"});
    let path = format!("/api/store/admin/submissions/{version_id}/review");
    let (status, reviewed) = send(admin_request(app, Method::POST, &path, user()).json(&body)).await;
    assert_eq!(status, 200, "{reviewed}");
}

#[tokio::test]
async fn menu_routes_answer_the_reference_shapes() {
    let app = spawn_app().await;
    let me = user();
    let (status, body) = send(app.anonymous(Method::GET, "/api/builder/suggestions")).await;
    assert_eq!(status, 401, "{body}");

    let suggestions = ok(&app, "/api/builder/suggestions", me).await;
    assert_eq!((&suggestions["otto_suggestions"], &suggestions["recent_searches"]), (&json!([]), &json!([])));
    assert!(suggestions["providers"].as_array().is_some_and(|p| p.contains(&json!("openai"))), "{suggestions}");
    let top = suggestions["top_blocks"].as_array().unwrap();
    assert_eq!(top.len(), 5);
    top.iter().for_each(assert_block_info);
    assert!(top.iter().all(|b| !["Input", "Output", "Agent"].contains(&b["uiType"].as_str().unwrap())));

    let categories = ok(&app, "/api/builder/categories?blocks_per_category=2", me).await;
    let listed: Vec<&str> = categories.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    let mut sorted = listed.clone();
    sorted.sort_unstable();
    assert_eq!(listed, sorted, "by name");
    assert!(listed.contains(&"ai") && listed.contains(&"basic"), "{listed:?}");
    for category in categories.as_array().unwrap() {
        let blocks = category["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 2 && blocks.len() as i64 <= category["total_blocks"].as_i64().unwrap());
        blocks.iter().for_each(assert_block_info);
    }
    let catalog = ok(&app, "/api/blocks", me).await;
    let catalog = catalog.as_array().unwrap();
    let in_ai = |b: &&Value| b["categories"].as_array().unwrap().iter().any(|c| c["category"] == "AI");
    let ai = categories.as_array().unwrap().iter().find(|c| c["name"] == "ai").unwrap();
    assert_eq!(ai["total_blocks"], catalog.iter().filter(in_ai).count(), "{ai}");
    let none = ok(&app, "/api/builder/categories?blocks_per_category=0", me).await;
    assert!(none.as_array().unwrap().iter().all(|c| c["blocks"] == json!([])));

    let providers = ok(&app, "/api/builder/providers?page_size=2", me).await;
    assert_eq!(providers["providers"].as_array().unwrap().len(), 2);
    assert_eq!(providers["providers"][0], json!({"name": "http", "description": "", "integration_count": 1}));
    let all = providers["pagination"]["total_items"].as_i64().unwrap();
    assert_eq!(providers["pagination"]["total_pages"], (all + 1) / 2);
    let everyone = ok(&app, "/api/builder/providers", me).await;
    let every: Vec<&str> =
        everyone["providers"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(every.contains(&"http") && every.contains(&"openai"), "{every:?}");

    let counts = ok(&app, "/api/builder/counts", me).await;
    assert_eq!((counts["my_agents"].as_i64(), counts["marketplace_agents"].as_i64()), (Some(0), Some(0)));
    let total = counts["all_blocks"].as_i64().unwrap();
    let parts = ["input_blocks", "action_blocks", "output_blocks"].map(|k| counts[k].as_i64().unwrap());
    assert_eq!(parts.iter().sum::<i64>(), total, "{counts}");
    let needs_credentials = |b: &&Value| b["inputSchema"]["properties"].get("credentials").is_some();
    assert_eq!(counts["integrations"], catalog.iter().filter(needs_credentials).count(), "{counts}");
    assert_eq!(total as usize, catalog.len() - 1, "all but AgentExecutorBlock");
    app.create_graph(me, sample_graph("mine")).await;
    assert_eq!(ok(&app, "/api/builder/counts", me).await["my_agents"], 1);
    assert_eq!(ok(&app, "/api/builder/counts", user()).await["my_agents"], 0, "only the caller's");
}

#[tokio::test]
async fn blocks_are_filtered_by_category_kind_and_provider_and_paged() {
    let app = spawn_app().await;
    let me = user();
    let ai = ok(&app, "/api/builder/blocks?category=AI", me).await;
    let found = names(&ai["blocks"]);
    for llm in ["AIConversationBlock", "AIStructuredResponseGeneratorBlock", "AITextGeneratorBlock"] {
        assert!(found.contains(&llm), "{llm}: {found:?}");
    }
    for block in ai["blocks"].as_array().unwrap() {
        assert_block_info(block);
        assert!(block["categories"].as_array().unwrap().iter().any(|c| c["category"] == "AI"), "{block}");
    }
    let n = found.len();
    assert_eq!(ai["pagination"], json!({"total_items": n, "total_pages": 1, "current_page": 1, "page_size": 50}));
    assert_eq!(ok(&app, "/api/builder/blocks?category=ai", me).await["pagination"]["total_items"], n);

    let inputs = ok(&app, "/api/builder/blocks?type=input", me).await;
    assert!(inputs["blocks"].as_array().unwrap().iter().all(|b| b["uiType"] == "Input"), "{inputs}");
    assert!(names(&inputs["blocks"]).contains(&"AgentInputBlock"));
    let outputs = ok(&app, "/api/builder/blocks?type=output", me).await;
    assert_eq!(names(&outputs["blocks"]), ["AgentOutputBlock"]);
    let http = ok(&app, "/api/builder/blocks?provider=http", me).await;
    assert_eq!(names(&http["blocks"]), ["SendAuthenticatedWebRequestBlock"]);
    let both = ok(&app, "/api/builder/blocks?category=ai&provider=http", me).await;
    assert_eq!(both["blocks"], json!([]), "filters combine");

    let all = ok(&app, "/api/builder/blocks?page_size=100", me).await;
    let total = all["pagination"]["total_items"].as_i64().unwrap();
    assert!(!names(&all["blocks"]).contains(&"AgentExecutorBlock"), "agents are placed from the library");
    let first = ok(&app, "/api/builder/blocks?page_size=7", me).await;
    let second = ok(&app, "/api/builder/blocks?page_size=7&page=2", me).await;
    assert_eq!(second["pagination"]["total_pages"], (total + 6) / 7);
    let all_names = names(&all["blocks"]);
    assert_eq!(names(&first["blocks"]), all_names[..7]);
    assert_eq!(names(&second["blocks"]), all_names[7..14]);
    let past = ok(&app, "/api/builder/blocks?page=1000", me).await;
    assert_eq!(past["blocks"], json!([]));
}

#[tokio::test]
async fn batch_returns_exactly_the_asked_blocks() {
    let app = spawn_app().await;
    let unknown = Uuid::new_v4();
    let path = format!(
        "/api/builder/blocks/batch?block_ids={}&block_ids={unknown}&block_ids={}",
        blocks::PRINT,
        blocks::STORE_VALUE.to_uppercase()
    );
    let found = ok(&app, &path, user()).await;
    assert_eq!(names(&found), ["PrintToConsoleBlock", "StoreValueBlock"], "in the order asked, unknown left out");
    found.as_array().unwrap().iter().for_each(assert_block_info);
    assert_eq!(found[1]["id"], blocks::STORE_VALUE);
    assert_eq!(found[1]["staticOutput"], true);
}

/// The kinds of a search page's items: block, library agent or store agent.
fn kinds(page: &Value) -> Vec<(&'static str, String)> {
    let items = page["items"].as_array().unwrap();
    items
        .iter()
        .map(|item| match () {
            _ if item.get("inputSchema").is_some() => ("block", item["name"].as_str().unwrap().to_owned()),
            _ if item.get("graph_id").is_some() => ("library", item["name"].as_str().unwrap().to_owned()),
            _ => ("store", item["slug"].as_str().unwrap().to_owned()),
        })
        .collect()
}

#[tokio::test]
async fn search_finds_blocks_own_library_agents_and_approved_store_agents() {
    let app = spawn_app().await;
    let (me, other, creator) = (user(), user(), user());

    let page = ok(&app, "/api/builder/search?search_query=StoreValueBlock", me).await;
    assert_eq!(kinds(&page).first(), Some(&("block", "StoreValueBlock".to_owned())), "{page}");
    assert!(page["search_id"].as_str().is_some_and(|id| !id.is_empty()));
    let page = ok(&app, "/api/builder/search?search_query=text%20generator&filter=blocks&search_id=s1", me).await;
    assert_eq!(page["search_id"], "s1", "the id sent is kept");
    assert_eq!(page["items"], json!([]), "the LLM blocks need credentials: integrations, not blocks");
    let page = ok(&app, "/api/builder/search?search_query=text%20generator&filter=integrations", me).await;
    assert_eq!(kinds(&page).first(), Some(&("block", "AITextGeneratorBlock".to_owned())));

    app.create_graph(me, sample_graph("Quokka planner")).await;
    app.create_graph(other, sample_graph("Quokka spy")).await;
    let page = ok(&app, "/api/builder/search?search_query=quokka", me).await;
    assert_eq!(kinds(&page), [("library", "Quokka planner".to_owned())], "not another user's: {page}");
    assert_eq!(page["total_items"], json!({"blocks": 0, "integrations": 0, "marketplace_agents": 0, "my_agents": 1}));
    assert_eq!(page["pagination"]["total_items"], 1);
    let page = ok(&app, "/api/builder/search?search_query=quokka&filter=blocks&filter=marketplace_agents", me).await;
    assert_eq!((page["items"].clone(), page["total_items"]["my_agents"].clone()), (json!([]), json!(0)));

    let version = listed(&app, creator, "wombat-helper", "Wombat Helper").await;
    let page = ok(&app, "/api/builder/search?search_query=wombat", me).await;
    assert_eq!(page["items"], json!([]), "not listed before approval");
    approve(&app, &version).await;
    let page = ok(&app, "/api/builder/search?search_query=wombat", me).await;
    assert_eq!(kinds(&page), [("store", "wombat-helper".to_owned())], "{page}");
    let username = page["items"][0]["creator"].as_str().unwrap().to_owned();
    let by = |who: &str| format!("/api/builder/search?search_query=wombat&by_creator={who}&by_creator=nobody");
    assert_eq!(ok(&app, &by(&username.to_uppercase()), me).await["items"].as_array().unwrap().len(), 1);
    assert_eq!(ok(&app, &by("someone-else"), me).await["items"], json!([]));
    assert_eq!(ok(&app, "/api/builder/counts", me).await["marketplace_agents"], 1);
}

#[tokio::test]
async fn search_pages_run_across_blocks_library_and_store_without_gaps() {
    let app = spawn_app().await;
    let (me, creator) = (user(), user());
    for name in ["alpha", "beta", "gamma"] {
        app.create_graph(me, sample_graph(name)).await;
    }
    for slug in ["first-listed", "second-listed"] {
        approve(&app, &listed(&app, creator, slug, slug).await).await;
    }
    let whole = ok(&app, "/api/builder/search?page_size=100", me).await;
    let everything = kinds(&whole);
    let total = whole["pagination"]["total_items"].as_i64().unwrap();
    assert_eq!(everything.len() as i64, total);
    let totals = &whole["total_items"];
    assert_eq!((totals["my_agents"].as_i64(), totals["marketplace_agents"].as_i64()), (Some(3), Some(2)));
    let blocks = totals["blocks"].as_i64().unwrap() + totals["integrations"].as_i64().unwrap();
    assert_eq!(everything.iter().filter(|(kind, _)| *kind == "block").count() as i64, blocks);
    assert_eq!(
        &everything[everything.len() - 2..],
        [("store", "second-listed".into()), ("store", "first-listed".into())]
    );

    // Pages of 4 cut through the runs at every offset.
    let mut paged = Vec::new();
    for page in 1..=(total + 3) / 4 {
        let body = ok(&app, &format!("/api/builder/search?page_size=4&page={page}"), me).await;
        assert_eq!(body["pagination"]["total_items"], total);
        paged.extend(kinds(&body));
    }
    assert_eq!(paged, everything);
    let past = ok(&app, &format!("/api/builder/search?page_size=4&page={}", total / 4 + 2), me).await;
    assert_eq!(past["items"], json!([]));
}

#[tokio::test]
async fn what_a_client_sends_is_bounded() {
    let app = spawn_app().await;
    let me = user();
    let ids = (0..101).map(|_| format!("block_ids={}", blocks::PRINT)).collect::<Vec<_>>().join("&");
    let creators = (0..21).map(|i| format!("by_creator=c{i}")).collect::<Vec<_>>().join("&");
    let long = "x".repeat(101);
    let cases = [
        format!("/api/builder/blocks/batch?{ids}"),
        "/api/builder/blocks/batch".to_owned(),
        format!("/api/builder/blocks/batch?block_ids={long}"),
        format!("/api/builder/search?search_query={}", "q".repeat(501)),
        format!("/api/builder/search?search_id={long}"),
        format!("/api/builder/search?{creators}"),
        format!("/api/builder/search?by_creator={long}"),
        "/api/builder/search?filter=everything".to_owned(),
        "/api/builder/search?filter=blocks&filter=blocks&filter=blocks&filter=blocks&filter=blocks".to_owned(),
        "/api/builder/search?page=0".to_owned(),
        "/api/builder/search?page_size=101".to_owned(),
        "/api/builder/categories?blocks_per_category=101".to_owned(),
        "/api/builder/categories?blocks_per_category=-1".to_owned(),
        "/api/builder/blocks?page=1001".to_owned(),
        "/api/builder/blocks?page_size=0".to_owned(),
        "/api/builder/blocks?type=everything".to_owned(),
        format!("/api/builder/blocks?category={long}"),
        format!("/api/builder/blocks?provider={long}"),
        "/api/builder/providers?page_size=101".to_owned(),
    ];
    for path in &cases {
        let (status, body) = app.get(path, me).await;
        assert_eq!(status, 422, "GET {path}: {body}");
        assert_error(&body, "validation_error");
    }
    // The limits themselves are allowed.
    let ids = (0..100).map(|_| format!("block_ids={}", blocks::PRINT)).collect::<Vec<_>>().join("&");
    assert_eq!(ok(&app, &format!("/api/builder/blocks/batch?{ids}"), me).await.as_array().unwrap().len(), 100);
    ok(&app, &format!("/api/builder/search?search_query={}&page=1000&page_size=100", "q".repeat(500)), me).await;
    ok(&app, "/api/builder/categories?blocks_per_category=100", me).await;
}
