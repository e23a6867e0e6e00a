//! One hop of a request: resolve the host, pass every address through the
//! guard, dial one that passed, wrap it in TLS for https, and carry out a
//! single HTTP/1.1 exchange on that connection.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::OnceCell;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use url::{Host, Url};

use super::{AllowList, NetError};

/// A boxed, sendable future: lets `Resolve` and `Dial` be trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Turns a host name into addresses. A trait so that tests (and operators
/// with their own DNS) can decide what a name means; the guard judges
/// whatever it returns.
pub trait Resolve: Send + Sync + 'static {
    /// The addresses of `host`, each with `port` set.
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<'_, io::Result<Vec<SocketAddr>>>;
}

/// Opens a TCP connection to an address the guard has already passed. A
/// trait so that tests can record what would have been dialed instead of
/// sending a packet.
pub trait Dial: Send + Sync + 'static {
    /// A connection to exactly `addr`.
    fn dial(&self, addr: SocketAddr) -> BoxFuture<'_, io::Result<TcpStream>>;
}

/// The operating system's resolver (getaddrinfo, on tokio's blocking pool
/// so it never stalls a runtime thread).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<'_, io::Result<Vec<SocketAddr>>> {
        let host = host.to_owned();
        Box::pin(async move { Ok(tokio::net::lookup_host((host.as_str(), port)).await?.collect()) })
    }
}

/// Plain `TcpStream::connect`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpDialer;

impl Dial for TcpDialer {
    fn dial(&self, addr: SocketAddr) -> BoxFuture<'_, io::Result<TcpStream>> {
        Box::pin(async move {
            let stream = TcpStream::connect(addr).await?;
            // Requests are written in one go; waiting for Nagle only adds latency.
            stream.set_nodelay(true)?;
            Ok(stream)
        })
    }
}

/// A connection as hyper sees it, plain or TLS.
pub(super) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Everything needed to open a connection to a URL's host.
pub(super) struct Transport {
    pub(super) resolver: Arc<dyn Resolve>,
    pub(super) dialer: Arc<dyn Dial>,
    pub(super) allow: AllowList,
    pub(super) connect_timeout: Duration,
    // Loaded on first https use: reading the system's roots is file I/O,
    // and plain-http users (and tests) should not pay for it.
    tls: OnceCell<tokio_rustls::TlsConnector>,
}

impl Transport {
    pub(super) fn new(
        resolver: Arc<dyn Resolve>,
        dialer: Arc<dyn Dial>,
        allow: AllowList,
        connect_timeout: Duration,
    ) -> Self {
        Self { resolver, dialer, allow, connect_timeout, tls: OnceCell::new() }
    }

    /// A connection to `url`'s host, through the guard.
    pub(super) async fn open(&self, url: &Url) -> Result<Box<dyn Io>, NetError> {
        let host = url.host().ok_or_else(|| NetError::InvalidUrl(format!("{url}: no host")))?;
        let port = url.port_or_known_default().ok_or_else(|| NetError::InvalidUrl(format!("{url}: no port")))?;
        let addrs = match &host {
            Host::Ipv4(ip) => vec![SocketAddr::new(IpAddr::V4(*ip), port)],
            Host::Ipv6(ip) => vec![SocketAddr::new(IpAddr::V6(*ip), port)],
            Host::Domain(name) => match timeout(self.connect_timeout, self.resolver.resolve(name, port)).await {
                Ok(Ok(addrs)) => addrs,
                Ok(Err(e)) => return Err(NetError::Connect(format!("cannot resolve {name}: {e}"))),
                Err(_) => return Err(NetError::Connect(format!("resolving {name} timed out"))),
            },
        };
        let tcp = self.dial_guarded(&host, &addrs).await?;
        if url.scheme() != "https" {
            return Ok(Box::new(tcp));
        }
        let name = match host {
            Host::Domain(name) => ServerName::try_from(name.to_owned())
                .map_err(|e| NetError::InvalidUrl(format!("{name} is not a TLS server name: {e}")))?,
            Host::Ipv4(ip) => ServerName::from(IpAddr::V4(ip)),
            Host::Ipv6(ip) => ServerName::from(IpAddr::V6(ip)),
        };
        let connector = self.tls.get_or_try_init(load_tls).await?;
        match timeout(self.connect_timeout, connector.connect(name, tcp)).await {
            Ok(Ok(tls)) => Ok(Box::new(tls)),
            Ok(Err(e)) => Err(NetError::Connect(format!("TLS handshake with {host}: {e}"))),
            Err(_) => Err(NetError::Connect(format!("TLS handshake with {host} timed out"))),
        }
    }

