//! Rate limits: a user flooding the API is answered 429 with Retry-After
//! in the one error shape, appends nothing past its limit, and leaves other
//! users (and the same address's other callers) unaffected.

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{greeting_graph, send, spawn_app_with};
use crate::support::{admin_request, assert_error, events_of_type, user};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_user_is_limited_and_another_user_is_not() {
    let app = spawn_app_with(|c| {
        c.rate_limit_per_user = 5;
        c.rate_limit_per_address = 3;
    })
    .await;
    let (flooder, other) = (user(), user());
    let body = json!({"graph": greeting_graph()});
    let answers = join_all((0..40).map(|_| async {
        let response = app.request(Method::POST, "/api/graphs", flooder).json(&body).send().await.expect("send");
        let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
        (response.status().as_u16(), retry_after, response.json::<Value>().await.expect("json"))
    }))
    .await;
    let created = answers.iter().filter(|(s, _, _)| *s == 200).count();
    let limited: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 429).collect();
    assert_eq!(created + limited.len(), 40, "only created or limited: {answers:?}");
    // A burst of twice the rate, and what the rate refills meanwhile.
    assert!((10..=20).contains(&created), "{created} created of 40");
    for (_, retry_after, body) in &limited {
        assert_error(body, "rate_limited");
        let seconds: u64 = retry_after.as_deref().and_then(|s| s.parse().ok()).expect("Retry-After in seconds");
        assert!((1..=2).contains(&seconds), "{seconds}");
    }
    assert_eq!(events_of_type(&app, "GraphCreated").await, created as i64, "a limited command appends nothing");

    // Another user, from the same address, at the same moment: unaffected.
    let (status, body) = app.get("/api/graphs", other).await;
    assert_eq!(status, 200, "{body}");

    // Without an identity, requests count against the client's address.
    let anonymous = join_all((0..20).map(|_| send(app.anonymous(Method::GET, "/api/store/agents")))).await;
    let statuses: Vec<u16> = anonymous.iter().map(|(s, _)| *s).collect();
    assert!(statuses.iter().filter(|s| **s == 200).count() <= 8, "{statuses:?}");
    let (_, refused) = anonymous.iter().find(|(s, _)| *s == 429).expect("some refused");
    assert_error(refused, "rate_limited");
    let (status, _) = app.get("/api/store/agents", other).await;
    assert_eq!(status, 200, "a user at that address has its own allowance");

    let text = admin_request(&app, Method::GET, "/metrics", user()).send().await.unwrap().text().await.unwrap();
    for by in ["user", "address"] {
        let line = text.lines().find(|l| l.starts_with(&format!("api_rate_limited_total{{by=\"{by}\"}}")));
        let count: f64 = line.and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0.0);
        assert!(count >= 1.0, "refusals by {by} counted: {line:?}");
    }
}

#[tokio::test]
async fn at_the_default_limits_a_busy_client_is_not_limited() {
    let app = spawn_app_with(|_| {}).await;
    let owner = user();
    let answers = join_all((0..200).map(|_| app.get("/api/graphs", owner))).await;
    assert!(answers.iter().all(|(s, _)| *s == 200), "200 requests at once stay under the default burst");
}
