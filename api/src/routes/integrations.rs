//! Credentials and providers (`/api/integrations`). A credential's secret
//! goes in once, with `POST`, and never comes back out: answers carry it
//! masked, as pydantic serializes a `SecretStr`. These routes stay outside
//! the idempotency layer, whose record would keep what a request sent.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use commands::services::{secret_fits, NewCredential, Secret};
use domain::credential::MASK;
use domain::credential::{CredentialKind, CredentialMeta};
use projections::credentials::{self, CredentialMetaView};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use utoipa::ToSchema;

use super::{at_most_chars, parse_id};
use crate::consistency::{reads, Committed};
use crate::error::{ApiError, ApiResult, ErrorBody, FieldError};
use crate::extract::{Json, Query};
use crate::state::{AppState, Caller};

/// Longest API key, password or header value.
const MAX_SECRET_CHARS: usize = 8192;
/// Longest user name or header name.
const MAX_NAME_CHARS: usize = 256;

/// Providers this platform's blocks can use, by AutoGPT's names.
pub(crate) const PROVIDERS: &[&str] =
    &["anthropic", "generic_webhook", "groq", "http", "llama_api", "ollama", "open_router", "openai"];

pub(super) fn router(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .route("/integrations/credentials", get(list_all_credentials))
        .route("/integrations/{provider}/credentials", get(list_credentials).post(create_credentials))
        .route("/integrations/{provider}/credentials/{cred_id}", get(get_credentials).delete(delete_credentials));
    reads(routes, state, &[credentials::NAME])
        .route("/integrations/providers", get(list_providers))
        .route("/integrations/providers/system", get(list_system_providers))
        .route("/integrations/providers/names", get(provider_names))
        .route("/integrations/providers/constants", get(provider_constants))
        .route("/integrations/providers/enum-example", get(provider_enum_example))
}

/// Body of `POST /api/integrations/{provider}/credentials`, by `type`.
#[derive(Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum CredentialsInput {
    /// An API key (`APIKeyCredentials`).
    #[schema(title = "APIKeyCredentials")]
    ApiKey {
        #[schema(max_length = 255)]
        title: Option<String>,
        #[schema(min_length = 1, max_length = 8192, format = Password, write_only)]
        api_key: String,
        /// Unix seconds.
        expires_at: Option<i64>,
    },
    /// A user name and password (`UserPasswordCredentials`).
    #[schema(title = "UserPasswordCredentials")]
    UserPassword {
        #[schema(max_length = 255)]
        title: Option<String>,
        #[schema(max_length = 256, format = Password, write_only)]
        username: String,
        #[schema(max_length = 8192, format = Password, write_only)]
        password: String,
    },
    /// Headers for one host (`HostScopedCredentials`).
    #[schema(title = "HostScopedCredentials")]
    HostScoped {
        #[schema(max_length = 255)]
        title: Option<String>,
        #[schema(min_length = 1, max_length = 255)]
        host: String,
        /// Header names must be HTTP tokens (else 400); at most 50.
        #[serde(default)]
        headers: BTreeMap<String, String>,
    },
}

impl std::fmt::Debug for CredentialsInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialsInput { .. }")
    }
}

/// A header name as HTTP allows it (a token).
fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl CredentialsInput {
    fn into_new(self, provider: String) -> ApiResult<NewCredential> {
        let meta = |kind, title| CredentialMeta {
            provider,
            kind,
            title,
            host: None,
            header_names: vec![],
            expires_at: None,
            scopes: vec![],
        };
        let new = match self {
            Self::ApiKey { title, api_key, expires_at } => {
                at_most_chars("api_key", &api_key, MAX_SECRET_CHARS)?;
                NewCredential {
                    meta: CredentialMeta { expires_at, ..meta(CredentialKind::ApiKey, title) },
                    secret: Secret { api_key: Some(api_key), ..Secret::default() },
                }
            }
            Self::UserPassword { title, username, password } => {
                at_most_chars("username", &username, MAX_NAME_CHARS)?;
                at_most_chars("password", &password, MAX_SECRET_CHARS)?;
                NewCredential {
                    meta: meta(CredentialKind::UserPassword, title),
                    secret: Secret { username: Some(username), password: Some(password), ..Secret::default() },
                }
            }
            Self::HostScoped { title, host, headers } => {
                // Which names HTTP allows the schema cannot say: a 400, as
                // for any rule beyond the schema.
                for (name, value) in &headers {
                    if !is_header_name(name) || name.len() > MAX_NAME_CHARS {
                        return Err(ApiError::bad_request(format!("not a valid header name: {name:?}")));
                    }
                    if value.chars().count() > MAX_SECRET_CHARS || value.contains(['\r', '\n']) {
                        return Err(ApiError::bad_request(format!(
                            "the value of header {name:?} is not a valid header value"
                        )));
                    }
                }
                let names = headers.keys().cloned().collect();
                NewCredential {
                    meta: CredentialMeta {
                        host: Some(host.trim().to_owned()),
                        header_names: names,
                        ..meta(CredentialKind::HostScoped, title)
                    },
                    secret: Secret { headers, ..Secret::default() },
                }
            }
        };
        if !secret_fits(new.meta.kind, &new.secret) {
            return Err(ApiError::bad_request("the credential's secret is empty"));
        }
        Ok(new)
    }
}

