//! The log reader shared by projectors: every reader gets the whole log in
//! order, whether it keeps up (served from memory), falls behind the window
//! (served from the database) or starts behind it.

use std::time::Duration;

use eventlog::store::{EventMetadata, EventStore, NewEvent, StreamWrite};
use eventlog::tail::TailConfig;
use eventlog::{GlobalPosition, PgEventStore};
use projections::feed::Feed;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::helpers::fresh_store;

async fn append_many(store: &PgEventStore, writer: usize, calls: usize) {
    let stream = format!("w{writer}-{}", Uuid::new_v4());
    for call in 0..calls {
        let events = (0..1 + call % 3)
            .map(|k| NewEvent {
                event_id: Uuid::new_v4(),
                event_type: "Numbered".into(),
                schema_version: 1,
                data: serde_json::value::to_raw_value(&json!({ "writer": writer, "call": call, "k": k })).unwrap(),
                metadata: EventMetadata { correlation_id: Uuid::new_v4(), ..Default::default() },
            })
            .collect::<Vec<_>>();
        let expected = store.read_stream(&stream, 0).await.unwrap().len() as i64;
        store.append(&[StreamWrite { stream_id: stream.clone(), expected_version: expected, events }]).await.unwrap();
    }
}

/// Read through the feed until `count` events arrived, pausing `pause` after
/// each batch.
async fn read(feed: Feed, count: usize, pause: Duration) -> Vec<(GlobalPosition, Uuid)> {
    let mut seen = Vec::with_capacity(count);
    let mut at = GlobalPosition::START;
    while seen.len() < count {
        let batch = tokio::time::timeout(Duration::from_secs(30), feed.next(at)).await.expect("feed stalled").unwrap();
        at = batch.last().expect("batches are never empty").global;
        seen.extend(batch.iter().map(|e| (e.global, e.event_id)));
        tokio::time::sleep(pause).await;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fast_lagging_and_late_readers_all_get_the_whole_log_in_order() {
    let store = fresh_store().await;
    // Some history before the feed starts: every reader begins behind it.
    append_many(&store, 99, 30).await;
    let head = store.head().await.unwrap();
    let feed = Feed::with_capacity(store.clone(), head, TailConfig { batch: 7, ..TailConfig::default() }, 16);
    let stop = CancellationToken::new();
    let reader = tokio::spawn({
        let (feed, stop) = (feed.clone(), stop.clone());
        async move { feed.run(tokio::sync::watch::channel(0).1, stop).await }
    });
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move { append_many(&store, w, 40).await })
        })
        .collect();
    let events_of = |calls: usize| (0..calls).map(|call| 1 + call % 3).sum::<usize>();
    let total = events_of(30) + 8 * events_of(40);
    let fast = tokio::spawn(read(feed.clone(), total, Duration::ZERO));
    let lagging = tokio::spawn(read(feed.clone(), total, Duration::from_millis(15)));
    for w in writers {
        w.await.unwrap();
    }
    let expected: Vec<(i64, i64, Uuid)> =
        sqlx::query_as("SELECT tx_id, position, event_id FROM events ORDER BY tx_id, position")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(expected.len(), total);
    let expected: Vec<_> =
        expected.into_iter().map(|(tx_id, position, id)| (GlobalPosition { tx_id, position }, id)).collect();
    assert_eq!(fast.await.unwrap(), expected, "a reader keeping up sees the log as stored");
    assert_eq!(lagging.await.unwrap(), expected, "a reader falling out of the window loses nothing");
    let late = read(feed.clone(), total, Duration::ZERO).await;
    assert_eq!(late, expected, "a reader starting from the beginning reads the database, then the window");
    stop.cancel();
    reader.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_database_restarted_underneath_the_feed_forgets_events_the_log_lost() {
    let store = fresh_store().await;
    let feed = Feed::new(store.clone(), GlobalPosition::START, TailConfig::default());
    let (restarted, restarts) = tokio::sync::watch::channel(0u64);
    let stop = CancellationToken::new();
    tokio::spawn({
        let (feed, stop) = (feed.clone(), stop.clone());
        async move { feed.run(restarts, stop).await }
    });
    append_many(&store, 1, 4).await; // 1 + 2 + 3 + 1 events
    let before = read(feed.clone(), 7, Duration::ZERO).await;
    // A failover to a replica that was behind: the last four events are gone.
    let kept = before[2].0;
    sqlx::query("DELETE FROM events WHERE (tx_id, position) > ($1, $2)")
        .bind(kept.tx_id)
        .bind(kept.position)
        .execute(store.pool())
        .await
        .unwrap();
    restarted.send_modify(|n| *n += 1);
    // The feed reacts on its own task; give it ample time to have done so.
    tokio::time::sleep(Duration::from_millis(300)).await;
    append_many(&store, 2, 1).await;
    let after = tokio::time::timeout(Duration::from_secs(10), feed.next(kept)).await.expect("feed stalled").unwrap();
    let lost: Vec<Uuid> = before[3..].iter().map(|(_, id)| *id).collect();
    assert!(after.iter().all(|e| !lost.contains(&e.event_id)), "no event the log lost is served from memory");
    assert_eq!(after.len(), 1, "the new event is served");
    stop.cancel();
}
