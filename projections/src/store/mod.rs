//! The store read models: profiles, listings, versions, reviews, runs per
//! graph, and `rm_store_agents`, one denormalised row per listed agent that
//! the store pages filter, sort and full-text search. One projector writes
//! them all, so a row is always recomputed from sources no other writer is
//! changing at the same moment.

/// A listing's rating, the average of its reviews (0 without any), for a
/// statement where `l` names a row with the listing's `listing_id`. A
/// macro so that it joins `concat!` and `format!` strings alike.
macro_rules! listing_rating {
    () => {
        "coalesce((SELECT avg(score)::float8 FROM rm_store_reviews x WHERE x.listing_id = l.listing_id), 0)"
    };
}

mod creators;
mod queries;
mod views;

pub use creators::*;
pub use queries::*;
pub use views::*;

use domain::execution::{ExecutionEvent, GraphExecution};
use domain::store::{ProfileEvent, StoreListing, StoreListingEvent, StoreProfile, StoreReview, StoreReviewEvent};
use domain::Aggregate;
use eventlog::codec::decode;
use eventlog::{RecordedEvent, Wanted};
use serde_json::json;
use sqlx::postgres::PgArguments;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::projector::{bind, source_id, BoxFuture, Bulk, ProjectionError, Projector, BULK_FROM};

/// Name of the store projection.
pub const NAME: &str = "store";

/// Builds the store read models.
pub struct StoreProjector;

impl Projector for StoreProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "rm_store_profiles",
            "rm_store_listings",
            "rm_store_versions",
            "rm_store_reviews",
            "rm_graph_runs",
            "rm_store_agents",
        ]
    }

    fn categories(&self) -> &'static [&'static str] {
        // Runs are counted from the executions' streams too (see `wants`),
        // but a run's command does not wait for the store: a listing's run
        // count may trail by a moment; a run's start should not.
        &[StoreListing::STREAM_PREFIX, StoreProfile::STREAM_PREFIX, StoreReview::STREAM_PREFIX]
    }

    fn wants(&self, event: &RecordedEvent) -> bool {
        // Of the runs, only their queuing counts (a run per queuing).
        source_id::<StoreListing>(event).is_some()
            || source_id::<StoreProfile>(event).is_some()
            || source_id::<StoreReview>(event).is_some()
            || is_run_queued(event)
    }

    /// Its own streams whole, and of the runs only their queuing.
    fn reads(&self) -> Option<Wanted> {
        Some(Wanted { streams: self.categories().to_vec(), types: vec![RUN_QUEUED] })
    }

    /// Runs queued, by far the most of what the store reads, are counted a
    /// batch at a time; the first store event ends the statement (it goes
    /// event by event: a listing's row is recomputed from several tables).
    fn bulk(&self, batch: &[&RecordedEvent], args: &mut PgArguments) -> Result<Option<Bulk>, ProjectionError> {
        let covered = batch.iter().position(|e| self.wants(e) && !is_run_queued(e)).unwrap_or(batch.len());
        // Cut short, the runner asks again for the events before the cut:
        // only the statement it runs is worth decoding for.
        if covered < batch.len() {
            return Ok(Some(Bulk { sql: RUNS_QUEUED, covered }));
        }
        let mut graphs = Vec::new();
        for event in batch.iter().filter(|e| is_run_queued(e)) {
            if let ExecutionEvent::ExecutionQueued { graph_id, .. } = decode::<GraphExecution>(event)? {
                graphs.push(graph_id);
            }
        }
        bind(args, graphs)?;
        Ok(Some(Bulk { sql: RUNS_QUEUED, covered }))
    }

    fn bulk_from(&self) -> usize {
        BULK_FROM
    }

    fn handle<'a>(
        &'a self,
        event: &'a RecordedEvent,
        conn: &'a mut PgConnection,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            if let Some(id) = source_id::<StoreListing>(event) {
                listing_changed(id, decode::<StoreListing>(event)?, conn).await?;
            } else if source_id::<StoreProfile>(event).is_some() {
                profile_updated(decode::<StoreProfile>(event)?, conn).await?;
            } else if source_id::<StoreReview>(event).is_some() {
                review_submitted(decode::<StoreReview>(event)?, conn).await?;
            } else if is_run_queued(event) {
                if let ExecutionEvent::ExecutionQueued { graph_id, .. } = decode::<GraphExecution>(event)? {
                    run_queued(graph_id, conn).await?;
                }
            }
            Ok(())
        })
    }
}

/// The one event of a run's the store counts.
const RUN_QUEUED: &str = "ExecutionQueued";

/// A run queued: of a run's events, the only one the store counts.
fn is_run_queued(event: &RecordedEvent) -> bool {
    event.event_type == RUN_QUEUED && source_id::<GraphExecution>(event).is_some()
}

