//! Credentials (issue 18, part 1): stored sealed, listed and read without
//! their secrets, deleted by destroying their key; the secret is nowhere in
//! the log, its export or the server's logs.

use std::process::Command;
use std::time::Duration;

use commands::services::{Commands, NewCredential, Secret};
use commands::vault::{MasterKey, Vault, VaultError};
use commands::{CommandContext, CommandError};
use domain::credential::{CredentialKind, CredentialMeta};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{fresh_store, send, serve, spawn_app, spawn_app_with, TestApp, BIN};
use crate::support::{assert_error, assert_field_error, event_count, user};

const SECRET: &str = "sk-test-3f9c1e7a5b2d4c6e8a0b1c2d";

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.expect(sql)
}

#[tokio::test]
async fn a_stored_credential_is_listed_and_read_masked_and_only_by_its_owner() {
    let app = spawn_app().await;
    let (owner, stranger) = (user(), user());
    let body = json!({"type": "api_key", "provider": "openai", "title": "My key", "api_key": SECRET});
    let (status, created) = app.post("/api/integrations/openai/credentials", owner, &body).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["api_key"], "**********");
    assert_eq!(created["type"], "api_key");
    assert_eq!(created["provider"], "openai");
    assert_eq!(created["title"], "My key");
    let id = created["id"].as_str().unwrap().to_owned();

    let (status, all) = app.get("/api/integrations/credentials", owner).await;
    assert_eq!(status, 200);
    assert_eq!(
        all,
        json!([{"id": id, "provider": "openai", "type": "api_key", "title": "My key", "scopes": null,
        "username": null, "host": null}])
    );
    let (_, by_provider) = app.get("/api/integrations/openai/credentials", owner).await;
    assert_eq!(by_provider.as_array().unwrap().len(), 1);
    let (_, other_provider) = app.get("/api/integrations/anthropic/credentials", owner).await;
    assert_eq!(other_provider, json!([]));
    let (status, one) = app.get(&format!("/api/integrations/openai/credentials/{id}"), owner).await;
    assert_eq!(status, 200);
    assert_eq!(one["api_key"], "**********");

    let (status, body) = app.get(&format!("/api/integrations/openai/credentials/{id}"), stranger).await;
    assert_eq!(status, 404);
    assert_error(&body, "not_found");
    let (_, theirs) = app.get("/api/integrations/credentials", stranger).await;
    assert_eq!(theirs, json!([]));
    let (status, _) = app.delete(&format!("/api/integrations/openai/credentials/{id}"), stranger).await;
    assert_eq!(status, 404);

    let text = serde_json::to_string(&[&created, &all, &one]).unwrap();
    assert!(!text.contains(SECRET));
    let in_log = count(&app, &format!("SELECT count(*) FROM events WHERE data::text LIKE '%{SECRET}%'")).await;
    assert_eq!(in_log, 0, "the secret is in the log");
    assert_eq!(count(&app, "SELECT count(*) FROM events WHERE event_type = 'CredentialCreated'").await, 1);
}

#[tokio::test]
async fn every_kind_is_stored_and_bad_input_is_refused_appending_nothing() {
    let app = spawn_app().await;
    let owner = user();
    let host = json!({"type": "host_scoped", "provider": "http", "host": "api.example.com",
        "headers": {"Authorization": "Bearer hidden-value", "X-Key": "k"}});
    let (status, created) = app.post("/api/integrations/http/credentials", owner, &host).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["headers"], json!({"Authorization": "**********", "X-Key": "**********"}));
    assert_eq!(created["host"], "api.example.com");
    let login = json!({"type": "user_password", "provider": "smtp", "username": "me", "password": "hunter2"});
    let (status, created) = app.post("/api/integrations/smtp/credentials", owner, &login).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["password"], "**********");

    let before = event_count(&app).await;
    let refused = [
        ("/api/integrations/open%20ai/credentials", json!({"type": "api_key", "provider": "x", "api_key": "k"}), 422),
        ("/api/integrations/openai/credentials", json!({"type": "api_key", "provider": "openai", "api_key": ""}), 400),
        ("/api/integrations/openai/credentials", json!({"type": "api_key", "provider": "openai"}), 422),
        ("/api/integrations/openai/credentials", json!({"type": "oauth2", "provider": "openai"}), 422),
        ("/api/integrations/http/credentials", json!({"type": "host_scoped", "provider": "http", "host": " "}), 400),
        (
            "/api/integrations/http/credentials",
            json!({"type": "host_scoped", "provider": "http", "host": "h", "headers": {"bad name": "v"}}),
            400,
        ),
        (
            "/api/integrations/openai/credentials",
            json!({"type": "api_key", "provider": "openai", "api_key": "k".repeat(9000)}),
            422,
        ),
    ];
    for (path, body, expected) in refused {
        let (status, answer) = app.post(path, owner, &body).await;
        assert_eq!(status, expected, "{path} {body}: {answer}");
        assert!(answer["detail"].is_string(), "{answer}");
    }
    let (status, answer) = app.post("/api/integrations/open%20ai/credentials", owner, &refused_body()).await;
    assert_eq!(status, 422);
    assert_field_error(&answer, "provider");
    assert_eq!(event_count(&app).await, before, "a refused command appended");
    assert_eq!(count(&app, "SELECT count(*) FROM credential_keys").await, 2, "a refused command left a key");
}

