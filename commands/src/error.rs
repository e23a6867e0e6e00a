//! Errors of the write path.

use domain::api_key::ApiKeyError;
use domain::graph::GraphError;
use domain::library::LibraryError;
use domain::schedule::ScheduleError;
use domain::user::UserError;
pub use eventlog::StoreError;

/// Failures of a command.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// A user rule refused it.
    #[error(transparent)]
    User(#[from] UserError),
    /// A graph rule refused it.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A library rule refused it.
    #[error(transparent)]
    Library(#[from] LibraryError),
    /// A store rule refused it.
    #[error(transparent)]
    Listing(#[from] domain::store::ListingError),
    /// An API key rule refused it.
    #[error(transparent)]
    ApiKey(#[from] ApiKeyError),
    /// A schedule rule refused it.
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// A run was refused before anything was queued.
    #[error(transparent)]
    Run(#[from] domain::execution::engine::RunError),
    /// A credential rule refused it.
    #[error(transparent)]
    Credential(domain::credential::CredentialError),
    /// A credential could not be sealed or opened.
    #[error(transparent)]
    Vault(crate::vault::VaultError),
    /// The user holds as many of a kind as allowed.
    #[error(transparent)]
    Quota(#[from] domain::quota::QuotaExceeded),
    /// The named thing does not exist for this user.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Still conflicting after the bounded retries.
    #[error("the resource was modified concurrently; retry")]
    Conflict,
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for CommandError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { .. } => Self::Conflict,
            other => Self::Store(other),
        }
    }
}
