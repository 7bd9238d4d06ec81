//! The built-in stand-in for the services Switchboard talks to (8x8, Text Request at
//! `/api/v3`, Aranda at `/asms`, CINNOX, Google Sheets), so examples and first steps run
//! with no network and no credentials. It answers like the real APIs (same paths, status
//! codes and error bodies) and records every request it accepts, with its `service`.

mod eightxeight;
mod services;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;
use tokio::sync::oneshot;

/// A non-empty bearer token in `Authorization`, as 8x8 and CINNOX expect it.
fn has_bearer(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| !token.trim().is_empty())
}

/// What the stand-in received, shared with its handlers.
#[derive(Clone, Default)]
pub struct Recorder {
    messages: Arc<Mutex<Vec<Value>>>,
    echo: bool,
}

impl Recorder {
    fn push(&self, service: &str, message: Value) {
        if self.echo {
            outln!(
                "{service} <- {}",
                serde_json::to_string(&message).unwrap_or_default()
            );
        }
        let message = match message {
            Value::Object(mut map) => {
                map.insert("service".into(), Value::String(service.to_string()));
                Value::Object(map)
            }
            other => other,
        };
        if let Ok(mut messages) = self.messages.lock() {
            messages.push(message);
        }
    }

    /// Forget what was received.
    pub fn clear(&self) {
        if let Ok(mut messages) = self.messages.lock() {
            messages.clear();
        }
    }

    /// Every message accepted so far.
    pub fn messages(&self) -> Vec<Value> {
        self.messages.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// A running stand-in.
pub struct Sandbox {
    pub addr: SocketAddr,
    pub recorder: Recorder,
    stop: Option<oneshot::Sender<()>>,
}

impl Sandbox {
    /// The base URL to put in accounts (`base_url`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn router(recorder: Recorder) -> Router {
    Router::new()
        .merge(eightxeight::routes())
        .merge(services::routes())
        .route("/sandbox/messages", get(list).delete(clear))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(recorder)
}

async fn list(State(recorder): State<Recorder>) -> Json<Vec<Value>> {
    Json(recorder.messages())
}

async fn clear(State(recorder): State<Recorder>) -> Json<Value> {
    let n = recorder
        .messages
        .lock()
        .map(|mut m| m.drain(..).count())
        .unwrap_or(0);
    Json(serde_json::json!({"cleared": n}))
}

/// Start the stand-in on `listen` (port 0 picks a free port) in the background.
pub async fn start(listen: SocketAddr, echo: bool) -> anyhow::Result<Sandbox> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let recorder = Recorder {
        echo,
        ..Recorder::default()
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let app = router(recorder.clone());
    tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        if let Err(e) = server.await {
            tracing::error!(error = %e, "sandbox server stopped");
        }
    });
    Ok(Sandbox {
        addr,
        recorder,
        stop: Some(stop),
    })
}

/// `switchboard sandbox`: serve until Ctrl-C / SIGTERM.
pub async fn serve_forever(listen: SocketAddr) -> anyhow::Result<ExitCode> {
    let sandbox = start(listen, true).await?;
    eprintln!(
        "sandbox: stand-in for 8x8, Text Request (/api/v3), Aranda (/asms), CINNOX and Google Sheets on {} (Ctrl-C to stop)",
        sandbox.url()
    );
    eprintln!(
        "sandbox: accounts use `base_url: {}`; received messages: GET {}/sandbox/messages",
        sandbox.url(),
        sandbox.url()
    );
    shutdown_signal().await;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
