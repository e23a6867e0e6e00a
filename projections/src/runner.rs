//! Runs projectors: each applies batches of the log in global order, writing
//! its read model and moving its checkpoint in one transaction, so that after
//! any crash every event is applied exactly once.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventlog::store::{EventStore, GlobalPosition, RecordedEvent};
use eventlog::tail::TailConfig;
use eventlog::PgEventStore;
use sqlx::postgres::PgArguments;
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool, Row};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::feed::Feed;
use crate::pause::{next_backoff, sleep_or_stop, INITIAL_BACKOFF};
use crate::projector::{bind, ProjectionError, Projector};

/// How often progress over ignored events is written to the checkpoint row.
const SKIPPED_FLUSH: Duration = Duration::from_secs(1);

/// The running projectors and how far each has got.
#[derive(Clone)]
pub struct Projections {
    pub(crate) store: PgEventStore,
    projectors: Vec<Arc<dyn Projector>>,
    progress: Arc<HashMap<&'static str, watch::Sender<GlobalPosition>>>,
    /// Bumped when the database restarted underneath: every loop forgets
    /// what it holds in memory and reads its checkpoint again.
    restarts: Arc<watch::Sender<u64>>,
    pub(crate) tail: TailConfig,
}

impl Projections {
    /// Projections over `store` (not yet running).
    pub fn new(store: PgEventStore, projectors: Vec<Arc<dyn Projector>>) -> Self {
        let progress = projectors.iter().map(|p| (p.name(), watch::Sender::new(GlobalPosition::START))).collect();
        let restarts = Arc::new(watch::Sender::new(0));
        Self { store, projectors, progress: Arc::new(progress), restarts, tail: TailConfig::default() }
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

    pub(crate) fn pool(&self) -> &PgPool {
        self.store.pool()
    }

    /// Make sure every projector has a checkpoint row.
    pub async fn init(&self) -> Result<(), ProjectionError> {
        for p in &self.projectors {
            sqlx::query(
                "INSERT INTO projection_checkpoints (name, version) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            )
            .bind(p.name())
            .bind(p.version())
            .execute(self.pool())
            .await?;
        }
        Ok(())
    }

    /// Start the shared log reader and one task per projector; they stop
    /// when `stop` fires, after finishing the batch in hand.
    pub async fn spawn(&self, stop: CancellationToken) -> Result<Vec<tokio::task::JoinHandle<()>>, ProjectionError> {
        self.init().await?;
        self.rebuild_stale();
        // Projectors behind the head read the database until they reach it.
        let feed = Feed::new(self.store.clone(), self.store.head().await?, self.tail);
        let reader = {
            let (feed, restarts, stop) = (feed.clone(), self.restarts.subscribe(), stop.clone());
            tokio::spawn(async move { feed.run(restarts, stop).await })
        };
        let stall = tokio::spawn(crate::stall::watch(self.store.clone(), Arc::clone(&self.restarts), stop.clone()));
        let projectors = self.projectors.iter().map(|p| {
            let (this, p, feed, stop) = (self.clone(), Arc::clone(p), feed.clone(), stop.clone());
            tokio::spawn(async move { this.run(p, &feed, stop).await })
        });
        Ok([reader, stall].into_iter().chain(projectors).collect())
    }

    async fn run(&self, projector: Arc<dyn Projector>, feed: &Feed, stop: CancellationToken) {
        let name = projector.name();
        let mut backoff = INITIAL_BACKOFF;
        // Its own connection: a pooled one costs a round trip on every return.
        let mut conn: Option<PgConnection> = None;
        // The checkpoint as stored; `None` means "read it again".
        let mut stored: Option<GlobalPosition> = None;
        // How far the projector has read; ahead of `stored` over ignored events.
        let mut cursor = GlobalPosition::START;
        // When the cursor first ran ahead of `stored` over ignored events.
        let mut skipped_since: Option<Instant> = None;
        let mut restarts = self.restarts.subscribe();
        restarts.borrow_and_update();
        loop {
            let Some(from) = stored else {
                match self.checkpoint(name).await {
                    Ok(ck) => {
                        cursor = ck;
                        self.publish(name, ck);
                        stored = Some(ck);
                        skipped_since = None;
                    }
                    Err(e) => {
                        tracing::warn!(projection = name, error = %e, "reading checkpoint failed");
                        if sleep_or_stop(&stop, backoff).await {
                            return;
                        }
                    }
                }
                continue;
            };
            let flush_at = skipped_since.map(|t| t + SKIPPED_FLUSH);
            let batch = tokio::select! {
                batch = feed.next(cursor) => batch,
                () = sleep_until_or_forever(flush_at) => {
                    stored = match self.flush_skipped(name, from, cursor).await {
                        Ok(true) => Some(cursor),
                        _ => None,
                    };
                    skipped_since = None;
                    continue;
                }
                Ok(()) = restarts.changed() => {
                    // The database restarted: what this loop holds may be gone.
                    stored = None;
                    continue;
                }
                () = stop.cancelled() => return,
            };
            let result = match batch {
                Ok(batch) => match connection(self.pool(), &mut conn).await {
                    Ok(c) => self.apply(projector.as_ref(), from, &batch, c).await,
                    Err(e) => Err(e),
                },
                Err(e) => Err(e.into()),
            };
            match result {
                Ok(Applied::Done(to)) => {
                    (stored, cursor) = (Some(to), to);
                    skipped_since = None;
                    self.publish(name, to);
                    backoff = INITIAL_BACKOFF;
                }
                Ok(Applied::Skipped(to)) => {
                    cursor = to;
                    skipped_since.get_or_insert_with(Instant::now);
                    self.publish(name, to);
                }
                Ok(Applied::Moved(ck)) => {
                    (stored, cursor) = (Some(ck), ck);
                    skipped_since = None;
                    self.publish(name, ck);
                }
                Err(e) => {
                    tracing::error!(projection = name, error = %e, "projection batch failed; retrying");
                    // The connection may be broken, or mid-transaction holding
                    // the checkpoint row that recording the error updates:
                    // closing it ends that transaction first.
                    if let Some(c) = conn.take() {
                        let _ = c.close_hard().await;
                    }
                    self.record_error(name, &e).await;
                    stored = None;
                    if sleep_or_stop(&stop, backoff).await {
                        return;
                    }
                    backoff = next_backoff(backoff);
                }
            }
        }
    }

    pub(crate) fn publish(&self, name: &str, to: GlobalPosition) {
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

    /// Apply a batch read after `from`: move the checkpoint from `from` to the
    /// batch's end (which locks the row and proves no other instance moved
    /// it meanwhile), apply the events, commit. A batch the projector ignores
    /// entirely is only acknowledged in memory; see [`Self::flush_skipped`].
    pub(crate) async fn apply<E: Borrow<RecordedEvent>>(
        &self,
        projector: &dyn Projector,
        from: GlobalPosition,
        batch: &[E],
        conn: &mut PgConnection,
    ) -> Result<Applied, ProjectionError> {
        let Some(last) = batch.last().map(|e| e.borrow().global) else { return Ok(Applied::Done(from)) };
        let wanted = batch.iter().filter(|e| projector.wants((*e).borrow())).count();
        if wanted == 0 {
            return Ok(Applied::Skipped(last));
        }
        let events: Vec<&RecordedEvent> = batch.iter().map(Borrow::borrow).collect();
        if wanted < projector.bulk_from() {
            return self.apply_one_by_one(projector, from, &events, conn).await;
        }
        let (mut from, mut rest) = (from, &events[..]);
        while let Some(end) = rest.last().map(|e| e.global) {
            let mut args = checkpoint_move_args(projector.name(), from, end)?;
            let Some(bulk) = projector.bulk(rest, &mut args)? else {
                return self.apply_one_by_one(projector, from, rest, conn).await;
            };
            let (taken, applied) = if bulk.covered >= rest.len() {
                (rest.len(), self.apply_bulk(projector, (bulk.sql, rest.len()), args, end, conn).await?)
            } else if !rest[..bulk.covered].iter().any(|e| projector.wants(e)) {
                // The events it declines go one by one (with the ignored ones
                // among them), then the rest is offered again.
                let taken = self.declined_run(projector, rest, bulk.covered + 1)?;
                (taken, self.apply_one_by_one(projector, from, &rest[..taken], conn).await?)
            } else {
                // The events before the declined one, asked for again with
                // the checkpoint moving to their end.
                let prefix = &rest[..bulk.covered];
                let to = prefix[prefix.len() - 1].global;
                let mut args = checkpoint_move_args(projector.name(), from, to)?;
                let applied = match projector.bulk(prefix, &mut args)? {
                    Some(again) if again.covered >= prefix.len() => {
                        self.apply_bulk(projector, (again.sql, prefix.len()), args, to, conn).await?
                    }
                    _ => self.apply_one_by_one(projector, from, prefix, conn).await?,
                };
                (prefix.len(), applied)
            };
            match applied {
                Applied::Done(to) => from = to,
                other => return Ok(other),
            }
            rest = &rest[taken..];
        }
        Ok(Applied::Done(last))
    }

    /// How many leading events of `events` the projector leaves to the
    /// event-by-event path, given that it leaves the first `declined`: the
    /// declined events in a row (a listing's events, appended together) go
    /// in one transaction, not one each.
    fn declined_run(
        &self,
        projector: &dyn Projector,
        events: &[&RecordedEvent],
        mut declined: usize,
    ) -> Result<usize, ProjectionError> {
        while declined < events.len() && declined < EVENTS_PER_TRANSACTION {
            let rest = &events[declined..];
            match projector.bulk(rest, &mut PgArguments::default())? {
                Some(bulk) if bulk.covered < rest.len() && !rest[..bulk.covered].iter().any(|e| projector.wants(e)) => {
                    declined += bulk.covered + 1
                }
                _ => break,
            }
        }
        Ok(declined.min(events.len()))
    }

    /// Events applied one by one, in short transactions: each holds a
    /// transaction id, and with it every tailer's horizon, for as long as it
    /// runs.
    async fn apply_one_by_one(
        &self,
        projector: &dyn Projector,
        from: GlobalPosition,
        events: &[&RecordedEvent],
        conn: &mut PgConnection,
    ) -> Result<Applied, ProjectionError> {
        let mut from = from;
        for chunk in events.chunks(EVENTS_PER_TRANSACTION) {
            let Some(to) = chunk.last().map(|e| e.global) else { break };
            // Tailers wake when it ends (see `Writing`).
            let _writing = self.store.writing();
            let mut tx = conn.begin().await?;
            // Tables before the checkpoint row, the order `reset` and the bulk
            // statement take them in; another order could deadlock with them.
            lock_tables(&mut tx, projector.tables(), "ROW EXCLUSIVE").await?;
            let moved = self.move_checkpoint(&mut tx, projector.name(), from, to).await?;
            if !moved {
                tx.rollback().await?;
                return Ok(Applied::Moved(self.checkpoint(projector.name()).await?));
            }
            for event in chunk {
                projector.handle(event, &mut tx).await?;
            }
            tx.commit().await?;
            from = to;
        }
        Ok(Applied::Done(from))
    }

    /// Leading events as one statement: the checkpoint's compare-and-set
    /// (bound in `args` with the projector's arguments after) and the
    /// projector's writes guarded by it, in one implicit transaction, one
    /// round trip.
    async fn apply_bulk(
        &self,
        projector: &dyn Projector,
        (writes, covered): (&str, usize),
        args: PgArguments,
        to: GlobalPosition,
        conn: &mut PgConnection,
    ) -> Result<Applied, ProjectionError> {
        let sql = format!("WITH ck AS ({MOVE_CHECKPOINT} RETURNING 1), {writes} SELECT count(*) FROM ck");
        // A large batch (a catch-up, a rebuild) is planned for itself, never
        // from a cached generic plan: one made while the tables were small (a
        // rebuild starts empty) scans them whole, and would go on doing so as
        // they grow. A live batch is small and frequent: planning it each
        // time would cost more than the plan saves.
        let replan = covered >= REPLAN_FROM;
        let writing = self.store.writing();
        let moved: i64 = sqlx::query_scalar_with(&sql, args).persistent(!replan).fetch_one(&mut *conn).await?;
        drop(writing);
        Ok(if moved == 1 { Applied::Done(to) } else { Applied::Moved(self.checkpoint(projector.name()).await?) })
    }

    /// Compare-and-set the checkpoint; false when it is no longer at `from`.
    async fn move_checkpoint(
        &self,
        conn: &mut PgConnection,
        name: &str,
        from: GlobalPosition,
        to: GlobalPosition,
    ) -> Result<bool, ProjectionError> {
        let done = sqlx::query_with(MOVE_CHECKPOINT, checkpoint_move_args(name, from, to)?).execute(conn).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Persist progress made over ignored events, so a restart (and the lag
    /// report) need not look at them again. Losing it costs only a re-read.
    async fn flush_skipped(
        &self,
        name: &str,
        stored: GlobalPosition,
        at: GlobalPosition,
    ) -> Result<bool, ProjectionError> {
        let mut conn = self.pool().acquire().await?;
        self.move_checkpoint(&mut conn, name, stored, at).await
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

    /// How far a projector has got, as it moves (for loops that act on a
    /// read model, such as the executor looking for queued runs).
    pub fn progress_of(&self, name: &str) -> Option<watch::Receiver<GlobalPosition>> {
        self.progress.get(name).map(watch::Sender::subscribe)
    }

    /// The projectors fed by events of these stream categories.
    pub fn readers_of(&self, categories: &[&str]) -> Vec<&'static str> {
        self.projectors
            .iter()
            .filter(|p| p.categories().iter().any(|c| categories.contains(c)))
            .map(|p| p.name())
            .collect()
    }

    /// Wait until every named projector has applied the log up to `target`,
    /// or `timeout` passes. Answers the names that did not get there (empty
    /// when all did); naming a projector this process does not run is an
    /// error, not "caught up".
    pub async fn wait_for(
        &self,
        names: &[&'static str],
        target: GlobalPosition,
        timeout: Duration,
    ) -> Result<Vec<&'static str>, ProjectionError> {
        let mut watches = Vec::with_capacity(names.len());
        for &name in names {
            let tx = self.progress.get(name).ok_or_else(|| ProjectionError::NotRunning(name.to_owned()))?;
            watches.push((name, tx.subscribe()));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut pending = Vec::new();
        for (name, mut rx) in watches {
            let reached = tokio::time::timeout_at(deadline, rx.wait_for(|at| *at >= target)).await;
            if !matches!(reached, Ok(Ok(_))) {
                pending.push(name);
            }
        }
        Ok(pending)
    }

    /// Empty a projector's read model and reset its checkpoint, in one
    /// transaction; the runner (or [`Self::catch_up`]) then replays the log.
    pub async fn reset(&self, name: &str) -> Result<(), ProjectionError> {
        let projector = self.find(name)?;
        let mut tx = self.pool().begin().await?;
        // The tables first, then the checkpoint row: the order in which the
        // runner's transactions and bulk statements lock them (the other
        // order deadlocked with a bulk statement that held the tables and
        // waited for the row). Resetting the row makes a live runner's next
        // batch find the checkpoint moved and replay from the start.
        lock_tables(&mut tx, projector.tables(), "ACCESS EXCLUSIVE").await?;
        sqlx::query("UPDATE projection_checkpoints SET tx_id = 0, position = 0, updated_at = now(), last_error = NULL WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        for table in projector.tables() {
            sqlx::query(&format!("TRUNCATE {table}")).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Apply everything readable now, in batches of short transactions, and
    /// return how many events were applied (used by the rebuild command).
    pub async fn catch_up(&self, name: &str) -> Result<u64, ProjectionError> {
        let projector = self.find(name)?;
        let mut conn = self.pool().acquire().await?;
        let mut stored = self.checkpoint(name).await?;
        let mut at = stored;
        let mut applied = 0u64;
        loop {
            let batch = self.store.read_all(at, self.tail.batch).await?;
            if batch.is_empty() {
                if at != stored && !self.flush_skipped(name, stored, at).await? {
                    return Err(ProjectionError::Contended(name.to_owned()));
                }
                self.publish(name, at);
                return Ok(applied);
            }
            match self.apply(projector.as_ref(), stored, &batch, &mut conn).await? {
                Applied::Done(to) => {
                    applied += batch.len() as u64;
                    (stored, at) = (to, to);
                }
                Applied::Skipped(to) => at = to,
                Applied::Moved(ck) => (stored, at) = (ck, ck),
            }
            self.publish(name, at);
        }
    }

    pub(crate) fn find(&self, name: &str) -> Result<Arc<dyn Projector>, ProjectionError> {
        self.projectors
            .iter()
            .find(|p| p.name() == name)
            .cloned()
            .ok_or_else(|| ProjectionError::Unknown(name.to_owned()))
    }
}

pub(crate) enum Applied {
    /// Applied and checkpointed up to here.
    Done(GlobalPosition),
    /// Nothing of interest up to here; not yet checkpointed.
    Skipped(GlobalPosition),
    /// Another instance moved the checkpoint here.
    Moved(GlobalPosition),
}

/// Compare-and-set of a checkpoint from `$2, $3` to `$4, $5`; bound by
/// [`checkpoint_move_args`].
const MOVE_CHECKPOINT: &str = "UPDATE projection_checkpoints SET tx_id = $4, position = $5, updated_at = now(), \
     last_error = NULL WHERE name = $1 AND tx_id = $2 AND position = $3";

/// The arguments of [`MOVE_CHECKPOINT`]; a bulk statement adds its own after.
fn checkpoint_move_args(name: &str, from: GlobalPosition, to: GlobalPosition) -> Result<PgArguments, ProjectionError> {
    let mut args = PgArguments::default();
    bind(&mut args, name)?;
    bind(&mut args, from.tx_id)?;
    bind(&mut args, from.position)?;
    bind(&mut args, to.tx_id)?;
    bind(&mut args, to.position)?;
    Ok(args)
}

/// Batch statements covering this many events or more are planned for
/// themselves; see [`Projections::apply_bulk`].
const REPLAN_FROM: usize = 64;

/// Events applied per transaction on the event-by-event path.
const EVENTS_PER_TRANSACTION: usize = 32;

/// Lock a projector's tables (names from its own constant list) in `mode`.
pub(crate) async fn lock_tables(conn: &mut PgConnection, tables: &[&str], mode: &str) -> Result<(), ProjectionError> {
    if !tables.is_empty() {
        sqlx::query(&format!("LOCK TABLE {} IN {mode} MODE", tables.join(", "))).execute(conn).await?;
    }
    Ok(())
}

/// The projector's connection, opened when there is none.
async fn connection<'c>(
    pool: &PgPool,
    slot: &'c mut Option<PgConnection>,
) -> Result<&'c mut PgConnection, ProjectionError> {
    if slot.is_none() {
        // Read models can be rebuilt from the log, and a projector's rows
        // commit together with its checkpoint: a crash that loses the last
        // commits rewinds both, and the projector applies those events again.
        // So its commits need not wait for the WAL flush, which would also
        // keep its transaction id, and with it the log's horizon, held back.
        let options = pool.connect_options().as_ref().clone().options([("synchronous_commit", "off")]);
        *slot = Some(options.connect().await?);
    }
    slot.as_mut().ok_or(ProjectionError::Database(sqlx::Error::PoolClosed))
}

/// Sleep until `at`, or for ever when there is nothing to wait for.
async fn sleep_until_or_forever(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
