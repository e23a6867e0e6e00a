//! Every test stays on loopback: names resolve through a stub, and the
//! dialer records each address and refuses to connect anywhere but
//! 127.0.0.1, so a broken guard fails a test without sending a packet.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

struct StubResolver(HashMap<&'static str, Vec<IpAddr>>);

impl StubResolver {
    fn new() -> Self {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        Self(HashMap::from([
            ("internal.test", vec![ip("10.0.0.1")]),
            ("metadata.test", vec![ip("169.254.169.254")]),
            ("rebind.test", vec![ip("10.0.0.1")]),
            ("other.test", vec![ip("127.0.0.1")]),
            ("mixed.test", vec![ip("10.0.0.1"), ip("::1"), ip("127.0.0.1")]),
        ]))
    }
}

impl Resolve for StubResolver {
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<'_, io::Result<Vec<SocketAddr>>> {
        let found = self.0.get(host).map(|ips| ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect());
        Box::pin(async move { found.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "unknown test name")) })
    }
}

/// Records every dial; connects only to 127.0.0.1, and only if asked to.
#[derive(Default)]
struct Recorder {
    dialed: Mutex<Vec<SocketAddr>>,
    connect_loopback: bool,
}

impl Recorder {
    fn dialed(&self) -> Vec<SocketAddr> {
        self.dialed.lock().unwrap().clone()
    }
}

impl Dial for Recorder {
    fn dial(&self, addr: SocketAddr) -> BoxFuture<'_, io::Result<TcpStream>> {
        self.dialed.lock().unwrap().push(addr);
        Box::pin(async move {
            if self.connect_loopback && addr.ip() == IpAddr::V4(Ipv4Addr::LOCALHOST) {
                TcpStream::connect(addr).await
            } else {
                Err(io::Error::other(format!("test dialer does not connect to {addr}")))
            }
        })
    }
}

fn quick() -> NetConfig {
    NetConfig { backoff: Duration::from_millis(1), ..NetConfig::default() }
}

fn client(config: NetConfig, connect_loopback: bool) -> (HttpClient, Arc<Recorder>) {
    let recorder = Arc::new(Recorder { connect_loopback, ..Recorder::default() });
    (HttpClient::with_parts(config, Arc::new(StubResolver::new()), recorder.clone()), recorder)
}

fn get(url: impl Into<String>) -> HttpRequest {
    HttpRequest { method: "GET".into(), url: url.into(), headers: vec![], body: None }
}

#[tokio::test]
async fn refuses_private_destinations_without_dialing() {
    let (client, recorder) = client(quick(), false);
    for url in [
        "http://127.0.0.1:9/",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data",
        "http://internal.test/",
        "http://metadata.test/",
        "http://rebind.test:8080/x",
        "http://[::1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://0x7f000001/",
        "https://192.168.0.1/",
    ] {
        let result = client.send(get(url)).await;
        assert!(matches!(result, Err(NetError::Refused(_))), "{url}: {result:?}");
    }
    let Err(NetError::Refused(why)) = client.send(get("http://internal.test/")).await else { unreachable!() };
    assert!(why.contains("10.0.0.1") && why.contains("private"), "{why}");
    assert!(recorder.dialed().is_empty(), "{:?}", recorder.dialed());
}

#[tokio::test]
async fn rejects_other_schemes_and_bad_urls() {
    let (client, recorder) = client(quick(), false);
    for url in ["ftp://example.com/", "file:///etc/passwd", "gopher://127.0.0.1/", "not a url", "http://"] {
        let result = client.send(get(url)).await;
        assert!(matches!(result, Err(NetError::InvalidUrl(_))), "{url}: {result:?}");
    }
    assert!(recorder.dialed().is_empty(), "{:?}", recorder.dialed());
}

#[tokio::test]
async fn dials_only_the_addresses_that_pass() {
    let config = NetConfig { allow: AllowList::parse("127.0.0.1/32").unwrap(), retries: 0, ..quick() };
    let (client, recorder) = client(config, false);
    let result = client.send(get("http://mixed.test:81/")).await;
    assert!(matches!(result, Err(NetError::Connect(_))), "{result:?}");
    assert_eq!(recorder.dialed(), vec!["127.0.0.1:81".parse().unwrap()]);
}

/// A request as the test server saw it.
struct Seen {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

fn reply(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

fn redirect(status: &str, to: &str) -> Vec<u8> {
    reply(status, &[("Location", to)], b"")
}

async fn read_request(sock: &mut TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = sock.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_owned(), first.next()?.to_owned());
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    let mut body = buf[end + 4..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Seen { method, path, headers, body })
}

/// A raw HTTP/1.1 server on 127.0.0.1: full control over what goes on
/// the wire (chunking, stalls, odd statuses).
async fn serve<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Seen) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<u8>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                let Some(seen) = read_request(&mut sock).await else { return };
                let _ = sock.write_all(&handler(seen).await).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    addr
}

