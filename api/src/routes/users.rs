use std::str::FromStr;

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use commands::Outcome;
use domain::user::User;
use projections::users::{self, UserView};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::consistency::{reads, Committed};
use crate::error::{ApiError, ApiResult, ErrorBody, FieldError};
use crate::extract::Json;
use crate::state::{AppState, Caller};

pub(super) fn router(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .route("/auth/user", post(ensure_user))
        .route("/auth/user/email", post(update_email))
        .route("/auth/user/timezone", get(get_timezone).post(set_timezone))
        .route("/auth/user/preferences", get(get_preferences).post(set_preferences));
    reads(routes, state, &[users::NAME])
}

/// Body of `POST /api/auth/user/timezone`.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct UpdateTimezoneRequest {
    /// An IANA timezone name.
    timezone: String,
}

/// A user's timezone (AutoGPT's `TimezoneResponse`).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TimezoneResponse {
    /// An IANA timezone name, or `not-set`.
    timezone: String,
}

/// Answer of `POST /api/auth/user/email`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EmailResponse {
    /// The address as saved.
    email: String,
}

/// Register the effective user if new. The token's e-mail and name belong
/// to its subject, so an impersonated user is registered without them.
async fn register(state: &AppState, caller: &Caller) -> ApiResult<(Outcome, User)> {
    let user = &caller.user;
    let (email, name) = if user.is_impersonating() {
        (String::new(), None)
    } else {
        (user.email.clone().unwrap_or_default(), user.name.clone())
    };
    Ok(state.commands.ensure_user(&caller.ctx, user.user_id, email, name).await?)
}

/// Get or create the calling user from its token.
#[utoipa::path(post, path = "/api/auth/user", operation_id = "postV1Get or create user", tag = "auth",
    responses((status = 200, description = "The user", body = UserView), (status = 401, description = "Not authenticated", body = ErrorBody)))]
pub(crate) async fn ensure_user(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Committed<axum::Json<UserView>>> {
    let (outcome, user) = register(&state, &caller).await?;
    let view = UserView::from_state(&user).ok_or_else(|| ApiError::not_found("User not found"))?;
    Ok(state.answer(&outcome, axum::Json(view)).await)
}

/// Change the calling user's e-mail (body: a JSON string).
#[utoipa::path(post, path = "/api/auth/user/email", operation_id = "postV1Update user email", tag = "auth",
    request_body(content = String, content_type = "application/json", description = "The new e-mail address (a JSON string)"),
    responses((status = 200, description = "The address as saved", body = EmailResponse), (status = 422, description = "Invalid address", body = ErrorBody)))]
pub(crate) async fn update_email(
    State(state): State<AppState>,
    caller: Caller,
    Json(email): Json<String>,
) -> ApiResult<Committed<axum::Json<EmailResponse>>> {
    register(&state, &caller).await?;
    let (outcome, _) = state.commands.update_email(&caller.ctx, caller.user.user_id, email.clone()).await?;
    Ok(state.answer(&outcome, axum::Json(EmailResponse { email: email.trim().to_owned() })).await)
}

/// The calling user's timezone (`not-set` until chosen).
#[utoipa::path(get, path = "/api/auth/user/timezone", operation_id = "getV1Get user timezone", tag = "auth",
    responses((status = 200, description = "The timezone", body = TimezoneResponse)))]
pub(crate) async fn get_timezone(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<TimezoneResponse>> {
    let tz = users::get_timezone(state.pool(), caller.user.user_id).await?;
    Ok(axum::Json(TimezoneResponse { timezone: tz.unwrap_or_else(|| domain::user::TIMEZONE_NOT_SET.to_owned()) }))
}

/// Choose the calling user's timezone.
#[utoipa::path(post, path = "/api/auth/user/timezone", operation_id = "postV1Update user timezone", tag = "auth",
    request_body = UpdateTimezoneRequest,
    responses((status = 200, description = "The timezone", body = TimezoneResponse), (status = 422, description = "Unknown timezone", body = ErrorBody)))]