fn refused_body() -> Value {
    json!({"type": "api_key", "provider": "x", "api_key": "k"})
}

#[tokio::test]
async fn deleting_a_credential_destroys_its_key_and_keeps_only_unreadable_ciphertext() {
    let app = spawn_app().await;
    let owner = user();
    let body = json!({"type": "api_key", "provider": "openai", "api_key": SECRET});
    let (_, created) = app.post("/api/integrations/openai/credentials", owner, &body).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(count(&app, "SELECT count(*) FROM credential_keys").await, 1);
    let (status, deleted) = app.delete(&format!("/api/integrations/openai/credentials/{id}"), owner).await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted, json!({"deleted": true, "revoked": null}));
    assert_eq!(count(&app, "SELECT count(*) FROM credential_keys").await, 0);
    let (_, all) = app.get("/api/integrations/credentials", owner).await;
    assert_eq!(all, json!([]));
    let (status, _) = app.get(&format!("/api/integrations/openai/credentials/{id}"), owner).await;
    assert_eq!(status, 404);
    let sealed = count(&app, "SELECT count(*) FROM events WHERE data::text LIKE '%\"ciphertext\"%'").await;
    assert_eq!(sealed, 1, "the ciphertext stays in the log");
    let (status, _) = app.delete(&format!("/api/integrations/openai/credentials/{id}"), owner).await;
    assert_eq!(status, 404, "deleted once");
}

#[tokio::test]
async fn a_credential_opens_to_its_secret_and_fails_loudly_when_altered_shredded_or_keyless() {
    let store = fresh_store().await;
    let pool = store.pool().clone();
    let key = MasterKey::from_bytes([9; 32]);
    let commands = Commands::new(store.clone()).with_vault(Vault::new(pool.clone(), key.clone(), vec![]));
    let owner = uuid::Uuid::new_v4();
    let new = |secret: &str| NewCredential {
        meta: CredentialMeta {
            provider: "openai".into(),
            kind: CredentialKind::ApiKey,
            title: None,
            host: None,
            header_names: vec![],
            expires_at: None,
            scopes: vec![],
        },
        secret: Secret { api_key: Some(secret.into()), ..Secret::default() },
    };
    let ctx = CommandContext::for_user(owner);
    let (_, id, _) = commands.create_credential(&ctx, owner, new(SECRET)).await.unwrap();
    let open = commands.open_credential(owner, id).await.unwrap();
    assert_eq!(open.secret.api_key.as_deref(), Some(SECRET));
    assert!(!format!("{open:?}").contains(SECRET), "Debug shows the secret");
    assert!(matches!(commands.open_credential(uuid::Uuid::new_v4(), id).await, Err(CommandError::NotFound(_))));

    // Under a new master key, with the old one kept, it still opens; rewrap
    // moves it, after which the old key is no longer needed.
    let next = MasterKey::from_bytes([10; 32]);
    let rotated = Commands::new(store.clone()).with_vault(Vault::new(pool.clone(), next.clone(), vec![key.clone()]));
    assert!(rotated.open_credential(owner, id).await.is_ok());
    let keyless = Commands::new(store.clone()).with_vault(Vault::new(pool.clone(), next.clone(), vec![]));
    assert!(matches!(
        keyless.open_credential(owner, id).await,
        Err(CommandError::Vault(VaultError::UnknownMasterKey(_)))
    ));
    assert_eq!(Vault::new(pool.clone(), next.clone(), vec![key]).rewrap().await.unwrap(), 1);
    assert_eq!(keyless.open_credential(owner, id).await.unwrap().secret.api_key.as_deref(), Some(SECRET));

    // An altered ciphertext does not open: an error, never an empty secret.
    let (_, other, _) = rotated.create_credential(&ctx, owner, new("second")).await.unwrap();
    sqlx::query("ALTER TABLE events DISABLE TRIGGER USER").execute(&pool).await.unwrap();
    sqlx::query(
        "UPDATE events SET data = json_build_object('user_id', data->'user_id', 'meta', data->'meta', 'at', data->'at', \
           'secret', json_build_object('alg', 'A256GCM', 'key_id', data->'secret'->>'key_id', \
             'nonce', data->'secret'->>'nonce', 'ciphertext', 'AAAA' || (data->'secret'->>'ciphertext'))) \
         WHERE stream_id = $1",
    )
    .bind(format!("credential-{other}"))
    .execute(&pool)
    .await
    .unwrap();
    assert!(matches!(keyless.open_credential(owner, other).await, Err(CommandError::Vault(VaultError::Decrypt))));

    keyless.delete_credential(&ctx, owner, id).await.unwrap();
    let (state, _) =
        commands::uow::UnitOfWork::new(&store, &ctx).load::<domain::credential::Credential>(id).await.unwrap();
    let sealed = state.secret.expect("the ciphertext stays");
    let vault = Vault::new(pool, next, vec![]);
    assert!(matches!(vault.open(id, &sealed).await, Err(VaultError::Shredded)));
}

