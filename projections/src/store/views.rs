//! The store's wire shapes (AutoGPT's models, field names as served).

use chrono::{DateTime, Utc};
use domain::store::SubmissionStatus;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::query::Pagination;

/// A listed agent on a store page.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StoreAgent {
    /// URL name.
    pub slug: String,
    /// Title.
    pub agent_name: String,
    /// Thumbnail.
    pub agent_image: String,
    /// Creator's username.
    pub creator: String,
    /// Creator's avatar.
    pub creator_avatar: String,
    /// One line under the title.
    pub sub_heading: String,
    /// What it does.
    pub description: String,
    /// Runs of its graph.
    pub runs: i64,
    /// Average review score.
    pub rating: f64,
}

impl StoreAgent {
    /// A store page's row (`rm_store_agents`' listed columns).
    pub(crate) fn of_row(r: &sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
        use sqlx::Row;
        Ok(Self {
            slug: r.try_get("slug")?,
            agent_name: r.try_get("agent_name")?,
            agent_image: r.try_get("agent_image")?,
            creator: r.try_get("creator")?,
            creator_avatar: r.try_get("creator_avatar")?,
            sub_heading: r.try_get("sub_heading")?,
            description: r.try_get("description")?,
            runs: r.try_get("runs")?,
            rating: r.try_get("rating")?,
        })
    }
}

/// A page of listed agents.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StoreAgentsResponse {
    /// The agents.
    pub agents: Vec<StoreAgent>,
    /// Where this page is.
    pub pagination: Pagination,
}

/// One entry of a listing's changelog.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChangelogEntry {
    /// The listing version.
    pub version: String,
    /// What changed.
    pub changes_summary: String,
    /// When it was submitted.
    pub date: DateTime<Utc>,
}

/// A listed agent in full.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StoreAgentDetails {
    /// The version shown.
    pub store_listing_version_id: Uuid,
    /// URL name.
    pub slug: String,
    /// Title.
    pub agent_name: String,
    /// Video URL, or empty.
    pub agent_video: String,
    /// Output demo URL, or empty.
    pub agent_output_demo: String,
    /// Images.
    pub agent_image: Vec<String>,
    /// Creator's username.
    pub creator: String,
    /// Creator's avatar.
    pub creator_avatar: String,
    /// One line under the title.
    pub sub_heading: String,
    /// What it does.
    pub description: String,
    /// How to use it.
    pub instructions: Option<String>,
    /// Categories.
    pub categories: Vec<String>,
    /// Runs of its graph.
    pub runs: i64,
    /// Average review score.
    pub rating: f64,
    /// Approved listing versions.
    pub versions: Vec<String>,
    /// The graph versions they publish.
    #[serde(rename = "agentGraphVersions")]
    pub agent_graph_versions: Vec<String>,
    /// The graph.
    #[serde(rename = "agentGraphId")]
    pub agent_graph_id: String,
    /// When the listing last changed.
    pub last_updated: DateTime<Utc>,
    /// A suggested schedule.
    pub recommended_schedule_cron: Option<String>,
    /// The version the store shows.
    pub active_version_id: Option<Uuid>,
    /// Some version is approved.
    pub has_approved_version: bool,
    /// Approved versions with their summaries, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changelog: Option<Vec<ChangelogEntry>>,
}

/// A submitted version as its creator (or an admin) sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StoreSubmission {
    /// The listing.
    pub listing_id: Uuid,
    /// The graph.
    pub agent_id: Uuid,
    /// The graph version.
    pub agent_version: i32,
    /// Title.
    pub name: String,
    /// One line under the title.
    pub sub_heading: String,
    /// URL name.
    pub slug: String,
    /// What it does.
    pub description: String,
    /// How to use it.
    pub instructions: Option<String>,
    /// Images.
    pub image_urls: Vec<String>,
    /// When it was submitted.
    pub date_submitted: DateTime<Utc>,
    /// Review state.
    pub status: SubmissionStatus,
    /// Runs of its graph.
    pub runs: i64,
    /// Average review score of the listing.
    pub rating: f64,
    /// The version.
    pub store_listing_version_id: Option<Uuid>,
    /// Its number.
    pub version: Option<i32>,
    /// Who reviewed it.
    pub reviewer_id: Option<Uuid>,
    /// The reviewer's words.
    pub review_comments: Option<String>,
    /// Words for admins only (absent for creators).
    pub internal_comments: Option<String>,
    /// When it was reviewed.
    pub reviewed_at: Option<DateTime<Utc>>,
    /// What changed.
    pub changes_summary: Option<String>,
    /// Video URL.
    pub video_url: Option<String>,
    /// Output demo URL.
    pub agent_output_demo_url: Option<String>,
    /// Categories.
    pub categories: Vec<String>,
}

