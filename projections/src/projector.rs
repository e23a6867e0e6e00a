//! What a projector is: a named builder of one read model, applying events
//! inside the runner's transaction, or a whole batch as one statement.

use std::future::Future;
use std::pin::Pin;

use domain::aggregate::Aggregate;
use eventlog::codec::decode;
use eventlog::store::RecordedEvent;
use eventlog::{StoreError, Wanted};
use sqlx::postgres::PgArguments;
use sqlx::{Arguments, PgConnection, Postgres};
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
    /// A wait named a projector this process does not run: a programming
    /// error, never "caught up".
    #[error("projection '{0}' is not run by this process")]
    NotRunning(String),
    /// A system the projector hands events to (NATS) failed; the batch is
    /// retried.
    #[error("{0}")]
    Downstream(String),
    /// Another process moved the checkpoint while this one worked.
    #[error("the checkpoint of '{0}' was moved by another process")]
    Contended(String),
    /// A rebuild or verify could not read the log up to where the live read
    /// model stands (an open transaction holds the log's horizon back, or
    /// the live projector is behind), and refused to compare or swap short of it.
    #[error("projection '{name}': {reason}")]
    HeldBack {
        /// The projection.
        name: String,
        /// What held it back.
        reason: String,
    },
    /// A rebuild of this projection is already running (in this process or
    /// another one).
    #[error("projection '{0}' is already being rebuilt")]
    AlreadyRebuilding(String),
    /// The projector owns no read model: it hands events on (to NATS), and
    /// replaying the log through it would fire them again.
    #[error("projection '{0}' has no read model to rebuild; replaying it would re-send its events")]
    NotRebuildable(String),
}

/// One read model's builder.
pub trait Projector: Send + Sync + 'static {
    /// Stable name; the checkpoint row's key.
    fn name(&self) -> &'static str;
    /// The tables it owns, emptied before a rebuild.
    fn tables(&self) -> &'static [&'static str];
    /// The stream categories (aggregate prefixes) whose events it consumes:
    /// a command that touched one of them waits for this projector.
    fn categories(&self) -> &'static [&'static str];
    /// The version of its code: bumping it marks the stored read model as
    /// built by older code, which a zero-downtime rebuild then replaces.
    fn version(&self) -> i32 {
        1
    }
    /// Whether the projector does anything with this event; a batch with
    /// none it wants costs no transaction.
    fn wants(&self, _event: &RecordedEvent) -> bool {
        true
    }
    /// Every event [`Self::wants`] may take, as a read of the log can pick
    /// them out; `None`, the default, is any. A rebuild reads only these
    /// whole and passes over the rest by position.
    fn reads(&self) -> Option<Wanted> {
        None
    }
    /// Apply one event inside the batch's transaction. Events of streams the
    /// projector does not care about are ignored.
    fn handle<'a>(
        &'a self,
        event: &'a RecordedEvent,
        conn: &'a mut PgConnection,
    ) -> BoxFuture<'a, Result<(), ProjectionError>>;
    /// Optionally, the batch (or as much of it as the projector can take,
    /// from its start) as one statement: one round trip, where a transaction
    /// costs at least four. The projector adds its arguments (numbered from
    /// `$6`: the runner's checkpoint move takes `$1` to `$5`) and returns the
    /// data-modifying CTEs that write them, each guarded by
    /// `WHERE EXISTS (SELECT FROM ck)`, the runner's checkpoint move, with
    /// how many events of the batch they cover. `None`, the default, leaves
    /// `args` alone and has the batch applied event by event in a transaction.
    fn bulk(&self, _batch: &[&RecordedEvent], _args: &mut PgArguments) -> Result<Option<Bulk>, ProjectionError> {
        Ok(None)
    }
    /// The fewest events it wants that a batch must hold for [`Self::bulk`]
    /// to be asked at all; smaller (live) batches go event by event. The
    /// runner counts once per batch: the stretches of a large batch between
    /// declined events go as statements however short they are (counted
    /// per stretch, a store rebuild went event by event between listings).
    fn bulk_from(&self) -> usize {
        1
    }
}

/// A batch's leading events written as one statement; see [`Projector::bulk`].
#[derive(Debug, Clone, Copy)]
pub struct Bulk {
    /// The data-modifying CTEs.
    pub sql: &'static str,
    /// The events they cover: the batch's first `covered`. Fewer than the
    /// batch when an event needs the event-by-event path (a rare kind the
    /// statement does not model); the runner applies that one alone and asks
    /// again for the rest.
    pub covered: usize,
}

