//! A creator's store profile, and the claims that keep usernames unique.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ListingError;
use crate::aggregate::{Aggregate, EventType};

/// What a creator says about itself (AutoGPT's `Profile` request).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Profile))]
pub struct ProfileDetails {
    /// Display name.
    pub name: String,
    /// Unique handle, lower-cased (in store URLs).
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{1,64}$"))]
    pub username: String,
    /// About the creator.
    pub description: String,
    /// Links shown on the creator's page.
    pub links: Vec<String>,
    /// Avatar image.
    pub avatar_url: String,
    /// Featured by the store (ignored on input: admins decide).
    #[serde(default)]
    pub is_featured: bool,
}

/// Facts about a profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum ProfileEvent {
    /// The profile was created or changed.
    ProfileUpdated {
        /// Whose.
        user_id: Uuid,
        /// As it is now.
        details: ProfileDetails,
        /// When.
        at: DateTime<Utc>,
    },
}

impl EventType for ProfileEvent {
    fn event_type(&self) -> &'static str {
        "ProfileUpdated"
    }
}

/// A user's profile, folded from its stream (id = the user's id).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct StoreProfile {
    /// The user, once a profile exists.
    pub user_id: Option<Uuid>,
    /// The profile.
    pub details: ProfileDetails,
}

impl StoreProfile {
    /// Set the profile; the username is lower-cased and must be a handle.
    /// Answers the events and the username to claim when it changes.
    pub fn update(
        &self,
        user_id: Uuid,
        mut details: ProfileDetails,
        now: DateTime<Utc>,
    ) -> Result<(Vec<ProfileEvent>, Option<String>), ListingError> {
        details.username = details.username.to_lowercase();
        details.is_featured = self.details.is_featured;
        if !super::is_handle(&details.username) {
            return Err(ListingError::Invalid("username must be 1 to 64 letters, digits, '-' or '_'".into()));
        }
        if self.user_id.is_some() && details == self.details {
            return Ok((vec![], None));
        }
        let claim =
            (self.user_id.is_none() || details.username != self.details.username).then(|| details.username.clone());
        Ok((vec![ProfileEvent::ProfileUpdated { user_id, details, at: now }], claim))
    }

    /// The profile a creator gets when it submits before writing one.
    pub fn default_for(user_id: Uuid) -> ProfileDetails {
        let simple = user_id.simple().to_string();
        ProfileDetails {
            name: format!("Creator {}", &simple[..8]),
            username: format!("creator-{}", &simple[..12]),
            ..ProfileDetails::default()
        }
    }
}

impl Aggregate for StoreProfile {
    type Event = ProfileEvent;
    const STREAM_PREFIX: &'static str = "store_profile";

    fn evolve(&mut self, event: &ProfileEvent) {
        let ProfileEvent::ProfileUpdated { user_id, details, .. } = event;
        self.user_id = Some(*user_id);
        self.details = details.clone();
    }
}

/// Facts about a unique name (a username, or a creator's slug).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum NameClaimEvent {
    /// The name was taken (a later claim by the same holder is a no-op).
    NameClaimed {
        /// Who holds it: a user for a username, a listing for a slug.
        holder: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
}

impl EventType for NameClaimEvent {
    fn event_type(&self) -> &'static str {
        "NameClaimed"
    }
}

/// Who holds a unique name; one stream per name, so two claims racing
/// conflict on the stream and only one wins. A name once claimed stays
/// with its holder, so links to a creator or listing never change hands.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct NameClaim {
    /// The holder.
    pub holder: Option<Uuid>,
}

impl NameClaim {
    /// Claim `name` for `holder`; `what` names it in the refusal.
    pub fn claim(
        &self,
        holder: Uuid,
        what: &str,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<NameClaimEvent>, ListingError> {
        match self.holder {
            Some(current) if current == holder => Ok(vec![]),
            Some(_) => Err(ListingError::Taken(format!("The {what} '{name}' is already taken"))),
            None => Ok(vec![NameClaimEvent::NameClaimed { holder, at: now }]),
        }
    }
}

impl Aggregate for NameClaim {
    type Event = NameClaimEvent;
    const STREAM_PREFIX: &'static str = "store_name";

    fn evolve(&mut self, event: &NameClaimEvent) {
        let NameClaimEvent::NameClaimed { holder, .. } = event;
        self.holder.get_or_insert(*holder);
    }
}