async fn app(hits: Arc<AtomicUsize>) -> SocketAddr {
    serve(move |seen: Seen| {
        let hits = hits.clone();
        async move {
            hits.fetch_add(1, Ordering::SeqCst);
            let port = seen.headers.get("host").and_then(|h| h.rsplit(':').next()).unwrap_or("80").to_owned();
            match seen.path.as_str() {
                "/hello" => reply("200 OK", &[("X-Test", "yes"), ("Content-Type", "text/plain")], b"hello"),
                "/echo" => {
                    let kind = seen.headers.get("content-type").cloned().unwrap_or_default();
                    reply("201 Created", &[("X-Method", &seen.method), ("Content-Type", &kind)], &seen.body)
                }
                "/to-metadata" => redirect("302 Found", "http://169.254.169.254/latest/meta-data"),
                "/to-internal" => redirect("307 Temporary Redirect", "http://internal.test/"),
                // Loopback beyond the one address allowed.
                "/to-loopback" => redirect("302 Found", "http://127.0.0.2:9/"),
                "/to-loopback-v6" => redirect("308 Permanent Redirect", "http://[::1]:9/"),
                "/to-other" => redirect("302 Found", &format!("http://other.test:{port}/auth")),
                "/to-auth" => redirect("301 Moved Permanently", "/auth"),
                "/see-other" => redirect("303 See Other", "/echo"),
                "/loop" => redirect("302 Found", "/loop"),
                "/auth" => {
                    let saw = |h: &str| if seen.headers.contains_key(h) { "yes" } else { "no" };
                    reply("200 OK", &[("X-Auth", saw("authorization")), ("X-Cookie", saw("cookie"))], b"")
                }
                "/big" => reply("200 OK", &[], &[b'x'; 4096]),
                "/big-chunked" => {
                    let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                    for _ in 0..4 {
                        out.extend_from_slice(b"400\r\n");
                        out.extend_from_slice(&[b'y'; 1024]);
                        out.extend_from_slice(b"\r\n");
                    }
                    out.extend_from_slice(b"0\r\n\r\n");
                    out
                }
                "/slow" => {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    reply("200 OK", &[], b"late")
                }
                _ => reply("404 Not Found", &[], b""),
            }
        }
    })
    .await
}

fn loopback_client(config: NetConfig) -> (HttpClient, Arc<Recorder>, Arc<AtomicUsize>) {
    let config = NetConfig { allow: AllowList::parse("127.0.0.1/32").unwrap(), ..config };
    let (client, recorder) = client(config, true);
    (client, recorder, Arc::new(AtomicUsize::new(0)))
}

#[tokio::test]
async fn get_and_post_round_trip() {
    let (client, recorder, hits) = loopback_client(quick());
    let addr = app(hits).await;
    let response = client.send(get(format!("http://{addr}/hello"))).await.unwrap();
    assert_eq!((response.status, response.body.as_slice()), (200, &b"hello"[..]));
    assert_eq!(response.header("x-test"), Some("yes"));
    assert_eq!(response.url, format!("http://{addr}/hello"));

    let post = HttpRequest {
        method: "post".into(),
        url: format!("http://{addr}/echo"),
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: Some(br#"{"a":1}"#.to_vec()),
    };
    let response = client.send(post).await.unwrap();
    assert_eq!(response.status, 201);
    assert_eq!(response.header("X-Method"), Some("POST"));
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.body, br#"{"a":1}"#);
    assert!(recorder.dialed().iter().all(|a| *a == addr));
}

#[tokio::test]
async fn system_parts_reach_an_allowed_loopback_server() {
    let addr = app(Arc::new(AtomicUsize::new(0))).await;
    let client = HttpClient::new(NetConfig { allow: AllowList::parse("127.0.0.1/32").unwrap(), ..quick() });
    let response = client.send(get(format!("http://{addr}/hello"))).await.unwrap();
    assert_eq!(response.body, b"hello");
    // TLS against a server answering in plain HTTP: the handshake fails.
    let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain_addr = plain.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = plain.accept().await {
            let _ = sock.write_all(&reply("400 Bad Request", &[], b"")).await;
        }
    });
    let result = client.send(get(format!("https://{plain_addr}/hello"))).await;
    assert!(matches!(result, Err(NetError::Connect(ref e)) if e.contains("TLS")), "{result:?}");
}

