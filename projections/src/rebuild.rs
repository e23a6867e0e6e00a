//! Zero-downtime rebuilds: a read model's next version is built from the
//! start of the log into a side schema while the live one keeps serving
//! (and keeps being updated by its projector), caught up to the head, and
//! swapped in within one transaction. Queries never see a half-built model:
//! before the swap they read the old tables, after it the new ones.
//!
//! Exclusion, across processes: two rebuilds of one projection exclude each
//! other by a session advisory lock (the loser is told, not queued); the
//! swap excludes the live projector by the lock the projector itself takes
//! for every batch (its tables, then its checkpoint row, in that order, so
//! neither can deadlock the other). Replay is side-effect free: it runs the
//! projector's own writes only, never the executor, the NATS relay or any
//! other consumer of the log, and a projector that owns no tables (one that
//! hands events on) cannot be rebuilt at all.

use std::sync::Arc;
use std::time::{Duration, Instant};

use eventlog::store::{EventStore, GlobalPosition, RecordedEvent};
use eventlog::{PgEventStore, StoreError, Wanted};
use sqlx::{ConnectOptions, Connection, PgConnection, Row};
use tokio::task::JoinHandle;

use crate::projector::{BoxFuture, ProjectionError, Projector};
use crate::runner::{lock_tables, Applied, Projections};

/// How long to wait for the log's horizon to pass the live checkpoint.
pub(crate) const HORIZON_WAIT: Duration = Duration::from_millis(20);

/// How often a rebuild writes its progress (its heartbeat) to the shared row.
const HEARTBEAT: Duration = Duration::from_millis(500);

/// How far a rebuild has got, as it runs.
#[derive(Debug, Clone, Copy)]
pub struct RebuildProgress {
    /// Events of the log read so far.
    pub done: u64,
    /// Events in the log when the rebuild started (or `done`, once past it).
    pub total: u64,
    /// Time since it started.
    pub elapsed: Duration,
}

/// What a finished rebuild did.
#[derive(Debug, Clone, Copy)]
pub struct RebuildReport {
    /// Events of the log replayed.
    pub events: u64,
    /// Where the new read model's checkpoint stands.
    pub checkpoint: GlobalPosition,
    /// How long it took, swap included.
    pub elapsed: Duration,
}

/// A rebuild that holds its projection's rebuild lock; [`Self::run`] does it.
pub struct RebuildJob {
    projections: Projections,
    projector: Arc<dyn Projector>,
    /// The session holding the advisory lock; closing it releases the lock,
    /// which a crashed process's connection does too.
    lock: PgConnection,
    total: u64,
}

impl Projections {
    /// Take the rebuild lock of `name` and mark its rebuild as started;
    /// [`ProjectionError::AlreadyRebuilding`] when another rebuild holds it.
    pub async fn begin_rebuild(&self, name: &str) -> Result<RebuildJob, ProjectionError> {
        let (projector, mut lock) = self.rebuild_lock(name).await?;
        let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&mut lock).await?;
        sqlx::query(
            "INSERT INTO projection_rebuilds (name, state, version, events_total) VALUES ($1, 'rebuilding', $2, $3) \
             ON CONFLICT (name) DO UPDATE SET state = 'rebuilding', version = $2, events_done = 0, \
               events_total = $3, started_at = now(), updated_at = now(), finished_at = NULL, error = NULL",
        )
        .bind(name)
        .bind(projector.version())
        .bind(total)
        .execute(&mut lock)
        .await?;
        Ok(RebuildJob { projections: self.clone(), projector, lock, total: u64::try_from(total).unwrap_or(0) })
    }

    /// The projector `name`, if it can be replayed, and a session holding
    /// its rebuild lock (released when it closes, also when its process dies).
    pub(crate) async fn rebuild_lock(&self, name: &str) -> Result<(Arc<dyn Projector>, PgConnection), ProjectionError> {
        let projector = self.find(name)?;
        if projector.tables().is_empty() {
            return Err(ProjectionError::NotRebuildable(name.to_owned()));
        }
        let mut lock = self.pool().connect_options().as_ref().clone().connect().await?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
            .bind(format!("projection-rebuild:{name}"))
            .fetch_one(&mut lock)
            .await?;
        if !got {
            let _ = lock.close().await;
            return Err(ProjectionError::AlreadyRebuilding(name.to_owned()));
        }
        Ok((projector, lock))
    }

    /// Rebuild in the background every projection whose stored read model
    /// was built by another version of its code: how a new read model ships.
    pub(crate) fn rebuild_stale(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            let stored: Vec<(String, i32)> =
                match sqlx::query_as("SELECT name, version FROM projection_checkpoints").fetch_all(this.pool()).await {
                    Ok(rows) => rows,
                    Err(e) => return tracing::warn!(error = %e, "reading projection versions failed"),
                };
            for (name, version) in stored {
                let Ok(projector) = this.find(&name) else { continue };
                if projector.version() == version || projector.tables().is_empty() {
                    continue;
                }
                tracing::info!(
                    projection = name,
                    from = version,
                    to = projector.version(),
                    "rebuilding stale read model"
                );
                match this.begin_rebuild(&name).await {
                    Ok(job) => {
                        if let Err(e) = job.run(|_| {}).await {
                            tracing::error!(projection = name, error = %e, "rebuild failed");
                        }
                    }
                    Err(ProjectionError::AlreadyRebuilding(_)) => {}
                    Err(e) => tracing::error!(projection = name, error = %e, "rebuild could not start"),
                }
            }
        });
    }
}

