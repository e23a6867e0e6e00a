//! A user's review of a listed version: one per user and version, the
//! latest score counting.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ListingError;
use crate::aggregate::{Aggregate, EventType};

/// Facts about a review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum StoreReviewEvent {
    /// The user rated the version (again).
    StoreReviewSubmitted {
        /// The reviewer.
        user_id: Uuid,
        /// The listing.
        listing_id: Uuid,
        /// The version rated.
        version_id: Uuid,
        /// 1 to 5.
        score: i32,
        /// Optional words.
        comments: Option<String>,
        /// When.
        at: DateTime<Utc>,
    },
}

impl EventType for StoreReviewEvent {
    fn event_type(&self) -> &'static str {
        "StoreReviewSubmitted"
    }
}

/// A review, folded from its stream.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct StoreReview {
    /// Score and comments, once reviewed.
    pub current: Option<(i32, Option<String>)>,
}

impl StoreReview {
    /// Rate a version; the same score and words again change nothing.
    pub fn submit(
        &self,
        user_id: Uuid,
        listing_id: Uuid,
        version_id: Uuid,
        score: i32,
        comments: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoreReviewEvent>, ListingError> {
        if !(1..=5).contains(&score) {
            return Err(ListingError::Invalid("score must be between 1 and 5".into()));
        }
        if self.current.as_ref() == Some(&(score, comments.clone())) {
            return Ok(vec![]);
        }
        Ok(vec![StoreReviewEvent::StoreReviewSubmitted { user_id, listing_id, version_id, score, comments, at: now }])
    }
}

impl Aggregate for StoreReview {
    type Event = StoreReviewEvent;
    const STREAM_PREFIX: &'static str = "store_review";

    fn evolve(&mut self, event: &StoreReviewEvent) {
        let StoreReviewEvent::StoreReviewSubmitted { score, comments, .. } = event;
        self.current = Some((*score, comments.clone()));
    }
}