/// A credential as `GET …/credentials/{id}` and `POST` answer it: its
/// fields by type, secrets masked.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Credentials, value_type = Object)]
pub(crate) struct MaskedCredentials(Map<String, Value>);

impl MaskedCredentials {
    fn of(view: &CredentialMetaView) -> Self {
        let mut out = Map::new();
        out.insert("id".into(), json!(view.id));
        out.insert("provider".into(), json!(view.provider));
        out.insert("title".into(), json!(view.title));
        out.insert("type".into(), json!(view.kind));
        match view.kind.as_str() {
            "api_key" => {
                out.insert("api_key".into(), json!(MASK));
                out.insert("expires_at".into(), json!(view.expires_at));
            }
            "user_password" => {
                out.insert("username".into(), json!(MASK));
                out.insert("password".into(), json!(MASK));
            }
            "host_scoped" => {
                out.insert("host".into(), json!(view.host));
                let headers: Map<String, Value> = view.header_names.iter().map(|n| (n.clone(), json!(MASK))).collect();
                out.insert("headers".into(), Value::Object(headers));
            }
            _ => {}
        }
        Self(out)
    }
}

fn check_provider(provider: &str) -> ApiResult<()> {
    if domain::credential::valid_provider(provider) {
        return Ok(());
    }
    let message = "provider must be 1 to 100 characters of letters, digits, '-', '_' or '.'";
    Err(ApiError::unprocessable(message, vec![FieldError::new("provider", message, "value_error", json!(provider))]))
}

/// Store a credential; its secret is sealed and never shown again.
#[utoipa::path(post, path = "/api/integrations/{provider}/credentials", operation_id = "postV1Create credentials",
    tag = "integrations", params(("provider" = String, Path, pattern = "^[A-Za-z0-9._-]{1,100}$")), request_body = CredentialsInput,
    responses((status = 201, description = "The credential, secrets masked", body = MaskedCredentials),
        (status = 400, description = "Empty secret", body = ErrorBody),
        (status = 422, description = "Bad provider, title, host or secret", body = ErrorBody)))]
pub(crate) async fn create_credentials(
    State(state): State<AppState>,
    caller: Caller,
    Path(provider): Path<String>,
    Json(body): Json<CredentialsInput>,
) -> ApiResult<Committed<(StatusCode, axum::Json<MaskedCredentials>)>> {
    check_provider(&provider)?;
    let new = body.into_new(provider)?;
    let (outcome, id, created) = state.commands.create_credential(&caller.ctx, caller.user.user_id, new).await?;
    let meta = created.meta.ok_or_else(|| ApiError::internal(&"created credential without meta"))?;
    let view = CredentialMetaView {
        id: id.to_string(),
        provider: meta.provider,
        kind: meta.kind.as_str().to_owned(),
        title: meta.title,
        scopes: None,
        username: None,
        host: meta.host,
        header_names: meta.header_names,
        expires_at: meta.expires_at,
    };
    Ok(state.answer(&outcome, (StatusCode::CREATED, axum::Json(MaskedCredentials::of(&view)))).await)
}

/// The caller's credentials of every provider.
#[utoipa::path(get, path = "/api/integrations/credentials", operation_id = "getV1List credentials",
    tag = "integrations", responses((status = 200, description = "The credentials", body = Vec<CredentialMetaView>)))]
pub(crate) async fn list_all_credentials(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<Vec<CredentialMetaView>>> {
    Ok(axum::Json(credentials::list_credentials(state.pool(), caller.user.user_id, None).await?))
}

/// The caller's credentials of one provider.
#[utoipa::path(get, path = "/api/integrations/{provider}/credentials", operation_id = "getV1ListCredentialsByProvider",
    tag = "integrations", params(("provider" = String, Path)),
    responses((status = 200, description = "The credentials", body = Vec<CredentialMetaView>)))]
pub(crate) async fn list_credentials(
    State(state): State<AppState>,
    caller: Caller,
    Path(provider): Path<String>,
) -> ApiResult<axum::Json<Vec<CredentialMetaView>>> {
    Ok(axum::Json(credentials::list_credentials(state.pool(), caller.user.user_id, Some(&provider)).await?))
}

async fn find(state: &AppState, caller: &Caller, provider: &str, cred_id: &str) -> ApiResult<CredentialMetaView> {
    let id = parse_id(cred_id, "Credentials")?;
    credentials::get_credential(state.pool(), caller.user.user_id, provider, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Credentials not found"))
}

/// One of the caller's credentials, secrets masked.
#[utoipa::path(get, path = "/api/integrations/{provider}/credentials/{cred_id}",
    operation_id = "getV1Get specific credential by ID", tag = "integrations",
    params(("provider" = String, Path), ("cred_id" = String, Path)),
    responses((status = 200, description = "The credential", body = MaskedCredentials),
        (status = 404, description = "Not found", body = ErrorBody)))]
