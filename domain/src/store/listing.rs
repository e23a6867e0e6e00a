//! The StoreListing aggregate: one per published graph, holding every
//! submitted version and which approved one the store shows.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::event::{StoreListingEvent, SubmissionDetails};
use super::ListingError;
use crate::aggregate::Aggregate;

/// Where a version is in review (AutoGPT's `SubmissionStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum SubmissionStatus {
    /// Not submitted (never produced here; part of the wire enum).
    Draft,
    /// Waiting for an admin.
    Pending,
    /// Listed.
    Approved,
    /// Turned down.
    Rejected,
}

impl SubmissionStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "DRAFT",
            Self::Pending => "PENDING",
            Self::Approved => "APPROVED",
            Self::Rejected => "REJECTED",
        }
    }
}

/// One submitted version of a listing.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ListingVersion {
    /// Its id.
    pub version_id: Uuid,
    /// Its number, from 1.
    pub version: i32,
    /// The graph version it publishes.
    pub agent_version: i32,
    /// Review state.
    pub status: SubmissionStatus,
    /// When it was submitted.
    pub submitted_at: DateTime<Utc>,
}

/// State of one listing, folded from its stream.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct StoreListing {
    /// Set once created.
    pub id: Option<Uuid>,
    /// The creator.
    pub owner_id: Option<Uuid>,
    /// The graph.
    pub graph_id: Option<Uuid>,
    /// Its URL name.
    pub slug: String,
    /// Versions not withdrawn, in submission order.
    pub versions: Vec<ListingVersion>,
    /// The version the store shows.
    pub active_version_id: Option<Uuid>,
    /// Every version was withdrawn.
    pub is_deleted: bool,
    /// Highest version number handed out (withdrawn ones keep theirs).
    pub last_version: i32,
}

impl StoreListing {
    /// The listing exists and is not deleted.
    pub fn exists(&self) -> bool {
        self.id.is_some() && !self.is_deleted
    }

    /// A version of this listing.
    pub fn version(&self, version_id: Uuid) -> Option<&ListingVersion> {
        self.versions.iter().find(|v| v.version_id == version_id)
    }

    /// The graph versions an admin approved and the store still lists: the
    /// only ones of the creator's graph that anyone else may read, run or
    /// copy.
    pub fn approved_agent_versions(&self) -> BTreeSet<i32> {
        if !self.exists() {
            return BTreeSet::new();
        }
        self.versions.iter().filter(|v| v.status == SubmissionStatus::Approved).map(|v| v.agent_version).collect()
    }

    /// Some version is approved.
    pub fn has_approved_version(&self) -> bool {
        self.versions.iter().any(|v| v.status == SubmissionStatus::Approved)
    }

