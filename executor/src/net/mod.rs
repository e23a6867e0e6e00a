//! The one outbound HTTP client blocks use (SendWebRequest, LLM calls).
//! Every URL comes from a user's graph, so every hop is checked by an SSRF
//! guard on the address actually dialed (after DNS, so rebinding a name to
//! a private address does not get through), and every exchange is bounded
//! in time and size so that one bad server cannot hold or exhaust a worker.

mod guard;
mod transport;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::Method;
use tokio::time::timeout;
use url::Url;

pub use guard::AllowList;
pub use transport::{BoxFuture, Dial, Resolve, SystemResolver, TcpDialer};

use transport::Transport;

/// Limits and policy of an [`HttpClient`].
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Bound on resolving a name, on each dial and on the TLS handshake.
    pub connect_timeout: Duration,
    /// Bound on one attempt as a whole (redirects and reading the body
    /// included), so a server trickling bytes cannot hold a worker.
    pub request_timeout: Duration,
    /// Largest response body kept; beyond it the request fails.
    pub max_response_bytes: usize,
    /// Redirects followed before giving up.
    pub max_redirects: usize,
    /// Extra attempts after a connect failure, a timeout or a 429/502/503/504.
    pub retries: u32,
    /// Base of the exponential backoff between attempts (full jitter, capped).
    pub backoff: Duration,
    /// Addresses reachable although the guard would refuse them.
    pub allow: AllowList,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_response_bytes: 10 * 1024 * 1024,
            max_redirects: 10,
            retries: 2,
            backoff: Duration::from_millis(250),
            allow: AllowList::none(),
        }
    }
}

/// The longest wait between attempts, however many there were.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// A request as a block describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Any HTTP method; case does not matter.
    pub method: String,
    /// An absolute http or https URL.
    pub url: String,
    /// Sent as given, except that Content-Length and Transfer-Encoding are
    /// computed here.
    pub headers: Vec<(String, String)>,
    /// Sent with a Content-Length.
    pub body: Option<Vec<u8>>,
}

/// The final answer, after redirects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code of the last hop.
    pub status: u16,
    /// Header names lower-cased; values not in UTF-8 are converted lossily.
    pub headers: Vec<(String, String)>,
    /// The whole body, at most `max_response_bytes`.
    pub body: Vec<u8>,
    /// The URL that answered, after redirects.
    pub url: String,
}

impl HttpResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum NetError {
    /// Not an absolute http(s) URL, or a redirect to one that is not.
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// The SSRF guard refused the destination; says which address and why.
    #[error("refused: {0}")]
    Refused(String),
    /// An attempt took longer than `request_timeout`.
    #[error("request timed out")]
    Timeout,
    /// The body was longer than this many bytes (`max_response_bytes`).
    #[error("response body larger than {0} bytes")]
    TooLarge(usize),
    /// More than `max_redirects` redirects.
    #[error("too many redirects")]
    TooManyRedirects,
    /// Resolving, dialing or the TLS handshake failed.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The request could not be built or the exchange broke off.
    #[error("HTTP error: {0}")]
    Protocol(String),
}

/// The outbound HTTP client; cheap to clone, so one is shared by all
/// workers.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: NetConfig,
    transport: Transport,
}

/// A validated request, reused by every attempt.
struct Prepared {
    method: Method,
    url: Url,
    headers: Vec<(String, String)>,
    body: Option<Bytes>,
}

impl HttpClient {
    /// A client using the system's resolver and root certificates.
    pub fn new(config: NetConfig) -> Self {
        Self::with_parts(config, Arc::new(SystemResolver), Arc::new(TcpDialer))
    }

    /// A client resolving and dialing through the given parts; the guard
    /// still judges every address they produce.
    pub fn with_parts(config: NetConfig, resolver: Arc<dyn Resolve>, dialer: Arc<dyn Dial>) -> Self {
        let transport = Transport::new(resolver, dialer, config.allow.clone(), config.connect_timeout);
        Self { inner: Arc::new(Inner { config, transport }) }
    }

    /// Carry out `request`, following redirects and retrying transient
    /// failures. Any status is a success here; the caller judges it.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, NetError> {
        let config = &self.inner.config;
        let method = Method::from_bytes(request.method.trim().to_ascii_uppercase().as_bytes())
            .map_err(|_| NetError::Protocol(format!("invalid method {:?}", request.method)))?;
        let url = Url::parse(request.url.trim()).map_err(|e| NetError::InvalidUrl(format!("{}: {e}", request.url)))?;
        check_scheme(&url)?;
        let prepared = Prepared { method, url, headers: request.headers, body: request.body.map(Bytes::from) };
        let mut attempt = 0;
        loop {
            let result = match timeout(config.request_timeout, self.attempt(&prepared)).await {
                Ok(result) => result,
                Err(_) => Err(NetError::Timeout),
            };
            let (retry, hint) = match &result {
                Ok(r) => (matches!(r.status, 429 | 502 | 503 | 504), retry_after(r)),
                Err(e) => (matches!(e, NetError::Connect(_) | NetError::Timeout), None),
            };
            if !retry || attempt >= config.retries {
                return result;
            }
            let pause = backoff(config.backoff, attempt).max(hint.unwrap_or_default().min(MAX_BACKOFF));
            tracing::debug!(url = %prepared.url, attempt, ?pause, "retrying outbound request");
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }

