//! Per-user quotas: graphs, schedules, API keys and presets up to a limit,
//! one more refused with 429 `quota_exceeded` and nothing appended, a
//! deleted one making room again; many concurrent creates never get past
//! the limit.

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::helpers::{greeting_graph, spawn_app_on, spawn_app_with, TestApp};
use crate::support::{assert_error, event_count, events_of_type, id_of, user};

async fn create_graph(app: &TestApp, owner: uuid::Uuid) -> (u16, Value) {
    app.post("/api/graphs", owner, &json!({"graph": greeting_graph()})).await
}

#[tokio::test]
async fn concurrent_graph_creates_stop_at_the_limit_and_a_delete_makes_room() {
    const LIMIT: usize = 5;
    let app = spawn_app_with(|c| c.quotas.graphs = LIMIT).await;
    let (owner, other) = (user(), user());
    let answers = join_all((0..16).map(|_| create_graph(&app, owner))).await;
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), LIMIT, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "only created or refused: {statuses:?}");
    let refused = answers.iter().find(|(s, _)| *s == 429).map(|(_, b)| b.clone()).unwrap();
    assert_error(&refused, "quota_exceeded");
    assert!(refused["detail"].as_str().is_some_and(|d| d.contains("limit of 5 graphs")), "{refused}");
    assert_eq!(events_of_type(&app, "GraphCreated").await, LIMIT as i64, "a refused create appends nothing");
    assert_eq!(events_of_type(&app, "QuotaTaken").await, LIMIT as i64);

    // Someone else's quota is their own.
    assert_eq!(create_graph(&app, other).await.0, 200);
    // A new version of a graph is no new graph.
    let first = answers.iter().find(|(s, _)| *s == 200).map(|(_, b)| id_of(b)).unwrap();
    let (status, body) = app.put(&format!("/api/graphs/{first}"), owner, &greeting_graph()).await;
    assert_eq!(status, 200, "{body}");

    let before = event_count(&app).await;
    assert_eq!(create_graph(&app, owner).await.0, 429);
    assert_eq!(event_count(&app).await, before);
    assert_eq!(app.delete(&format!("/api/graphs/{first}"), owner).await.0, 200);
    assert_eq!(create_graph(&app, owner).await.0, 200, "the deleted graph's place is free");
    assert_eq!(create_graph(&app, owner).await.0, 429);
}

#[tokio::test]
async fn schedules_api_keys_and_presets_have_limits_of_their_own() {
    let app = spawn_app_with(|c| {
        c.quotas.schedules = 2;
        c.quotas.api_keys = 2;
        c.quotas.presets = 2;
    })
    .await;
    let owner = user();
    let graph_id = id_of(&app.create_graph(owner, greeting_graph()).await);

    let schedule = json!({"name": "s", "cron": "0 * * * *", "inputs": {"name": "x"}, "timezone": "UTC"});
    let key = json!({"name": "k", "permissions": ["EXECUTE_GRAPH"], "description": ""});
    let preset = json!({"graph_id": graph_id, "graph_version": 1, "inputs": {"name": "p"}, "credentials": {},
                        "name": "p", "description": ""});
    let schedules = format!("/api/graphs/{graph_id}/schedules");
    let creates: [(&str, &Value, &str); 3] = [
        (schedules.as_str(), &schedule, "/api/schedules"),
        ("/api/api-keys", &key, "/api/api-keys"),
        ("/api/library/presets", &preset, "/api/library/presets"),
    ];
    for (path, body, delete_under) in creates {
        let mut ids = vec![];
        for _ in 0..2 {
            let (status, made) = app.post(path, owner, body).await;
            assert_eq!(status, 200, "{path}: {made}");
            let id = made["id"].as_str().or_else(|| made["api_key"]["id"].as_str()).map(str::to_owned);
            ids.push(id.unwrap_or_else(|| panic!("{path}: no id in {made}")));
        }
        let before = event_count(&app).await;
        let (status, refused) = app.post(path, owner, body).await;
        assert_eq!(status, 429, "{path}: {refused}");
        assert_error(&refused, "quota_exceeded");
        assert_eq!(event_count(&app).await, before, "{path}: a refused create appends nothing");
        let (status, body_of) = app.delete(&format!("{delete_under}/{}", ids[0]), owner).await;
        assert!(status == 200 || status == 204, "{path}: delete {status} {body_of}");
        assert_eq!(app.post(path, owner, body).await.0, 200, "{path}: room again after a delete");
        assert_eq!(app.post(path, owner, body).await.0, 429, "{path}");
    }
}

#[tokio::test]
async fn two_instances_share_one_quota_whatever_each_remembers() {
    let first = spawn_app_with(|c| c.quotas.graphs = 3).await;
    let second = spawn_app_on(first.url.clone(), |c| c.quotas.graphs = 3).await;
    let owner = user();
    let mut mine = vec![];
    for _ in 0..2 {
        let (status, graph) = create_graph(&first, owner).await;
        assert_eq!(status, 200, "{graph}");
        mine.push(id_of(&graph));
    }
    // The second instance takes the last place; the first still remembers
    // two of three taken, and must not take a fourth.
    assert_eq!(create_graph(&second, owner).await.0, 200);
    let (status, body) = create_graph(&first, owner).await;
    assert_eq!(status, 429, "{body}");
    // The second deletes a graph it never saw made; its place comes back,
    // and the first, remembering a full quota, sees the room.
    assert_eq!(second.delete(&format!("/api/graphs/{}", mine[0]), owner).await.0, 200);
    assert_eq!(create_graph(&first, owner).await.0, 200);
    assert_eq!(create_graph(&second, owner).await.0, 429);
    assert_eq!(events_of_type(&first, "QuotaTaken").await, 4);
    assert_eq!(events_of_type(&first, "QuotaReturned").await, 1);
}
