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

/// States of one aggregate type by id, shared by clones.
#[derive(Debug)]
pub(crate) struct StateCache<A>(Arc<Mutex<HashMap<Uuid, (A, i64)>>>);

impl<A> Clone for StateCache<A> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<A> Default for StateCache<A> {
    fn default() -> Self {
        Self(Arc::default())
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