impl RebuildJob {
    /// Events in the log when the rebuild started.
    pub fn events_total(&self) -> u64 {
        self.total
    }

    /// Build, catch up, swap; then record the outcome and release the lock.
    /// `on_progress` is called after every batch.
    /// Boxed: the future is spawned, and the compiler cannot prove the
    /// unboxed one `Send` for every lifetime of the connections it borrows.
    pub fn run(
        mut self,
        on_progress: impl FnMut(&RebuildProgress) + Send + 'static,
    ) -> BoxFuture<'static, Result<RebuildReport, ProjectionError>> {
        Box::pin(async move { self.finish(on_progress).await })
    }

    async fn finish(
        &mut self,
        on_progress: impl FnMut(&RebuildProgress) + Send,
    ) -> Result<RebuildReport, ProjectionError> {
        let name = self.projector.name();
        let result = self.build_and_swap(on_progress).await;
        let (state, error) = match &result {
            Ok(_) => ("done", None),
            Err(e) => ("failed", Some(e.to_string())),
        };
        let finished = sqlx::query(
            "UPDATE projection_rebuilds SET state = $2, error = $3, updated_at = now(), finished_at = now(), \
               events_done = CASE WHEN $2 = 'done' THEN greatest(events_done, events_total) ELSE events_done END, \
               events_total = greatest(events_done, events_total) WHERE name = $1",
        )
        .bind(name)
        .bind(state)
        .bind(&error)
        .execute(&mut self.lock)
        .await;
        if let Err(e) = finished {
            tracing::warn!(projection = name, error = %e, "could not record the rebuild's outcome");
        }
        self.drop_schemas().await;
        // Released here, so that the caller's next rebuild or verify finds it
        // free; the server would release it only once it noticed the session
        // closed, a moment after the job is dropped (which also releases it
        // should this fail).
        let _ = sqlx::query("SELECT pg_advisory_unlock_all()").execute(&mut self.lock).await;
        result
    }

    fn side(&self) -> String {
        format!("rebuild_{}", self.projector.name())
    }

    fn retired(&self) -> String {
        format!("retired_{}", self.projector.name())
    }

    async fn drop_schemas(&mut self) {
        for schema in [self.side(), self.retired()] {
            if let Err(e) =
                sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).execute(&mut self.lock).await
            {
                tracing::warn!(schema, error = %e, "could not drop a rebuild schema");
            }
        }
    }

    async fn build_and_swap(
        &mut self,
        mut on_progress: impl FnMut(&RebuildProgress),
    ) -> Result<RebuildReport, ProjectionError> {
        let started = Instant::now();
        let (name, tables) = (self.projector.name(), self.projector.tables());
        let (side, retired) = (self.side(), self.retired());
        // Left over by a crashed rebuild (the side schema is dropped by
        // `Side::create`): nobody else can be using it, since this job holds
        // the rebuild lock.
        execute_all(&mut self.lock, &[format!("DROP SCHEMA IF EXISTS {retired} CASCADE")]).await?;
        let (projections, projector, total) = (self.projections.clone(), Arc::clone(&self.projector), self.total);
        let mut build = Side::create(&projections, projector.as_ref(), &mut self.lock, &side).await?;
        let mut beat = Instant::now();
        let mut batches = Side::stream(&projections, projector.as_ref(), None);
        loop {
            let Some(batch) = batches.next(&mut build.cursor).await? else {
                // An empty read is not the end: an open transaction anywhere
                // on the server holds the readable log back (the horizon),
                // possibly below what the live model has applied. Swapping
                // then would serve a model missing those events.
                if build.cursor.at >= projections.checkpoint(name).await? {
                    break;
                }
                tokio::time::sleep(HORIZON_WAIT).await;
                continue;
            };
            build.apply(&projections, projector.as_ref(), &batch).await?;
            let progress = build.cursor.progress(total, started);
            on_progress(&progress);
            if beat.elapsed() >= HEARTBEAT {
                self.heartbeat(&progress).await?;
                beat = Instant::now();
            }
        }
        let live = build.live.clone();
        // The swap. Holding a transaction id from the start caps what the
        // log can show this transaction: the tail below is finite however
        // fast others append, and everything after it sorts after `at`.
        let mut tx = build.conn.begin().await?;
        sqlx::query("SELECT pg_current_xact_id()").execute(&mut *tx).await?;
        let live_at = lock_live(&mut tx, &live, tables, name, "ACCESS EXCLUSIVE").await?;
        while let Some(batch) = batches.next(&mut build.cursor).await? {
            build.cursor.apply_on(&projections, projector.as_ref(), &mut tx, &batch).await?;
        }
        // The horizon only moves forward, so what the live model applied is
        // readable here; if not, refuse rather than swap in less.
        if build.cursor.at < live_at {
            return Err(ProjectionError::HeldBack {
                name: name.to_owned(),
                reason: "the rebuild could not read up to the live checkpoint before the swap".to_owned(),
            });
        }
        let mut swap = vec![format!("CREATE SCHEMA {retired}")];
        for t in tables {
            swap.push(format!("ALTER TABLE {live}.{t} SET SCHEMA {retired}"));
            swap.push(format!("ALTER TABLE {side}.{t} SET SCHEMA {live}"));
        }
        execute_all(&mut tx, &swap).await?;
        for t in tables {
            keep_index_names(&mut tx, &live, &retired, t).await?;
        }
        let at = build.cursor.at;
        sqlx::query(&format!(
            "UPDATE {live}.projection_checkpoints SET tx_id = $2, position = $3, version = $4, updated_at = now(), \
               last_error = NULL, last_error_at = NULL WHERE name = $1"
        ))
        .bind(name)
        .bind(at.tx_id)
        .bind(at.position)
        .bind(projector.version())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let _ = build.conn.close().await;
        self.projections.publish(name, at);
        let progress = build.cursor.progress(total, started);
        on_progress(&progress);
        Ok(RebuildReport { events: progress.done, checkpoint: at, elapsed: started.elapsed() })
    }

    async fn heartbeat(&mut self, progress: &RebuildProgress) -> Result<(), ProjectionError> {
        sqlx::query(
            "UPDATE projection_rebuilds SET events_done = $2, events_total = $3, updated_at = now() WHERE name = $1",
        )
        .bind(self.projector.name())
        .bind(i64::try_from(progress.done).unwrap_or(i64::MAX))
        .bind(i64::try_from(progress.total).unwrap_or(i64::MAX))
        .execute(&mut self.lock)
        .await?;
        Ok(())
    }
}

