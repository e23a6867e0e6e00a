//! (b) and (c): `EventStore::append` of one or [`BATCH`](crate::BATCH)
//! events per call; [`write`] also makes (f)'s 100-event append.

use std::time::Instant;

use commands::{EventStore, NewEvent, PgEventStore, StreamWrite};
use eventlog::store::new_event_id;
use uuid::Uuid;

use crate::measure::{measure, Settings, Stats};
use crate::workload::{metadata, payload};
use crate::Res;

/// A stream of its own for one writer.
pub fn new_stream() -> String {
    format!("bench-{}", Uuid::new_v4())
}

/// The write of one call: `per_call` events to `stream`, whose version is
/// `version`. A call stands for one command: its events share one metadata,
/// as a command's events do; payloads differ per event.
pub fn write(stream: &str, version: i64, per_call: usize) -> StreamWrite {
    let metadata = metadata();
    let events = (1..=per_call as i64)
        .map(|i| NewEvent {
            event_id: new_event_id(),
            event_type: "BenchEvent".into(),
            schema_version: 1,
            data: payload(version + i),
            metadata: metadata.clone(),
        })
        .collect();
    StreamWrite { stream_id: stream.to_owned(), expected_version: version, events }
}

/// `writers` writers, each on its own stream with the expected version of
/// its previous call, looping without pause.
pub async fn append(settings: &Settings, store: &PgEventStore, writers: usize, per_call: usize) -> Res<Stats> {
    measure(settings, writers, |ctl| {
        let store = store.clone();
        async move {
            let stream = new_stream();
            let (mut version, mut latencies) = (0i64, Vec::new());
            while ctl.running() {
                let started = Instant::now();
                store.append(&[write(&stream, version, per_call)]).await?;
                version += per_call as i64;
                ctl.done(started, &mut latencies);
            }
            Ok(latencies)
        }
    })
    .await
}
