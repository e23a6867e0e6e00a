use chrono::Utc;
use uuid::Uuid;

use super::*;

fn meta(kind: CredentialKind) -> CredentialMeta {
    CredentialMeta {
        provider: "openai".into(),
        kind,
        title: Some("mine".into()),
        host: None,
        header_names: vec![],
        expires_at: None,
        scopes: vec![],
    }
}

fn sealed() -> SealedSecret {
    SealedSecret { alg: "A256GCM".into(), key_id: "k".into(), nonce: "bm9uY2U=".into(), ciphertext: "Y3Q=".into() }
}

fn given(events: &[CredentialEvent]) -> Credential {
    Credential::from_events(events)
}

fn create(user_id: Uuid, meta: CredentialMeta) -> CredentialCommand {
    CredentialCommand::Create { user_id, meta: Box::new(meta), secret: sealed(), now: Utc::now() }
}

#[test]
fn a_new_credential_is_created_with_its_sealed_secret_and_only_once() {
    let user = Uuid::new_v4();
    let events = given(&[]).decide(create(user, meta(CredentialKind::ApiKey))).unwrap();
    assert!(matches!(&events[..], [CredentialEvent::CredentialCreated { secret, .. }] if *secret == sealed()));
    let state = given(&events);
    assert!(state.is_visible_to(user));
    assert!(!state.is_visible_to(Uuid::new_v4()));
    assert_eq!(state.decide(create(user, meta(CredentialKind::ApiKey))), Err(CredentialError::AlreadyExists));
}

#[test]
fn bad_providers_titles_hosts_and_header_counts_are_refused() {
    let user = Uuid::new_v4();
    let with = |f: &dyn Fn(&mut CredentialMeta)| {
        let mut m = meta(CredentialKind::HostScoped);
        m.host = Some("api.example.com".into());
        f(&mut m);
        given(&[]).decide(create(user, m))
    };
    assert!(with(&|_| {}).is_ok());
    assert_eq!(with(&|m| m.provider = String::new()), Err(CredentialError::InvalidProvider));
    assert_eq!(with(&|m| m.provider = "a b".into()), Err(CredentialError::InvalidProvider));
    assert_eq!(with(&|m| m.title = Some("t".repeat(MAX_TITLE_CHARS + 1))), Err(CredentialError::InvalidTitle));
    assert_eq!(with(&|m| m.host = Some("  ".into())), Err(CredentialError::InvalidHost));
    assert_eq!(with(&|m| m.host = None), Err(CredentialError::InvalidHost));
    assert_eq!(
        with(&|m| m.header_names = (0..=MAX_HEADERS).map(|i| format!("h{i}")).collect()),
        Err(CredentialError::TooManyHeaders)
    );
}

#[test]
fn only_the_owner_deletes_and_only_once() {
    let user = Uuid::new_v4();
    let created = given(&[]).decide(create(user, meta(CredentialKind::ApiKey))).unwrap();
    let state = given(&created);
    let stranger = CredentialCommand::Delete { user_id: Uuid::new_v4(), now: Utc::now() };
    assert_eq!(state.decide(stranger), Err(CredentialError::NotFound));
    let deleted = state.decide(CredentialCommand::Delete { user_id: user, now: Utc::now() }).unwrap();
    assert!(matches!(&deleted[..], [CredentialEvent::CredentialDeleted { .. }]));
    let gone = given(&[created, deleted].concat());
    assert!(!gone.is_visible_to(user));
    assert_eq!(
        gone.decide(CredentialCommand::Delete { user_id: user, now: Utc::now() }),
        Err(CredentialError::NotFound)
    );
}

#[test]
fn the_kind_has_autogpts_wire_names() {
    for (kind, name) in [
        (CredentialKind::ApiKey, "api_key"),
        (CredentialKind::OAuth2, "oauth2"),
        (CredentialKind::UserPassword, "user_password"),
        (CredentialKind::HostScoped, "host_scoped"),
    ] {
        assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::json!(name));
        assert_eq!(kind.as_str(), name);
    }
}