    /// One attempt: the request and the redirects it leads to.
    async fn attempt(&self, request: &Prepared) -> Result<HttpResponse, NetError> {
        let config = &self.inner.config;
        let mut method = request.method.clone();
        let mut url = request.url.clone();
        let mut headers = request.headers.clone();
        let mut body = request.body.clone();
        let mut redirects = 0;
        loop {
            let io = self.inner.transport.open(&url).await?;
            let (response, conn) = transport::exchange(io, build(&method, &url, &headers, body.clone())?).await?;
            let status = response.status().as_u16();
            let location = response.headers().get(header::LOCATION).cloned();
            if let (301 | 302 | 303 | 307 | 308, Some(location)) = (status, location) {
                drop((response, conn));
                let location = String::from_utf8_lossy(location.as_bytes());
                let next =
                    url.join(&location).map_err(|e| NetError::InvalidUrl(format!("redirect to {location:?}: {e}")))?;
                check_scheme(&next)?;
                if redirects >= config.max_redirects {
                    return Err(NetError::TooManyRedirects);
                }
                redirects += 1;
                // What browsers do: the body is not sent again to a 303, nor
                // to a 301/302 answering a POST.
                if (status == 303 && method != Method::HEAD) || (matches!(status, 301 | 302) && method == Method::POST)
                {
                    method = Method::GET;
                    body = None;
                    headers.retain(|(n, _)| !n.to_ascii_lowercase().starts_with("content-"));
                }
                // Credentials meant for one site must not reach another (nor
                // a Host header naming the old one).
                if next.origin() != url.origin() {
                    headers.retain(|(n, _)| {
                        !["authorization", "cookie", "proxy-authorization", "host"]
                            .iter()
                            .any(|c| n.trim().eq_ignore_ascii_case(c))
                    });
                }
                url = next;
                continue;
            }
            let headers = response
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect();
            // A HEAD answer's Content-Length describes a body that never comes.
            let body = match method {
                Method::HEAD => Vec::new(),
                _ => transport::read_body(response, config.max_response_bytes).await?,
            };
            drop(conn);
            return Ok(HttpResponse { status, headers, body, url: url.into() });
        }
    }
}

fn check_scheme(url: &Url) -> Result<(), NetError> {
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(()),
        "http" | "https" => Err(NetError::InvalidUrl(format!("{url}: no host"))),
        other => Err(NetError::InvalidUrl(format!("{url}: scheme {other:?} is not http or https"))),
    }
}

fn build(
    method: &Method,
    url: &Url,
    headers: &[(String, String)],
    body: Option<Bytes>,
) -> Result<hyper::Request<Full<Bytes>>, NetError> {
    let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let mut request = hyper::Request::builder()
        .method(method.clone())
        .uri(target)
        .body(Full::new(body.clone().unwrap_or_default()))
        .map_err(|e| NetError::InvalidUrl(format!("{url}: {e}")))?;
    let map = request.headers_mut();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| NetError::Protocol(format!("invalid header name {name:?}")))?;
        // The body sent decides its framing, not a header a user typed.
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        let value = HeaderValue::from_str(value.trim())
            .map_err(|_| NetError::Protocol(format!("invalid value for header {name}")))?;
        map.append(name, value);
    }
    if !map.contains_key(header::HOST) {
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let host = HeaderValue::from_str(&host).map_err(|_| NetError::InvalidUrl(format!("{url}: bad host")))?;
        map.insert(header::HOST, host);
    }
    if !map.contains_key(header::USER_AGENT) {
        map.insert(header::USER_AGENT, HeaderValue::from_static(concat!("autogpt-es/", env!("CARGO_PKG_VERSION"))));
    }
    // Some servers answer 411 to a POST without a length, even an empty one.
    let len = body.as_ref().map(Bytes::len);
    if len.is_some() || matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
        map.insert(header::CONTENT_LENGTH, HeaderValue::from(len.unwrap_or(0)));
    }
    // One exchange per connection: tell the server not to keep it open.
    map.insert(header::CONNECTION, HeaderValue::from_static("close"));
    Ok(request)
}

/// A server's own Retry-After (in seconds), which beats a guess.
fn retry_after(response: &HttpResponse) -> Option<Duration> {
    response.header("retry-after")?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Full jitter: anywhere between zero and the exponential ceiling, so that
/// many workers hitting one rate limit do not retry in lockstep.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let ceiling = base.saturating_mul(1 << attempt.min(20)).min(MAX_BACKOFF.max(base));
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rand::random_range(0..=nanos))
}
