//! The event log under concurrency: gap-free global order, optimistic
//! concurrency, idempotent appends.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use eventlog::store::{EventMetadata, EventStore, NewEvent, StreamWrite};
use eventlog::tail::{Tail, TailConfig};
use eventlog::{GlobalPosition, PgEventStore, StoreError};
use serde_json::json;
use sqlx::{Connection, PgConnection};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::helpers::fresh_store;

fn event(kind: &str, n: usize) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: kind.into(),
        schema_version: 1,
        data: serde_json::value::to_raw_value(&json!({ "n": n })).unwrap(),
        metadata: EventMetadata { correlation_id: Uuid::new_v4(), ..Default::default() },
    }
}

fn write(stream: &str, expected: i64, events: Vec<NewEvent>) -> StreamWrite {
    StreamWrite { stream_id: stream.into(), expected_version: expected, events }
}

async fn all_ids_in_order(store: &PgEventStore) -> Vec<Uuid> {
    sqlx::query_scalar("SELECT event_id FROM events ORDER BY tx_id, position").fetch_all(store.pool()).await.unwrap()
}

/// Follow the log from the start, sending every event id received.
fn spawn_tailer(store: PgEventStore, batch: i64) -> mpsc::UnboundedReceiver<(GlobalPosition, Uuid)> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let config = TailConfig { batch, ..TailConfig::default() };
        let mut tail = Tail::new(&store, GlobalPosition::START, config);
        loop {
            let Ok(events) = tail.next(&store).await else { return };
            for e in events {
                if tx.send((e.global, e.event_id)).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// Insert one raw event in an explicit transaction, left open.
async fn open_transaction_with_event(url_pool: &PgEventStore, stream: &str) -> (PgConnection, Uuid) {
    let options = url_pool.pool().connect_options();
    let mut conn = PgConnection::connect_with(&options).await.unwrap();
    let id = Uuid::new_v4();
    sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
    sqlx::query(
        "INSERT INTO events (stream_id, version, event_id, event_type, schema_version, data, metadata) \
         VALUES ($1, 1, $2, 'Raw', 1, '{}', '{\"correlation_id\":\"00000000-0000-0000-0000-000000000000\"}')",
    )
    .bind(stream)
    .bind(id)
    .execute(&mut conn)
    .await
    .unwrap();
    (conn, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_with_rollbacks_and_a_tailer_lose_nothing() {
    let store = fresh_store().await;
    let mut received = spawn_tailer(store.clone(), 7);
    let committed = Arc::new(AtomicUsize::new(0));
    let rolled_back = Arc::new(std::sync::Mutex::new(HashSet::new()));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = store.clone();
            let committed = Arc::clone(&committed);
            let rolled_back = Arc::clone(&rolled_back);
            tokio::spawn(async move {
                let own = format!("own-{w}-{}", Uuid::new_v4());
                let mut version = 0i64;
                let mut shared = 0i64;
                for i in 0..150usize {
                    if i % 10 == 3 {
                        // An append that is rolled back must never be seen.
                        let (mut conn, id) =
                            open_transaction_with_event(&store, &format!("rb-{}", Uuid::new_v4())).await;
                        sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
                        rolled_back.lock().unwrap().insert(id);
                    }
                    let n = 1 + (i % 4);
                    let events: Vec<_> = (0..n).map(|k| event("Own", k)).collect();
                    store.append(&[write(&own, version, events)]).await.unwrap();
                    version += n as i64;
                    committed.fetch_add(n, Ordering::SeqCst);
                    // All writers also contend on one shared stream.
                    loop {
                        match store.append(&[write("shared", shared, vec![event("Shared", i)])]).await {
                            Ok(_) => {
                                shared += 1;
                                break;
                            }
                            Err(StoreError::Conflict { .. }) => {
                                let newer = store.read_stream("shared", shared).await.unwrap();
                                shared = newer.last().map_or(shared, |e| e.version);
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                    committed.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let expected = committed.load(Ordering::SeqCst);
    assert!(expected > 2000, "a meaningful load: {expected}");
    let mut seen = Vec::with_capacity(expected);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < expected {
        let next = tokio::time::timeout_at(deadline, received.recv()).await.expect("tailer stalled").unwrap();
        seen.push(next);
    }
    // Nothing more arrives.
    assert!(tokio::time::timeout(Duration::from_millis(300), received.recv()).await.is_err());
    let positions: Vec<GlobalPosition> = seen.iter().map(|s| s.0).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "delivered in strictly increasing global order");
    let ids: Vec<Uuid> = seen.iter().map(|s| s.1).collect();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len(), "each event exactly once");
    assert_eq!(ids, all_ids_in_order(&store).await, "the tailer saw every committed event, in log order");
    let rolled_back = rolled_back.lock().unwrap();
    assert!(!rolled_back.is_empty());
    assert!(ids.iter().all(|id| !rolled_back.contains(id)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_open_transaction_holds_the_tailer_back_then_everything_arrives() {
    let store = fresh_store().await;
    let mut received = spawn_tailer(store.clone(), 500);
    let (mut slow, slow_id) = open_transaction_with_event(&store, "slow-1").await;
    for i in 0..50 {
        store.append(&[write(&format!("fast-{i}"), 0, vec![event("Fast", i)])]).await.unwrap();
    }
    // While the slow transaction is open nothing after it may be delivered:
    // delivering the fast events now would skip the slow one for ever.
    let early = tokio::time::timeout(Duration::from_millis(1500), received.recv()).await;
    assert!(early.is_err(), "tailer must wait for the open transaction, got {early:?}");
    sqlx::query("COMMIT").execute(&mut slow).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 51 {
        let next =
            tokio::time::timeout(Duration::from_secs(5), received.recv()).await.expect("events after commit").unwrap();
        seen.push(next.1);
    }
    assert_eq!(seen[0], slow_id, "the slow transaction's event comes first: it started first");
    assert_eq!(seen, all_ids_in_order(&store).await);
}

#[tokio::test]
async fn appending_the_same_event_ids_twice_is_a_no_op() {
    let store = fresh_store().await;
    let events = vec![event("A", 1), event("A", 2)];
    let first = store.append(&[write("s-1", 0, events.clone())]).await.unwrap();
    assert!(!first.duplicate);
    // A retried request: same ids, same decision (against the old version).
    let again = store.append(&[write("s-1", 0, events)]).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.positions, first.positions);
    assert_eq!(all_ids_in_order(&store).await.len(), 2);
}

#[tokio::test]
async fn stale_or_future_expected_versions_conflict_and_append_nothing() {
    let store = fresh_store().await;
    store.append(&[write("s-1", 0, vec![event("A", 1)])]).await.unwrap();
    let stale = store.append(&[write("s-1", 0, vec![event("A", 2)])]).await;
    assert!(matches!(stale, Err(StoreError::Conflict { .. })), "{stale:?}");
    let future = store.append(&[write("s-1", 5, vec![event("A", 3)])]).await;
    assert!(matches!(future, Err(StoreError::Conflict { .. })), "{future:?}");
    // Multi-stream appends are atomic: one stale stream refuses them all.
    let mixed = store.append(&[write("s-2", 0, vec![event("B", 1)]), write("s-1", 0, vec![event("A", 4)])]).await;
    assert!(matches!(mixed, Err(StoreError::Conflict { .. })), "{mixed:?}");
    assert_eq!(all_ids_in_order(&store).await.len(), 1);
    assert!(store.read_stream("s-2", 0).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_multi_stream_append_takes_positions_in_the_order_given() {
    let store = fresh_store().await;
    store.append(&[write("s-b", 0, vec![event("A", 0)])]).await.unwrap();
    let writes: Vec<StreamWrite> = ["s-c", "s-a", "s-b"]
        .iter()
        .enumerate()
        .map(|(w, stream)| {
            write(stream, i64::from(*stream == "s-b"), (0..40).map(|n| event("B", w * 100 + n)).collect())
        })
        .collect();
    let given: Vec<Uuid> = writes.iter().flat_map(|w| w.events.iter().map(|e| e.event_id)).collect();
    let result = store.append(&writes).await.unwrap();
    // Straight from the table: read_all would wait for every other test's
    // open transaction to end (the visibility horizon is server-wide).
    let rows: Vec<(Uuid, i64, i64, String, i64)> =
        sqlx::query_as("SELECT event_id, tx_id, position, stream_id, version FROM events ORDER BY tx_id, position")
            .fetch_all(store.pool())
            .await
            .unwrap();
    let stored: Vec<Uuid> = rows.iter().skip(1).map(|r| r.0).collect();
    assert_eq!(stored, given);
    let globals: Vec<GlobalPosition> =
        rows.iter().skip(1).map(|r| GlobalPosition { tx_id: r.1, position: r.2 }).collect();
    assert_eq!(result.positions, globals);
    let b: Vec<i64> = rows.iter().filter(|r| r.3 == "s-b").map(|r| r.4).collect();
    assert_eq!(b, (1..=41).collect::<Vec<_>>());
}

#[tokio::test]
async fn streams_read_back_in_version_order_with_metadata() {
    let store = fresh_store().await;
    let user = Uuid::new_v4();
    let mut e = event("A", 1);
    e.metadata.user_id = Some(user);
    e.metadata.request_id = Some("req-1".into());
    // The first two share their metadata (encoded once), the third has its own.
    let mut shared = event("A", 2);
    shared.metadata = e.metadata.clone();
    let other = event("A", 3);
    store.append(&[write("s-1", 0, vec![e.clone(), shared, other.clone()])]).await.unwrap();
    store.append(&[write("s-1", 3, vec![event("A", 4)])]).await.unwrap();
    let read = store.read_stream("s-1", 0).await.unwrap();
    assert_eq!(read.iter().map(|r| r.version).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    assert_eq!(read[0].metadata, e.metadata);
    assert_eq!(read[1].metadata, e.metadata);
    assert_eq!(read[2].metadata, other.metadata);
    assert_eq!(read[0].event_id, e.event_id);
    assert_eq!(store.read_stream("s-1", 3).await.unwrap().len(), 1);
    // The head is what readers may see: below the cluster's oldest open
    // transaction, which another test's may hold back for a moment.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while store.head().await.unwrap() != read[3].global && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(store.head().await.unwrap(), read[3].global);
}

#[tokio::test]
async fn a_read_for_a_rebuild_carries_whole_only_the_events_it_is_told_to_and_every_position() {
    let store = fresh_store().await;
    let id = Uuid::new_v4();
    let (a, b, c) = (format!("alpha-{id}"), format!("beta-{id}"), format!("gamma-{id}"));
    store.append(&[write(&a, 0, vec![event("AlphaDone", 1), event("AlphaDone", 2)])]).await.unwrap();
    store.append(&[write(&b, 0, vec![event("BetaDone", 3), event("Counted", 4)])]).await.unwrap();
    store.append(&[write(&c, 0, vec![event("GammaDone", 5)])]).await.unwrap();
    // The log shows them once every older transaction on the server has
    // ended (other tests' too); from then on, every read does.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let all = loop {
        let all = store.read_all(GlobalPosition::START, 100).await.unwrap();
        if all.len() == 5 || std::time::Instant::now() > deadline {
            break all;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(all.len(), 5);
    let wanted = eventlog::Wanted { streams: vec!["alpha"], types: vec!["Counted"] };
    let read = store.read_all_wanted(GlobalPosition::START, 100, &wanted).await.unwrap();
    // Every event is there in order, so a cursor moves past all of them.
    let places = |events: &[eventlog::RecordedEvent]| -> Vec<_> {
        events.iter().map(|e| (e.global, e.stream_id.clone(), e.version, e.event_id, e.event_type.clone())).collect()
    };
    assert_eq!(places(&read), places(&all));
    for (got, whole) in read.iter().zip(&all) {
        if wanted.covers(&got.stream_id, &got.event_type) {
            assert_eq!(got.data.get(), whole.data.get());
            assert_eq!(got.metadata, whole.metadata);
        } else {
            assert_eq!(got.data.get(), "null", "{} passed over", got.event_type);
            assert_eq!(got.metadata, EventMetadata::default());
        }
    }
    let whole: Vec<&str> = read.iter().filter(|e| e.data.get() != "null").map(|e| e.event_type.as_str()).collect();
    assert_eq!(whole, ["AlphaDone", "AlphaDone", "Counted"]);
    // A limit counts passed-over events too: the next read starts after them.
    let first = store.read_all_wanted(GlobalPosition::START, 3, &wanted).await.unwrap();
    let rest = store.read_all_wanted(first[2].global, 3, &wanted).await.unwrap();
    assert_eq!((first.len(), rest.len()), (3, 2));
    assert_eq!(rest[0].event_type, "Counted");
}

#[tokio::test]
async fn a_write_outside_the_log_wakes_tailers_when_it_ends_and_holds_back_the_wake_of_a_younger_append() {
    let store = fresh_store().await;
    let mut wake = store.appended();
    wake.borrow_and_update();
    // A read model's batch, say: its transaction would hide every later
    // commit from readers until it ends.
    let writing = store.writing();
    let stream = format!("held-{}", Uuid::new_v4());
    store.append(&[write(&stream, 0, vec![event("Held", 1)])]).await.unwrap();
    assert!(!wake.has_changed().unwrap(), "an append younger than an open write woke tailers for nothing");
    drop(writing);
    assert!(wake.has_changed().unwrap(), "the write's end did not wake tailers");
    wake.borrow_and_update();
    // On its own, a write's end wakes them too.
    drop(store.writing());
    assert!(wake.has_changed().unwrap());
}
