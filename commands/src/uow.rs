//! Load → decide → append, for one or more aggregates at once, retried on
//! optimistic-concurrency conflicts.

use std::future::Future;

use domain::aggregate::{stream_name, Aggregate, EventType};
use eventlog::codec::{decode, encode_payload};
use eventlog::store::{EventStore, GlobalPosition, NewEvent, StreamWrite};
use uuid::Uuid;

use crate::cache::{StateCache, Turn};
use crate::context::CommandContext;
use crate::error::{CommandError, StoreError};

/// How many times a command is re-decided after a conflict before giving up.
pub const MAX_ATTEMPTS: usize = 10;

/// Events decided on a state, with the stream version they follow.
pub(crate) type Decided<A> = (Vec<<A as Aggregate>::Event>, i64);

/// What a command did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Position of the last event the command appended, or of the last event
    /// it read when it appended nothing: the point a client's next query must
    /// see.
    pub position: GlobalPosition,
    /// How many events were appended.
    pub appended: usize,
    /// The stream categories (aggregate prefixes) the command read or wrote:
    /// the read models fed by them are the ones a client's next query needs.
    pub categories: Vec<&'static str>,
}

/// One attempt at a command: the streams it read and the events it decided.
pub struct UnitOfWork<'a, S> {
    store: &'a S,
    ctx: &'a CommandContext,
    writes: Vec<StreamWrite>,
    read_position: GlobalPosition,
    categories: Vec<&'static str>,
    /// What to do once the append landed, or was refused as stale.
    after_commit: Vec<Box<dyn FnOnce() + Send>>,
    on_conflict: Vec<Box<dyn FnOnce() + Send>>,
    /// Kept streams this attempt decides on alone, until it ends.
    turns: Vec<(Uuid, Turn)>,
}

impl<'a, S: EventStore> UnitOfWork<'a, S> {
    /// Start an attempt.
    pub fn new(store: &'a S, ctx: &'a CommandContext) -> Self {
        Self {
            store,
            ctx,
            writes: Vec::new(),
            read_position: GlobalPosition::START,
            categories: Vec::new(),
            after_commit: Vec::new(),
            on_conflict: Vec::new(),
            turns: Vec::new(),
        }
    }

