//! Onboarding as AutoGPT's UI walks it: read, save choices, complete steps
//! once, reset; every field bounded.

use serde_json::json;

use crate::helpers::spawn_app;
use crate::support::{event_count, user};

#[tokio::test]
async fn the_onboarding_keeps_choices_and_steps_and_starts_over_on_reset() {
    let app = spawn_app().await;
    let (owner, other) = (user(), user());
    let (status, empty) = app.get("/api/onboarding", owner).await;
    assert_eq!(status, 200, "{empty}");
    assert_eq!(empty["completedSteps"], json!([]));
    assert_eq!(empty["agentRuns"], 0);
    assert_eq!(empty["walletShown"], false);

    let patch = json!({"usageReason": "research", "integrations": ["github", "slack"], "walletShown": true,
        "notified": ["WELCOME"], "agentInput": {"topic": "owls"}});
    let (status, saved) = app.patch("/api/onboarding", owner, &patch).await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["usageReason"], "research");
    assert_eq!(saved["integrations"], json!(["github", "slack"]));
    assert_eq!(saved["agentInput"], json!({"topic": "owls"}));
    for _ in 0..2 {
        let (status, stepped) = app.post("/api/onboarding/step?step=WELCOME", owner, &json!({})).await;
        assert_eq!(status, 200, "{stepped}");
        assert_eq!(stepped["completedSteps"], json!(["WELCOME"]), "completed once");
    }
    let (_, theirs) = app.get("/api/onboarding", other).await;
    assert_eq!(theirs["completedSteps"], json!([]), "another user's is its own");

    let before = event_count(&app).await;
    for bad in [
        json!({"usageReason": "x".repeat(1001)}),
        json!({"notified": ["NOT_A_STEP"]}),
        json!({"integrations": ["y".repeat(101)]}),
        json!({"integrations": vec!["z"; 51]}),
    ] {
        let (status, body) = app.patch("/api/onboarding", owner, &bad).await;
        assert_eq!(status, 422, "{body}");
    }
    let (status, _) = app.post("/api/onboarding/step?step=RUN_AGENTS_100", owner, &json!({})).await;
    assert_eq!(status, 422, "a step the platform completes, not the client");
    assert_eq!(event_count(&app).await, before, "refused changes appended");

    let (status, reset) = app.post("/api/onboarding/reset", owner, &json!({})).await;
    assert_eq!(status, 200, "{reset}");
    assert_eq!(reset["completedSteps"], json!([]));
    assert_eq!(reset["usageReason"], serde_json::Value::Null);
    let (status, enabled) = app.get("/api/onboarding/enabled", owner).await;
    assert_eq!((status, enabled), (200, json!(true)));
    let (status, agents) = app.get("/api/onboarding/agents", owner).await;
    assert_eq!((status, agents), (200, json!([])), "no store agents yet");
}

#[tokio::test]
async fn an_agent_input_with_a_huge_number_reads_back_as_sent() {
    let app = spawn_app().await;
    let owner = user();
    let patch = serde_json::from_str::<serde_json::Value>(r#"{"agentInput": {"n": 1e300, "m": -2.5e-300}}"#).unwrap();
    let (status, saved) = app.patch("/api/onboarding", owner, &patch).await;
    assert_eq!(status, 200, "{saved}");
    let (status, read) = app.get("/api/onboarding", owner).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["agentInput"]["n"].as_f64(), Some(1e300));
}
