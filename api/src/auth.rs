//! Bearer-token authentication as AutoGPT does it: the algorithm is pinned,
//! `aud` must be `authenticated`, `exp` is enforced, the user is `sub`, and
//! an admin may act as another user with `X-Act-As-User-Id`.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use jsonwebtoken::{decode, encode, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::AuthConfig;
use crate::error::ApiError;

/// The audience every accepted token carries.
pub const AUDIENCE: &str = "authenticated";
const ACT_AS_HEADER: &str = "x-act-as-user-id";

/// Claims we read (and write, for `autogpt-es token`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Must be `authenticated`.
    pub aud: String,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// `admin` for administrators.
    #[serde(default)]
    pub role: Option<String>,
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// Supabase-style metadata (`name`, …).
    #[serde(default)]
    pub user_metadata: Option<serde_json::Value>,
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// The effective user (the impersonated one when an admin acts as someone).
    pub user_id: Uuid,
    /// The token's subject: differs from `user_id` while impersonating.
    pub token_user_id: Uuid,
    /// E-mail from the token (of the real caller).
    pub email: Option<String>,
    /// Display name from the token.
    pub name: Option<String>,
    /// The real caller is an admin.
    pub is_admin: bool,
}

/// An authenticated admin.
#[derive(Debug, Clone)]
pub struct AdminUser(pub AuthUser);

/// Verifies bearer tokens: the key and the rules, prepared once at startup
/// (a PEM key is parsed once, not per request, and a bad one stops the
/// server from starting instead of failing every request).
#[derive(Clone)]
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl Verifier {
    /// Prepare verification for this configuration.
    pub fn new(config: &AuthConfig) -> Result<Self, jsonwebtoken::errors::Error> {
        use jsonwebtoken::Algorithm::*;
        let raw = config.verify_key.expose().as_bytes();
        let key = match config.algorithm {
            HS256 | HS384 | HS512 => DecodingKey::from_secret(raw),
            RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => DecodingKey::from_rsa_pem(raw)?,
            ES256 | ES384 => DecodingKey::from_ec_pem(raw)?,
            EdDSA => DecodingKey::from_ed_pem(raw)?,
        };
        let mut validation = Validation::new(config.algorithm);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        validation.leeway = 0;
        Ok(Self { key, validation })
    }

    /// Check a token's signature and claims.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        decode::<Claims>(token, &self.key, &self.validation).map(|d| d.claims).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => ApiError::unauthorized("Token has expired"),
                ErrorKind::InvalidAudience => ApiError::unauthorized("Invalid token audience"),
                _ => ApiError::unauthorized("Invalid token"),
            }
        })
    }
}

/// Sign a token with an HMAC key (development and tests).
pub fn sign(config: &AuthConfig, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
    encode(&Header::new(config.algorithm), claims, &EncodingKey::from_secret(config.verify_key.expose().as_bytes()))
}

/// The claims of the request's bearer token, already verified for this
/// request (by the rate limiter, which needs its subject first): routes
/// take them instead of checking the signature a second time.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedClaims(pub(crate) Claims);

/// Any state that holds the verifier authenticates: this module knows
/// nothing of the application state built on top of it.
impl<S> FromRequestParts<S> for AuthUser
where
    S: Send + Sync,
    Arc<Verifier>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("Authorization header is missing"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unauthorized("Invalid authorization header"))?;
        let claims = match parts.extensions.get::<VerifiedClaims>() {
            Some(verified) => verified.0.clone(),
            None => Arc::<Verifier>::from_ref(state).verify(token)?,
        };
        let user_id = Uuid::parse_str(&claims.sub).map_err(|_| ApiError::unauthorized("Invalid token subject"))?;
        let is_admin = claims.role.as_deref() == Some("admin");
        let name = claims
            .user_metadata
            .as_ref()
            .and_then(|m| m.get("name").or_else(|| m.get("full_name")))
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        // Claims become events and read-model text, which cannot hold NUL.
        if [claims.email.as_deref(), name.as_deref()].into_iter().flatten().any(|s| s.contains('\0')) {
            return Err(ApiError::unauthorized("Invalid token claims"));
        }
        let mut user = AuthUser { user_id, token_user_id: user_id, email: claims.email, name, is_admin };
        if let Some(act_as) = parts.headers.get(ACT_AS_HEADER) {
            if !is_admin {
                return Err(ApiError::forbidden("Only admin users can impersonate other users"));
            }
            let target = act_as.to_str().ok().and_then(|v| Uuid::parse_str(v.trim()).ok());
            user.user_id = target.ok_or_else(|| ApiError::bad_request("X-Act-As-User-Id must be a user id"))?;
        }
        Ok(user)
    }
}

impl AuthUser {
    /// Whether an admin is acting as another user.
    pub fn is_impersonating(&self) -> bool {
        self.user_id != self.token_user_id
    }
}

impl<S> FromRequestParts<S> for AdminUser
where
    S: Send + Sync,
    Arc<Verifier>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if user.is_admin {
            Ok(AdminUser(user))
        } else {
            Err(ApiError::forbidden("Admin access required"))
        }
    }
}