/// A read model being built in a side schema, on its own connection.
pub(crate) struct Side {
    /// The connection whose search path puts the side schema first.
    pub(crate) conn: PgConnection,
    /// The live schema, where the served read model lives.
    pub(crate) live: String,
    /// How far the side model has got.
    pub(crate) cursor: Cursor,
}

/// How far a side model has got in the log.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Cursor {
    /// Its side checkpoint.
    pub(crate) stored: GlobalPosition,
    /// How far it has read (ahead of `stored` over ignored events).
    pub(crate) at: GlobalPosition,
    /// Events read.
    pub(crate) done: u64,
}

/// Batches of the log after a cursor, optionally no further than a limit.
///
/// While one batch is applied, the next is already being read: reading
/// (Postgres sending rows, this process decoding them) and applying (the
/// projector's fold, Postgres writing) then overlap on two cores instead
/// of taking turns.
pub(crate) struct Batches<'a> {
    projections: &'a Projections,
    until: Option<GlobalPosition>,
    /// What the projector reads whole; the rest is passed over.
    wanted: Option<Arc<Wanted>>,
    /// The read after the last batch handed out, from where that batch ends.
    ahead: Option<(GlobalPosition, Reading)>,
}

/// A read of the log under way in a task of its own.
type Reading = JoinHandle<Result<Vec<RecordedEvent>, StoreError>>;

