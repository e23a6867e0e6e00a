use chrono::Utc;
use uuid::Uuid;

use super::*;
use crate::aggregate::Aggregate;

fn details(name: &str) -> SubmissionDetails {
    SubmissionDetails { name: name.into(), sub_heading: "sub".into(), ..SubmissionDetails::default() }
}

fn submitted(listing: &mut StoreListing, owner: Uuid, graph: Uuid) -> Uuid {
    let version_id = Uuid::new_v4();
    let events =
        listing.submit(listing_id(graph), owner, graph, "my-agent", 1, version_id, details("A"), Utc::now()).unwrap();
    events.iter().for_each(|e| listing.evolve(e));
    version_id
}

fn reviewed(listing: &mut StoreListing, version: Uuid, approved: bool) {
    let events = listing.review(Uuid::new_v4(), version, approved, "ok".into(), None, Utc::now()).unwrap();
    events.iter().for_each(|e| listing.evolve(e));
}

#[test]
fn a_submission_is_pending_editable_and_approval_makes_it_active() {
    let (owner, graph) = (Uuid::new_v4(), Uuid::new_v4());
    let mut listing = StoreListing::default();
    let v1 = submitted(&mut listing, owner, graph);
    assert_eq!(listing.version(v1).unwrap().status, SubmissionStatus::Pending);
    assert!(listing.edit(owner, v1, details("B"), Utc::now()).is_ok());
    assert!(listing.edit(Uuid::new_v4(), v1, details("B"), Utc::now()).is_err(), "only the creator");
    reviewed(&mut listing, v1, true);
    assert_eq!(listing.active_version_id, Some(v1));
    assert!(matches!(listing.edit(owner, v1, details("C"), Utc::now()), Err(ListingError::Invalid(_))));
    assert!(matches!(listing.withdraw(owner, v1, Utc::now()), Err(ListingError::Invalid(_))), "never an approved one");
}

#[test]
fn rejecting_the_active_version_falls_back_to_another_approved_one() {
    let (owner, graph) = (Uuid::new_v4(), Uuid::new_v4());
    let mut listing = StoreListing::default();
    let v1 = submitted(&mut listing, owner, graph);
    let v2 = submitted(&mut listing, owner, graph);
    assert_eq!(listing.version(v2).unwrap().version, 2);
    reviewed(&mut listing, v1, true);
    reviewed(&mut listing, v2, true);
    assert_eq!(listing.active_version_id, Some(v2));
    reviewed(&mut listing, v2, false);
    assert_eq!(listing.active_version_id, Some(v1), "back to the other approved version");
    reviewed(&mut listing, v1, false);
    assert_eq!(listing.active_version_id, None);
    assert!(!listing.has_approved_version());
}

#[test]
fn withdrawing_the_last_version_deletes_the_listing() {
    let (owner, graph) = (Uuid::new_v4(), Uuid::new_v4());
    let mut listing = StoreListing::default();
    let v1 = submitted(&mut listing, owner, graph);
    let events = listing.withdraw(owner, v1, Utc::now()).unwrap();
    assert_eq!(events.len(), 2);
    events.iter().for_each(|e| listing.evolve(e));
    assert!(!listing.exists());
}

#[test]
fn bad_slugs_scores_and_usernames_are_refused() {
    let listing = StoreListing::default();
    let (owner, graph) = (Uuid::new_v4(), Uuid::new_v4());
    let bad =
        listing.submit(listing_id(graph), owner, graph, "Not A Slug", 1, Uuid::new_v4(), details("A"), Utc::now());
    assert!(matches!(bad, Err(ListingError::Invalid(_))));
    let zero = listing.submit(listing_id(graph), owner, graph, "ok", 0, Uuid::new_v4(), details("A"), Utc::now());
    assert!(zero.is_err());
    assert!(StoreReview::default().submit(owner, graph, graph, 6, None, Utc::now()).is_err());
    let profile = ProfileDetails { username: "has space".into(), ..ProfileDetails::default() };
    assert!(StoreProfile::default().update(owner, profile, Utc::now()).is_err());
    let mut claim = NameClaim::default();
    claim.claim(owner, "username", "x", Utc::now()).unwrap().iter().for_each(|e| claim.evolve(e));
    assert!(claim.claim(owner, "username", "x", Utc::now()).unwrap().is_empty());
    assert!(matches!(claim.claim(Uuid::new_v4(), "username", "x", Utc::now()), Err(ListingError::Taken(_))));
}

#[test]
fn only_versions_approved_and_still_approved_are_open_to_others() {
    let (owner, graph) = (Uuid::new_v4(), Uuid::new_v4());
    let mut listing = StoreListing::default();
    let v1 = submitted(&mut listing, owner, graph);
    let version_id = Uuid::new_v4();
    let events =
        listing.submit(listing_id(graph), owner, graph, "my-agent", 2, version_id, details("B"), Utc::now()).unwrap();
    events.iter().for_each(|e| listing.evolve(e));
    assert!(listing.approved_agent_versions().is_empty(), "pending is not approved");
    reviewed(&mut listing, v1, true);
    reviewed(&mut listing, version_id, true);
    assert_eq!(listing.approved_agent_versions(), [1, 2].into());
    reviewed(&mut listing, version_id, false);
    assert_eq!(listing.approved_agent_versions(), [1].into(), "a rejected version is closed again");
}