pub(crate) async fn get_credentials(
    State(state): State<AppState>,
    caller: Caller,
    Path((provider, cred_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<MaskedCredentials>> {
    Ok(axum::Json(MaskedCredentials::of(&find(&state, &caller, &provider, &cred_id).await?)))
}

/// Query of the delete route.
#[derive(Debug, Deserialize)]
pub(crate) struct DeleteQuery {
    /// Accepted for compatibility: no webhook here holds a credential.
    #[serde(default)]
    #[expect(dead_code, reason = "AutoGPT's flag for credentials its webhooks still use; none do here")]
    force: bool,
}

/// Answer of a deletion (`CredentialsDeletionResponse`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CredentialsDeletionResponse)]
pub(crate) struct DeletionResponse {
    /// Always true.
    deleted: bool,
    /// Whether the provider revoked it too: not applicable here.
    revoked: Option<bool>,
}

/// Delete one of the caller's credentials: its key is destroyed, so the
/// log's ciphertext can never be read again.
#[utoipa::path(delete, path = "/api/integrations/{provider}/credentials/{cred_id}",
    operation_id = "deleteV1Delete credentials", tag = "integrations",
    params(("provider" = String, Path), ("cred_id" = String, Path), ("force" = Option<bool>, Query)),
    responses((status = 200, description = "Deleted", body = DeletionResponse),
        (status = 404, description = "Not found", body = ErrorBody)))]
pub(crate) async fn delete_credentials(
    State(state): State<AppState>,
    caller: Caller,
    Path((provider, cred_id)): Path<(String, String)>,
    Query(_query): Query<DeleteQuery>,
) -> ApiResult<Committed<axum::Json<DeletionResponse>>> {
    let view = find(&state, &caller, &provider, &cred_id).await?;
    let id = parse_id(&view.id, "Credentials")?;
    let outcome = state.commands.delete_credential(&caller.ctx, caller.user.user_id, id).await?;
    Ok(state.answer(&outcome, axum::Json(DeletionResponse { deleted: true, revoked: None })).await)
}

/// The providers blocks here can use.
#[utoipa::path(get, path = "/api/integrations/providers", operation_id = "getV1ListProviders", tag = "integrations",
    security(()), responses((status = 200, description = "Provider names", body = Vec<String>)))]
pub(crate) async fn list_providers() -> axum::Json<Vec<&'static str>> {
    axum::Json(PROVIDERS.to_vec())
}

/// Providers the platform has its own credentials for.
#[utoipa::path(get, path = "/api/integrations/providers/system", operation_id = "getV1ListSystemProviders",
    tag = "integrations", security(()), responses((status = 200, description = "Provider names", body = Vec<String>)))]
pub(crate) async fn list_system_providers(State(state): State<AppState>) -> axum::Json<Vec<&'static str>> {
    axum::Json(if state.system_llm_key { vec!["openai"] } else { vec![] })
}

/// `ProviderNamesResponse`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ProviderNamesResponse)]
pub(crate) struct ProviderNames {
    #[schema(required = false)]
    providers: Vec<&'static str>,
}

/// Every provider name.
#[utoipa::path(get, path = "/api/integrations/providers/names", operation_id = "getV1Get all provider names",
    tag = "integrations", security(()), responses((status = 200, description = "Names", body = ProviderNames)))]
pub(crate) async fn provider_names() -> axum::Json<ProviderNames> {
    axum::Json(ProviderNames { providers: PROVIDERS.to_vec() })
}

/// `ProviderConstants`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ProviderConstants)]
pub(crate) struct ProviderConstants {
    #[serde(rename = "PROVIDER_NAMES")]
    #[schema(value_type = Object, required = false)]
    provider_names: BTreeMap<String, &'static str>,
}

/// Provider names as constants (`OPENAI: "openai"`).
#[utoipa::path(get, path = "/api/integrations/providers/constants", operation_id = "getV1Get provider constants",
    tag = "integrations", security(()), responses((status = 200, description = "Constants", body = ProviderConstants)))]
pub(crate) async fn provider_constants() -> axum::Json<ProviderConstants> {
    let provider_names = PROVIDERS.iter().map(|p| (p.to_ascii_uppercase(), *p)).collect();
    axum::Json(ProviderConstants { provider_names })
}

/// `ProviderEnumResponse`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ProviderEnumResponse)]
pub(crate) struct ProviderEnum {
    provider: &'static str,
}

/// One provider name, as an example of the enum.
#[utoipa::path(get, path = "/api/integrations/providers/enum-example", operation_id = "getV1Get example provider enum",
    tag = "integrations", security(()), responses((status = 200, description = "A provider", body = ProviderEnum)))]
pub(crate) async fn provider_enum_example() -> axum::Json<ProviderEnum> {
    axum::Json(ProviderEnum { provider: "openai" })
}