#[tokio::test]
async fn redirects_to_private_addresses_are_refused() {
    let (client, recorder, hits) = loopback_client(quick());
    let addr = app(hits).await;
    let paths = ["/to-metadata", "/to-internal", "/to-loopback", "/to-loopback-v6"];
    for path in paths {
        let result = client.send(get(format!("http://{addr}{path}"))).await;
        assert!(matches!(result, Err(NetError::Refused(_))), "{path}: {result:?}");
    }
    assert_eq!(recorder.dialed(), vec![addr; paths.len()], "only the first hop was dialed");
}

#[tokio::test]
async fn redirects_rewrite_method_and_drop_credentials_across_hosts() {
    let (client, _, hits) = loopback_client(quick());
    let addr = app(hits).await;
    let with_credentials = |path: &str| HttpRequest {
        headers: vec![("Authorization".into(), "Bearer secret".into()), ("Cookie".into(), "a=b".into())],
        ..get(format!("http://{addr}{path}"))
    };
    let response = client.send(with_credentials("/to-auth")).await.unwrap();
    assert_eq!((response.header("x-auth"), response.header("x-cookie")), (Some("yes"), Some("yes")));
    assert_eq!(response.url, format!("http://{addr}/auth"));
    let response = client.send(with_credentials("/to-other")).await.unwrap();
    assert_eq!((response.header("x-auth"), response.header("x-cookie")), (Some("no"), Some("no")));
    assert_eq!(response.url, format!("http://other.test:{}/auth", addr.port()));

    let post =
        HttpRequest { method: "POST".into(), body: Some(b"data".to_vec()), ..get(format!("http://{addr}/see-other")) };
    let response = client.send(post).await.unwrap();
    assert_eq!((response.status, response.header("x-method")), (201, Some("GET")));
    assert!(response.body.is_empty());
}

#[tokio::test]
async fn too_many_redirects() {
    let (client, _, hits) = loopback_client(NetConfig { max_redirects: 3, ..quick() });
    let addr = app(hits.clone()).await;
    assert_eq!(client.send(get(format!("http://{addr}/loop"))).await, Err(NetError::TooManyRedirects));
    assert_eq!(hits.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn bodies_beyond_the_limit_are_too_large() {
    let (client, _, hits) = loopback_client(NetConfig { max_response_bytes: 1024, ..quick() });
    let addr = app(hits).await;
    for path in ["/big", "/big-chunked"] {
        assert_eq!(client.send(get(format!("http://{addr}{path}"))).await, Err(NetError::TooLarge(1024)), "{path}");
    }
    assert_eq!(client.send(get(format!("http://{addr}/hello"))).await.unwrap().body, b"hello");
    // A HEAD answer's Content-Length is not a body.
    let head = HttpRequest { method: "HEAD".into(), ..get(format!("http://{addr}/big")) };
    let response = client.send(head).await.unwrap();
    assert_eq!((response.status, response.header("content-length")), (200, Some("4096")));
    assert!(response.body.is_empty());
}

#[tokio::test]
async fn slow_servers_time_out() {
    let config = NetConfig { request_timeout: Duration::from_millis(300), retries: 1, ..quick() };
    let (client, recorder, hits) = loopback_client(config);
    let addr = app(hits.clone()).await;
    let started = std::time::Instant::now();
    assert_eq!(client.send(get(format!("http://{addr}/slow"))).await, Err(NetError::Timeout));
    assert!(started.elapsed() < Duration::from_secs(3));
    // A timeout is retried, once here.
    assert_eq!(recorder.dialed().len(), 2);
}

#[tokio::test]
async fn unavailable_answers_are_retried() {
    let flaky = Arc::new(AtomicUsize::new(0));
    let addr = {
        let flaky = flaky.clone();
        serve(move |_| {
            let n = flaky.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    reply("503 Service Unavailable", &[], b"busy")
                } else {
                    reply("200 OK", &[], b"ok")
                }
            }
        })
        .await
    };
    let (client, _, _) = loopback_client(quick());
    let response = client.send(get(format!("http://{addr}/"))).await.unwrap();
    assert_eq!((response.status, response.body.as_slice()), (200, &b"ok"[..]));
    assert_eq!(flaky.load(Ordering::SeqCst), 3);

    // Out of retries: the last answer is returned as it is.
    flaky.store(0, Ordering::SeqCst);
    let (client, _, _) = loopback_client(NetConfig { retries: 1, ..quick() });
    assert_eq!(client.send(get(format!("http://{addr}/"))).await.unwrap().status, 503);
    assert_eq!(flaky.load(Ordering::SeqCst), 2);
}

#[test]
fn backoff_stays_under_its_ceiling() {
    for attempt in 0..40 {
        let pause = backoff(Duration::from_millis(250), attempt);
        assert!(pause <= MAX_BACKOFF && pause <= Duration::from_millis(250) * 2u32.pow(attempt.min(10)));
    }
}
