//! Request rate limits: each user (by bearer token subject, or by API key
//! once this process has verified it) and, for requests without a known
//! identity (webhook ingress, public shares, store pages, and credentials
//! not yet verified), each client address, may send so many requests per
//! second with a burst of twice that. Past it, `429 rate_limited` in the
//! one error shape with `Retry-After`; `/metrics` counts refusals by what
//! was limited (`api_rate_limited_total{by}`). The bookkeeping is the
//! `governor` crate's (GCRA, one state per key).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};
use uuid::Uuid;

use crate::auth::{VerifiedClaims, Verifier};
use crate::error::ApiError;
use crate::keys::KeyAuth;

/// Requests per second per user, by default.
pub const DEFAULT_PER_USER: u32 = 300;
/// Requests per second per client address without a known identity.
pub const DEFAULT_PER_ADDRESS: u32 = 100;
/// Keys kept before the ones at full allowance are dropped.
const SWEEP_FROM: usize = 10_000;

/// What a request is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Caller {
    /// A bearer token's subject.
    User(Uuid),
    /// An API key this process has verified.
    ApiKey(Uuid),
    /// Anyone else, by address.
    Address(IpAddr),
}

/// The limiters, shared by every request of the process.
#[derive(Clone)]
pub struct RateLimits {
    users: Option<Arc<DefaultKeyedRateLimiter<Caller>>>,
    addresses: Option<Arc<DefaultKeyedRateLimiter<Caller>>>,
    verifier: Arc<Verifier>,
    keys: Arc<KeyAuth>,
}

/// `per_second` a second with a burst of twice that; none for 0 (off).
fn limiter(per_second: u32) -> Option<Arc<DefaultKeyedRateLimiter<Caller>>> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = rate.saturating_mul(NonZeroU32::MIN.saturating_add(1));
    Some(Arc::new(DefaultKeyedRateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))))
}

impl RateLimits {
    /// Limits of `per_user` and `per_address` requests a second (0: none).
    pub fn new(per_user: u32, per_address: u32, verifier: Arc<Verifier>, keys: Arc<KeyAuth>) -> Self {
        Self { users: limiter(per_user), addresses: limiter(per_address), verifier, keys }
    }

    /// Who `request` comes from, as far as can be told without waiting: a
    /// bearer token is checked here (cheaply; the route checks it again),
    /// an API key counts as its own only once verified, since anyone can
    /// make up new keys to get new allowances.
    /// A verified token's claims are kept in the request for its route.
    fn caller_of(&self, request: &mut Request) -> Caller {
        let headers = request.headers();
        let bearer = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")));
        if let Some(claims) = bearer.and_then(|t| self.verifier.verify(t.trim()).ok()) {
            let user = claims.sub.parse().ok();
            request.extensions_mut().insert(VerifiedClaims(claims));
            if let Some(user) = user {
                return Caller::User(user);
            }
        }
        let headers = request.headers();
        let key = headers.get(crate::keys::HEADER).and_then(|h| h.to_str().ok());
        if let Some(key_id) = key.and_then(|k| self.keys.known(k)) {
            return Caller::ApiKey(key_id);
        }
        let address = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        Caller::Address(address.unwrap_or(IpAddr::from([0, 0, 0, 0])))
    }
}

/// The middleware: count the request against its caller, or refuse it.
pub async fn limit(State(limits): State<RateLimits>, mut request: Request, next: Next) -> Response {
    let caller = limits.caller_of(&mut request);
    let (limiter, by) = match caller {
        Caller::Address(_) => (&limits.addresses, "address"),
        _ => (&limits.users, "user"),
    };
    let Some(limiter) = limiter else { return next.run(request).await };
    if limiter.len() > SWEEP_FROM {
        limiter.retain_recent();
    }
    match limiter.check_key(&caller) {
        Ok(()) => next.run(request).await,
        Err(not_until) => {
            metrics::counter!("api_rate_limited_total", "by" => by).increment(1);
            let wait = not_until.wait_time_from(limiter.clock().now());
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("Too many requests from this {by}; retry after {seconds} s"),
            )
            .with_header(axum::http::header::RETRY_AFTER, HeaderValue::from(seconds.max(1)))
            .into_response()
        }
    }
}
