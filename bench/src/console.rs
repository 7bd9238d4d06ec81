//! `console`: how fast the daemon serves the console's pages over a large state — the
//! flows page with ten thousand flows (each with its last 30 runs), the first page of a
//! run of 100,000 records, and a phone number searched in a history of 1,000,000 records.
//! The state is written straight into the store (as runs would write it, search index
//! then the real daemon serves it (and indexes it for search, as it does runs made without
//! it); each page is fetched on loopback, one at a time, and timed from request to last
//! byte.

use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use chrono::{Duration, Utc};
use engine::{RowOutcome, RunStatus, SqliteStore, Store, Trigger};
use serde_json::json;

use crate::history::outcome;
use crate::ingest::start_daemon;
use crate::median;

#[derive(clap::Args, Clone)]
pub struct Options {
    /// Flow files in the directory.
    #[arg(long, default_value_t = 10_000)]
    pub flows: usize,
    /// Runs in each flow's history.
    #[arg(long, default_value_t = 30)]
    pub runs_per_flow: usize,
    /// Records of the one large run.
    #[arg(long, default_value_t = 100_000)]
    pub run_records: usize,
    /// Records in the history the search looks through.
    #[arg(long, default_value_t = 1_000_000)]
    pub history_records: usize,
    /// Times each page is fetched.
    #[arg(long, default_value_t = 21)]
    pub requests: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            flows: 10_000,
            runs_per_flow: 30,
            run_records: 100_000,
            history_records: 1_000_000,
            requests: 21,
        }
    }
}

impl Options {
    pub fn sized(self, smoke: bool) -> Options {
        if smoke {
            Options {
                flows: 20,
                runs_per_flow: 3,
                run_records: 300,
                history_records: 1_000,
                requests: 2,
            }
        } else {
            self
        }
    }
}

const FLOW: &str = "source: {connector: csv, path: orders.csv, key: order_id}\nreceiver: {connector: 8x8, action: send_sms, account: sms}\nmap: {destination: \"{{phone}}\", text: \"Hi {{name}}\"}\nschedule: {every: 1h}\n";

/// A record of the searched history, with a phone number of its own.
fn searched(run: u64, seq: u64, at: chrono::DateTime<Utc>) -> RowOutcome {
    let mut row = outcome(run, seq, at);
    row.record
        .insert("phone".into(), json!(phone(run * 1_000_000 + seq)));
    row
}

fn phone(n: u64) -> String {
    format!("+1202{:07}", n % 10_000_000)
}

/// Write every flow's history into the state of `flows`.
fn populate(flows: &Path, options: &Options) -> anyhow::Result<()> {
    let store = SqliteStore::open(&flows.join(".switchboard"))?;
    let at = Utc::now() - Duration::hours(2);
    for i in 0..options.flows {
        let state = store.flow(&format!("f{i:05}"))?;
        for r in 0..options.runs_per_flow {
            let mut summary =
                state.begin_run(Trigger::Schedule, at + Duration::minutes(r as i64))?;
            summary.counts.fetched = 100;
            summary.counts.new = 3;
            summary.counts.sent = 3 - u64::from(r % 7 == 0);
            summary.counts.failed = u64::from(r % 7 == 0);
            summary.status = RunStatus::Succeeded;
            summary.finished_at = Some(summary.started_at + Duration::seconds(2));
            state.save_run(&summary)?;
        }
    }
    let write_runs = |name: &str, records: usize, per_run: usize| -> anyhow::Result<()> {
        let state = store.flow(name)?;
        let mut left = records;
        while left > 0 {
            let n = left.min(per_run);
            let mut summary = state.begin_run(Trigger::Manual, at)?;
            for chunk in (1..=n as u64).collect::<Vec<_>>().chunks(256) {
                let rows: Vec<RowOutcome> = chunk
                    .iter()
                    .map(|seq| searched(summary.id, *seq, at))
                    .collect();
                let refs: Vec<(&RowOutcome, bool)> = rows.iter().map(|r| (r, true)).collect();
                state.record(&refs, &[])?;
            }
            summary.counts.fetched = n as u64;
            summary.counts.new = n as u64;
            summary.counts.sent = n as u64;
            summary.status = RunStatus::Succeeded;
            summary.finished_at = Some(at);
            state.save_run(&summary)?;
            left -= n;
        }
        Ok(())
    };
    write_runs("big", options.run_records, options.run_records)?;
    write_runs("searched", options.history_records, 100_000)?;
    Ok(())
}

