//! The daemon's HTTP server: HTTP/1.1 over hyper, with what a server on a network needs
//! that `axum::serve` does not offer — a cap on open connections (with a log line when it
//! is reached, so descriptors cannot run out silently), a deadline for a request's
//! headers (which also closes idle keep-alive connections), and a graceful stop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch, Semaphore};
use tower::ServiceExt as _;

/// What the server allows its clients.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Connections open at once; more are closed at once, with a log line.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers; also how long an idle
    /// keep-alive connection is kept.
    pub header_timeout: Duration,
    /// How long a client may take to send a request's body (the handlers that read one
    /// apply it).
    pub body_timeout: Duration,
}

/// Serve `app` on `listener` until `stop` fires, within `limits`; then let requests
/// under way finish, for at most `grace`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    mut stop: broadcast::Receiver<()>,
    grace: Duration,
) {
    let max_connections = limits.max_connections;
    let permits = Arc::new(Semaphore::new(max_connections));
    let (closing_tx, closing) = watch::channel(false);
    let mut refused_since: Option<Instant> = None;
    let mut refused = 0u64;
    loop {
        let accepted = tokio::select! {
            _ = stop.recv() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, _peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors (EMFILE) and the like: say so, wait, go on.
                tracing::error!(error = %e, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            refused += 1;
            let now = Instant::now();
            if refused_since.is_none_or(|at| now.duration_since(at) >= Duration::from_secs(60)) {
                tracing::warn!(
                    max_connections,
                    refused,
                    "the connection cap is reached: new connections are closed until others end (raise --max-connections, and the service's LimitNOFILE, if this is real load)"
                );
                refused_since = Some(now);
                refused = 0;
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(
            app.clone()
                .map_request(|request: Request<Incoming>| request.map(Body::new)),
        );
        let mut closing = closing.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .keep_alive(true);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                _ = closing.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    drop(listener);
    let _ = closing_tx.send(true);
    // Every connection holds a permit: all of them back means all connections ended.
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(grace, permits.acquire_many(all)).await;
}

/// The connection cap when none is given: half the process's limit on open files (the
/// rest is for the state, the flows directory and outgoing connections), at most 4,096.
pub fn default_max_connections() -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(String::from))
        })
        .and_then(|soft| soft.parse::<usize>().ok())
        .unwrap_or(1024);
    (soft / 2).clamp(16, 4096)
}
