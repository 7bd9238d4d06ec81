//! `peers`: the same 10,000-row CSV → 8x8 job through the tools our users would pick
//! instead — n8n, Node-RED and a hand-written Python aiohttp sender — and through
//! Switchboard, against the same stand-in, with the same harness: wall time from spawn
//! until the stand-in has every row, and the peak resident memory of the process tree
//! (each process's high-water mark, summed). The peers are installed by
//! `bench/peers/run.sh` into a scratch folder (hundreds of MB: never in CI); a peer that
//! is not installed there is left out of the table.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::child::{peak_rss_kib, read_all};
use crate::send_rate::{self, Options as SendOptions};
use crate::standin::StandIn;

#[derive(clap::Args)]
pub struct Options {
    /// Where `bench/peers/run.sh` installed the peers (`n8n/`, `nodered/`, `py/`).
    #[arg(long)]
    pub dir: PathBuf,
    /// CSV rows to send.
    #[arg(long, default_value_t = 10_000)]
    pub rows: usize,
    /// Give up on a tool after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
}

/// One tool's run of the job.
struct Outcome {
    tool: String,
    wall: Duration,
    peak_kib: u64,
}

impl Tool {
    /// `program args…` in `work`, with the tool's environment.
    fn command(&self, args: &[String], work: &Path) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.program);
        command
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(work);
        command
    }
}

/// A tool as a command to start in the job's directory.
struct Tool {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// Arguments of a run of `program` before the timed ones (not timed): n8n's import
    /// of the workflow, as a saved workflow would be.
    prepare: Option<Vec<String>>,
}

pub async fn run(bin: &Path, runs: usize, options: Options) -> anyhow::Result<()> {
    let standin = StandIn::start().await?;
    let work = tempfile::tempdir()?;
    let job = SendOptions {
        rows: options.rows,
        ..SendOptions::default()
    };
    send_rate::write_project(work.path(), &job, &standin.url)?;
    let tools = tools(bin, &options.dir, work.path(), &standin.url)?;
    println!(
        "peers: {} CSV rows → 8x8 single sends to the stand-in, {} run(s) each, wall from spawn until the stand-in has every row",
        options.rows, runs
    );
    let mut results: Vec<Outcome> = Vec::new();
    for tool in &tools {
        let mut samples = Vec::new();
        for run in 1..=runs {
            standin.take();
            match one(tool, work.path(), &standin, options.rows, options.timeout).await {
                Ok(outcome) => {
                    println!(
                        "  {} run {run}: {:.0} rows/s, {:.1} MiB",
                        tool.name,
                        options.rows as f64 / outcome.wall.as_secs_f64(),
                        outcome.peak_kib as f64 / 1024.0
                    );
                    samples.push(outcome);
                }
                Err(e) => println!("  {} run {run}: {e:#}", tool.name),
            }
        }
        if samples.is_empty() {
            continue;
        }
        samples.sort_by_key(|s| s.wall);
        results.push(samples.swap_remove(samples.len() / 2));
    }
    print_table(&results, options.rows);
    Ok(())
}

/// The tools to measure: Switchboard (single sends, then batches) always, each peer
/// when it is installed in `dir`.
fn tools(bin: &Path, dir: &Path, work: &Path, url: &str) -> anyhow::Result<Vec<Tool>> {
    let flows = work.to_string_lossy().into_owned();
    let mut tools = Vec::new();
    for (name, flow) in [
        ("Switchboard, single sends", "single"),
        ("Switchboard, 8x8 batch endpoint", "batched"),
    ] {
        tools.push(Tool {
            name: name.into(),
            program: bin.to_path_buf(),
            // Each run its own state, so every row is new.
            args: vec![
                "run".into(),
                flow.into(),
                "--flows".into(),
                flows.clone(),
                "--state".into(),
                "STATE".into(),
            ],
            env: Vec::new(),
            prepare: None,
        });
    }
    let python = dir.join("py/bin/python");
    if python.exists() {
        let script = work.join("aiohttp_sender.py");
        std::fs::write(&script, include_str!("../peers/aiohttp_sender.py"))?;
        tools.push(Tool {
            name: "Python aiohttp, 64 in flight".into(),
            program: python,
            args: vec![
                script.to_string_lossy().into_owned(),
                url.into(),
                "orders.csv".into(),
                "64".into(),
            ],
            env: Vec::new(),
            prepare: None,
        });
    }
    let red = dir.join("nodered/node_modules/node-red/red.js");
    if red.exists() {
        let flow = filled(
            work,
            "node-red-flow.json",
            include_str!("../peers/node-red-flow.json"),
            url,
        )?;
        tools.push(Tool {
            name: "Node-RED 4.1.8, headless".into(),
            program: "node".into(),
            args: vec![
                red.to_string_lossy().into_owned(),
                "--userDir".into(),
                work.join("node-red").to_string_lossy().into_owned(),
                "--port".into(),
                free_port()?.to_string(),
                flow.to_string_lossy().into_owned(),
            ],
            env: Vec::new(),
            prepare: None,
        });
    }
    let n8n = dir.join("n8n/node_modules/n8n/bin/n8n");
    if n8n.exists() {
        let workflow = filled(
            work,
            "n8n-workflow.json",
            include_str!("../peers/n8n-workflow.json"),
            url,
        )?;
        let home = work.join("n8n-home");
        tools.push(Tool {
            name: "n8n 2.8.4, `n8n execute`".into(),
            program: "node".into(),
            // 2.x runs saved workflows only (`--file` is gone): imported first, untimed.
            prepare: Some(vec![
                n8n.to_string_lossy().into_owned(),
                "import:workflow".into(),
                format!("--input={}", workflow.display()),
            ]),
            args: vec![
                n8n.to_string_lossy().into_owned(),
                "execute".into(),
                "--id=csvTo8x8Bench001".into(),
            ],
            env: vec![
                (
                    "N8N_USER_FOLDER".into(),
                    home.to_string_lossy().into_owned(),
                ),
                (
                    "N8N_RESTRICT_FILE_ACCESS_TO".into(),
                    work.to_string_lossy().into_owned(),
                ),
                ("N8N_DIAGNOSTICS_ENABLED".into(), "false".into()),
                ("N8N_RUNNERS_ENABLED".into(), "false".into()),
                ("NODES_EXCLUDE".into(), "[]".into()),
            ],
        });
    }
    Ok(tools)
}

