//! The read side: a projector runner (checkpoint, catch-up, live tail,
//! rebuild) and one module per read model with the queries the API calls.

pub mod api_keys;
pub mod builder;
pub mod credentials;
mod credit_batch;
pub mod credits;
mod execution_batch;
pub mod execution_views;
pub mod executions;
pub mod feed;
pub mod graphs;
pub mod library;
pub mod onboarding;
mod pause;
pub mod presets;
pub mod projector;
pub mod query;
pub mod rebuild;
pub mod reviews;
pub mod runner;
pub mod schedules;
pub mod stall;
pub mod status;
pub mod store;
pub mod users;
pub mod verify;
pub mod webhooks;

pub use projector::{BoxFuture, Bulk, ProjectionError, Projector, StreamProjector};
pub use query::QueryError;
pub use runner::Projections;

use std::sync::Arc;

/// Every projector of the application, in one list so that starting,
/// rebuilding and reporting cover all of them.
pub fn all() -> Vec<Arc<dyn Projector>> {
    vec![
        Arc::new(users::UsersProjector),
        Arc::new(graphs::GraphsProjector),
        Arc::new(library::LibraryProjector),
        Arc::new(executions::ExecutionsProjector),
        Arc::new(credits::CreditsProjector),
        Arc::new(store::StoreProjector),
        Arc::new(presets::PresetsProjector),
        Arc::new(api_keys::ApiKeysProjector),
        Arc::new(schedules::SchedulesProjector),
        Arc::new(credentials::CredentialsProjector),
        Arc::new(onboarding::OnboardingProjector),
        Arc::new(webhooks::WebhooksProjector),
    ]
}
