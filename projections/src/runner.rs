//! Runs projectors: each applies batches of the log in global order, writing
//! its read model and moving its checkpoint in one transaction, so that after
//! any crash every event is applied exactly once.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use commands::store::{EventStore, GlobalPosition, RecordedEvent};
use commands::tail::{Tail, TailConfig};
use commands::uow::decode;
use commands::{PgEventStore, StoreError};
use domain::aggregate::Aggregate;
use sqlx::{PgConnection, PgPool, Row};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A boxed future, so projectors can be stored as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Failures while projecting.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// Reading or decoding the log failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the read model failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// No projector has that name.
    #[error("unknown projection '{0}'")]
    Unknown(String),
}

/// One read model's builder.
pub trait Projector: Send + Sync + 'static {
    /// Stable name; the checkpoint row's key.
    fn name(&self) -> &'static str;
    /// The tables it owns, emptied before a rebuild.
    fn tables(&self) -> &'static [&'static str];
    /// Apply one event inside the batch's transaction. Events of streams the
    /// projector does not care about are ignored.
    fn handle<'a>(
        &'a self,
        event: &'a RecordedEvent,
        conn: &'a mut PgConnection,
    ) -> BoxFuture<'a, Result<(), ProjectionError>>;
}

/// A projector fed by the streams of one aggregate type: the runner skips
/// other streams and decodes (upcasting old schemas) before calling it.
pub trait StreamProjector: Send + Sync + 'static {
    /// The aggregate whose streams it reads.
    type Source: Aggregate;
    /// Stable name; the checkpoint row's key.
    const NAME: &'static str;
    /// The tables it owns, emptied before a rebuild.
    const TABLES: &'static [&'static str];
    /// Apply one decoded event of the stream of aggregate `id`.
    fn apply<'a>(
        &'a self,
        id: Uuid,
        event: <Self::Source as Aggregate>::Event,
        conn: &'a mut PgConnection,
    ) -> BoxFuture<'a, Result<(), ProjectionError>>;
}

impl<P: StreamProjector> Projector for P {
    fn name(&self) -> &'static str {
        P::NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        P::TABLES
    }

    fn handle<'a>(
        &'a self,
        event: &'a RecordedEvent,
        conn: &'a mut PgConnection,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        let id = event
            .stream_id
            .strip_prefix(<P::Source as Aggregate>::STREAM_PREFIX)
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|id| Uuid::parse_str(id).ok());
        let Some(id) = id else { return Box::pin(async { Ok(()) }) };
        match decode::<P::Source>(event) {
            Ok(decoded) => self.apply(id, decoded, conn),
            Err(e) => Box::pin(async move { Err(e.into()) }),
        }
    }
}

/// The running projectors and how far each has got.
#[derive(Clone)]
pub struct Projections {
    store: PgEventStore,
    projectors: Vec<Arc<dyn Projector>>,
    progress: Arc<HashMap<&'static str, watch::Sender<GlobalPosition>>>,
    tail: TailConfig,
}

impl Projections {
    /// Projections over `store` (not yet running).
    pub fn new(store: PgEventStore, projectors: Vec<Arc<dyn Projector>>) -> Self {
        let progress = projectors.iter().map(|p| (p.name(), watch::Sender::new(GlobalPosition::START))).collect();
        Self { store, projectors, progress: Arc::new(progress), tail: TailConfig::default() }
    }

    /// Override how batches are read (tests use small batches).
    pub fn with_tail_config(mut self, tail: TailConfig) -> Self {
        self.tail = tail;
        self
    }

