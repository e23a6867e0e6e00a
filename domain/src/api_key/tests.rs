use chrono::Utc;
use uuid::Uuid;

use super::*;
use ApiKeyPermission::*;

fn secret() -> StoredSecret {
    StoredSecret {
        hash: "$argon2id$v=19$...".into(),
        lookup: "abcd".into(),
        head: "agpt_abc".into(),
        tail: "wxyz1234".into(),
    }
}

fn create(user: Uuid, name: &str, scopes: Vec<ApiKeyPermission>) -> ApiKeyCommand {
    ApiKeyCommand::CreateApiKey {
        key_id: Uuid::new_v4(),
        user_id: user,
        name: name.into(),
        description: None,
        scopes,
        secret: secret(),
        expires_at: None,
        now: Utc::now(),
    }
}

fn created(user: Uuid) -> ApiKey {
    let events = ApiKey::default().decide(create(user, " ci ", vec![ReadBlock, Identity, ReadBlock])).unwrap();
    ApiKey::from_events(&events)
}

fn after(key: &ApiKey, command: ApiKeyCommand) -> ApiKey {
    let mut next = key.clone();
    for event in key.decide(command).unwrap() {
        next.evolve(&event);
    }
    next
}

#[test]
fn a_new_key_is_active_with_its_scopes_ordered_once_and_its_name_trimmed() {
    let key = created(Uuid::new_v4());
    assert_eq!(key.status, ApiKeyStatus::Active);
    assert_eq!(key.scopes, vec![Identity, ReadBlock]);
    assert_eq!(key.name, "ci");
    assert!(key.grants(Identity));
    assert!(!key.grants(ExecuteGraph));
}

#[test]
fn a_blank_or_overlong_name_is_refused_and_a_key_is_created_once() {
    let user = Uuid::new_v4();
    assert_eq!(ApiKey::default().decide(create(user, "  ", vec![])), Err(ApiKeyError::InvalidName));
    let long = "x".repeat(MAX_NAME_CHARS + 1);
    assert_eq!(ApiKey::default().decide(create(user, &long, vec![])), Err(ApiKeyError::InvalidName));
    assert_eq!(created(user).decide(create(user, "again", vec![])), Err(ApiKeyError::AlreadyExists));
}

#[test]
fn suspended_and_revoked_keys_grant_nothing_and_a_revoked_key_is_gone() {
    let user = Uuid::new_v4();
    let key = created(user);
    let suspended = after(&key, ApiKeyCommand::SuspendApiKey { user_id: user, now: Utc::now() });
    assert!(!suspended.grants(Identity));
    assert_eq!(suspended.decide(ApiKeyCommand::SuspendApiKey { user_id: user, now: Utc::now() }), Ok(vec![]));
    let revoked = after(&suspended, ApiKeyCommand::RevokeApiKey { user_id: user, now: Utc::now() });
    assert_eq!(revoked.status, ApiKeyStatus::Revoked);
    assert!(revoked.revoked_at.is_some());
    assert!(!revoked.is_visible_to(user), "revoking deletes the key for its owner");
    let again = ApiKeyCommand::RevokeApiKey { user_id: user, now: Utc::now() };
    assert_eq!(revoked.decide(again), Err(ApiKeyError::NotFound));
    let update = ApiKeyCommand::UpdatePermissions { user_id: user, scopes: vec![ReadGraph], now: Utc::now() };
    assert_eq!(revoked.decide(update), Err(ApiKeyError::NotFound));
}

#[test]
fn permissions_are_replaced_and_another_user_sees_not_found() {
    let user = Uuid::new_v4();
    let key = created(user);
    let updated = after(
        &key,
        ApiKeyCommand::UpdatePermissions { user_id: user, scopes: vec![ExecuteGraph, ReadGraph], now: Utc::now() },
    );
    assert_eq!(updated.scopes, vec![ExecuteGraph, ReadGraph]);
    let same =
        ApiKeyCommand::UpdatePermissions { user_id: user, scopes: vec![ReadGraph, ExecuteGraph], now: Utc::now() };
    assert_eq!(updated.decide(same), Ok(vec![]));
    let stranger = ApiKeyCommand::RevokeApiKey { user_id: Uuid::new_v4(), now: Utc::now() };
    assert_eq!(key.decide(stranger), Err(ApiKeyError::NotFound));
}