impl Batches<'_> {
    /// The next batch after `cursor`, `None` at the head (or the limit).
    pub(crate) async fn next(&mut self, cursor: &mut Cursor) -> Result<Option<Vec<RecordedEvent>>, ProjectionError> {
        let limit = self.projections.tail.rebuild_batch;
        let read = match self.ahead.take() {
            Some((from, read)) if from == cursor.at => read.await.ok(),
            Some((_, read)) => {
                read.abort();
                None
            }
            None => None,
        };
        // A read ahead that panicked or was cancelled is simply done again.
        let mut batch = match read {
            Some(batch) => batch?,
            None => read_batch(self.projections.store.clone(), cursor.at, limit, self.wanted.clone()).await?,
        };
        // A full batch is likely followed by more; a short one reached the
        // head, where reading again at once would find little.
        if let Some(last) = batch.last().filter(|_| batch.len() as i64 >= limit).map(|e| e.global) {
            if self.until.is_none_or(|until| last < until) {
                let next = read_batch(self.projections.store.clone(), last, limit, self.wanted.clone());
                self.ahead = Some((last, tokio::spawn(next)));
            }
        }
        if let Some(until) = self.until {
            batch.retain(|e| e.global <= until);
        }
        Ok((!batch.is_empty()).then_some(batch))
    }
}

/// Up to `limit` events after `after`, whole where `wanted` says so.
async fn read_batch(
    store: PgEventStore,
    after: GlobalPosition,
    limit: i64,
    wanted: Option<Arc<Wanted>>,
) -> Result<Vec<RecordedEvent>, StoreError> {
    match wanted {
        Some(wanted) => store.read_all_wanted(after, limit, &wanted).await,
        None => store.read_all(after, limit).await,
    }
}

impl Drop for Batches<'_> {
    fn drop(&mut self) {
        if let Some((_, read)) = self.ahead.take() {
            read.abort();
        }
    }
}

impl Side {
    /// Create the side schema: empty copies of the projector's tables and of
    /// the checkpoint table, on `admin`; then a connection that writes there.
    pub(crate) async fn create(
        projections: &Projections,
        projector: &dyn Projector,
        admin: &mut PgConnection,
        schema: &str,
    ) -> Result<Self, ProjectionError> {
        let live: String = sqlx::query_scalar("SELECT current_schema()").fetch_one(&mut *admin).await?;
        let mut setup = vec![format!("DROP SCHEMA IF EXISTS {schema} CASCADE"), format!("CREATE SCHEMA {schema}")];
        for t in projector.tables().iter().copied().chain(["projection_checkpoints"]) {
            setup.push(format!("CREATE TABLE {schema}.{t} (LIKE {live}.{t} INCLUDING ALL)"));
        }
        execute_all(admin, &setup).await?;
        sqlx::query(&format!("INSERT INTO {schema}.projection_checkpoints (name, version) VALUES ($1, $2)"))
            .bind(projector.name())
            .bind(projector.version())
            .execute(&mut *admin)
            .await?;
        // The projector's statements name their tables (and the checkpoint
        // table) unqualified: on this connection they resolve to the side
        // schema, and tables of other read models to the live ones.
        let options = projections
            .pool()
            .connect_options()
            .as_ref()
            .clone()
            .options([("search_path", format!("{schema},{live}").as_str()), ("synchronous_commit", "off")]);
        Ok(Self { conn: options.connect().await?, live, cursor: Cursor::default() })
    }

