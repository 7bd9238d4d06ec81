//! Running the `switchboard` binary as a child: wall time from spawn to exit, and peak
//! resident memory read from `/proc/<pid>/status` (`VmHWM`, the high-water mark) while
//! it runs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// `switchboard` in the directory of this binary (`target/<profile>/`).
pub fn sibling_binary() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("where is this binary?")?;
    let bin = me.with_file_name("switchboard");
    if !bin.exists() {
        bail!(
            "{} not found: build it first with the same profile (`cargo build --release`), or pass --switchboard PATH",
            bin.display()
        );
    }
    Ok(bin)
}

/// What one finished child took.
pub struct Measured {
    pub wall: Duration,
    pub peak_rss_kib: u64,
    pub stdout: String,
}

/// Run `bin args…` in `dir` to completion; fails on a non-zero exit.
pub async fn measure(bin: &Path, dir: &Path, args: &[&str]) -> anyhow::Result<Measured> {
    let started = Instant::now();
    let mut child = tokio::process::Command::new(bin)
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let pid = child.id().unwrap_or_default();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let read_out = tokio::spawn(read_all(stdout));
    let read_err = tokio::spawn(read_all(stderr));
    let mut peak = 0;
    let status = loop {
        peak = peak.max(peak_rss_kib(pid).unwrap_or(0));
        match child.try_wait()? {
            Some(status) => break status,
            None => tokio::time::sleep(Duration::from_millis(2)).await,
        }
    };
    let wall = started.elapsed();
    let stdout = read_out.await.unwrap_or_default();
    let stderr = read_err.await.unwrap_or_default();
    if !status.success() {
        bail!(
            "switchboard {} failed ({status}):\n{stdout}\n{stderr}",
            args.join(" ")
        );
    }
    Ok(Measured {
        wall,
        peak_rss_kib: peak,
        stdout,
    })
}

/// All a child's pipe gives until it closes (read as it comes, so the child never
/// blocks on a full pipe).
pub(crate) async fn read_all<R: tokio::io::AsyncRead + Unpin>(pipe: Option<R>) -> String {
    use tokio::io::AsyncReadExt as _;
    let mut text = String::new();
    if let Some(mut pipe) = pipe {
        let _ = pipe.read_to_string(&mut text).await;
    }
    text
}

/// `VmHWM` of a process, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    field_kib(pid, "VmHWM:")
}

/// `VmRSS` of a process, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    field_kib(pid, "VmRSS:")
}

fn field_kib(pid: u32, name: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}
