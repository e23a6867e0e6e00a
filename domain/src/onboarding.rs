//! A user's onboarding (AutoGPT's `UserOnboarding`): which steps the UI
//! walked the user through and what it asked on the way. UI state only, kept
//! as events like everything else (`onboarding-<user id>`).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::aggregate::{Aggregate, EventType};

/// What the UI may change (`UserOnboardingUpdate`); `None` keeps a field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnboardingPatch {
    /// The wallet was shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallet_shown: Option<bool>,
    /// Steps the user was notified of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notified: Option<Vec<String>>,
    /// Why the user came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_reason: Option<String>,
    /// Integrations the user wants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrations: Option<Vec<String>>,
    /// Other integrations, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_integrations: Option<String>,
    /// The store agent chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_store_listing_version_id: Option<String>,
    /// The inputs given to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_input: Option<Map<String, Value>>,
    /// Its run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onboarding_agent_execution_id: Option<String>,
}

/// Facts about a user's onboarding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum OnboardingEvent {
    /// The UI saved what the user chose.
    OnboardingUpdated {
        /// What changed.
        patch: OnboardingPatch,
        /// When.
        at: DateTime<Utc>,
    },
    /// The user completed a step.
    OnboardingStepCompleted {
        /// The step.
        step: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The user started over.
    OnboardingReset {
        /// When.
        at: DateTime<Utc>,
    },
}

impl EventType for OnboardingEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::OnboardingUpdated { .. } => "OnboardingUpdated",
            Self::OnboardingStepCompleted { .. } => "OnboardingStepCompleted",
            Self::OnboardingReset { .. } => "OnboardingReset",
        }
    }
}

/// A user's onboarding, folded from its stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Onboarding {
    /// Steps completed, once each.
    pub completed: BTreeSet<String>,
    /// The last change, if any.
    pub updated_at: Option<DateTime<Utc>>,
}

impl Onboarding {
    /// The events of completing `step`: none when it was completed before.
    pub fn complete(&self, step: &str, now: DateTime<Utc>) -> Vec<OnboardingEvent> {
        if self.completed.contains(step) {
            return vec![];
        }
        vec![OnboardingEvent::OnboardingStepCompleted { step: step.to_owned(), at: now }]
    }

    /// The events of a change: none for an empty one.
    pub fn update(&self, patch: OnboardingPatch, now: DateTime<Utc>) -> Vec<OnboardingEvent> {
        if patch == OnboardingPatch::default() {
            return vec![];
        }
        vec![OnboardingEvent::OnboardingUpdated { patch, at: now }]
    }
}

impl Aggregate for Onboarding {
    type Event = OnboardingEvent;
    const STREAM_PREFIX: &'static str = "onboarding";

    fn evolve(&mut self, event: &OnboardingEvent) {
        match event {
            OnboardingEvent::OnboardingUpdated { at, .. } => self.updated_at = Some(*at),
            OnboardingEvent::OnboardingStepCompleted { step, at } => {
                self.completed.insert(step.clone());
                self.updated_at = Some(*at);
            }
            OnboardingEvent::OnboardingReset { at } => {
                *self = Self { updated_at: Some(*at), ..Self::default() };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_is_completed_once_an_empty_change_appends_nothing_and_a_reset_forgets() {
        let now = Utc::now();
        let mut onboarding = Onboarding::default();
        let done = onboarding.complete("WELCOME", now);
        assert_eq!(done.len(), 1);
        onboarding.evolve(&done[0]);
        assert!(onboarding.complete("WELCOME", now).is_empty());
        assert!(onboarding.update(OnboardingPatch::default(), now).is_empty());
        let patch = OnboardingPatch { wallet_shown: Some(true), ..OnboardingPatch::default() };
        assert_eq!(onboarding.update(patch, now).len(), 1);
        onboarding.evolve(&OnboardingEvent::OnboardingReset { at: now });
        assert!(onboarding.completed.is_empty());
    }
}