    /// Who runs the command, and how its ids are made.
    pub fn context(&self) -> &'a CommandContext {
        self.ctx
    }

    fn touch<A: Aggregate>(&mut self) {
        if !self.categories.contains(&A::STREAM_PREFIX) {
            self.categories.push(A::STREAM_PREFIX);
        }
    }

    /// Load an aggregate's state and the version it is at.
    pub async fn load<A: Aggregate>(&mut self, id: Uuid) -> Result<(A, i64), CommandError> {
        let (state, version, _) = self.load_with_events::<A>(id).await?;
        Ok((state, version))
    }

    /// Load an aggregate through `cache` (a stream read on every command of
    /// a user), reading only the events after the kept version. The state
    /// is kept for the next command, so a conflict here drops it.
    pub(crate) async fn load_cached<A>(&mut self, id: Uuid, cache: &StateCache<A>) -> Result<(A, i64), CommandError>
    where
        A: Aggregate + Clone + Send + 'static,
    {
        self.touch::<A>();
        self.forget_on_conflict(cache, id);
        let loaded = cache.load(self.store, id).await?;
        if let Some(position) = loaded.read_up_to {
            self.read_position = self.read_position.max(position);
        }
        Ok((loaded.state, loaded.version))
    }

    /// Take `id`'s turn on `cache` for the rest of this attempt, waiting
    /// for it only if this attempt holds no other: two attempts waiting
    /// for each other's second stream would wait forever, and without a
    /// turn the version guard still keeps the stream right.
    pub(crate) async fn take_turn<A>(&mut self, id: Uuid, cache: &StateCache<A>)
    where
        A: Aggregate + Clone,
    {
        if self.turns.iter().any(|(held, _)| *held == id) {
            return;
        }
        let turn = match self.turns.is_empty() {
            true => Some(cache.turn(id).await),
            false => cache.turn_if_free(id),
        };
        if let Some(turn) = turn {
            self.turns.push((id, turn));
        }
    }

    /// Decide on the state `cache` keeps of `id` without asking the log:
    /// the append at its version is refused if the stream moved on, and
    /// then the kept state is dropped, so a retry reads what is new. Once
    /// the append lands, the events are folded into the kept state. `None`
    /// when nothing is kept.
    pub(crate) fn decide_on_kept<A, E>(
        &mut self,
        id: Uuid,
        cache: &StateCache<A>,
        decide: impl FnOnce(&A) -> Result<Vec<A::Event>, E>,
    ) -> Option<Result<Decided<A>, E>>
    where
        A: Aggregate + Clone + Send + 'static,
    {
        let decided = cache.with_kept(id, |state, version| decide(state).map(|events| (events, version)))?;
        self.touch::<A>();
        self.forget_on_conflict(cache, id);
        Some(decided)
    }

    /// Drop `cache`'s state of `id` if this unit of work's append conflicts:
    /// whatever was decided on it was decided on a stale state.
    fn forget_on_conflict<A>(&mut self, cache: &StateCache<A>, id: Uuid)
    where
        A: Aggregate + Clone + Send + 'static,
    {
        let cache = cache.clone();
        self.on_conflict.push(Box::new(move || cache.forget(id)));
    }

    /// Fold `events`, decided on `cache`'s state of `id` at `version`, into
    /// it once the append of this unit of work has landed.
    pub(crate) fn keep_after_commit<A>(&mut self, cache: &StateCache<A>, id: Uuid, version: i64, events: &[A::Event])
    where
        A: Aggregate + Clone + Send + 'static,
    {
        let (cache, events) = (cache.clone(), events.to_vec());
        self.after_commit.push(Box::new(move || cache.advance(id, version, &events)));
    }

    /// Load an aggregate with its decoded history (for commands that need
    /// past payloads, such as forking a graph version).
    pub async fn load_with_events<A: Aggregate>(&mut self, id: Uuid) -> Result<(A, i64, Vec<A::Event>), CommandError> {
        self.touch::<A>();
        let stream = stream_name::<A>(id);
        let recorded = self.store.read_stream(&stream, 0).await?;
        let mut state = A::default();
        let mut events = Vec::with_capacity(recorded.len());
        for r in &recorded {
            let event = decode::<A>(r)?;
            state.evolve(&event);
            events.push(event);
            self.read_position = self.read_position.max(r.global);
        }
        let version = recorded.last().map_or(0, |r| r.version);
        Ok((state, version, events))
    }

    /// Queue events for an aggregate decided against `expected_version`.
    pub fn record<A: Aggregate>(
        &mut self,
        id: Uuid,
        expected_version: i64,
        events: &[A::Event],
    ) -> Result<(), CommandError> {
        self.record_ids_from::<A>(id, expected_version, events, None)
    }

    /// Queue events as [`record`](Self::record) does, for a decision that a
    /// later request with the same idempotency key may rightly make again
    /// (a switch turned off, then on): their ids derive from
    /// `expected_version` too, so the second decision is not mistaken for a
    /// repeat of the first and dropped. A true repeat loads the state the
    /// first left and decides nothing, or, racing it, decides against the
    /// same version and lands on the same ids.
    pub fn record_once_per_version<A: Aggregate>(
        &mut self,
        id: Uuid,
        expected_version: i64,
        events: &[A::Event],
    ) -> Result<(), CommandError> {
        self.record_ids_from::<A>(id, expected_version, events, Some(expected_version.to_string()))
    }

    /// Queue events as [`record`](Self::record) does, on a stream many
    /// requests share (a user's quota): their ids derive from `subject` too,
    /// so two requests reusing one idempotency key for different things do
    /// not collide there, while a true repeat still lands on the same ids.
    pub fn record_about<A: Aggregate>(
        &mut self,
        id: Uuid,
        expected_version: i64,
        events: &[A::Event],
        subject: Uuid,
    ) -> Result<(), CommandError> {
        self.record_ids_from::<A>(id, expected_version, events, Some(subject.to_string()))
    }

    fn record_ids_from<A: Aggregate>(
        &mut self,
        id: Uuid,
        expected_version: i64,
        events: &[A::Event],
        id_scope: Option<String>,
    ) -> Result<(), CommandError> {
        if events.is_empty() {
            return Ok(());
        }
        self.touch::<A>();
        let stream_id = stream_name::<A>(id);
        let id_scope = match id_scope {
            Some(scope) => format!("{stream_id}@{scope}"),
            None => stream_id.clone(),
        };
        let mut new_events = Vec::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            let data = encode_payload(event).map_err(|e| StoreError::Decode {
                event_id: Uuid::nil(),
                event_type: event.event_type().to_owned(),
                reason: e.to_string(),
            })?;
            // Independent of the stream version (unless asked otherwise): a
            // retried request decides against a newer version but must
            // produce the same ids.
            new_events.push(NewEvent {
                event_id: self.ctx.event_id(&id_scope, i),
                event_type: event.event_type().to_owned(),
                schema_version: event.schema_version(),
                data,
                metadata: self.ctx.metadata(),
            });
        }
        self.writes.push(StreamWrite { stream_id, expected_version, events: new_events });
        Ok(())
    }

    /// Append everything recorded, atomically.
    pub async fn commit(self) -> Result<Outcome, CommandError> {
        let appended: usize = self.writes.iter().map(|w| w.events.len()).sum();
        if appended == 0 {
            return Ok(Outcome { position: self.read_position, appended: 0, categories: self.categories });
        }
        let result = match self.store.append(&self.writes).await {
            Ok(result) => result,
            Err(e) => {
                let e = CommandError::from(e);
                if matches!(e, CommandError::Conflict) {
                    self.on_conflict.into_iter().for_each(|forget| forget());
                }
                return Err(e);
            }
        };
        // A repeated append stored nothing now: what it decided is not what
        // the streams hold at the versions it decided on.
        if !result.duplicate {
            self.after_commit.into_iter().for_each(|keep| keep());
        }
        let position = result.last().unwrap_or(self.read_position);
        Ok(Outcome { position, appended: if result.duplicate { 0 } else { appended }, categories: self.categories })
    }
}