/// A peer's flow file, written into `work` from its `template` with the orders file
/// (`ORDERS`) and the stand-in (`BASE_URL`) filled in; its path.
fn filled(work: &Path, name: &str, template: &str, url: &str) -> anyhow::Result<PathBuf> {
    let path = work.join(name);
    let text = template
        .replace("ORDERS", &work.join("orders.csv").to_string_lossy())
        .replace("BASE_URL", url);
    std::fs::write(&path, text)?;
    Ok(path)
}

/// A port nothing listens on now.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Start `tool`, wait until the stand-in has `rows` messages, stop the tool's tree.
async fn one(
    tool: &Tool,
    work: &Path,
    standin: &StandIn,
    rows: usize,
    timeout: u64,
) -> anyhow::Result<Outcome> {
    let state = tempfile::tempdir_in(work)?;
    let args: Vec<String> = tool
        .args
        .iter()
        .map(|a| {
            if a == "STATE" {
                state.path().to_string_lossy().into_owned()
            } else {
                a.clone()
            }
        })
        .collect();
    if let Some(prepare) = &tool.prepare {
        let prepared = tool
            .command(prepare, work)
            .output()
            .await
            .with_context(|| format!("cannot start {}", tool.program.display()))?;
        if !prepared.status.success() {
            bail!(
                "{} {} failed: {}",
                tool.program.display(),
                prepare.join(" "),
                String::from_utf8_lossy(&prepared.stderr)
            );
        }
    }
    let started = Instant::now();
    let mut child = tool
        .command(&args, work)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", tool.program.display()))?;
    let pid = child.id().context("the tool exited at once")?;
    // Read as it comes: a tool blocked on a full pipe would be timed waiting.
    let mut stderr = tokio::spawn(read_all(child.stderr.take()));
    let mut peaks: HashMap<u32, u64> = HashMap::new();
    let mut received = 0u64;
    let outcome = loop {
        for member in tree(pid) {
            let peak = peak_rss_kib(member).unwrap_or(0);
            let seen = peaks.entry(member).or_default();
            *seen = (*seen).max(peak);
        }
        received += standin.take();
        if received >= rows as u64 {
            break Ok(started.elapsed());
        }
        if let Some(status) = child.try_wait()? {
            let stderr = (&mut stderr).await.unwrap_or_default();
            let tail: String = stderr.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
            break Err(anyhow::anyhow!(
                "exited ({status}) with {received} of {rows} rows sent: {tail}"
            ));
        }
        if started.elapsed() > Duration::from_secs(timeout) {
            break Err(anyhow::anyhow!(
                "gave up after {timeout} s with {received} of {rows} rows sent"
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // The tool and what it started go (Node-RED does not stop by itself): each process
    // by its own id, children first.
    let members = tree(pid);
    for member in members
        .iter()
        .rev()
        .filter(|m| **m > 1 && **m != pid && **m != std::process::id())
    {
        let _ = std::process::Command::new("kill")
            .args(["-s", "KILL", &member.to_string()])
            .status();
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
    stderr.abort();
    let wall = outcome?;
    if received > rows as u64 {
        bail!("{received} messages for {rows} rows: some went twice");
    }
    Ok(Outcome {
        tool: tool.name.clone(),
        wall,
        peak_kib: peaks.values().sum(),
    })
}

/// `pid` and every process descended from it.
fn tree(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // `pid (comm) state ppid …`: the name may hold spaces and parentheses.
            let parent = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse().ok());
            if let Some(parent) = parent {
                parents.push((child, parent));
            }
        }
    }
    let mut members = vec![pid];
    let mut i = 0;
    while i < members.len() {
        let of = members[i];
        members.extend(parents.iter().filter(|(_, p)| *p == of).map(|(c, _)| *c));
        i += 1;
    }
    members
}

fn print_table(results: &[Outcome], rows: usize) {
    let rate = |o: &Outcome| rows as f64 / o.wall.as_secs_f64();
    let ours = results
        .iter()
        .find(|o| o.tool.starts_with("Switchboard, single"))
        .map(rate)
        .unwrap_or(f64::NAN);
    println!("\n| tool, {rows} rows (median run) | rows/s | peak memory | rows/s ÷ Switchboard's (single sends) |");
    println!("|---|---|---|---|");
    for o in results {
        println!(
            "| {} | {:.0} | {:.1} MiB | {:.2} |",
            o.tool,
            rate(o),
            o.peak_kib as f64 / 1024.0,
            rate(o) / ours
        );
    }
}