    /// Submit `agent_version` of the user's graph: the first submission
    /// creates the listing under `slug`; later ones add a version (the
    /// listing keeps its slug).
    #[allow(clippy::too_many_arguments)]
    pub fn submit(
        &self,
        listing_id: Uuid,
        owner_id: Uuid,
        graph_id: Uuid,
        slug: &str,
        agent_version: i32,
        version_id: Uuid,
        details: SubmissionDetails,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoreListingEvent>, ListingError> {
        if agent_version < 1 {
            return Err(ListingError::Invalid("agent_version must be at least 1".into()));
        }
        check_details(&details)?;
        let mut events = Vec::new();
        if !self.exists() {
            if !super::is_handle(slug) {
                return Err(ListingError::Invalid(
                    "slug must be 1 to 64 lower-case letters, digits, '-' or '_'".into(),
                ));
            }
            events.push(StoreListingEvent::StoreListingCreated {
                listing_id,
                owner_id,
                graph_id,
                slug: slug.to_owned(),
                at: now,
            });
        }
        let version = self.last_version + 1;
        events.push(StoreListingEvent::StoreVersionSubmitted { version_id, version, agent_version, details, at: now });
        Ok(events)
    }

    /// Edit a version of the user's: only while it is PENDING.
    pub fn edit(
        &self,
        user_id: Uuid,
        version_id: Uuid,
        details: SubmissionDetails,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoreListingEvent>, ListingError> {
        let version = self.own_version(user_id, version_id)?;
        if version.status != SubmissionStatus::Pending {
            return Err(ListingError::Invalid(format!(
                "Only pending submissions can be edited (this one is {})",
                version.status.as_str()
            )));
        }
        check_details(&details)?;
        Ok(vec![StoreListingEvent::StoreVersionEdited { version_id, details, at: now }])
    }

    /// Withdraw a version of the user's that is not approved; withdrawing
    /// the last one deletes the listing.
    pub fn withdraw(
        &self,
        user_id: Uuid,
        version_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoreListingEvent>, ListingError> {
        let version = self.own_version(user_id, version_id)?;
        if version.status == SubmissionStatus::Approved {
            return Err(ListingError::Invalid("An approved submission cannot be deleted".into()));
        }
        let mut events = vec![StoreListingEvent::StoreVersionDeleted { version_id, at: now }];
        if self.versions.len() == 1 {
            events.push(StoreListingEvent::StoreListingDeleted { at: now });
        }
        Ok(events)
    }

    /// An admin's verdict on a version (an approved one may be rejected
    /// later: the store then shows another approved version, if any).
    pub fn review(
        &self,
        reviewer_id: Uuid,
        version_id: Uuid,
        approved: bool,
        comments: String,
        internal_comments: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoreListingEvent>, ListingError> {
        if !self.exists() || self.version(version_id).is_none() {
            return Err(ListingError::NotFound("Submission"));
        }
        Ok(vec![StoreListingEvent::StoreVersionReviewed {
            version_id,
            approved,
            reviewer_id,
            comments,
            internal_comments,
            at: now,
        }])
    }

    fn own_version(&self, user_id: Uuid, version_id: Uuid) -> Result<&ListingVersion, ListingError> {
        if !self.exists() || self.owner_id != Some(user_id) {
            return Err(ListingError::NotFound("Submission"));
        }
        self.version(version_id).ok_or(ListingError::NotFound("Submission"))
    }

    /// After a verdict or withdrawal: the newest approved version is shown.
    fn pick_active(&mut self) {
        self.active_version_id = self
            .versions
            .iter()
            .filter(|v| v.status == SubmissionStatus::Approved)
            .max_by_key(|v| v.version)
            .map(|v| v.version_id);
    }
}

fn check_details(details: &SubmissionDetails) -> Result<(), ListingError> {
    if details.name.trim().is_empty() {
        return Err(ListingError::Invalid("name must not be empty".into()));
    }
    Ok(())
}

impl Aggregate for StoreListing {
    type Event = StoreListingEvent;
    const STREAM_PREFIX: &'static str = "store_listing";

    fn evolve(&mut self, event: &StoreListingEvent) {
        match event {
            StoreListingEvent::StoreListingCreated { listing_id, owner_id, graph_id, slug, .. } => {
                *self = Self {
                    id: Some(*listing_id),
                    owner_id: Some(*owner_id),
                    graph_id: Some(*graph_id),
                    slug: slug.clone(),
                    last_version: self.last_version,
                    ..Self::default()
                };
            }
            StoreListingEvent::StoreVersionSubmitted { version_id, version, agent_version, at, .. } => {
                self.last_version = self.last_version.max(*version);
                self.versions.push(ListingVersion {
                    version_id: *version_id,
                    version: *version,
                    agent_version: *agent_version,
                    status: SubmissionStatus::Pending,
                    submitted_at: *at,
                });
            }
            StoreListingEvent::StoreVersionEdited { .. } => {}
            StoreListingEvent::StoreVersionReviewed { version_id, approved, .. } => {
                if let Some(v) = self.versions.iter_mut().find(|v| v.version_id == *version_id) {
                    v.status = if *approved { SubmissionStatus::Approved } else { SubmissionStatus::Rejected };
                }
                self.pick_active();
            }
            StoreListingEvent::StoreVersionDeleted { version_id, .. } => {
                self.versions.retain(|v| v.version_id != *version_id);
                self.pick_active();
            }
            StoreListingEvent::StoreListingDeleted { .. } => self.is_deleted = true,
        }
    }
}
