//! What a query of a read model can fail with.

/// A failed read-model query. Queries answer `Ok(None)` or an empty list
/// for what does not exist; an error is always the database's.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The database failed or a row did not decode.
    #[error("read model query failed: {0}")]
    Database(#[from] sqlx::Error),
}
