//! (d): `POST /api/graphs` over HTTP/1.1 to the real server, preceded by
//! (a') when asked.

use std::net::SocketAddr;
use std::time::Instant;

use api::config::AuthConfig;
use api::{App, Config};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper::header::{self, HeaderValue};
use hyper::Request;
use hyper_util::rt::TokioIo;
use uuid::Uuid;

use crate::measure::{caught_up, measure, Settings, Stats};
use crate::raw::raw_insert;
use crate::report::{report, RAW_AGAIN};
use crate::workload::graph_body;
use crate::{Res, WRITERS};

const JWT_KEY: &str = "autogpt-es-bench-key";

/// (d) against the real server on the same database, after its projectors
/// replayed the log; with `again`, (a) is measured once more right before it
/// (see [`crate::report::Results`]).
pub async fn http(settings: &Settings, url: &str, again: bool) -> Res<(Option<Stats>, Stats)> {
    let mut config = Config::local(url, JWT_KEY);
    // Thousands of graphs per user in a window: no quota to stop them.
    config.quotas = domain::quota::QuotaLimits::UNLIMITED;
    let auth = config.auth.clone();
    let app = App::build(config).await?;
    let addr = SocketAddr::from(([127, 0, 0, 1], app.port()));
    let state = app.state().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));

    let stats = async {
        caught_up(&state.projections, state.store(), "(d)").await?;
        let a = if again { Some(report(RAW_AGAIN, raw_insert(settings, url, false).await?, 1.0)) } else { None };
        Ok((a, post_graphs(settings, &auth, addr).await?))
    }
    .await;
    let _ = stop.send(());
    server.await??;
    stats
}

/// (d)'s clients: one keep-alive HTTP/1.1 connection, a user and a token
/// each. They use hyper's connection API directly, as a load generator
/// would: a pooled, redirect-following client cost a few percent of the CPU
/// that client and server share.
async fn post_graphs(settings: &Settings, auth: &AuthConfig, addr: SocketAddr) -> Res<Stats> {
    // Encoded once, as a load generator sends fixed bytes.
    let body = Bytes::from(serde_json::to_vec(&graph_body())?);
    let host = HeaderValue::from_str(&addr.to_string())?;
    measure(settings, WRITERS, |ctl| {
        let (body, host) = (body.clone(), host.clone());
        let token = crate::workload::token(auth, Uuid::new_v4());
        async move {
            let bearer = HeaderValue::from_str(&format!("Bearer {}", token?))?;
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (mut sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
            let connection = tokio::spawn(connection);
            let mut latencies = Vec::new();
            while ctl.running() {
                let started = Instant::now();
                let request = Request::post("/api/graphs")
                    .header(header::HOST, host.clone())
                    .header(header::AUTHORIZATION, bearer.clone())
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Full::new(body.clone()))?;
                let response = sender.send_request(request).await?;
                let status = response.status();
                let text = response.into_body().collect().await?.to_bytes();
                if !status.is_success() {
                    return Err(format!("POST /api/graphs: {status}: {}", String::from_utf8_lossy(&text)).into());
                }
                ctl.done(started, &mut latencies);
            }
            drop(sender);
            connection.await??;
            Ok(latencies)
        }
    })
    .await
}
