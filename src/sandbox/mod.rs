//! `switchboard sandbox`: the connectors' stand-ins (`connectors::standin`) served on one
//! address, so examples and first steps run with no network and no credentials. They
//! answer like the real APIs (same paths, status codes and error bodies) and record every
//! request they accept, with its `service`.

use runtime::connectors;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use connectors::standin::{self, Recorder};
use tokio::sync::oneshot;

/// A running stand-in.
pub struct Sandbox {
    pub addr: SocketAddr,
    /// Where the SMTP stand-in listens.
    pub smtp: SocketAddr,
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

/// Start the stand-in on `listen`, and its SMTP server on `smtp` (port 0 picks a free
/// port), in the background.
pub async fn start(listen: SocketAddr, smtp: SocketAddr, echo: bool) -> anyhow::Result<Sandbox> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let smtp_listener = tokio::net::TcpListener::bind(smtp)
        .await
        .with_context(|| format!("cannot listen on {smtp} for the SMTP stand-in (--smtp)"))?;
    let smtp = smtp_listener.local_addr()?;
    let recorder = if echo {
        Recorder::with_echo(Arc::new(|tag, message| {
            outln!(
                "{tag} <- {}",
                serde_json::to_string(message).unwrap_or_default()
            )
        }))
    } else {
        Recorder::default()
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let app = standin::router(recorder.clone());
    let smtp_task = tokio::spawn(connectors::smtp::standin::serve(
        smtp_listener,
        recorder.clone(),
    ));
    tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        if let Err(e) = server.await {
            tracing::error!(error = %e, "sandbox server stopped");
        }
        smtp_task.abort();
    });
    Ok(Sandbox {
        addr,
        smtp,
        recorder,
        stop: Some(stop),
    })
}

/// Give the stand-in the data in `file` (a `sandbox.json`: cases, payments, … the
/// services hold before any request); how many items.
pub fn seed(sandbox: &Sandbox, file: &std::path::Path) -> anyhow::Result<usize> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the stand-in's seed data {}", file.display()))?;
    let data: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}:{}:{}: not JSON: {e}",
            file.display(),
            e.line(),
            e.column()
        )
    })?;
    standin::seed(&sandbox.recorder, &data).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
}

/// `switchboard sandbox`: serve until Ctrl-C / SIGTERM, starting from `seed`'s data.
pub async fn serve_forever(
    listen: SocketAddr,
    smtp: SocketAddr,
    seed_file: Option<std::path::PathBuf>,
) -> anyhow::Result<ExitCode> {
    let sandbox = start(listen, smtp, true).await?;
    if let Some(file) = seed_file {
        let n = seed(&sandbox, &file)?;
        eprintln!("sandbox: holds {n} item(s) from {}", file.display());
    }
    eprintln!(
        "sandbox: stand-in for {} on {} (Ctrl-C to stop)",
        services(),
        sandbox.url()
    );
    eprintln!(
        "sandbox: accounts use `base_url: {}`; received messages: GET {}/sandbox/messages",
        sandbox.url(),
        sandbox.url()
    );
    eprintln!(
        "sandbox: SMTP on {} (an `smtp` account: `host: {}`, `port: {}`, `tls: none`)",
        sandbox.smtp,
        sandbox.smtp.ip(),
        sandbox.smtp.port()
    );
    runtime::signal::shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// The services stood in for, and where each one's API sits when not at the root:
/// `Service A, Service B (/prefix), …`.
pub fn services() -> String {
    connectors::catalogue::standins()
        .map(|s| match s.mount {
            "" => s.service.to_string(),
            mount => format!("{} ({mount})", s.service),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