async fn listing_changed(id: Uuid, event: StoreListingEvent, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    match event {
        StoreListingEvent::StoreListingCreated { listing_id, owner_id, graph_id, slug, at } => {
            sqlx::query(
                "INSERT INTO rm_store_listings (listing_id, owner_id, graph_id, slug, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5) \
                 ON CONFLICT (listing_id) DO UPDATE SET slug = $4, is_deleted = false, active_version_id = NULL, \
                   updated_at = $5",
            )
            .bind(listing_id)
            .bind(owner_id)
            .bind(graph_id)
            .bind(slug)
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
        StoreListingEvent::StoreVersionSubmitted { version_id, version, agent_version, details, at } => {
            sqlx::query(
                "INSERT INTO rm_store_versions (version_id, listing_id, version, agent_version, details, status, \
                   submitted_at) VALUES ($1, $2, $3, $4, $5, 'PENDING', $6) ON CONFLICT (version_id) DO NOTHING",
            )
            .bind(version_id)
            .bind(id)
            .bind(version)
            .bind(agent_version)
            .bind(json!(details))
            .bind(at)
            .execute(&mut *conn)
            .await?;
            touch(id, at, conn).await?;
        }
        StoreListingEvent::StoreVersionEdited { version_id, details, at } => {
            sqlx::query("UPDATE rm_store_versions SET details = $2 WHERE version_id = $1")
                .bind(version_id)
                .bind(json!(details))
                .execute(&mut *conn)
                .await?;
            touch(id, at, conn).await?;
        }
        StoreListingEvent::StoreVersionReviewed {
            version_id,
            approved,
            reviewer_id,
            comments,
            internal_comments,
            at,
        } => {
            sqlx::query(
                "UPDATE rm_store_versions SET status = $2, reviewer_id = $3, review_comments = $4, \
                   internal_comments = $5, reviewed_at = $6 WHERE version_id = $1",
            )
            .bind(version_id)
            .bind(if approved { "APPROVED" } else { "REJECTED" })
            .bind(reviewer_id)
            .bind(comments)
            .bind(internal_comments)
            .bind(at)
            .execute(&mut *conn)
            .await?;
            touch(id, at, conn).await?;
        }
        StoreListingEvent::StoreVersionDeleted { version_id, at } => {
            sqlx::query("UPDATE rm_store_versions SET is_deleted = true WHERE version_id = $1")
                .bind(version_id)
                .execute(&mut *conn)
                .await?;
            touch(id, at, conn).await?;
        }
        StoreListingEvent::StoreListingDeleted { at } => {
            sqlx::query("UPDATE rm_store_listings SET is_deleted = true WHERE listing_id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
            touch(id, at, conn).await?;
        }
    }
    Ok(())
}

/// A listing changed: the newest approved version is the active one, and
/// its store row is recomputed.
async fn touch(id: Uuid, at: chrono::DateTime<chrono::Utc>, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE rm_store_listings SET updated_at = $2, active_version_id = ( \
           SELECT version_id FROM rm_store_versions \
           WHERE listing_id = $1 AND status = 'APPROVED' AND NOT is_deleted ORDER BY version DESC LIMIT 1) \
         WHERE listing_id = $1",
    )
    .bind(id)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    refresh(conn, "l.listing_id = $1", id).await
}

/// Recompute the store rows of the listings `filter` selects (bound to `$1`).
async fn refresh(conn: &mut PgConnection, filter: &str, key: Uuid) -> Result<(), sqlx::Error> {
    let keys = format!("SELECT l.listing_id FROM rm_store_listings l WHERE {filter}");
    sqlx::query(&format!("DELETE FROM rm_store_agents WHERE listing_id IN ({keys})"))
        .bind(key)
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!(
        "INSERT INTO rm_store_agents SELECT l.listing_id, v.version_id, l.graph_id, l.owner_id, l.slug, \
           v.details->>'name', coalesce(v.details->'image_urls'->>0, ''), coalesce(p.username, ''), \
           coalesce(p.avatar_url, ''), v.details->>'sub_heading', coalesce(v.details->>'description', ''), \
           c.categories, coalesce(r.runs, 0), \
           {rating}, \
           false, l.updated_at, \
           setweight(to_tsvector('english', v.details->>'name'), 'A') \
             || setweight(to_tsvector('english', v.details->>'sub_heading'), 'B') \
             || setweight(to_tsvector('english', array_to_string(c.categories, ' ')), 'B') \
             || setweight(to_tsvector('english', coalesce(v.details->>'description', '')), 'C') \
         FROM rm_store_listings l \
         JOIN rm_store_versions v ON v.version_id = l.active_version_id \
         CROSS JOIN LATERAL (SELECT coalesce(array_agg(t), '{{}}') AS categories \
                             FROM jsonb_array_elements_text(v.details->'categories') t) c \
         LEFT JOIN rm_store_profiles p ON p.user_id = l.owner_id \
         LEFT JOIN rm_graph_runs r ON r.graph_id = l.graph_id \
         WHERE NOT l.is_deleted AND {filter}",
        rating = listing_rating!()
    ))
    .bind(key)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn profile_updated(event: ProfileEvent, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    let ProfileEvent::ProfileUpdated { user_id, details, at } = event;
    sqlx::query(
        "INSERT INTO rm_store_profiles (user_id, username, name, description, links, avatar_url, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (user_id) DO UPDATE SET username = $2, name = $3, description = $4, links = $5, \
           avatar_url = $6, updated_at = $7",
    )
    .bind(user_id)
    .bind(&details.username)
    .bind(&details.name)
    .bind(&details.description)
    .bind(json!(details.links))
    .bind(&details.avatar_url)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    refresh(conn, "l.owner_id = $1", user_id).await
}

async fn review_submitted(event: StoreReviewEvent, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    let StoreReviewEvent::StoreReviewSubmitted { user_id, listing_id, version_id, score, comments, .. } = event;
    sqlx::query(
        "INSERT INTO rm_store_reviews (version_id, user_id, listing_id, score, comments) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (version_id, user_id) DO UPDATE SET score = $4, comments = $5",
    )
    .bind(version_id)
    .bind(user_id)
    .bind(listing_id)
    .bind(score)
    .bind(comments)
    .execute(&mut *conn)
    .await?;
    sqlx::query(concat!("UPDATE rm_store_agents l SET rating = ", listing_rating!(), " WHERE l.listing_id = $1"))
        .bind(listing_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// [`run_queued`] for the graphs in `$6`, a graph once per run.
const RUNS_QUEUED: &str = "\
q AS (SELECT graph_id, count(*) AS runs FROM unnest($6::uuid[]) AS graph_id GROUP BY graph_id), \
gr AS (INSERT INTO rm_graph_runs (graph_id, runs) SELECT graph_id, runs FROM q WHERE EXISTS (SELECT FROM ck) \
  ON CONFLICT (graph_id) DO UPDATE SET runs = rm_graph_runs.runs + excluded.runs), \
sa AS (UPDATE rm_store_agents a SET runs = a.runs + q.runs FROM q WHERE a.graph_id = q.graph_id \
  AND EXISTS (SELECT FROM ck))";

async fn run_queued(graph_id: Uuid, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO rm_graph_runs (graph_id, runs) VALUES ($1, 1) \
         ON CONFLICT (graph_id) DO UPDATE SET runs = rm_graph_runs.runs + 1",
    )
    .bind(graph_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE rm_store_agents SET runs = runs + 1 WHERE graph_id = $1").bind(graph_id).execute(conn).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use eventlog::store::{EventMetadata, GlobalPosition};

    use super::*;

    fn event(stream_id: String, event_type: &str) -> RecordedEvent {
        RecordedEvent {
            global: GlobalPosition::default(),
            stream_id,
            version: 1,
            event_id: Uuid::new_v4(),
            event_type: event_type.to_owned(),
            schema_version: 1,
            data: serde_json::value::RawValue::from_string("null".to_owned()).unwrap(),
            metadata: EventMetadata::default(),
            recorded_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_rebuild_reads_whole_every_event_the_store_wants_and_passes_over_runs_other_events() {
        let reads = StoreProjector.reads().unwrap();
        let id = Uuid::new_v4();
        let wanted = [
            event(format!("{}-{id}", StoreListing::STREAM_PREFIX), "StoreListingCreated"),
            event(format!("{}-{id}", StoreProfile::STREAM_PREFIX), "ProfileUpdated"),
            event(format!("{}-{id}", StoreReview::STREAM_PREFIX), "ReviewSubmitted"),
            event(format!("{}-{id}", GraphExecution::STREAM_PREFIX), RUN_QUEUED),
        ];
        for e in &wanted {
            assert!(StoreProjector.wants(e) && reads.covers(&e.stream_id, &e.event_type), "{}", e.stream_id);
        }
        let started = event(format!("{}-{id}", GraphExecution::STREAM_PREFIX), "ExecutionStarted");
        assert!(!StoreProjector.wants(&started) && !reads.covers(&started.stream_id, &started.event_type));
        let graph = event(format!("graph-{id}"), "GraphCreated");
        assert!(!reads.covers(&graph.stream_id, &graph.event_type));
    }
}