    /// Names of the projectors.
    pub fn names(&self) -> Vec<&'static str> {
        self.projectors.iter().map(|p| p.name()).collect()
    }

    fn pool(&self) -> &PgPool {
        self.store.pool()
    }

    /// Make sure every projector has a checkpoint row.
    pub async fn init(&self) -> Result<(), ProjectionError> {
        for p in &self.projectors {
            sqlx::query("INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
                .bind(p.name())
                .execute(self.pool())
                .await?;
        }
        Ok(())
    }

    /// Start one task per projector; they stop when `stop` fires, after
    /// finishing the batch in hand.
    pub async fn spawn(&self, stop: CancellationToken) -> Result<Vec<tokio::task::JoinHandle<()>>, ProjectionError> {
        self.init().await?;
        Ok(self
            .projectors
            .iter()
            .map(|p| {
                let this = self.clone();
                let p = Arc::clone(p);
                let stop = stop.clone();
                tokio::spawn(async move { this.run(p, stop).await })
            })
            .collect())
    }

    async fn run(&self, projector: Arc<dyn Projector>, stop: CancellationToken) {
        let mut backoff = Duration::from_millis(50);
        let mut tail = Tail::new(&self.store, GlobalPosition::START, self.tail);
        let mut positioned = false;
        loop {
            if !positioned {
                match self.checkpoint(projector.name()).await {
                    Ok(ck) => {
                        tail.seek(ck);
                        self.publish(projector.name(), ck);
                        positioned = true;
                    }
                    Err(e) => {
                        tracing::warn!(projection = projector.name(), error = %e, "reading checkpoint failed");
                        if sleep_or_stop(&stop, backoff).await {
                            return;
                        }
                        continue;
                    }
                }
            }
            let from = tail.position();
            let batch = tokio::select! {
                batch = tail.next(&self.store) => batch,
                () = stop.cancelled() => return,
            };
            let result = match batch {
                Ok(batch) => self.apply(projector.as_ref(), from, &batch).await,
                Err(e) => Err(e.into()),
            };
            match result {
                Ok(Applied::Done(to)) => {
                    self.publish(projector.name(), to);
                    backoff = Duration::from_millis(50);
                }
                Ok(Applied::Moved(ck)) => {
                    tail.seek(ck);
                    self.publish(projector.name(), ck);
                }
                Err(e) => {
                    tracing::error!(projection = projector.name(), error = %e, "projection batch failed; retrying");
                    self.record_error(projector.name(), &e).await;
                    positioned = false;
                    if sleep_or_stop(&stop, backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    fn publish(&self, name: &str, to: GlobalPosition) {
        if let Some(tx) = self.progress.get(name) {
            tx.send_if_modified(|cur| {
                let moved = *cur != to;
                *cur = to;
                moved
            });
        }
    }

    /// The stored checkpoint of a projector.
    pub async fn checkpoint(&self, name: &str) -> Result<GlobalPosition, ProjectionError> {
        let row = sqlx::query("SELECT tx_id, position FROM projection_checkpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => GlobalPosition { tx_id: r.try_get("tx_id")?, position: r.try_get("position")? },
            None => GlobalPosition::START,
        })
    }

    /// Apply a batch read after `from`: lock the checkpoint, check nobody
    /// (another instance) moved it meanwhile, apply, move it, commit.
    async fn apply(
        &self,
        projector: &dyn Projector,
        from: GlobalPosition,
        batch: &[RecordedEvent],
    ) -> Result<Applied, ProjectionError> {
        let Some(last) = batch.last() else { return Ok(Applied::Done(from)) };
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query("SELECT tx_id, position FROM projection_checkpoints WHERE name = $1 FOR UPDATE")
            .bind(projector.name())
            .fetch_one(&mut *tx)
            .await?;
        let current = GlobalPosition { tx_id: row.try_get("tx_id")?, position: row.try_get("position")? };
        if current != from {
            return Ok(Applied::Moved(current));
        }
        for event in batch {
            projector.handle(event, &mut tx).await?;
        }
        sqlx::query(
            "UPDATE projection_checkpoints SET tx_id = $2, position = $3, updated_at = now(), last_error = NULL WHERE name = $1",
        )
        .bind(projector.name())
        .bind(last.global.tx_id)
        .bind(last.global.position)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Applied::Done(last.global))
    }

    async fn record_error(&self, name: &str, error: &ProjectionError) {
        let result =
            sqlx::query("UPDATE projection_checkpoints SET last_error = $2, last_error_at = now() WHERE name = $1")
                .bind(name)
                .bind(error.to_string())
                .execute(self.pool())
                .await;
        if let Err(e) = result {
            tracing::warn!(projection = name, error = %e, "could not record projection error");
        }
    }

    /// Wait until every named projector has applied the log up to `target`,
    /// or `timeout` passes. Returns whether they got there.
    pub async fn wait_for(&self, names: &[&str], target: GlobalPosition, timeout: Duration) -> bool {
        let wait_all = async {
            for name in names {
                let Some(tx) = self.progress.get(name) else { continue };
                let mut rx = tx.subscribe();
                if rx.wait_for(|at| *at >= target).await.is_err() {
                    return false;
                }
            }
            true
        };
        tokio::time::timeout(timeout, wait_all).await.unwrap_or(false)
    }

    /// Empty a projector's read model and reset its checkpoint, in one
    /// transaction; the runner (or [`Self::catch_up`]) then replays the log.
    pub async fn reset(&self, name: &str) -> Result<(), ProjectionError> {
        let projector = self.find(name)?;
        let mut tx = self.pool().begin().await?;
        sqlx::query("SELECT 1 FROM projection_checkpoints WHERE name = $1 FOR UPDATE")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        for table in projector.tables() {
            sqlx::query(&format!("TRUNCATE {table}")).execute(&mut *tx).await?;
        }
        sqlx::query("UPDATE projection_checkpoints SET tx_id = 0, position = 0, updated_at = now(), last_error = NULL WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Apply everything readable now, in batches of short transactions, and
    /// return how many events were applied (used by the rebuild command).
    pub async fn catch_up(&self, name: &str) -> Result<u64, ProjectionError> {
        let projector = self.find(name)?;
        let mut from = self.checkpoint(name).await?;
        let mut applied = 0u64;
        loop {
            let batch = self.store.read_all(from, self.tail.batch).await?;
            if batch.is_empty() {
                return Ok(applied);
            }
            match self.apply(projector.as_ref(), from, &batch).await? {
                Applied::Done(to) => {
                    applied += batch.len() as u64;
                    from = to;
                }
                Applied::Moved(ck) => from = ck,
            }
            self.publish(name, from);
        }
    }

    fn find(&self, name: &str) -> Result<Arc<dyn Projector>, ProjectionError> {
        self.projectors
            .iter()
            .find(|p| p.name() == name)
            .cloned()
            .ok_or_else(|| ProjectionError::Unknown(name.to_owned()))
    }
}

enum Applied {
    Done(GlobalPosition),
    Moved(GlobalPosition),
}

/// Sleep, unless asked to stop first; true when stopping.
async fn sleep_or_stop(stop: &CancellationToken, pause: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(pause) => false,
        () = stop.cancelled() => true,
    }
}