pub async fn run(bin: &Path, options: Options) -> anyhow::Result<()> {
    println!(
        "\nconsole: {} flows × {} runs; a run of {} records; a history of {} records; {} fetches a page",
        options.flows, options.runs_per_flow, options.run_records, options.history_records, options.requests
    );
    let tmp = tempfile::tempdir()?;
    let flows = tmp.path().join("flows");
    std::fs::create_dir_all(&flows)?;
    std::fs::write(
        flows.join("accounts.yaml"),
        "sms:\n  connector: 8x8\n  subaccount_id: bench\n  api_key: bench\n  base_url: http://127.0.0.1:9\n",
    )?;
    std::fs::write(flows.join("orders.csv"), "order_id,name,phone\n")?;
    for i in 0..options.flows {
        std::fs::write(flows.join(format!("f{i:05}.yaml")), FLOW)?;
    }
    for name in ["big", "searched"] {
        std::fs::write(flows.join(format!("{name}.yaml")), FLOW)?;
    }
    let started = Instant::now();
    {
        let flows = flows.clone();
        let options = options.clone();
        tokio::task::spawn_blocking(move || populate(&flows, &options)).await??;
    }
    println!(
        "  state written in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let (_daemon, url) = start_daemon(bin, &flows).await?;
    let client = reqwest::Client::new();
    // The searched number: a record in the middle of the history.
    let middle_run = (options.history_records / 100_000 / 2).max(1) as u64;
    let target = phone(middle_run * 1_000_000 + (options.history_records.min(100_000) as u64 / 2));
    // The state was written without a daemon, so the daemon indexes it for search at
    // start-up, in the background; the first search waits for what is left.
    let first = Instant::now();
    client
        .get(format!("{url}/search?q={}", target.replace('+', "%2B")))
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    println!(
        "  first search after start-up: {:.1} s (the daemon indexes the {} records written without it)",
        first.elapsed().as_secs_f64(),
        options.run_records + options.history_records
    );
    let pages = [
        ("flows page (first 100 of all flows)", "/".to_string()),
        (
            "flows page, last page",
            format!("/?page={}", options.flows.div_ceil(100)),
        ),
        ("a flow's run log", "/flows/f00001".to_string()),
        (
            "run of the large run, first page",
            "/flows/big/runs/1".to_string(),
        ),
        (
            "run of the large run, last page",
            format!(
                "/flows/big/runs/1?from={}",
                options.run_records.saturating_sub(99).max(1)
            ),
        ),
        (
            "search a phone number",
            format!("/search?q={}", target.replace('+', "%2B")),
        ),
        ("search a key", "/search?q=O-2-17".to_string()),
        ("/api/flows (JSON, every flow)", "/api/flows".to_string()),
    ];
    println!("\n| page | median | slowest | bytes |");
    println!("|---|---|---|---|");
    for (label, path) in pages {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..options.requests {
            let at = Instant::now();
            let response = client
                .get(format!("{url}{path}"))
                .send()
                .await
                .with_context(|| path.clone())?;
            anyhow::ensure!(
                response.status().is_success(),
                "{path}: {}",
                response.status()
            );
            let body = response.bytes().await?;
            times.push(at.elapsed().as_secs_f64() * 1000.0);
            bytes = body.len();
            if path.starts_with("/search?q=%2B") {
                anyhow::ensure!(
                    String::from_utf8_lossy(&body).contains("1 record(s)"),
                    "the searched number was not found once"
                );
            }
        }
        let slowest = times.iter().copied().fold(0.0, f64::max);
        println!(
            "| {label} | {:.1} ms | {:.1} ms | {bytes} |",
            median(&times),
            slowest
        );
    }
    Ok(())
}
