//! The store (marketplace): a listing per published graph with its
//! submitted versions and their review, creator profiles with unique
//! usernames, and users' reviews of listed versions.

mod event;
mod listing;
mod profile;
mod review;

pub use event::{StoreListingEvent, SubmissionDetails};
pub use listing::{ListingVersion, StoreListing, SubmissionStatus};
pub use profile::{NameClaim, NameClaimEvent, ProfileDetails, ProfileEvent, StoreProfile};
pub use review::{StoreReview, StoreReviewEvent};

use uuid::Uuid;

use crate::aggregate::derived_id;

/// Why a store command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListingError {
    /// No such listing, version or profile for this user.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request breaks a rule of the store.
    #[error("{0}")]
    Invalid(String),
    /// Someone else holds the name.
    #[error("{0}")]
    Taken(String),
}

/// One listing per graph: its id derives from the graph's.
pub fn listing_id(graph_id: Uuid) -> Uuid {
    derived_id(graph_id, "store-listing")
}

/// One review per user and listed version.
pub fn review_id(user_id: Uuid, version_id: Uuid) -> Uuid {
    derived_id(user_id, &format!("store-review-{version_id}"))
}

/// A username is held by whoever claimed it first: one stream per name.
pub fn username_claim_id(username: &str) -> Uuid {
    derived_id(Uuid::nil(), &format!("store-username-{username}"))
}

/// A slug is unique among one creator's listings: one stream per pair.
pub fn slug_claim_id(owner: Uuid, slug: &str) -> Uuid {
    derived_id(owner, &format!("store-slug-{slug}"))
}

/// Whether `s` is a usable slug or username: lower-case letters, digits,
/// `-` and `_`, 1 to 64 of them (they appear in URLs).
pub fn is_handle(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The pattern of [`is_handle`], for schemas.
pub const HANDLE_PATTERN: &str = "^[a-z0-9_-]{1,64}$";

#[cfg(test)]
mod tests;
