//! `KeyHolder<S>`: the caller of an external route, authenticated by its
//! `X-API-Key` and holding scope `S`. A missing, unknown, suspended or
//! revoked key is a 401; a key without the scope a 403.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use commands::CommandContext;
use domain::api_key::ApiKeyPermission;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// The request header carrying the key.
pub const HEADER: &str = "x-api-key";

/// A scope a route requires, as a type, so the requirement is part of the
/// handler's signature.
pub trait Scope: Send + Sync + 'static {
    /// The permission the key must grant.
    const PERMISSION: ApiKeyPermission;
}

/// The scope marker types, one per permission a route requires.
pub mod scope {
    use super::{ApiKeyPermission, Scope};

    macro_rules! scopes {
        ($($name:ident => $permission:ident),* $(,)?) => {$(
            #[doc = concat!("Requires `", stringify!($permission), "`.")]
            pub struct $name;
            impl Scope for $name {
                const PERMISSION: ApiKeyPermission = ApiKeyPermission::$permission;
            }
        )*};
    }

    scopes! {
        Identity => Identity,
        ReadBlock => ReadBlock,
        ExecuteBlock => ExecuteBlock,
        ExecuteGraph => ExecuteGraph,
        ReadGraph => ReadGraph,
        ReadStore => ReadStore,
    }
}

/// A caller authenticated by API key, holding scope `S`.
pub struct KeyHolder<S> {
    /// The key's owner: the user the request acts as.
    pub user_id: Uuid,
    /// The key used.
    pub key_id: Uuid,
    /// Correlation and request id for the commands it runs.
    pub ctx: CommandContext,
    scope: PhantomData<S>,
}

impl<S: Scope> FromRequestParts<AppState> for KeyHolder<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented = parts
            .headers
            .get(HEADER)
            .ok_or_else(|| ApiError::unauthorized("X-API-Key header is missing"))?
            .to_str()
            .map_err(|_| ApiError::unauthorized("Invalid API key"))?
            .trim();
        let (key_id, key) = state.keys.authenticate(state, presented).await?;
        let user_id = key.user_id.ok_or_else(|| ApiError::unauthorized("Invalid API key"))?;
        if !key.scopes.contains(&S::PERMISSION) {
            let scope = serde_json::to_value(S::PERMISSION).ok().and_then(|v| v.as_str().map(str::to_owned));
            return Err(ApiError::forbidden(format!(
                "This API key lacks the required permission: {}",
                scope.unwrap_or_default()
            )));
        }
        let request_id = parts.headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let ctx = CommandContext { request_id, ..CommandContext::for_user(user_id) };
        Ok(Self { user_id, key_id, ctx, scope: PhantomData })
    }
}
