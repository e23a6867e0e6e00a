//! The WebSocket hub as a client uses it: subscribe, watch a run to its end,
//! resume from a token, heartbeat, isolation and the close codes.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{blocks, greeting_graph, spawn_app, spawn_app_with, TestApp};
use crate::support::{id_of, user};

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(app: &TestApp, token: &str) -> Socket {
    let url = format!("{}/ws?token={token}", app.address.replace("http://", "ws://"));
    tokio_tungstenite::connect_async(url).await.expect("connect").0
}

async fn say(socket: &mut Socket, value: Value) {
    socket.send(Message::Text(value.to_string().into())).await.expect("send");
}

/// The next JSON message, or `None` when none comes within `wait`.
async fn next(socket: &mut Socket, wait: Duration) -> Option<Value> {
    loop {
        match tokio::time::timeout(wait, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return Some(serde_json::from_str(&text).expect("json")),
            Ok(Some(Ok(Message::Close(frame)))) => return Some(json!({"closed": frame.map(|f| u16::from(f.code))})),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

#[tokio::test]
async fn a_subscriber_sees_the_run_through_completed_and_resumes_from_a_token() {
    let app = spawn_app().await;
    let owner = user();
    let graph_id = id_of(&app.create_graph(owner, greeting_graph()).await);
    let mut socket = connect(&app, &app.token(owner, false)).await;
    say(&mut socket, json!({"method": "subscribe_graph_executions", "data": {"graph_id": graph_id}})).await;
    let ack = next(&mut socket, Duration::from_secs(5)).await.expect("ack");
    assert_eq!(
        ack,
        json!({"method": "subscribe_graph_executions", "data": null, "success": true,
        "channel": format!("{owner}|graph#{graph_id}|executions"), "error": null})
    );

    let (_, queued) =
        app.post(&format!("/api/graphs/{graph_id}/execute/1"), owner, &json!({"inputs": {"name": "World"}})).await;
    let run_id = queued["id"].as_str().unwrap().to_owned();
    let mut statuses = Vec::new();
    let mut first_token = None;
    let completed = loop {
        let msg = next(&mut socket, Duration::from_secs(10)).await.expect("a push");
        assert_eq!(msg["method"], "graph_execution_event", "only run events on the graph channel: {msg}");
        assert_eq!(msg["data"]["id"], run_id.as_str());
        first_token.get_or_insert(msg["token"].as_str().expect("token").to_owned());
        statuses.push(msg["data"]["status"].as_str().unwrap().to_owned());
        if msg["data"]["status"] == "COMPLETED" {
            break msg;
        }
    };
    assert_eq!(statuses.first().map(String::as_str), Some("QUEUED"), "{statuses:?}");
    assert!(statuses.contains(&"RUNNING".to_owned()), "{statuses:?}");
    assert_eq!(completed["data"]["outputs"], json!({"greeting": ["Hello, World!"]}));
    assert_eq!(completed["data"]["event_type"], "graph_execution_update");

    // Everything of the run after the first push, from the log, in order.
    let after = first_token.unwrap();
    say(&mut socket, json!({"method": "subscribe_graph_execution", "data": {"graph_exec_id": run_id, "after": after}}))
        .await;
    let ack = next(&mut socket, Duration::from_secs(5)).await.expect("ack");
    assert_eq!(ack["channel"], format!("{owner}|graph_exec#{run_id}"));
    let mut replayed = Vec::new();
    while let Some(msg) = next(&mut socket, Duration::from_millis(500)).await {
        replayed.push(msg);
    }
    let tokens: Vec<&str> = replayed.iter().map(|m| m["token"].as_str().unwrap()).collect();
    let mut sorted = tokens.clone();
    sorted.dedup();
    assert_eq!(tokens.len(), sorted.len(), "no event twice: {tokens:?}");
    let template = replayed
        .iter()
        .rfind(|m| m["method"] == "node_execution_event" && m["data"]["block_id"] == blocks::FILL_TEMPLATE)
        .expect("the template's node events");
    assert_eq!(template["data"]["output_data"], json!({"output": ["Hello, World!"]}));
    assert_eq!(template["data"]["status"], "COMPLETED");
    assert_eq!(template["data"]["event_type"], "node_execution_update");
    assert_eq!(replayed.last().unwrap()["data"]["status"], "COMPLETED", "the run's end comes last");

    say(&mut socket, json!({"method": "heartbeat", "data": "ping", "success": true})).await;
    assert_eq!(
        next(&mut socket, Duration::from_secs(5)).await.unwrap(),
        json!({"method": "heartbeat", "data": "pong", "success": true, "channel": null, "error": null})
    );
    say(&mut socket, json!({"method": "subscribe_graph_execution", "data": {}})).await;
    assert_eq!(next(&mut socket, Duration::from_secs(5)).await.unwrap()["error"], "Subscription data missing");
    socket.send(Message::Text("not json".into())).await.unwrap();
    assert_eq!(
        next(&mut socket, Duration::from_secs(5)).await.unwrap()["error"],
        "Invalid message format. Review the schema and retry"
    );
    say(&mut socket, json!({"method": "dance"})).await;
    assert_eq!(
        next(&mut socket, Duration::from_secs(5)).await.unwrap()["error"],
        "Message type is not processed by the server"
    );
}

#[tokio::test]
async fn users_only_ever_receive_their_own_runs_and_bad_tokens_are_closed() {
    let app = spawn_app().await;
    let (owner, other) = (user(), user());
    let graph_id = id_of(&app.create_graph(owner, greeting_graph()).await);
    let mut watcher = connect(&app, &app.token(other, false)).await;
    say(&mut watcher, json!({"method": "subscribe_graph_executions", "data": {"graph_id": graph_id}})).await;
    next(&mut watcher, Duration::from_secs(5)).await.expect("ack");
    let (_, queued) =
        app.post(&format!("/api/graphs/{graph_id}/execute/1"), owner, &json!({"inputs": {"name": "x"}})).await;
    let run_id = queued["id"].as_str().unwrap();
    say(
        &mut watcher,
        json!({"method": "subscribe_graph_execution", "data": {"graph_exec_id": run_id, "after": "1.0.0"}}),
    )
    .await;
    next(&mut watcher, Duration::from_secs(5)).await.expect("ack");
    let leaked = next(&mut watcher, Duration::from_secs(1)).await;
    assert!(leaked.is_none(), "another user's run never reaches this socket: {leaked:?}");

    let mut anonymous = tokio_tungstenite::connect_async(format!("{}/ws", app.address.replace("http://", "ws://")))
        .await
        .expect("connect")
        .0;
    assert_eq!(next(&mut anonymous, Duration::from_secs(5)).await.unwrap(), json!({"closed": 4001}));
    let (status, body) = crate::helpers::send(app.anonymous(reqwest::Method::GET, "/ws?token=x")).await;
    assert_eq!(status, 400, "a plain GET is no upgrade: {body}");
    assert_eq!(body["error_type"], "bad_request");
    let mut forged = connect(&app, "not-a-token").await;
    assert_eq!(next(&mut forged, Duration::from_secs(5)).await.unwrap(), json!({"closed": 4003}));
}

/// Watch a graph's runs on `socket` until one is COMPLETED; its outputs.
async fn completed_outputs(socket: &mut Socket) -> Value {
    loop {
        let msg = next(socket, Duration::from_secs(15)).await.expect("a push before the run completed");
        if msg["method"] == "graph_execution_event" && msg["data"]["status"] == "COMPLETED" {
            return msg["data"]["outputs"].clone();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_of_one_instance_sees_a_run_executed_by_another_through_nats() {
    let nats = Some("nats://127.0.0.1:4222".to_owned());
    let a = crate::helpers::spawn_app_with(|c| c.nats_url = nats.clone()).await;
    // B runs no executor: every step of the run happens on A.
    let b = crate::helpers::spawn_app_on(a.url.clone(), |c| {
        c.nats_url = nats.clone();
        c.executor_workers = 0;
    })
    .await;
    let owner = user();
    let graph_id = id_of(&a.create_graph(owner, greeting_graph()).await);
    let mut socket = connect(&b, &b.token(owner, false)).await;
    say(&mut socket, json!({"method": "subscribe_graph_executions", "data": {"graph_id": graph_id}})).await;
    next(&mut socket, Duration::from_secs(5)).await.expect("ack");
    let (status, _) =
        a.post(&format!("/api/graphs/{graph_id}/execute/1"), owner, &json!({"inputs": {"name": "NATS"}})).await;
    assert_eq!(status, 200);
    assert_eq!(completed_outputs(&mut socket).await, json!({"greeting": ["Hello, NATS!"]}));
    let workers: Vec<String> =
        sqlx::query_scalar("SELECT data->>'worker' FROM events WHERE event_type = 'ExecutionStarted'")
            .fetch_all(&a.pool)
            .await
            .unwrap();
    assert_eq!(workers.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_nats_down_runs_still_complete_and_clients_catch_up_from_the_log() {
    let app = crate::helpers::spawn_app_with(|c| c.nats_url = Some("nats://127.0.0.1:1".to_owned())).await;
    let owner = user();
    let graph_id = id_of(&app.create_graph(owner, greeting_graph()).await);
    let (status, queued) =
        app.post(&format!("/api/graphs/{graph_id}/execute/1"), owner, &json!({"inputs": {"name": "log"}})).await;
    assert_eq!(status, 200, "commands work without NATS");
    let run_id = queued["id"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, run) = app.get(&format!("/api/graphs/{graph_id}/executions/{run_id}"), owner).await;
        if run["status"] == "COMPLETED" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the run never completed: {run}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut socket = connect(&app, &app.token(owner, false)).await;
    say(
        &mut socket,
        json!({"method": "subscribe_graph_execution", "data": {"graph_exec_id": run_id, "after": "1.0.0"}}),
    )
    .await;
    next(&mut socket, Duration::from_secs(5)).await.expect("ack");
    assert_eq!(completed_outputs(&mut socket).await, json!({"greeting": ["Hello, log!"]}), "caught up from the log");
    let (_, report) = crate::helpers::send(crate::support::admin_request(
        &app,
        reqwest::Method::GET,
        "/api/admin/projections",
        user(),
    ))
    .await;
    let relay =
        report["projections"].as_array().unwrap().iter().find(|p| p["name"] == "relay").expect("relay listed").clone();
    assert!(relay["last_error"].as_str().unwrap_or("").contains("NATS"), "{relay}");
    assert!(relay["lag_events"].as_i64().unwrap() > 0, "the relay waits for NATS: {relay}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_never_reads_does_not_hold_back_the_others() {
    let app = spawn_app().await;
    let owner = user();
    let graph_id = id_of(&app.create_graph(owner, greeting_graph()).await);
    let subscribe = json!({"method": "subscribe_graph_executions", "data": {"graph_id": graph_id}});
    // The stalled client subscribes, then never reads again.
    let mut stalled = connect(&app, &app.token(owner, false)).await;
    say(&mut stalled, subscribe.clone()).await;
    let mut reader = connect(&app, &app.token(owner, false)).await;
    say(&mut reader, subscribe).await;
    next(&mut reader, Duration::from_secs(5)).await.expect("ack");
    let runs = 20;
    for i in 0..runs {
        let (status, _) =
            app.post(&format!("/api/graphs/{graph_id}/execute/1"), owner, &json!({"inputs": {"name": i}})).await;
        assert_eq!(status, 200);
    }
    let mut completed = std::collections::HashSet::new();
    while completed.len() < runs {
        let msg = next(&mut reader, Duration::from_secs(15)).await.expect("the reader keeps receiving");
        if msg["data"]["status"] == "COMPLETED" {
            completed.insert(msg["data"]["id"].as_str().unwrap().to_owned());
        }
    }
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_falls_too_far_behind_is_cut_off_and_resumes_by_token_without_gap_or_duplicate() {
    // A buffer of one push: any burst the session cannot forward at once
    // puts it behind.
    let app = spawn_app_with(|c| c.ws_buffer = 1).await;
    let owner = user();
    let graph_id = id_of(&app.create_graph(owner, greeting_graph()).await);
    let mut socket = connect(&app, &app.token(owner, false)).await;
    say(&mut socket, json!({"method": "subscribe_graph_executions", "data": {"graph_id": graph_id}})).await;
    next(&mut socket, Duration::from_secs(5)).await.expect("ack");

    let mut runs = Vec::new();
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    let mut completed = std::collections::HashSet::new();
    let mut told = None;
    'rounds: for _ in 0..5 {
        for i in 0..20 {
            let (status, queued) =
                app.post(&format!("/api/graphs/{graph_id}/execute/1"), owner, &json!({"inputs": {"name": i}})).await;
            assert_eq!(status, 200, "{queued}");
            runs.push(queued["id"].as_str().unwrap().to_owned());
        }
        while let Some(msg) = next(&mut socket, Duration::from_secs(3)).await {
            if msg.get("closed").is_some() {
                assert_eq!(msg, json!({"closed": 4008}), "cut off with 4008");
                break 'rounds;
            }
            if msg["method"] == "error" {
                told = msg["error"].as_str().map(str::to_owned);
                continue;
            }
            let run = msg["data"]["id"].as_str().unwrap().to_owned();
            if msg["data"]["status"] == "COMPLETED" {
                completed.insert(run.clone());
            }
            seen.entry(run).or_default().push(msg["token"].as_str().unwrap().to_owned());
        }
    }
    let told = told.expect("a client that fell behind is told so before the close");
    assert!(told.contains("Too far behind"), "{told}");

    // Once every run has ended, resume each from the last token seen.
    for run in &runs {
        app.run_ended(owner, &graph_id, run, Duration::from_secs(30)).await;
    }
    let mut resumed = connect(&app, &app.token(owner, false)).await;
    for run in &runs {
        let after = seen.get(run).and_then(|t| t.last().cloned()).unwrap_or_else(|| "1.0.0".into());
        say(
            &mut resumed,
            json!({"method": "subscribe_graph_execution", "data": {"graph_exec_id": run, "after": after}}),
        )
        .await;
        let ack = next(&mut resumed, Duration::from_secs(5)).await.expect("ack");
        assert_eq!(ack["success"], true, "{ack}");
        while let Some(msg) = next(&mut resumed, Duration::from_millis(300)).await {
            assert_eq!(msg["data"]["graph_exec_id"].as_str().or(msg["data"]["id"].as_str()), Some(run.as_str()));
            let token = msg["token"].as_str().unwrap().to_owned();
            let before = seen.entry(run.clone()).or_default();
            assert!(!before.contains(&token), "no push twice: {token}");
            before.push(token);
            if msg["method"] == "graph_execution_event" && msg["data"]["status"] == "COMPLETED" {
                assert!(completed.insert(run.clone()), "the end of {run} arrives once");
            }
        }
    }
    assert_eq!(completed.len(), runs.len(), "before the cut or after the resume, every run's end reached the client");
}

#[tokio::test]
async fn one_connection_subscribes_to_at_most_a_thousand_channels() {
    let app = spawn_app().await;
    let owner = user();
    let mut socket = connect(&app, &app.token(owner, false)).await;
    for n in 0..1000 {
        let graph = format!("00000000-0000-0000-0000-{n:012}");
        say(&mut socket, json!({"method": "subscribe_graph_executions", "data": {"graph_id": graph}})).await;
    }
    for _ in 0..1000 {
        let ack = next(&mut socket, Duration::from_secs(5)).await.expect("ack");
        assert_eq!(ack["success"], true, "{ack}");
    }
    say(&mut socket, json!({"method": "subscribe_graph_execution", "data": {"graph_exec_id": "one-more"}})).await;
    let refused = next(&mut socket, Duration::from_secs(5)).await.expect("an answer");
    assert_eq!(refused["method"], "error", "{refused}");
    assert_eq!(refused["error"], "Too many subscriptions on this connection");
    // Subscribing again to a channel it holds is no new one.
    let again =
        json!({"method": "subscribe_graph_executions", "data": {"graph_id": "00000000-0000-0000-0000-000000000007"}});
    say(&mut socket, again).await;
    assert_eq!(next(&mut socket, Duration::from_secs(5)).await.expect("ack")["success"], true);
}

#[tokio::test]
async fn a_session_ends_when_its_token_expires() {
    let app = spawn_app().await;
    let owner = user();
    let mut claims = crate::helpers::claims(owner, false);
    claims.exp = chrono::Utc::now().timestamp() + 2;
    let token = api::auth::sign(&app.auth, &claims).unwrap();
    let mut socket = connect(&app, &token).await;
    say(&mut socket, json!({"method": "heartbeat", "data": "ping", "success": true})).await;
    assert_eq!(next(&mut socket, Duration::from_secs(5)).await.expect("pong")["data"], "pong");
    let closed = next(&mut socket, Duration::from_secs(6)).await.expect("closed at expiry");
    assert_eq!(closed, json!({"closed": 4003}));
}

#[tokio::test]
async fn a_replay_is_pushed_like_any_run_with_its_own_id_and_the_same_outputs() {
    let app = spawn_app().await;
    let owner = user();
    let graph_id = id_of(&app.create_graph(owner, greeting_graph()).await);
    let mut socket = connect(&app, &app.token(owner, false)).await;
    say(&mut socket, json!({"method": "subscribe_graph_executions", "data": {"graph_id": graph_id}})).await;
    next(&mut socket, Duration::from_secs(5)).await.expect("ack");
    let (_, queued) =
        app.post(&format!("/api/graphs/{graph_id}/execute/1"), owner, &json!({"inputs": {"name": "again"}})).await;
    let original = queued["id"].as_str().unwrap().to_owned();
    assert_eq!(completed_outputs(&mut socket).await, json!({"greeting": ["Hello, again!"]}));
    let path = format!("/api/graphs/{graph_id}/executions/{original}/replay");
    let (status, replay) = app.post(&path, owner, &json!({})).await;
    assert_eq!(status, 200, "{replay}");
    let replay_id = replay["id"].as_str().unwrap();
    let mut seen = Vec::new();
    let outputs = loop {
        let msg = next(&mut socket, Duration::from_secs(15)).await.expect("a push of the replay");
        if msg["method"] != "graph_execution_event" {
            continue;
        }
        assert_eq!(msg["data"]["id"], replay_id, "only the replay runs now: {msg}");
        seen.push(msg["data"]["status"].as_str().unwrap_or_default().to_owned());
        if msg["data"]["status"] == "COMPLETED" {
            break msg["data"]["outputs"].clone();
        }
    };
    assert_eq!(outputs, json!({"greeting": ["Hello, again!"]}));
    assert!(seen.contains(&"QUEUED".to_owned()) && seen.contains(&"RUNNING".to_owned()), "{seen:?}");
}
