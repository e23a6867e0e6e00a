use chrono::Utc;
use uuid::Uuid;

use super::*;

fn registered() -> (User, Uuid) {
    let id = Uuid::new_v4();
    let events = User::default()
        .decide(UserCommand::EnsureUser { user_id: id, email: "a@example.com".into(), name: None, now: Utc::now() })
        .unwrap();
    (User::from_events(&events), id)
}

#[test]
fn ensure_user_registers_once() {
    let (user, id) = registered();
    assert_eq!(user.id, Some(id));
    assert_eq!(user.timezone, TIMEZONE_NOT_SET);
    let again = user
        .decide(UserCommand::EnsureUser { user_id: id, email: "b@example.com".into(), name: None, now: Utc::now() })
        .unwrap();
    assert!(again.is_empty());
}

#[test]
fn email_is_validated_and_unchanged_email_is_a_no_op() {
    let (user, _) = registered();
    let err = user.decide(UserCommand::UpdateEmail { email: "nope".into(), now: Utc::now() });
    assert_eq!(err, Err(UserError::InvalidEmail("nope".into())));
    let same = user.decide(UserCommand::UpdateEmail { email: "a@example.com".into(), now: Utc::now() });
    assert_eq!(same, Ok(vec![]));
    let changed = user.decide(UserCommand::UpdateEmail { email: "c@example.org".into(), now: Utc::now() }).unwrap();
    assert!(matches!(&changed[..], [UserEvent::UserEmailChanged { email, .. }] if email == "c@example.org"));
}

#[test]
fn unknown_user_cannot_set_timezone() {
    let err = User::default().decide(UserCommand::SetTimezone { timezone: "Europe/Paris".into(), now: Utc::now() });
    assert_eq!(err, Err(UserError::NotFound));
}
