//! The schedules read model (`rm_schedules`) and its queries, which join the
//! graphs read model for the agent's name.

use chrono::{DateTime, Utc};
use domain::aggregate::Aggregate;
use domain::schedule::{in_zone, Schedule, ScheduleEvent};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::projector::{BoxFuture, ProjectionError, StreamProjector};
use crate::query::QueryError;

/// Builds `rm_schedules` from schedule streams.
pub struct SchedulesProjector;

/// Name of the schedules projection.
pub const NAME: &str = "schedules";

impl StreamProjector for SchedulesProjector {
    type Source = Schedule;
    const NAME: &'static str = NAME;
    const TABLES: &'static [&'static str] = &["rm_schedules"];

    fn apply<'a>(
        &'a self,
        id: Uuid,
        event: <Schedule as Aggregate>::Event,
        conn: &'a mut PgConnection,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            match event {
                ScheduleEvent::ScheduleCreated {
                    schedule_id,
                    user_id,
                    graph_id,
                    graph_version,
                    name,
                    cron,
                    timezone,
                    inputs,
                    credentials,
                    next_run_time,
                    at,
                } => {
                    sqlx::query(
                        "INSERT INTO rm_schedules (id, user_id, graph_id, graph_version, name, cron, timezone, \
                           input_data, input_credentials, next_run_time, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(schedule_id)
                    .bind(user_id)
                    .bind(graph_id)
                    .bind(graph_version)
                    .bind(name)
                    .bind(cron)
                    .bind(timezone)
                    .bind(Value::Object(inputs))
                    .bind(Value::Object(credentials))
                    .bind(next_run_time)
                    .bind(at)
                    .execute(conn)
                    .await?;
                }
                ScheduleEvent::ScheduleFired { fire_time, next_run_time, at, .. }
                | ScheduleEvent::ScheduleFireFailed { fire_time, next_run_time, at, .. } => {
                    sqlx::query(
                        "UPDATE rm_schedules SET next_run_time = $2, last_fire_time = $3, updated_at = $4 WHERE id = $1",
                    )
                    .bind(id)
                    .bind(next_run_time)
                    .bind(fire_time)
                    .bind(at)
                    .execute(conn)
                    .await?;
                }
                ScheduleEvent::ScheduleDeleted { .. } => {
                    sqlx::query("DELETE FROM rm_schedules WHERE id = $1").bind(id).execute(conn).await?;
                }
            }
            Ok(())
        })
    }
}

/// AutoGPT's `GraphExecutionJobInfo`: a schedule as its user sees it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = GraphExecutionJobInfo)]
pub struct GraphExecutionJobInfo {
    /// The schedule id.
    pub id: String,
    /// The schedule id again (AutoGPT keeps job and schedule ids apart).
    pub schedule_id: Option<String>,
    /// The user's name for it.
    pub name: String,
    /// Whose runs.
    pub user_id: String,
    /// The graph.
    pub graph_id: String,
    /// The version every fire runs.
    pub graph_version: i32,
    /// The graph's name, when the graph is known.
    pub agent_name: Option<String>,
    /// Five-field crontab expression.
    pub cron: String,
    /// Graph inputs of every run.
    #[schema(value_type = Object)]
    pub input_data: Value,
    /// Credentials per credentials field.
    #[schema(value_type = Object)]
    pub input_credentials: Value,
    /// The next fire, RFC 3339 in the schedule's time zone (empty once the
    /// expression matches no more).
    pub next_run_time: String,
    /// The IANA time zone the expression is read in.
    pub timezone: String,
}

/// The parts a served schedule is made of, from a row or from the log.
struct Parts<'a> {
    id: Uuid,
    user_id: Uuid,
    graph_id: Uuid,
    graph_version: i32,
    name: String,
    cron: String,
    timezone: String,
    input_data: Value,
    input_credentials: Value,
    next_run_time: Option<DateTime<Utc>>,
    agent_name: Option<&'a str>,
}

impl Parts<'_> {
    fn view(self) -> GraphExecutionJobInfo {
        GraphExecutionJobInfo {
            id: self.id.to_string(),
            schedule_id: Some(self.id.to_string()),
            name: self.name,
            user_id: self.user_id.to_string(),
            graph_id: self.graph_id.to_string(),
            graph_version: self.graph_version,
            agent_name: self.agent_name.map(str::to_owned),
            cron: self.cron,
            input_data: self.input_data,
            input_credentials: self.input_credentials,
            next_run_time: self.next_run_time.map(|t| in_zone(t, &self.timezone)).unwrap_or_default(),
            timezone: self.timezone,
        }
    }
}

impl GraphExecutionJobInfo {
    /// From the aggregate's state (`None` for a schedule that is not there).
    pub fn from_state(schedule: &Schedule, agent_name: Option<&str>) -> Option<Self> {
        Some(
            Parts {
                id: schedule.id?,
                user_id: schedule.user_id?,
                graph_id: schedule.graph_id,
                graph_version: schedule.graph_version,
                name: schedule.name.clone(),
                cron: schedule.cron.clone(),
                timezone: schedule.timezone.clone(),
                input_data: json!(schedule.inputs),
                input_credentials: json!(schedule.credentials),
                next_run_time: schedule.next_run_time,
                agent_name,
            }
            .view(),
        )
    }

    fn of_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        let agent_name: Option<String> = row.try_get("agent_name")?;
        Ok(Parts {
            id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            graph_id: row.try_get("graph_id")?,
            graph_version: row.try_get("graph_version")?,
            name: row.try_get("name")?,
            cron: row.try_get("cron")?,
            timezone: row.try_get("timezone")?,
            input_data: row.try_get("input_data")?,
            input_credentials: row.try_get("input_credentials")?,
            next_run_time: row.try_get("next_run_time")?,
            agent_name: agent_name.as_deref(),
        }
        .view())
    }
}

const SELECT: &str = "SELECT s.id, s.user_id, s.graph_id, s.graph_version, s.name, s.cron, s.timezone, \
     s.input_data, s.input_credentials, s.next_run_time, g.name AS agent_name \
     FROM rm_schedules s LEFT JOIN rm_graphs g ON g.id = s.graph_id AND g.version = s.graph_version";

/// A user's schedules, of one graph or all, oldest first.
pub async fn list_schedules(
    pool: &PgPool,
    user_id: Uuid,
    graph_id: Option<Uuid>,
) -> Result<Vec<GraphExecutionJobInfo>, QueryError> {
    let rows = sqlx::query(&format!(
        "{SELECT} WHERE s.user_id = $1 AND ($2::uuid IS NULL OR s.graph_id = $2) ORDER BY s.created_at, s.id"
    ))
    .bind(user_id)
    .bind(graph_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(GraphExecutionJobInfo::of_row).collect::<Result<_, _>>()?)
}

/// One of a user's schedules.
pub async fn get_schedule(
    pool: &PgPool,
    user_id: Uuid,
    schedule_id: Uuid,
) -> Result<Option<GraphExecutionJobInfo>, QueryError> {
    let row = sqlx::query(&format!("{SELECT} WHERE s.id = $1 AND s.user_id = $2"))
        .bind(schedule_id)
        .bind(user_id)
        .fetch_optional(pool)
        .await?;
    Ok(row.as_ref().map(GraphExecutionJobInfo::of_row).transpose()?)
}
