use chrono::Utc;
use uuid::Uuid;

use super::*;

fn added(user: Uuid) -> LibraryAgent {
    let graph = Uuid::new_v4();
    let id = library_agent_id(user, graph);
    let events = LibraryAgent::default()
        .decide(LibraryAgentCommand::AddToLibrary {
            library_agent_id: id,
            user_id: user,
            graph_id: graph,
            graph_version: 1,
            is_created_by_user: true,
            now: Utc::now(),
        })
        .unwrap();
    LibraryAgent::from_events(&events)
}

#[test]
fn adding_again_moves_an_auto_updating_agent_to_the_new_version() {
    let user = Uuid::new_v4();
    let agent = added(user);
    let again = agent
        .decide(LibraryAgentCommand::AddToLibrary {
            library_agent_id: agent.id.unwrap(),
            user_id: user,
            graph_id: agent.graph_id.unwrap(),
            graph_version: 2,
            is_created_by_user: true,
            now: Utc::now(),
        })
        .unwrap();
    let mut after = agent.clone();
    after.evolve(&again[0]);
    assert_eq!(after.graph_version, 2);
}

#[test]
fn update_keeps_only_changes_and_checks_versions() {
    let user = Uuid::new_v4();
    let agent = added(user);
    let unchanged = agent.decide(LibraryAgentCommand::UpdateLibraryAgent {
        user_id: user,
        patch: LibraryAgentPatch { is_favorite: Some(false), ..Default::default() },
        known_versions: [1].into(),
        now: Utc::now(),
    });
    assert_eq!(unchanged, Ok(vec![]));
    let bad = agent.decide(LibraryAgentCommand::UpdateLibraryAgent {
        user_id: user,
        patch: LibraryAgentPatch { graph_version: Some(3), ..Default::default() },
        known_versions: [1].into(),
        now: Utc::now(),
    });
    assert_eq!(bad, Err(LibraryError::VersionNotFound(3)));
}

#[test]
fn another_user_sees_not_found_and_delete_is_soft() {
    let user = Uuid::new_v4();
    let agent = added(user);
    let stranger = agent.decide(LibraryAgentCommand::DeleteLibraryAgent { user_id: Uuid::new_v4(), now: Utc::now() });
    assert_eq!(stranger, Err(LibraryError::NotFound));
    let deleted = agent.decide(LibraryAgentCommand::DeleteLibraryAgent { user_id: user, now: Utc::now() }).unwrap();
    let mut after = agent.clone();
    after.evolve(&deleted[0]);
    assert!(after.is_deleted);
    assert!(!after.is_visible_to(user));
}

#[test]
fn settings_are_read_from_an_object_only() {
    let empty: GraphSettings = serde_json::from_str("{}").unwrap();
    assert_eq!(empty, GraphSettings::default());
    let off: GraphSettings = serde_json::from_str(r#"{"human_in_the_loop_safe_mode":false}"#).unwrap();
    assert!(!off.human_in_the_loop_safe_mode);
    assert!(serde_json::from_str::<GraphSettings>("[]").is_err());
    assert!(serde_json::from_str::<GraphSettings>("[false, true]").is_err());
    assert!(serde_json::from_str::<GraphSettings>(r#"{"sensitive_action_safe_mode":"yes"}"#).is_err());
}
