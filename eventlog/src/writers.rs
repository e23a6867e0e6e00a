//! Dedicated connections for appends.
//!
//! sqlx's pool pings every connection when it is returned, one extra round
//! trip for each use; on the append path, where one statement is the whole
//! job, that costs about a fifth of the throughput. Appends therefore use a
//! few connections of their own, returned only when a statement completed,
//! so a cancelled or broken one is simply closed.

use std::sync::Mutex;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgConnection};
use tokio::sync::{Semaphore, SemaphorePermit};

/// A small set of connections used one statement at a time.
#[derive(Debug)]
pub(crate) struct Writers {
    idle: Mutex<Vec<PgConnection>>,
    permits: Semaphore,
    options: PgConnectOptions,
}

/// A borrowed writer connection; dropped without [`Writer::release`] it is
/// closed, never reused.
pub(crate) struct Writer<'a> {
    conn: PgConnection,
    writers: &'a Writers,
    _permit: SemaphorePermit<'a>,
}

impl Writers {
    /// Up to `size` connections made with `options`, opened on demand.
    pub(crate) fn new(options: PgConnectOptions, size: usize) -> Self {
        Self { idle: Mutex::new(Vec::with_capacity(size)), permits: Semaphore::new(size.max(1)), options }
    }

    /// Wait for a free slot and take (or open) its connection.
    pub(crate) async fn acquire(&self) -> Result<Writer<'_>, sqlx::Error> {
        let permit = self.permits.acquire().await.map_err(|_| sqlx::Error::PoolClosed)?;
        let idle = self.idle.lock().map_or(None, |mut idle| idle.pop());
        let conn = match idle {
            Some(conn) => conn,
            None => self.options.connect().await?,
        };
        Ok(Writer { conn, writers: self, _permit: permit })
    }
}

impl Writer<'_> {
    /// The connection.
    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// Hand the connection back for reuse: only after a statement completed
    /// (successfully or with a database error, which leaves it usable).
    pub(crate) fn release(self) {
        let Writer { conn, writers, _permit } = self;
        if let Ok(mut idle) = writers.idle.lock() {
            idle.push(conn);
        }
    }
}