/// Add one argument to a bulk statement's arguments.
pub fn bind<'q, T>(args: &mut PgArguments, value: T) -> Result<(), ProjectionError>
where
    T: 'q + sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres>,
{
    args.add(value).map_err(|e| ProjectionError::Database(sqlx::Error::Encode(e)))
}

/// Batches with fewer events of a projector's are live ones (what was just
/// appended): those whose batch statements are costlier than their few
/// prepared statements (a big statement to plan) go event by event.
pub(crate) const BULK_FROM: usize = 32;

/// A timestamp as Postgres stores a bound one: whole microseconds,
/// truncated (a timestamp in JSON text would be rounded instead), for batch
/// statements that pass rows as JSON.
pub(crate) fn micros(at: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

/// Rows of a batch statement as one JSON argument (`jsonb_to_recordset`),
/// written straight to text (the statement casts it): a tree of values in
/// between cost a rebuild an allocation per field.
pub(crate) fn json<T: serde::Serialize>(rows: &T) -> Result<String, ProjectionError> {
    serde_json::to_string(rows).map_err(|e| ProjectionError::Database(sqlx::Error::Encode(e.into())))
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
    /// The categories it consumes: its source's streams.
    const CATEGORIES: &'static [&'static str] = &[<Self::Source as Aggregate>::STREAM_PREFIX];
    /// The version of its code; see [`Projector::version`].
    const VERSION: i32 = 1;
    /// Apply one decoded event of the stream of aggregate `id`.
    fn apply<'a>(
        &'a self,
        id: Uuid,
        event: <Self::Source as Aggregate>::Event,
        conn: &'a mut PgConnection,
    ) -> BoxFuture<'a, Result<(), ProjectionError>>;
    /// Whether [`Self::bulk`] is worth trying (spares decoding batches twice).
    const BULK: bool = false;
    /// The fewest events of its own a batch needs for [`Self::bulk`] to be
    /// asked (counted before decoding); see [`Projector::bulk_from`].
    const BULK_FROM: usize = 1;
    /// The batch's decoded events as one statement, or its first `n` of
    /// them, answered as `(sql, n)`; see [`Projector::bulk`].
    fn bulk(
        &self,
        _events: &[(Uuid, <Self::Source as Aggregate>::Event)],
        _args: &mut PgArguments,
    ) -> Result<Option<(&'static str, usize)>, ProjectionError> {
        Ok(None)
    }
}

impl<P: StreamProjector> Projector for P {
    fn name(&self) -> &'static str {
        P::NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        P::TABLES
    }

    fn categories(&self) -> &'static [&'static str] {
        P::CATEGORIES
    }

    fn version(&self) -> i32 {
        P::VERSION
    }

    fn wants(&self, event: &RecordedEvent) -> bool {
        source_id::<P::Source>(event).is_some()
    }

    fn reads(&self) -> Option<Wanted> {
        Some(Wanted { streams: vec![P::Source::STREAM_PREFIX], types: Vec::new() })
    }

    fn handle<'a>(
        &'a self,
        event: &'a RecordedEvent,
        conn: &'a mut PgConnection,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        let Some(id) = source_id::<P::Source>(event) else { return Box::pin(async { Ok(()) }) };
        match decode::<P::Source>(event) {
            Ok(decoded) => self.apply(id, decoded, conn),
            Err(e) => Box::pin(async move { Err(e.into()) }),
        }
    }

    fn bulk_from(&self) -> usize {
        P::BULK_FROM
    }

    fn bulk(&self, batch: &[&RecordedEvent], args: &mut PgArguments) -> Result<Option<Bulk>, ProjectionError> {
        if !P::BULK {
            return Ok(None);
        }
        let mut events = Vec::with_capacity(batch.len());
        // Where each decoded event sits in the batch.
        let mut at = Vec::with_capacity(batch.len());
        for (i, event) in batch.iter().enumerate() {
            if let Some(id) = source_id::<P::Source>(event) {
                events.push((id, decode::<P::Source>(event)?));
                at.push(i);
            }
        }
        let Some((sql, n)) = StreamProjector::bulk(self, &events, args)? else { return Ok(None) };
        // Up to the first event it did not take; the events of other streams
        // before it are covered too.
        Ok(Some(Bulk { sql, covered: at.get(n).copied().unwrap_or(batch.len()) }))
    }
}

/// The aggregate id of an event of `A`'s streams (`<prefix>-<uuid>`).
pub(crate) fn source_id<A: Aggregate>(event: &RecordedEvent) -> Option<Uuid> {
    event
        .stream_id
        .strip_prefix(A::STREAM_PREFIX)
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|id| Uuid::parse_str(id).ok())
}
