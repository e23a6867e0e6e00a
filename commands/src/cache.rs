//! Aggregate states as last read, with their stream versions: for streams
//! that only grow and are read on every command of a user (a credit ledger,
//! a quota), loading reads only the events after the kept version instead
//! of the whole stream. Streams are append-only, so a kept state is never
//! wrong, only behind, and each load catches it up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use domain::aggregate::{stream_name, Aggregate};
use eventlog::codec::decode;
use eventlog::{EventStore, GlobalPosition};
use uuid::Uuid;

use crate::error::CommandError;

/// States kept per aggregate type; past this the cache starts over (a miss
/// costs one read of a stream).
const CAPACITY: usize = 10_000;

/// States of one aggregate type by id, shared by clones, and whose turn it
/// is to decide on each.
#[derive(Debug)]
pub(crate) struct StateCache<A>(Arc<Mutex<HashMap<Uuid, (A, i64)>>>, Turns);

impl<A> Clone for StateCache<A> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0), self.1.clone())
    }
}

impl<A> Default for StateCache<A> {
    fn default() -> Self {
        Self(Arc::default(), Turns::default())
    }
}

/// The right to decide on a kept stream and append to it, held by one
/// command of this process at a time until its unit of work ends.
pub(crate) type Turn = tokio::sync::OwnedMutexGuard<()>;

/// One lock per stream being decided on. Kept streams are the ones every
/// command of a user writes (a quota): writers of one user racing on it
/// would all decide on one version, and all but one conflict, again and
/// again while the database is slow (a test saw ten conflicts in a row).
/// Taking turns inside the process leaves conflicts to writers in other
/// processes, which the version guard still catches.
#[derive(Debug, Clone, Default)]
struct Turns(Arc<Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>>);

impl Turns {
    fn lock_of(&self, id: Uuid) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        // Locks nobody holds or waits for go, so the map stays as small as
        // the number of streams being written right now.
        if map.len() >= 64 {
            map.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        Arc::clone(map.entry(id).or_default())
    }
}

/// A state caught up with its stream.
pub(crate) struct Loaded<A> {
    /// The state.
    pub state: A,
    /// The stream's version it is at.
    pub version: i64,
    /// The position of the last event read now, if any was.
    pub read_up_to: Option<GlobalPosition>,
}

impl<A> StateCache<A> {
    /// Wait for `id`'s turn.
    pub(crate) async fn turn(&self, id: Uuid) -> Turn {
        self.1.lock_of(id).lock_owned().await
    }

    /// `id`'s turn if nobody has it now.
    pub(crate) fn turn_if_free(&self, id: Uuid) -> Option<Turn> {
        self.1.lock_of(id).try_lock_owned().ok()
    }
}

impl<A: Aggregate + Clone> StateCache<A> {
    /// `id`'s state as the log has it now, reading only what is new.
    pub(crate) async fn load<S: EventStore>(&self, store: &S, id: Uuid) -> Result<Loaded<A>, CommandError> {
        let (mut state, mut version) = self.get(id);
        let mut read_up_to = None;
        for recorded in store.read_stream(&stream_name::<A>(id), version).await? {
            state.evolve(&decode::<A>(&recorded)?);
            version = recorded.version;
            read_up_to = Some(recorded.global);
        }
        self.put(id, state.clone(), version);
        Ok(Loaded { state, version, read_up_to })
    }

    /// `f` of the kept state and its version, if one is kept, without asking
    /// the log and without copying the state (decisions are quick and pure).
    pub(crate) fn with_kept<R>(&self, id: Uuid, f: impl FnOnce(&A, i64) -> R) -> Option<R> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).get(&id).map(|(state, version)| f(state, *version))
    }

    /// Fold `events`, appended at `from_version`, into the kept state, if
    /// it is still at that version.
    pub(crate) fn advance(&self, id: Uuid, from_version: i64, events: &[A::Event]) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((state, version)) = map.get_mut(&id).filter(|(_, v)| *v == from_version) {
            for event in events {
                state.evolve(event);
            }
            *version += events.len() as i64;
        }
    }

    fn get(&self, id: Uuid) -> (A, i64) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).get(&id).cloned().unwrap_or_default()
    }

    /// Keep `state` at `version` unless a newer one is kept.
    pub(crate) fn put(&self, id: Uuid, state: A, version: i64) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= CAPACITY && !map.contains_key(&id) {
            map.clear();
        }
        let newer = map.get(&id).is_none_or(|(_, v)| *v <= version);
        if newer {
            map.insert(id, (state, version));
        }
    }

    /// Drop the kept state (it proved stale).
    pub(crate) fn forget(&self, id: Uuid) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Default)]
    struct Nothing;

    #[tokio::test]
    async fn writers_of_one_stream_take_turns_and_other_streams_do_not_wait() {
        let cache = StateCache::<Nothing>::default();
        let (user, other) = (Uuid::new_v4(), Uuid::new_v4());
        let first = cache.turn(user).await;
        assert!(cache.turn_if_free(user).is_none(), "one turn at a time");
        assert!(cache.turn_if_free(other).is_some(), "another stream is free");
        let waiting = tokio::spawn({
            let cache = cache.clone();
            async move { cache.turn(user).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "the second writer waits for the first");
        drop(first);
        let second = tokio::time::timeout(std::time::Duration::from_secs(5), waiting).await;
        assert!(second.is_ok_and(|t| t.is_ok()), "and gets its turn once the first is done");
    }
}
