//! Switchboard's benchmark harness (see BENCHMARKS.md). Each measurement runs the real
//! `switchboard` binary as a child process against a fast stand-in served here, side by
//! side with its reference measured by the same harness in the same run:
//!
//! - `send-rate`: CSV rows → map → 8x8 → stand-in, single sends and batches, against a
//!   bare client POSTing the same bodies at the same concurrency; then the same flow run
//!   again with nothing new.
//! - `ingest`: CINNOX-style events POSTed to the daemon's webhook, each answered only
//!   once it is on disk.
//!
//! - `history`: the state directory's size over a simulated year of a 15-minute flow,
//!   with and without a `history:` rule (the store alone: no process, no HTTP).
//!
//! - `console`: the daemon's console pages over a large state (10,000 flows; a run of
//!   100,000 records; search in 1,000,000).
//!
//! - `steps`: one three-step flow against three one-step flows over the same rows.
//!
//! - `peers`: the same 10,000-row job through n8n, Node-RED, a Python aiohttp sender and
//!   Switchboard (the peers installed by `bench/peers/run.sh`; never in CI).
//!
//! `--smoke` runs every measurement at a small size (CI keeps it working that way).

mod child;
mod console;
mod history;
mod ingest;
mod peers;
mod send_rate;
mod standin;
mod steps;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Switchboard benchmarks: send rate, nothing-new runs, webhook ingest")]
struct Cli {
    /// The switchboard binary to measure [default: `switchboard` next to this binary]
    #[arg(long, global = true)]
    switchboard: Option<PathBuf>,
    /// Repeat each measurement this many times and report medians.
    #[arg(long, global = true, default_value_t = 3)]
    runs: usize,
    /// Small sizes, one run: checks the harness works, measures nothing.
    #[arg(long, global = true)]
    smoke: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Rows per second through `switchboard run` vs a bare client, and a nothing-new run.
    SendRate(send_rate::Options),
    /// Webhook events per second and their latency through `switchboard daemon`.
    Ingest(ingest::Options),
    /// The state directory's size over a simulated year, with and without pruning.
    History(history::Options),
    /// The console's pages over a large state, timed.
    Console(console::Options),
    /// One three-step flow against three one-step flows over the same rows.
    Steps(steps::Options),
    /// The same job through n8n, Node-RED, Python aiohttp and Switchboard (see
    /// `bench/peers/run.sh`, which installs them).
    Peers(peers::Options),
    /// `send-rate`, `ingest`, `history`, `console` and `steps` with their defaults.
    All,
    /// The bare client alone, in a process of its own (`send-rate` runs it so the
    /// reference crosses processes as Switchboard does).
    #[command(hide = true)]
    Post(send_rate::PostOptions),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    // The store alone: no binary to find.
    match cli.command {
        Command::History(options) => return history::run(options.sized(cli.smoke)).await,
        Command::Post(options) => return send_rate::post(options).await,
        _ => {}
    }
    let bin = match cli.switchboard {
        // Absolute: the children run in their own directories.
        Some(bin) => std::fs::canonicalize(&bin)
            .map_err(|e| anyhow::anyhow!("--switchboard {}: {e}", bin.display()))?,
        None => child::sibling_binary()?,
    };
    let runs = if cli.smoke { 1 } else { cli.runs.max(1) };
    let smoke = cli.smoke;
    match cli.command {
        Command::SendRate(options) => send_rate::run(&bin, runs, options.sized(smoke)).await,
        Command::Ingest(options) => ingest::run(&bin, runs, options.sized(smoke)).await,
        Command::History(_) | Command::Post(_) => unreachable!("run above"),
        Command::Console(options) => console::run(&bin, options.sized(smoke)).await,
        Command::Peers(options) => peers::run(&bin, runs, options).await,
        Command::Steps(options) => steps::run(&bin, runs, options.sized(smoke)).await,
        Command::All => {
            send_rate::run(&bin, runs, send_rate::Options::default().sized(smoke)).await?;
            ingest::run(&bin, runs, ingest::Options::default().sized(smoke)).await?;
            history::run(history::Options::default().sized(smoke)).await?;
            console::run(&bin, console::Options::default().sized(smoke)).await?;
            steps::run(&bin, runs, steps::Options::default().sized(smoke)).await
        }
    }
}

/// The median of some measurements (the upper one of an even count).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}