#[tokio::test]
async fn the_secret_is_not_in_the_servers_logs_nor_in_an_export() {
    let app = spawn_app().await;
    let mut server = serve(&app.url, &[("RUST_LOG", "debug")]);
    let address = format!("http://127.0.0.1:{}", server.port);
    let owner = user();
    let body = json!({"type": "user_password", "provider": "smtp", "username": "alice", "password": SECRET});
    let response = app
        .client
        .post(format!("{address}/api/integrations/smtp/credentials"))
        .bearer_auth(app.token(owner, false))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let id: Value = response.json().await.unwrap();
    let path = format!("{address}/api/integrations/smtp/credentials/{}", id["id"].as_str().unwrap());
    let response = app.client.delete(path).bearer_auth(app.token(owner, false)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = server.child.kill();
    let _ = server.child.wait();
    let logged: Vec<String> = server.lines.try_iter().collect();
    assert!(logged.len() > 3, "the server logged: {logged:?}");
    assert!(!logged.iter().any(|l| l.contains(SECRET)), "the secret is in the server's log");
    // Everything the log holds, exported, holds it nowhere either.
    let mut export = String::new();
    for _ in 0..50 {
        let output = Command::new(BIN).args(["events", "export"]).env("DATABASE_URL", &app.url).output().unwrap();
        export = String::from_utf8(output.stdout).unwrap();
        if export.contains("CredentialDeleted") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(export.contains("CredentialCreated") && export.contains("CredentialDeleted"), "{export}");
    assert!(!export.contains(SECRET) && !export.contains("alice"));
}

#[tokio::test]
async fn providers_are_listed_by_name_as_constants_and_as_an_example_without_signing_in() {
    let app = spawn_app().await;
    let anonymous = |path: &str| send(app.anonymous(Method::GET, path));
    let (status, providers) = anonymous("/api/integrations/providers").await;
    assert_eq!(status, 200, "{providers}");
    let names: Vec<&str> = providers.as_array().unwrap().iter().filter_map(Value::as_str).collect();
    for provider in ["openai", "anthropic", "http", "generic_webhook"] {
        assert!(names.contains(&provider), "{provider} in {names:?}");
    }
    let (status, listed) = anonymous("/api/integrations/providers/names").await;
    assert_eq!(status, 200);
    assert_eq!(listed["providers"], providers, "the same names");
    let (status, constants) = anonymous("/api/integrations/providers/constants").await;
    assert_eq!(status, 200);
    assert_eq!(constants["PROVIDER_NAMES"]["OPENAI"], "openai");
    assert_eq!(constants["PROVIDER_NAMES"].as_object().unwrap().len(), names.len());
    let (status, example) = anonymous("/api/integrations/providers/enum-example").await;
    assert_eq!(status, 200);
    assert!(names.contains(&example["provider"].as_str().unwrap()), "{example}");
    // The platform holds a key of its own for no provider unless configured.
    let (status, system) = anonymous("/api/integrations/providers/system").await;
    assert_eq!((status, system), (200, json!([])));
    let keyed = spawn_app_with(|c| c.outbound.openai_api_key = Some(api::config::Secret::new("sk-system"))).await;
    let (status, system) = send(keyed.anonymous(Method::GET, "/api/integrations/providers/system")).await;
    assert_eq!((status, system), (200, json!(["openai"])));
}