    /// Batches of the log for a side model of `projector`, no further than
    /// `until` if given.
    pub(crate) fn stream<'a>(
        projections: &'a Projections,
        projector: &dyn Projector,
        until: Option<GlobalPosition>,
    ) -> Batches<'a> {
        Batches { projections, until, wanted: projector.reads().map(Arc::new), ahead: None }
    }

    /// Apply one batch on the side connection.
    pub(crate) async fn apply(
        &mut self,
        projections: &Projections,
        projector: &dyn Projector,
        batch: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        self.cursor.apply_on(projections, projector, &mut self.conn, batch).await
    }
}

impl Cursor {
    /// Its progress against `total` events known at the start.
    fn progress(&self, total: u64, started: Instant) -> RebuildProgress {
        RebuildProgress { done: self.done, total: total.max(self.done), elapsed: started.elapsed() }
    }

    /// Apply one batch to the side model on `conn` (the side connection, or
    /// a transaction on it) and move past it.
    pub(crate) async fn apply_on(
        &mut self,
        projections: &Projections,
        projector: &dyn Projector,
        conn: &mut PgConnection,
        batch: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        self.done += batch.len() as u64;
        match projections.apply(projector, self.stored, batch, conn).await? {
            Applied::Done(to) => (self.stored, self.at) = (to, to),
            Applied::Skipped(to) => self.at = to,
            // Nobody else writes the side checkpoint: something is wrong.
            Applied::Moved(_) => return Err(ProjectionError::Contended(projector.name().to_owned())),
        }
        Ok(())
    }
}

/// Lock the live model of a projector as its runner's batches do (tables
/// first, then the checkpoint row), in `mode`.
pub(crate) async fn lock_live(
    conn: &mut PgConnection,
    live: &str,
    tables: &[&str],
    name: &str,
    mode: &str,
) -> Result<GlobalPosition, ProjectionError> {
    let qualified: Vec<String> = tables.iter().map(|t| format!("{live}.{t}")).collect();
    let qualified: Vec<&str> = qualified.iter().map(String::as_str).collect();
    lock_tables(&mut *conn, &qualified, mode).await?;
    let (tx_id, position): (i64, i64) = sqlx::query_as(&format!(
        "SELECT tx_id, position FROM {live}.projection_checkpoints WHERE name = $1 FOR UPDATE"
    ))
    .bind(name)
    .fetch_one(&mut *conn)
    .await?;
    Ok(GlobalPosition { tx_id, position })
}

/// Run statements (built from the projector's own constant names) in order.
async fn execute_all(conn: &mut PgConnection, statements: &[String]) -> Result<(), ProjectionError> {
    for statement in statements {
        sqlx::query(statement).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Give the new table's indexes the names the old table's had (matched by
/// definition), so later migrations can name them as they always did.
async fn keep_index_names(
    conn: &mut PgConnection,
    live: &str,
    retired: &str,
    table: &str,
) -> Result<(), ProjectionError> {
    let rows = sqlx::query(
        "SELECT schemaname, indexname, indexdef FROM pg_indexes WHERE tablename = $1 AND schemaname IN ($2, $3)",
    )
    .bind(table)
    .bind(live)
    .bind(retired)
    .fetch_all(&mut *conn)
    .await?;
    let mut old = Vec::new();
    let mut new = Vec::new();
    for r in &rows {
        let (schema, index, def): (String, String, String) =
            (r.try_get("schemaname")?, r.try_get("indexname")?, r.try_get("indexdef")?);
        let shape = def.replacen(&format!("INDEX {index} ON {schema}."), "INDEX ON ", 1);
        if schema == live {
            new.push((index, shape))
        } else {
            old.push((index, shape))
        }
    }
    for (index, shape) in new {
        if let Some((name, _)) = old.iter().find(|(name, s)| *s == shape && *name != index) {
            sqlx::query(&format!("ALTER INDEX {live}.{index} RENAME TO {name}")).execute(&mut *conn).await?;
        }
    }
    Ok(())
}
