//! What a query of a read model can fail with, and how a page of a listing is described.

/// A failed read-model query. Queries answer `Ok(None)` or an empty list
/// for what does not exist; an error is always the database's.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The database failed or a row did not decode.
    #[error("read model query failed: {0}")]
    Database(#[from] sqlx::Error),
}

/// Where a page is in a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Pagination {
    /// Items in the whole listing.
    pub total_items: i64,
    /// Pages in the whole listing.
    pub total_pages: i64,
    /// This page (1-based).
    pub current_page: i64,
    /// Items per page.
    pub page_size: i64,
}

impl Pagination {
    /// Rows before page `page` (1-based) of `page_size` items: the `OFFSET`.
    pub fn offset(page: i64, page_size: i64) -> i64 {
        (page - 1).saturating_mul(page_size)
    }

    /// Page `page` of `page_size` items in a listing of `total`.
    pub fn of(total: i64, page: i64, page_size: i64) -> Self {
        Self {
            total_items: total,
            total_pages: (total + page_size - 1) / page_size.max(1),
            current_page: page,
            page_size,
        }
    }
}