/// A page of submissions.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StoreSubmissionsResponse {
    /// The submissions.
    pub submissions: Vec<StoreSubmission>,
    /// Where this page is.
    pub pagination: Pagination,
}

/// A creator on the creators page.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Creator {
    /// Display name.
    pub name: String,
    /// Handle.
    pub username: String,
    /// About.
    pub description: String,
    /// Avatar.
    pub avatar_url: String,
    /// Listed agents.
    pub num_agents: i64,
    /// Average rating of its agents.
    pub agent_rating: f64,
    /// Runs of its agents.
    pub agent_runs: i64,
    /// Featured by the store.
    pub is_featured: bool,
}

/// A page of creators.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatorsResponse {
    /// The creators.
    pub creators: Vec<Creator>,
    /// Where this page is.
    pub pagination: Pagination,
}

/// A creator's page.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatorDetails {
    /// Display name.
    pub name: String,
    /// Handle.
    pub username: String,
    /// About.
    pub description: String,
    /// Links.
    pub links: Vec<String>,
    /// Avatar.
    pub avatar_url: String,
    /// Average rating of its agents.
    pub agent_rating: f64,
    /// Runs of its agents.
    pub agent_runs: i64,
    /// Its most used categories.
    pub top_categories: Vec<String>,
}

/// The caller's own profile.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ProfileDetails)]
pub struct ProfileView {
    /// Display name.
    pub name: String,
    /// Handle.
    pub username: String,
    /// About.
    pub description: String,
    /// Links.
    pub links: Vec<String>,
    /// Avatar.
    pub avatar_url: Option<String>,
}

/// A graph of the caller's that can be submitted.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MyAgent {
    /// The graph.
    pub agent_id: Uuid,
    /// Its active version.
    pub agent_version: i32,
    /// Its name.
    pub agent_name: String,
    /// Image (none here).
    pub agent_image: Option<String>,
    /// Its description.
    pub description: String,
    /// When the version was saved.
    pub last_edited: DateTime<Utc>,
    /// A suggested schedule.
    pub recommended_schedule_cron: Option<String>,
}

/// A page of the caller's graphs.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MyAgentsResponse {
    /// The graphs.
    pub agents: Vec<MyAgent>,
    /// Where this page is.
    pub pagination: Pagination,
}

/// A listing with every version, for admins.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StoreListingWithVersions {
    /// The listing.
    pub listing_id: Uuid,
    /// URL name.
    pub slug: String,
    /// The graph.
    pub agent_id: Uuid,
    /// The graph version of the newest submission.
    pub agent_version: i32,
    /// The version the store shows.
    pub active_version_id: Option<Uuid>,
    /// Some version is approved.
    pub has_approved_version: bool,
    /// The creator's e-mail.
    pub creator_email: Option<String>,
    /// The newest submission.
    pub latest_version: Option<StoreSubmission>,
    /// Every submission, newest first.
    pub versions: Vec<StoreSubmission>,
}

/// A page of listings, for admins.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StoreListingsWithVersionsResponse {
    /// The listings.
    pub listings: Vec<StoreListingWithVersions>,
    /// Where this page is.
    pub pagination: Pagination,
}

/// A review as stored.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = StoreReview)]
pub struct StoreReviewView {
    /// 1 to 5.
    pub score: i32,
    /// Words.
    pub comments: Option<String>,
}
