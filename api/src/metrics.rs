//! `GET /metrics`: Prometheus text for operators (admin-only, like the rest
//! of the admin surface; a scraper sends an admin bearer token).
//!
//! Counters and histograms are recorded where things happen (appends and
//! conflicts in the event store, requests in the middleware); the state of
//! the background loops (projector lag, the horizon) is measured when
//! scraped, so it is never stale.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use projections::status::report;

use crate::auth::AdminUser;
use crate::error::ApiResult;
use crate::state::AppState;

/// Latency buckets of the request histogram, in seconds.
const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The process-wide recorder (one per process: several apps in one test
/// process share it).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full("http_request_duration_seconds".into()), LATENCY_BUCKETS)
            .map(PrometheusBuilder::build_recorder);
        match recorder {
            Ok(recorder) => {
                let handle = recorder.handle();
                if metrics::set_global_recorder(recorder).is_err() {
                    tracing::warn!("a metrics recorder was already installed; /metrics shows only this one's");
                }
                handle
            }
            // Only an empty bucket list fails, and ours is not empty.
            Err(e) => unreachable!("metrics buckets: {e}"),
        }
    })
}

/// Count and time every request by method, route template and status.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    // The template, not the path: ids would make a series per request.
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels[..2]).record(started.elapsed().as_secs_f64());
    response
}

/// Prometheus text exposition of every metric.
#[utoipa::path(get, path = "/metrics", operation_id = "getMetrics", tag = "admin",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
        (status = 401, description = "Not authenticated", body = crate::error::ErrorBody),
        (status = 403, description = "Admin access required", body = crate::error::ErrorBody)))]
pub(crate) async fn render(State(state): State<AppState>, _admin: AdminUser) -> ApiResult<Response> {
    let report = report(state.store()).await?;
    let h = &report.horizon;
    metrics::gauge!("eventlog_held_back_events").set(h.held_back_events as f64);
    metrics::gauge!("eventlog_held_back_seconds").set(h.held_back_ms as f64 / 1000.0);
    let oldest = h.oldest_transaction.as_ref().map_or(0.0, |t| t.age_ms as f64 / 1000.0);
    metrics::gauge!("eventlog_oldest_transaction_age_seconds").set(oldest);
    for p in &report.projections {
        let name = [("projection", p.name.clone())];
        metrics::gauge!("projection_lag_events", &name).set(p.lag_events as f64);
        metrics::gauge!("projection_lag_seconds", &name).set(p.lag_ms as f64 / 1000.0);
        metrics::gauge!("projection_failing", &name).set(if p.last_error.is_some() { 1.0 } else { 0.0 });
        metrics::gauge!("projection_version", &name).set(f64::from(p.version));
        // One series per state, 1 for the current one: alerts match on the label.
        for state in ["live", "rebuilding", "stalled", "failed"] {
            let labels = [("projection", p.name.clone()), ("state", state.to_owned())];
            metrics::gauge!("projection_state", &labels).set(if p.state == state { 1.0 } else { 0.0 });
        }
        if let Some(r) = &p.rebuild {
            metrics::gauge!("projection_rebuild_percent", &name).set(r.percent);
            metrics::gauge!("projection_rebuild_events_done", &name).set(r.events_done as f64);
            metrics::gauge!("projection_rebuild_eta_seconds", &name).set(r.eta_seconds.unwrap_or(0.0));
        }
    }
    let executor = crate::routes::ExecutorReport::gather(&state).await?;
    metrics::gauge!("executor_queued_runs").set(executor.queued as f64);
    metrics::gauge!("executor_running_runs").set(executor.running as f64);
    metrics::gauge!("executor_running_here").set(executor.running_here as f64);
    metrics::gauge!("executor_finished_here").set(executor.finished_here as f64);
    metrics::gauge!("executor_claim_conflicts").set(executor.claim_conflicts as f64);
    metrics::gauge!("executor_failing").set(if executor.last_error.is_some() { 1.0 } else { 0.0 });
    let scheduler = crate::routes::SchedulerReport::gather(&state).await?;
    metrics::gauge!("scheduler_due_schedules").set(scheduler.due as f64);
    metrics::gauge!("scheduler_lag_seconds").set(scheduler.lag_ms as f64 / 1000.0);
    metrics::gauge!("scheduler_fired_here").set(scheduler.fired_here as f64);
    metrics::gauge!("scheduler_failed_here").set(scheduler.failed_here as f64);
    metrics::gauge!("scheduler_lost_here").set(scheduler.lost_here as f64);
    metrics::gauge!("scheduler_failing").set(if scheduler.last_error.is_some() { 1.0 } else { 0.0 });
    let handle = handle();
    handle.run_upkeep();
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response())
}
