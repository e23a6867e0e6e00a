//! The store: submissions and their review, creator profiles, reviews of
//! listed versions. Unique names (usernames, a creator's slugs) are held by
//! claim streams appended in the same commit as what needs them, so two
//! requests racing for a name cannot both win.

use domain::graph::{Graph, GraphError};
use domain::store::{
    listing_id, review_id, slug_claim_id, username_claim_id, NameClaim, ProfileDetails, StoreListing, StoreProfile,
    StoreReview, SubmissionDetails,
};
use eventlog::EventStore;
use uuid::Uuid;

use super::Commands;
use crate::context::CommandContext;
use crate::error::CommandError;
use crate::uow::{decide_on, retry_on_conflict, Outcome, UnitOfWork};

/// A new submission: which graph version, under which slug, with what text.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The graph.
    pub graph_id: Uuid,
    /// Its version.
    pub graph_version: i32,
    /// URL name of the listing (used when the listing is new).
    pub slug: String,
    /// The text.
    pub details: SubmissionDetails,
}

/// Where a submission landed.
#[derive(Debug, Clone, Copy)]
pub struct Submitted {
    /// The listing.
    pub listing_id: Uuid,
    /// The new version.
    pub version_id: Uuid,
}

impl<S: EventStore> Commands<S> {
    /// Submit a version of one of the user's graphs for review (PENDING). A
    /// creator without a profile gets a default one.
    pub async fn submit_to_store(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        submission: Submission,
    ) -> Result<(Outcome, Submitted), CommandError> {
        let version_id = ctx.new_id("store-version");
        retry_on_conflict(|| async {
            let mut uow = UnitOfWork::new(&self.store, ctx);
            let now = self.now();
            let (graph, _) = uow.load::<Graph>(submission.graph_id).await?;
            if !graph.is_owned_by(user_id) {
                return Err(GraphError::NotFound.into());
            }
            if !graph.versions.contains(&submission.graph_version) {
                return Err(GraphError::VersionNotFound(submission.graph_version).into());
            }
            let id = listing_id(submission.graph_id);
            let (listing, version) = uow.load::<StoreListing>(id).await?;
            let events = listing.submit(
                id,
                user_id,
                submission.graph_id,
                &submission.slug,
                submission.graph_version,
                version_id,
                submission.details.clone(),
                now,
            )?;
            if !listing.exists() {
                let claim_id = slug_claim_id(user_id, &submission.slug);
                let (claim, claim_version) = uow.load::<NameClaim>(claim_id).await?;
                let claimed = claim.claim(id, "slug", &submission.slug, now)?;
                uow.record::<NameClaim>(claim_id, claim_version, &claimed)?;
            }
            uow.record::<StoreListing>(id, version, &events)?;
            let (profile, profile_version) = uow.load::<StoreProfile>(user_id).await?;
            if profile.user_id.is_none() {
                self.set_profile(&mut uow, user_id, &profile, profile_version, StoreProfile::default_for(user_id))
                    .await?;
            }
            Ok((uow.commit().await?, Submitted { listing_id: id, version_id }))
        })
        .await
    }

    /// Edit a pending version of the user's.
    pub async fn edit_submission(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        listing_id: Uuid,
        version_id: Uuid,
        details: SubmissionDetails,
    ) -> Result<Outcome, CommandError> {
        let (outcome, _) = decide_on::<StoreListing, _, _>(&self.store, ctx, listing_id, |listing| {
            Ok(listing.edit(user_id, version_id, details.clone(), self.now())?)
        })
        .await?;
        Ok(outcome)
    }

    /// Withdraw a version of the user's that is not approved.
    pub async fn delete_submission(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        listing_id: Uuid,
        version_id: Uuid,
    ) -> Result<Outcome, CommandError> {
        let (outcome, _) = decide_on::<StoreListing, _, _>(&self.store, ctx, listing_id, |listing| {
            Ok(listing.withdraw(user_id, version_id, self.now())?)
        })
        .await?;
        Ok(outcome)
    }

    /// An admin approves or rejects a version.
    pub async fn review_submission(
        &self,
        ctx: &CommandContext,
        reviewer_id: Uuid,
        listing_id: Uuid,
        version_id: Uuid,
        verdict: (bool, String, Option<String>),
    ) -> Result<Outcome, CommandError> {
        let (approved, comments, internal) = verdict;
        let (outcome, _) = decide_on::<StoreListing, _, _>(&self.store, ctx, listing_id, |listing| {
            Ok(listing.review(reviewer_id, version_id, approved, comments.clone(), internal.clone(), self.now())?)
        })
        .await?;
        Ok(outcome)
    }

    /// Create or change the user's creator profile; a new username must be
    /// free. Answers the profile as stored.
    pub async fn update_profile(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        details: ProfileDetails,
    ) -> Result<(Outcome, ProfileDetails), CommandError> {
        retry_on_conflict(|| async {
            let mut uow = UnitOfWork::new(&self.store, ctx);
            let (profile, version) = uow.load::<StoreProfile>(user_id).await?;
            let stored = self.set_profile(&mut uow, user_id, &profile, version, details.clone()).await?;
            Ok((uow.commit().await?, stored))
        })
        .await
    }

    async fn set_profile(
        &self,
        uow: &mut UnitOfWork<'_, S>,
        user_id: Uuid,
        profile: &StoreProfile,
        version: i64,
        details: ProfileDetails,
    ) -> Result<ProfileDetails, CommandError> {
        let now = self.now();
        let (events, claim) = profile.update(user_id, details, now)?;
        if let Some(username) = claim {
            let claim_id = username_claim_id(&username);
            let (held, claim_version) = uow.load::<NameClaim>(claim_id).await?;
            let claimed = held.claim(user_id, "username", &username, now)?;
            uow.record::<NameClaim>(claim_id, claim_version, &claimed)?;
        }
        uow.record::<StoreProfile>(user_id, version, &events)?;
        let mut state = profile.clone();
        events.iter().for_each(|e| domain::aggregate::Aggregate::evolve(&mut state, e));
        Ok(state.details)
    }

    /// Rate a listed version (one review per user and version).
    pub async fn review_listing(
        &self,
        ctx: &CommandContext,
        user_id: Uuid,
        listing_id: Uuid,
        version_id: Uuid,
        rating: (i32, Option<String>),
    ) -> Result<Outcome, CommandError> {
        let (score, comments) = rating;
        let (outcome, _) = decide_on::<StoreReview, _, _>(&self.store, ctx, review_id(user_id, version_id), |review| {
            Ok(review.submit(user_id, listing_id, version_id, score, comments.clone(), self.now())?)
        })
        .await?;
        Ok(outcome)
    }
}
