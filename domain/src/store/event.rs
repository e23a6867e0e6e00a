use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::EventType;

/// What a creator writes about a version: everything of a submission but
/// which graph and the slug.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = StoreSubmissionEditRequest))]
pub struct SubmissionDetails {
    /// The listing's title.
    pub name: String,
    /// One line under the title.
    pub sub_heading: String,
    /// A video.
    #[serde(default)]
    pub video_url: Option<String>,
    /// A demo of the agent's output.
    #[serde(default)]
    pub agent_output_demo_url: Option<String>,
    /// Images, the first one the thumbnail.
    #[serde(default)]
    pub image_urls: Vec<String>,
    /// What the agent does.
    #[serde(default)]
    pub description: String,
    /// How to use it.
    #[serde(default)]
    pub instructions: Option<String>,
    /// Store categories.
    #[serde(default)]
    pub categories: Vec<String>,
    /// What changed since the last version.
    #[serde(default)]
    pub changes_summary: Option<String>,
    /// A suggested schedule.
    #[serde(default)]
    pub recommended_schedule_cron: Option<String>,
}

/// Facts about a store listing and its versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum StoreListingEvent {
    /// A graph was submitted to the store for the first time.
    StoreListingCreated {
        /// The listing.
        listing_id: Uuid,
        /// The graph's owner, the creator.
        owner_id: Uuid,
        /// The graph.
        graph_id: Uuid,
        /// Its URL name, unique among the creator's listings.
        slug: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// A version of the graph was submitted for review (PENDING).
    StoreVersionSubmitted {
        /// The listing version.
        version_id: Uuid,
        /// Its number within the listing, from 1.
        version: i32,
        /// The graph version it publishes.
        agent_version: i32,
        /// What the creator wrote.
        details: SubmissionDetails,
        /// When.
        at: DateTime<Utc>,
    },
    /// A pending version was edited.
    StoreVersionEdited {
        /// The listing version.
        version_id: Uuid,
        /// The new text.
        details: SubmissionDetails,
        /// When.
        at: DateTime<Utc>,
    },
    /// An admin approved or rejected a version.
    StoreVersionReviewed {
        /// The listing version.
        version_id: Uuid,
        /// Approved (else rejected).
        approved: bool,
        /// The admin.
        reviewer_id: Uuid,
        /// Shown to the creator.
        comments: String,
        /// Only for admins.
        internal_comments: Option<String>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The creator withdrew a version that was not approved.
    StoreVersionDeleted {
        /// The listing version.
        version_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// The listing's last version was withdrawn: the listing is gone.
    StoreListingDeleted {
        /// When.
        at: DateTime<Utc>,
    },
}

impl EventType for StoreListingEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::StoreListingCreated { .. } => "StoreListingCreated",
            Self::StoreVersionSubmitted { .. } => "StoreVersionSubmitted",
            Self::StoreVersionEdited { .. } => "StoreVersionEdited",
            Self::StoreVersionReviewed { .. } => "StoreVersionReviewed",
            Self::StoreVersionDeleted { .. } => "StoreVersionDeleted",
            Self::StoreListingDeleted { .. } => "StoreListingDeleted",
        }
    }
}