    /// Dial the first address that passes the guard and answers; nothing at
    /// all is dialed when none passes.
    async fn dial_guarded(&self, host: &Host<&str>, addrs: &[SocketAddr]) -> Result<TcpStream, NetError> {
        let mut refused = None;
        let mut allowed = Vec::with_capacity(addrs.len());
        for addr in addrs {
            match self.allow.check(addr.ip()) {
                Ok(()) => allowed.push(*addr),
                Err(why) => {
                    refused.get_or_insert_with(|| match host {
                        Host::Domain(name) => format!("{name} resolves to {}, which is {why}", addr.ip()),
                        _ => format!("{} is {why}", addr.ip()),
                    });
                }
            }
        }
        if allowed.is_empty() {
            return Err(match refused {
                Some(why) => NetError::Refused(why),
                None => NetError::Connect(format!("{host} has no addresses")),
            });
        }
        let mut last = String::new();
        for addr in allowed {
            match timeout(self.connect_timeout, self.dialer.dial(addr)).await {
                Ok(Ok(stream)) => return Ok(stream),
                Ok(Err(e)) => last = format!("{addr}: {e}"),
                Err(_) => last = format!("{addr}: timed out"),
            }
        }
        Err(NetError::Connect(last))
    }
}

async fn load_tls() -> Result<tokio_rustls::TlsConnector, NetError> {
    let config = tokio::task::spawn_blocking(|| {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = rustls::RootCertStore::empty();
        let (added, _unparsable) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err(NetError::Connect(format!("no TLS root certificates found: {:?}", found.errors)));
        }
        // Name the provider rather than rely on the process default, which
        // panics if another crate ever enables a second one.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| NetError::Connect(format!("TLS setup: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    })
    .await
    .map_err(|e| NetError::Connect(format!("TLS setup: {e}")))??;
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Stops the task driving a connection when the exchange is over (or
/// abandoned on timeout), so no task outlives its request.
pub(super) struct Connection(JoinHandle<()>);

impl Drop for Connection {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Send `request` on `io` and return the response head; the body is read
/// (or not) by the caller while `Connection` is alive.
pub(super) async fn exchange(
    io: Box<dyn Io>,
    request: hyper::Request<Full<Bytes>>,
) -> Result<(hyper::Response<Incoming>, Connection), NetError> {
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(protocol)?;
    let conn = Connection(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let response = sender.send_request(request).await.map_err(protocol)?;
    Ok((response, conn))
}

/// The whole body, refusing to hold more than `limit` bytes.
pub(super) async fn read_body(response: hyper::Response<Incoming>, limit: usize) -> Result<Vec<u8>, NetError> {
    let declared = response
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(NetError::TooLarge(limit));
    }
    let mut body = response.into_body();
    let mut out = Vec::with_capacity(declared.map_or(0, |len| len as usize));
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(protocol)?.into_data() else { continue };
        if out.len() + data.len() > limit {
            return Err(NetError::TooLarge(limit));
        }
        out.extend_from_slice(&data);
    }
    Ok(out)
}

fn protocol(e: hyper::Error) -> NetError {
    NetError::Protocol(e.to_string())
}
