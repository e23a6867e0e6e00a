//! Per-user quotas (`quota-<user id>`): how many graphs, schedules, API keys
//! and presets a user holds, against the platform's limits. A create takes a
//! place in the same append as the thing it creates, at the quota stream's
//! expected version, so two requests racing for the last place cannot both
//! win; a delete gives its place back in the same append as the delete.
//!
//! Places are held by resource id, so taking or returning one twice changes
//! nothing, and deleting something made before quotas existed (never
//! counted) returns nothing.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::{Aggregate, EventType};

/// What a quota counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaKind {
    /// Graphs the user owns (all versions of one graph count once).
    Graph,
    /// Schedules of runs.
    Schedule,
    /// API keys, until revoked.
    ApiKey,
    /// Library presets.
    Preset,
}

impl QuotaKind {
    /// How the kind is named in messages.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Graph => "graphs",
            Self::Schedule => "schedules",
            Self::ApiKey => "API keys",
            Self::Preset => "presets",
        }
    }
}

/// The most a user may hold of each kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaLimits {
    /// Graphs.
    pub graphs: usize,
    /// Schedules.
    pub schedules: usize,
    /// Live API keys.
    pub api_keys: usize,
    /// Presets.
    pub presets: usize,
}

impl QuotaLimits {
    /// No limit on anything (tools and imports that must not be refused).
    pub const UNLIMITED: Self =
        Self { graphs: usize::MAX, schedules: usize::MAX, api_keys: usize::MAX, presets: usize::MAX };

    /// The limit on one kind.
    pub fn of(&self, kind: QuotaKind) -> usize {
        match kind {
            QuotaKind::Graph => self.graphs,
            QuotaKind::Schedule => self.schedules,
            QuotaKind::ApiKey => self.api_keys,
            QuotaKind::Preset => self.presets,
        }
    }
}

impl Default for QuotaLimits {
    fn default() -> Self {
        Self { graphs: 1000, schedules: 100, api_keys: 100, presets: 1000 }
    }
}

/// A create refused because the user holds as many as allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("You have reached the limit of {limit} {}; delete some to make room", kind.noun())]
pub struct QuotaExceeded {
    /// What ran out.
    pub kind: QuotaKind,
    /// The limit.
    pub limit: usize,
}

/// Facts about a user's quota.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum QuotaEvent {
    /// A resource took a place.
    QuotaTaken {
        /// Its kind.
        kind: QuotaKind,
        /// The resource.
        resource_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// A deleted resource gave its place back.
    QuotaReturned {
        /// Its kind.
        kind: QuotaKind,
        /// The resource.
        resource_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
}

impl EventType for QuotaEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::QuotaTaken { .. } => "QuotaTaken",
            Self::QuotaReturned { .. } => "QuotaReturned",
        }
    }
}

/// The places a user holds, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Quota {
    held: BTreeMap<QuotaKind, BTreeSet<Uuid>>,
}

impl Quota {
    /// How many of a kind the user holds.
    pub fn used(&self, kind: QuotaKind) -> usize {
        self.held.get(&kind).map_or(0, BTreeSet::len)
    }

    fn holds(&self, kind: QuotaKind, resource_id: Uuid) -> bool {
        self.held.get(&kind).is_some_and(|ids| ids.contains(&resource_id))
    }

    /// Take a place for a new resource, unless the user is at the limit.
    pub fn take(
        &self,
        kind: QuotaKind,
        resource_id: Uuid,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<QuotaEvent>, QuotaExceeded> {
        if self.holds(kind, resource_id) {
            return Ok(vec![]);
        }
        if self.used(kind) >= limit {
            return Err(QuotaExceeded { kind, limit });
        }
        Ok(vec![QuotaEvent::QuotaTaken { kind, resource_id, at: now }])
    }

    /// Give a deleted resource's place back (nothing when it held none).
    pub fn give_back(&self, kind: QuotaKind, resource_id: Uuid, now: DateTime<Utc>) -> Vec<QuotaEvent> {
        if self.holds(kind, resource_id) {
            vec![QuotaEvent::QuotaReturned { kind, resource_id, at: now }]
        } else {
            vec![]
        }
    }
}

impl Aggregate for Quota {
    type Event = QuotaEvent;
    const STREAM_PREFIX: &'static str = "quota";

    fn evolve(&mut self, event: &QuotaEvent) {
        match event {
            QuotaEvent::QuotaTaken { kind, resource_id, .. } => {
                self.held.entry(*kind).or_default().insert(*resource_id);
            }
            QuotaEvent::QuotaReturned { kind, resource_id, .. } => {
                if let Some(ids) = self.held.get_mut(kind) {
                    ids.remove(resource_id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_taken_up_to_the_limit_once_per_resource_and_given_back() {
        let now = Utc::now();
        let mut quota = Quota::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let taken = quota.take(QuotaKind::Graph, a, 1, now).unwrap();
        quota.evolve(&taken[0]);
        assert!(quota.take(QuotaKind::Graph, a, 1, now).unwrap().is_empty(), "a repeat takes nothing");
        let refused = quota.take(QuotaKind::Graph, b, 1, now).unwrap_err();
        assert_eq!(refused, QuotaExceeded { kind: QuotaKind::Graph, limit: 1 });
        assert!(refused.to_string().contains("limit of 1 graphs"));
        assert_eq!(quota.take(QuotaKind::Preset, b, 1, now).unwrap().len(), 1, "kinds count apart");
        assert!(quota.give_back(QuotaKind::Graph, b, now).is_empty(), "never held");
        let back = quota.give_back(QuotaKind::Graph, a, now);
        quota.evolve(&back[0]);
        assert_eq!(quota.used(QuotaKind::Graph), 0);
        assert_eq!(quota.take(QuotaKind::Graph, b, 1, now).unwrap().len(), 1);
    }
}
