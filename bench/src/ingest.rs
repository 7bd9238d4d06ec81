//! Webhook ingest: CINNOX "missed enquiry" events POSTed on loopback to a daemon's
//! `/hooks/<flow>`, `concurrency` at a time. The daemon answers 200 only after the event
//! is on disk, so the latency includes the flush (shared by concurrent requests). The flow
//! runs on a schedule an hour away, so only ingest is measured.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};

use crate::child::rss_kib;
use crate::median;
use crate::standin::StandIn;

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Events to POST.
    #[arg(long, default_value_t = 50_000)]
    pub events: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Keep the daemon's state in this PostgreSQL database (a schema per run, dropped
    /// after) instead of a SQLite file.
    #[arg(long)]
    pub postgres: Option<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            events: 50_000,
            concurrency: 64,
            postgres: None,
        }
    }
}

impl Options {
    pub fn sized(self, smoke: bool) -> Options {
        if smoke {
            Options {
                events: self.events.min(300),
                ..self
            }
        } else {
            self
        }
    }
}

const FLOW: &str = r#"source:
  connector: cinnox
  account: cinnox-main
  events: [enquiry.missed]
receiver:
  connector: 8x8
  action: send_sms
  account: shop-8x8
map:
  destination: "{{destination}}"
  text: "Missed enquiry {{displayCaseNumber}} on {{channel}}"
schedule:
  every: 1h
"#;

/// A daemon child, killed when dropped.
pub(crate) struct Daemon(tokio::process::Child);

impl Daemon {
    fn pid(&self) -> u32 {
        self.0.id().unwrap_or_default()
    }
}

/// A daemon serving the flows in `dir`, and its URL once it listens (a minute at most:
/// ten thousand flows take seconds to load).
pub(crate) async fn start_daemon(bin: &Path, dir: &Path) -> anyhow::Result<(Daemon, String)> {
    start_daemon_with(bin, dir, &[]).await
}

/// [`start_daemon`] with more options (`--state postgres://…`).
pub(crate) async fn start_daemon_with(
    bin: &Path,
    dir: &Path,
    extra: &[&str],
) -> anyhow::Result<(Daemon, String)> {
    let child = tokio::process::Command::new(bin)
        .args(["daemon", "--listen", "127.0.0.1:0", "--flows"])
        .arg(dir)
        .args(extra)
        .env_remove("SWITCHBOARD_TOKEN")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let daemon = Daemon(child);
    let discovery = dir.join(".switchboard/daemon.json");
    for _ in 0..1200 {
        if let Some(info) = std::fs::read_to_string(&discovery)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        {
            if info["pid"] == daemon.pid() {
                if let Some(url) = info["url"].as_str() {
                    return Ok((daemon, url.to_string()));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the daemon did not start (no {})", discovery.display())
}

fn event(i: usize) -> Value {
    json!({
        "status": "Missed",
        "enquiryID": format!("enq-{i}"),
        "displayCaseNumber": i.to_string(),
        "type": "Direct Call",
        "channel": "Virtual Number",
        "date": "2026-11-21 12:08",
        "destination": format!("+85230{:06}", i % 1_000_000),
        "destination Types": "PSTN"
    })
}

struct Sample {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    rss_mib: f64,
}

async fn one_run(bin: &Path, standin: &StandIn, options: &Options) -> anyhow::Result<Sample> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("missed.yaml"), FLOW)?;
    std::fs::write(
        dir.path().join("accounts.yaml"),
        format!(
            "cinnox-main:\n  connector: cinnox\n  app_id: app-1\n  app_token: bench-token\n  base_url: {0}\nshop-8x8:\n  connector: 8x8\n  subaccount_id: shop_main\n  api_key: bench-key\n  base_url: {0}\n",
            standin.url
        ),
    )?;
    let state = options.postgres.as_ref().map(|server| {
        format!(
            "{server}?schema=bench_ingest_{:x}",
            crate::send_rate::rand_tag()
        )
    });
    let extra: Vec<&str> = match &state {
        Some(state) => vec!["--state", state],
        None => Vec::new(),
    };
    let (daemon, api) = start_daemon_with(bin, dir.path(), &extra).await?;
    // Events go where CINNOX would post them: the URL the daemon registered (its token).
    let mut hook = None;
    for _ in 0..200 {
        hook = standin.hook().filter(|h| h.starts_with(&api));
        if hook.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let hook = hook.with_context(|| "the daemon registered no CINNOX subscription")?;
    let client = reqwest::Client::new();
    let bodies: Vec<Value> = (0..options.events).map(event).collect();
    let started = Instant::now();
    let results: Vec<Result<Duration, String>> = stream::iter(&bodies)
        .map(|body| {
            let call = client.post(&hook).json(body).send();
            async move {
                let sent = Instant::now();
                let response = call.await.map_err(|e| e.to_string())?;
                let status = response.status();
                let answer: Value = response.json().await.map_err(|e| e.to_string())?;
                if !status.is_success() || answer["queued"] != 1 {
                    return Err(format!("{status}: {answer}"));
                }
                Ok(sent.elapsed())
            }
        })
        .buffer_unordered(options.concurrency)
        .collect()
        .await;
    let seconds = started.elapsed().as_secs_f64();
    let rss_mib = rss_kib(daemon.pid()).unwrap_or(0) as f64 / 1024.0;
    drop(daemon);
    if let (Some(server), Some(state)) = (&options.postgres, &state) {
        // Give the killed daemon's connection a moment to end before its schema goes.
        tokio::time::sleep(Duration::from_millis(200)).await;
        crate::send_rate::drop_schemas(server, &[state]);
    }
    let mut latencies = Vec::with_capacity(results.len());
    for result in results {
        match result {
            Ok(latency) => latencies.push(latency.as_secs_f64() * 1000.0),
            Err(e) => bail!("an event was not accepted: {e}"),
        }
    }
    ensure!(!latencies.is_empty(), "no events sent");
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    Ok(Sample {
        rate: latencies.len() as f64 / seconds,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: at(1.0),
        rss_mib,
    })
}

pub async fn run(bin: &Path, runs: usize, options: Options) -> anyhow::Result<()> {
    let standin = StandIn::start().await?;
    println!(
        "\ningest: {} CINNOX events, {} in flight, {} run(s), state in {}",
        options.events,
        options.concurrency,
        runs,
        options
            .postgres
            .as_deref()
            .map_or("SQLite", |_| "PostgreSQL")
    );
    let mut samples = Vec::new();
    for run in 1..=runs {
        let s = one_run(bin, &standin, &options).await?;
        println!(
            "  run {run}: {:.0} events/s · p50 {:.2} ms · p99 {:.2} ms · max {:.1} ms · daemon RSS {:.1} MiB",
            s.rate, s.p50_ms, s.p99_ms, s.max_ms, s.rss_mib
        );
        samples.push(s);
    }
    let pick = |f: &dyn Fn(&Sample) -> f64| median(&samples.iter().map(f).collect::<Vec<_>>());
    println!(
        "\n| {} events, {} in flight | events/s (median) | p50 | p99 | max | daemon RSS after |",
        options.events, options.concurrency
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| POST /hooks/<flow>, 200 after the flush | {:.0} | {:.2} ms | {:.2} ms | {:.1} ms | {:.1} MiB |",
        pick(&|s| s.rate),
        pick(&|s| s.p50_ms),
        pick(&|s| s.p99_ms),
        pick(&|s| s.max_ms),
        pick(&|s| s.rss_mib)
    );
    Ok(())
}