/// Run one attempt of a command, re-running it from scratch after a
/// conflict, at most [`MAX_ATTEMPTS`] times; then answer `Conflict`.
/// Between attempts it waits a random while under a doubling ceiling:
/// writers racing on one stream (a user's quota) would otherwise re-read and
/// collide again in lockstep.
pub async fn retry_on_conflict<T, F, Fut>(mut attempt: F) -> Result<T, CommandError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CommandError>>,
{
    for tried in 1..MAX_ATTEMPTS {
        match attempt().await {
            Err(CommandError::Conflict) => {
                tracing::debug!(tried, "conflict, re-deciding");
                tokio::time::sleep(conflict_backoff(tried)).await;
            }
            other => return other,
        }
    }
    attempt().await
}

/// Up to 1 ms after the first conflict, doubling to at most 64 ms.
fn conflict_backoff(tried: usize) -> std::time::Duration {
    let ceiling_us = 1_000u64 << tried.saturating_sub(1).min(6);
    std::time::Duration::from_micros(rand::random_range(0..=ceiling_us))
}

/// The common command shape: load one aggregate, decide, append what it
/// decided, re-deciding on conflict. Answers the aggregate's state after the
/// new events too, so a response never has to wait for a read model.
pub async fn decide_on<A, S, F>(
    store: &S,
    ctx: &CommandContext,
    id: Uuid,
    decide: F,
) -> Result<(Outcome, A), CommandError>
where
    A: Aggregate,
    S: EventStore,
    F: Fn(&A) -> Result<Vec<A::Event>, CommandError>,
{
    retry_on_conflict(|| async {
        let mut uow = UnitOfWork::new(store, ctx);
        let (mut state, version) = uow.load::<A>(id).await?;
        let events = decide(&state)?;
        uow.record::<A>(id, version, &events)?;
        let outcome = uow.commit().await?;
        for event in &events {
            state.evolve(event);
        }
        Ok((outcome, state))
    })
    .await
}