pub(crate) async fn set_timezone(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<UpdateTimezoneRequest>,
) -> ApiResult<Committed<axum::Json<TimezoneResponse>>> {
    if chrono_tz::Tz::from_str(&body.timezone).is_err() {
        return Err(ApiError::unprocessable(
            format!("Unknown timezone: {}", body.timezone),
            vec![FieldError::new("timezone", "Not an IANA timezone name", "enum", json!(body.timezone))],
        ));
    }
    register(&state, &caller).await?;
    let (outcome, _) = state.commands.set_timezone(&caller.ctx, caller.user.user_id, body.timezone.clone()).await?;
    Ok(state.answer(&outcome, axum::Json(TimezoneResponse { timezone: body.timezone })).await)
}

/// Body of `POST /api/auth/user/preferences` (`NotificationPreferenceDTO`).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = NotificationPreferenceDTO)]
pub(crate) struct PreferencesRequest {
    /// Where notifications go.
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// Wanted or not, by notification type.
    #[schema(value_type = std::collections::BTreeMap<domain_notification::NotificationType, bool>)]
    preferences: std::collections::BTreeMap<String, bool>,
    /// Most e-mails a day.
    #[schema(minimum = 0, maximum = 1000)]
    daily_limit: i64,
}

/// The notification type names, for the schema.
mod domain_notification {
    /// AutoGPT's `NotificationType`.
    #[derive(utoipa::ToSchema)]
    #[allow(clippy::upper_case_acronyms, non_camel_case_types, dead_code)]
    pub(crate) enum NotificationType {
        AGENT_RUN,
        ZERO_BALANCE,
        LOW_BALANCE,
        BLOCK_EXECUTION_FAILED,
        CONTINUOUS_AGENT_ERROR,
        DAILY_SUMMARY,
        WEEKLY_SUMMARY,
        MONTHLY_SUMMARY,
        REFUND_REQUEST,
        REFUND_PROCESSED,
        AGENT_APPROVED,
        AGENT_REJECTED,
    }
}

async fn preferences_of(state: &AppState, caller: &Caller) -> ApiResult<users::NotificationPreferenceView> {
    users::notification_preferences(state.pool(), caller.user.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("User not found"))
}

/// The calling user's notification settings.
#[utoipa::path(get, path = "/api/auth/user/preferences", operation_id = "getV1Get notification preferences", tag = "auth",
    responses((status = 200, description = "The settings", body = users::NotificationPreferenceView),
        (status = 404, description = "Not registered yet", body = ErrorBody)))]
pub(crate) async fn get_preferences(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<users::NotificationPreferenceView>> {
    preferences_of(&state, &caller).await.map(axum::Json)
}

/// Choose the calling user's notifications.
#[utoipa::path(post, path = "/api/auth/user/preferences", operation_id = "postV1Update notification preferences",
    tag = "auth", request_body = PreferencesRequest,
    responses((status = 200, description = "The settings", body = users::NotificationPreferenceView),
        (status = 422, description = "Unknown notification type, bad address or limit", body = ErrorBody)))]
pub(crate) async fn set_preferences(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<PreferencesRequest>,
) -> ApiResult<Committed<axum::Json<users::NotificationPreferenceView>>> {
    super::at_most_chars("email", &body.email, 254)?;
    if let Some(unknown) = body.preferences.keys().find(|k| !domain::user::NOTIFICATION_TYPES.contains(&k.as_str())) {
        let message = format!("Unknown notification type: {unknown}");
        return Err(ApiError::unprocessable(
            message.clone(),
            vec![FieldError::new("preferences", message, "enum", json!(unknown))],
        ));
    }
    register(&state, &caller).await?;
    let user = caller.user.user_id;
    let outcome = state
        .commands
        .set_notification_preferences(&caller.ctx, user, body.email, body.preferences, body.daily_limit)
        .await?;
    let read = async { Ok(users::notification_preferences(state.pool(), user).await?.map(axum::Json)) };
    Ok(state.answer_read(&outcome, read, async { Ok(None) }).await)
}
