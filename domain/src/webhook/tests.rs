use chrono::Utc;
use uuid::Uuid;

use super::*;

fn sealed() -> SealedSecret {
    SealedSecret { alg: "A256GCM".into(), key_id: "dek-x".into(), nonce: "bm9uY2U=".into(), ciphertext: "Y3Q=".into() }
}

fn given(events: &[WebhookEvent]) -> Webhook {
    Webhook::from_events(events)
}

fn create(user_id: Uuid) -> WebhookCommand {
    WebhookCommand::Create {
        user_id,
        provider: "generic_webhook".into(),
        webhook_type: "plain".into(),
        preset_id: Uuid::new_v4(),
        graph_id: Uuid::new_v4(),
        graph_version: 1,
        secret: sealed(),
        now: Utc::now(),
    }
}

fn created(user_id: Uuid) -> Vec<WebhookEvent> {
    given(&[]).decide(create(user_id)).expect("created")
}

#[test]
fn a_new_webhook_keeps_only_its_sealed_secret_and_is_created_once() {
    let user = Uuid::new_v4();
    let events = created(user);
    assert!(matches!(&events[..], [WebhookEvent::WebhookCreated { secret, .. }] if *secret == sealed()));
    let webhook = given(&events);
    assert!(webhook.is_visible_to(user));
    assert!(!webhook.is_visible_to(Uuid::new_v4()));
    assert_eq!(webhook.decide(create(user)), Err(WebhookError::AlreadyExists));
}

#[test]
fn only_the_owner_pings_a_live_webhook() {
    let user = Uuid::new_v4();
    let webhook = given(&created(user));
    let now = Utc::now();
    assert_eq!(
        webhook.decide(WebhookCommand::Ping { user_id: user, now }),
        Ok(vec![WebhookEvent::WebhookPinged { at: now }])
    );
    let stranger = WebhookCommand::Ping { user_id: Uuid::new_v4(), now };
    assert_eq!(webhook.decide(stranger), Err(WebhookError::NotFound));
    let nothing = WebhookCommand::Ping { user_id: user, now };
    assert_eq!(given(&[]).decide(nothing), Err(WebhookError::NotFound));
}

#[test]
fn a_deleted_webhook_is_gone_for_deliveries_and_pings_and_deleting_again_changes_nothing() {
    let user = Uuid::new_v4();
    let mut events = created(user);
    let now = Utc::now();
    events.extend(given(&events).decide(WebhookCommand::Delete { now }).unwrap());
    let webhook = given(&events);
    assert_eq!(webhook.takes_deliveries_for("generic_webhook"), Err(WebhookError::Gone));
    assert_eq!(webhook.decide(WebhookCommand::Ping { user_id: user, now }), Err(WebhookError::NotFound));
    assert_eq!(webhook.decide(WebhookCommand::Delete { now }), Ok(vec![]));
    let accepted = webhook.accept_delivery(Uuid::new_v4(), &WebhookDelivery::default(), "d-1", Uuid::new_v4(), now);
    assert_eq!(accepted, Err(WebhookError::Gone));
    assert_eq!(given(&[]).decide(WebhookCommand::Delete { now }), Err(WebhookError::NotFound));
}

#[test]
fn deliveries_are_taken_only_for_the_webhooks_provider() {
    let webhook = given(&created(Uuid::new_v4()));
    assert_eq!(webhook.takes_deliveries_for("generic_webhook"), Ok(()));
    assert_eq!(webhook.takes_deliveries_for("github"), Err(WebhookError::NotFound));
    assert_eq!(given(&[]).takes_deliveries_for("generic_webhook"), Err(WebhookError::NotFound));
}

#[test]
fn a_delivery_is_accepted_once_and_its_retry_decides_nothing() {
    let webhook_id = Uuid::new_v4();
    let webhook = given(&created(Uuid::new_v4()));
    let run = Uuid::new_v4();
    let now = Utc::now();
    let first = webhook.accept_delivery(webhook_id, &WebhookDelivery::default(), "evt-42", run, now).unwrap();
    assert_eq!(
        first,
        vec![DeliveryEvent::WebhookDeliveryAccepted {
            webhook_id,
            delivery_id: "evt-42".into(),
            execution_id: run,
            at: now
        }]
    );
    let delivery = WebhookDelivery::from_events(&first);
    assert_eq!(delivery.execution_id, Some(run));
    let again = webhook.accept_delivery(webhook_id, &delivery, "evt-42", Uuid::new_v4(), now);
    assert_eq!(again, Ok(vec![]));
}

#[test]
fn delivery_ids_are_bounded_printable_and_name_one_stream_per_webhook() {
    let webhook = given(&created(Uuid::new_v4()));
    let fresh = WebhookDelivery::default();
    for bad in ["", "has space", "tab\there", "é", &"x".repeat(MAX_DELIVERY_ID_CHARS + 1)] {
        let decided = webhook.accept_delivery(Uuid::new_v4(), &fresh, bad, Uuid::new_v4(), Utc::now());
        assert_eq!(decided, Err(WebhookError::InvalidDeliveryId), "{bad:?}");
    }
    assert!(valid_delivery_id(&"x".repeat(MAX_DELIVERY_ID_CHARS)));
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    assert_eq!(delivery_stream_id(a, "d"), delivery_stream_id(a, "d"));
    assert_ne!(delivery_stream_id(a, "d"), delivery_stream_id(a, "e"));
    assert_ne!(delivery_stream_id(a, "d"), delivery_stream_id(b, "d"));
}
