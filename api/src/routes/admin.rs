use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use eventlog::audit_verify::{verify, VerifyReport};
use projections::status::{report, StatusReport};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AdminUser;
use crate::error::ApiResult;
use crate::error::ErrorBody;
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/projections", get(list_projections))
        .route("/admin/projections/{name}/rebuild", post(rebuild_projection))
        .route("/admin/audit/verify", post(verify_log))
}

/// The projections' status and the executor's.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AdminStatus {
    /// The log and every projector.
    #[serde(flatten)]
    report: StatusReport,
    /// Runs being carried out, waiting, and how the executor fares.
    executor: ExecutorReport,
    /// Due schedules, how late they are, and how this instance's scheduler fares.
    scheduler: SchedulerReport,
}

/// The executor's loop, as operators watch it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ExecutorReport {
    /// Runs waiting for a worker (all instances).
    pub queued: i64,
    /// Runs being carried out (all instances).
    pub running: i64,
    /// Runs this instance is carrying out.
    pub running_here: usize,
    /// Runs this instance carried to an end since it started.
    pub finished_here: u64,
    /// Claims this instance lost to another worker.
    pub claim_conflicts: u64,
    /// The last failure of a run or of the loop.
    pub last_error: Option<String>,
    /// When it happened.
    pub last_error_at: Option<DateTime<Utc>>,
}

impl ExecutorReport {
    /// Gather it: counts from the executions read model, the rest from this
    /// instance's executor.
    pub(crate) async fn gather(state: &AppState) -> Result<Self, sqlx::Error> {
        let (queued, running): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE status = 'QUEUED'), count(*) FILTER (WHERE status = 'RUNNING') \
             FROM rm_graph_executions",
        )
        .fetch_one(state.pool())
        .await?;
        let here = state.executor.status();
        Ok(Self {
            queued,
            running,
            running_here: here.running,
            finished_here: here.finished,
            claim_conflicts: here.claim_conflicts,
            last_error: here.last_error,
            last_error_at: here.last_error_at,
        })
    }
}

/// The scheduler's loop, as operators watch it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SchedulerReport {
    /// Schedules whose next fire has come and not been recorded (all
    /// instances; from the read model, so briefly after each fire too).
    pub due: i64,
    /// How long the most overdue of them has waited, in milliseconds.
    pub lag_ms: i64,
    /// Looks for due schedules this instance completed.
    pub ticks: u64,
    /// Fires that queued a run, here.
    pub fired_here: u64,
    /// Fires recorded here without a run (graph gone, inputs refused, no credits).
    pub failed_here: u64,
    /// Fires another instance recorded first.
    pub lost_here: u64,
    /// When this instance last looked.
    pub last_tick_at: Option<DateTime<Utc>>,
    /// The last failure of the loop or of a fire.
    pub last_error: Option<String>,
    /// When it happened.
    pub last_error_at: Option<DateTime<Utc>>,
}

impl SchedulerReport {
    /// Gather it: the backlog from the schedules read model, the rest from
    /// this instance's scheduler.
    pub(crate) async fn gather(state: &AppState) -> Result<Self, sqlx::Error> {
        let backlog = state.scheduler.backlog().await?;
        let here = state.scheduler.status();
        Ok(Self {
            due: backlog.due,
            lag_ms: backlog.lag_ms,
            ticks: here.ticks,
            fired_here: here.fired,
            failed_here: here.failed,
            lost_here: here.lost,
            last_tick_at: here.last_tick_at,
            last_error: here.last_error,
            last_error_at: here.last_error_at,
        })
    }
}

/// The log's head, what its horizon holds back (and the transaction holding
/// it), each projector's checkpoint, lag and last error, the executor and the scheduler.
#[utoipa::path(get, path = "/api/admin/projections", operation_id = "getAdminProjections", tag = "admin",
    responses((status = 200, description = "Projection and executor status", body = AdminStatus), (status = 403, description = "Admin access required", body = ErrorBody)))]
pub(crate) async fn list_projections(State(state): State<AppState>, _admin: AdminUser) -> ApiResult<Json<AdminStatus>> {
    let report = report(state.store()).await?;
    let executor = ExecutorReport::gather(&state).await?;
    Ok(Json(AdminStatus { report, executor, scheduler: SchedulerReport::gather(&state).await? }))
}

/// A rebuild that has started.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RebuildStarted {
    /// The projection being rebuilt.
    pub name: String,
    /// Always `rebuilding`; follow it in `GET /api/admin/projections`.
    pub state: &'static str,
    /// Events in the log when it started.
    pub events_total: u64,
}

/// Rebuild a read model with zero downtime: the new version is built beside
/// the live one, which keeps serving, and swapped in once caught up.
/// Progress, the ETA and any error show in `GET /api/admin/projections`.
#[utoipa::path(post, path = "/api/admin/projections/{name}/rebuild", operation_id = "postAdminRebuildProjection", tag = "admin",
    params(("name" = String, Path, description = "Projection name, as `GET /api/admin/projections` lists it")),
    responses((status = 202, description = "The rebuild started", body = RebuildStarted),
        (status = 400, description = "The projection has no read model (it hands events on)", body = ErrorBody),
        (status = 409, description = "A rebuild of this projection is already running, here or in another process", body = ErrorBody)))]
pub(crate) async fn rebuild_projection(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, Json<RebuildStarted>)> {
    let job = state.projections.begin_rebuild(&name).await?;
    let events_total = job.events_total();
    let projection = name.clone();
    tokio::spawn(async move {
        if let Err(e) = job.run(|_| {}).await {
            // Recorded in the rebuild's row too, where the admin route shows it.
            tracing::error!(projection, error = %e, "rebuild failed");
        }
    });
    Ok((StatusCode::ACCEPTED, Json(RebuildStarted { name, state: "rebuilding", events_total })))
}

/// Check the log's tamper evidence: recompute every event's hash below the
/// horizon, every stream's version sequence and every seal's digest, and
/// name the first event found altered, deleted or reordered. Reads the whole
/// log (about a million events in well under half a minute); `ok` is false
/// and `first_problem` set when anything was changed behind the writers' back.
#[utoipa::path(post, path = "/api/admin/audit/verify", operation_id = "postAdminAuditVerify", tag = "admin",
    responses((status = 200, description = "The verification report", body = VerifyReport), (status = 403, description = "Admin access required", body = ErrorBody)))]
pub(crate) async fn verify_log(State(state): State<AppState>, _admin: AdminUser) -> ApiResult<Json<VerifyReport>> {
    Ok(Json(verify(state.pool(), |_| {}).await?))
}
