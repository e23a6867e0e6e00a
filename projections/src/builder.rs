//! The builder menu's reads of other read models: windows of a user's
//! library agents and of listed store agents for its search, and the
//! counts its menu shows. Nothing here owns a table; every statement pages
//! in SQL, so a search costs the same however large the store grows.

use sqlx::{PgPool, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use crate::library::{self, LibraryAgentView, LibraryQuery, LibrarySort};
use crate::query::QueryError;
use crate::store::StoreAgent;

/// Items `[skip, skip + take)` of a listing, and how many items it has.
#[derive(Debug, Clone)]
pub struct Window<T> {
    /// The items in the window (fewer near the end of the listing).
    pub items: Vec<T>,
    /// Items in the whole listing.
    pub total: i64,
}

/// Items `[skip, skip + take)` of `user`'s library as its own listing
/// orders them (most recently updated first), matched on name or
/// description when `search` is given.
///
/// The window rarely starts on a page boundary (it follows the blocks in a
/// search's results), so it is read as the one or two pages of `take` items
/// that cover it: the library's own query, with its filter and order, stays
/// the one place that says what a library agent looks like.
pub async fn library_window(
    pool: &PgPool,
    user_id: Uuid,
    search: Option<&str>,
    skip: i64,
    take: i64,
) -> Result<Window<LibraryAgentView>, QueryError> {
    let page = |page: i64, page_size: i64| LibraryQuery {
        search_term: search.map(str::to_owned),
        sort: LibrarySort::UpdatedAt,
        page,
        page_size,
        favorites_only: false,
    };
    if take <= 0 {
        let first = library::list_agents(pool, user_id, &page(1, 1)).await?;
        return Ok(Window { items: vec![], total: first.pagination.total_items });
    }
    let (index, start) = (skip / take, (skip % take) as usize);
    let first = library::list_agents(pool, user_id, &page(index + 1, take)).await?;
    let total = first.pagination.total_items;
    let mut items: Vec<LibraryAgentView> = first.agents.into_iter().skip(start).collect();
    if start > 0 && total > (index + 1) * take {
        let next = library::list_agents(pool, user_id, &page(index + 2, take)).await?;
        items.extend(next.agents.into_iter().take(start));
    }
    Ok(Window { items, total })
}

/// Items `[skip, skip + take)` of the listed store agents, only those of
/// `creators` (usernames, any case) when some are named, matched by
/// full-text search when `search` is given: best match first, then most
/// recently updated, as the store's own search orders them.
pub async fn store_window(
    pool: &PgPool,
    creators: &[String],
    search: Option<&str>,
    skip: i64,
    take: i64,
) -> Result<Window<StoreAgent>, QueryError> {
    let creators: Vec<String> = creators.iter().map(|c| c.to_lowercase()).collect();
    let filter = |sql: &mut QueryBuilder<'_, Postgres>| {
        sql.push(" FROM rm_store_agents WHERE true");
        if !creators.is_empty() {
            sql.push(" AND creator = ANY(").push_bind(creators.clone()).push(")");
        }
        if let Some(text) = search {
            sql.push(" AND search @@ websearch_to_tsquery('english', ").push_bind(text.to_owned()).push(")");
        }
    };
    let mut count: QueryBuilder<Postgres> = QueryBuilder::new("SELECT count(*)");
    filter(&mut count);
    let total: i64 = count.build_query_scalar().fetch_one(pool).await?;
    if take <= 0 || skip >= total {
        return Ok(Window { items: vec![], total });
    }
    let mut sql: QueryBuilder<Postgres> = QueryBuilder::new(
        "SELECT slug, agent_name, agent_image, creator, creator_avatar, sub_heading, description, runs, rating",
    );
    filter(&mut sql);
    sql.push(" ORDER BY ");
    if let Some(text) = search {
        sql.push("ts_rank(search, websearch_to_tsquery('english', ").push_bind(text.to_owned()).push(")) DESC, ");
    }
    sql.push("updated_at DESC, listing_id LIMIT ").push_bind(take).push(" OFFSET ").push_bind(skip);
    let items =
        sql.build().fetch_all(pool).await?.iter().map(StoreAgent::of_row).collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Window { items, total })
}

/// The menu's counts from the read models: (listed store agents, the
/// user's library agents that are neither deleted nor archived).
pub async fn agent_counts(pool: &PgPool, user_id: Uuid) -> Result<(i64, i64), QueryError> {
    let row = sqlx::query(
        "SELECT (SELECT count(*) FROM rm_store_agents) AS store, \
                (SELECT count(*) FROM rm_library_agents \
                  WHERE user_id = $1 AND NOT is_deleted AND NOT is_archived) AS library",
    )
    .bind(user_id)
    .fetch_one(pool)
    .await?;
    Ok((row.try_get("store")?, row.try_get("library")?))
}
