//! (f): the latency of one 100-event append against one single-row INSERT
//! commit, one writer, alternating so that both see the same machine; a raw
//! 100-row INSERT alternates with them as a reference for what 100 rows
//! cost the server.

use std::time::Instant;

use commands::{EventStore, PgEventStore};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::measure::{measure_series, Settings, Stats};
use crate::raw::Rows;
use crate::store::{new_stream, write};
use crate::{Res, BATCH};

/// What (f) measured.
pub struct Latency {
    /// `EventStore::append` of [`BATCH`] events on one stream.
    pub append: Stats,
    /// Autocommitted single-row INSERT into `bench_raw`.
    pub insert: Stats,
    /// Autocommitted [`BATCH`]-row INSERT into `bench_raw` (reference).
    pub insert_batch: Stats,
}

/// One writer doing the three operations in turn, each on its own stream
/// (the raw ones on a dedicated connection). Only the call is timed: events
/// and rows are built before the clock starts.
pub async fn alternate(settings: &Settings, store: &PgEventStore, url: &str) -> Res<Latency> {
    let series = measure_series(settings, 1, |ctl| {
        let (store, url) = (store.clone(), url.to_owned());
        async move {
            let mut conn = PgConnection::connect(&url).await?;
            let streams =
                [new_stream(), format!("bench_raw-{}", Uuid::new_v4()), format!("bench_raw-{}", Uuid::new_v4())];
            let mut versions = [0i64; 3];
            let mut latencies: [Vec<u32>; 3] = Default::default();
            while ctl.running() {
                let append = write(&streams[0], versions[0], BATCH);
                let started = Instant::now();
                store.append(&[append]).await?;
                ctl.done(started, &mut latencies[0]);

                for (i, count) in [(1, 1), (2, BATCH)] {
                    let rows = Rows::new(&streams[i], versions[i], count)?;
                    let started = Instant::now();
                    rows.insert(&mut conn).await?;
                    ctl.done(started, &mut latencies[i]);
                    versions[i] += count as i64;
                }
                versions[0] += BATCH as i64;
            }
            conn.close().await?;
            Ok(latencies.into())
        }
    })
    .await?;
    match <[Stats; 3]>::try_from(series) {
        Ok([append, insert, insert_batch]) => Ok(Latency { append, insert, insert_batch }),
        Err(_) => Err("(f) produced no measurements".into()),
    }
}
