//! How other commands find a running daemon: it writes `daemon.json` (pid, the process's
//! start time, API URL and the flows directory it serves) into the state directory it
//! holds once it is ready, and removes it on a clean stop; a node of a cluster writes
//! `daemon-<node>.json`, so nodes sharing one flows directory do not overwrite (or
//! remove) each other's. A file left by a daemon that died is recognised — its pid is
//! gone, or now belongs to a process that started at another time, whatever its name —
//! and removed; one naming another flows directory is refused.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file's content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Daemon {
    pub pid: u32,
    pub url: String,
    /// Whether the API wants `Authorization: Bearer <token>` (the token is not stored).
    #[serde(default)]
    pub token_required: bool,
    /// The flows directory it serves, as an absolute path.
    #[serde(default)]
    pub flows: Option<PathBuf>,
    /// When its process started (clock ticks since boot, `/proc/<pid>/stat`): a pid
    /// reused by another process after the daemon died has another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<u64>,
    /// Its node's name, in a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

const FILE: &str = "daemon.json";

/// The discovery file of a daemon: `daemon.json`, or a cluster node's own.
fn file_name(node: Option<&str>) -> String {
    match node {
        None => FILE.to_string(),
        Some(node) => {
            let safe: String = node
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            format!("daemon-{safe}.json")
        }
    }
}

/// A discovery file written under a name no command reads, until [`Prepared::announce`]
/// puts it in place: the writing, which can fail (a read-only directory), is done before
/// the daemon starts anything, and the file appears whole once the daemon is ready.
pub struct Prepared {
    written: PathBuf,
    path: PathBuf,
}

pub fn prepare(
    state_dir: &Path,
    addr: SocketAddr,
    token_required: bool,
    flows: &Path,
    node: Option<&str>,
) -> anyhow::Result<Prepared> {
    // A state in PostgreSQL leaves the directory to this file alone: it may not exist yet.
    std::fs::create_dir_all(state_dir)?;
    let path = state_dir.join(file_name(node));
    let written = state_dir.join(format!("{FILE}.{}", std::process::id()));
    let pid = std::process::id();
    let daemon = Daemon {
        pid,
        url: format!("http://{addr}"),
        token_required,
        flows: Some(absolute(flows)),
        started: started_at(pid),
        node: node.map(String::from),
    };
    std::fs::write(&written, serde_json::to_vec_pretty(&daemon)?)?;
    Ok(Prepared { written, path })
}

impl Prepared {
    /// Put the file where other commands look; its path, to remove at the stop.
    pub fn announce(self) -> anyhow::Result<PathBuf> {
        std::fs::rename(&self.written, &self.path).inspect_err(|_| remove(&self.written))?;
        Ok(self.path)
    }
}

pub fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// The daemon that holds a locked state directory, or why there is none to ask: what a
/// command that found the state locked turns to.
pub fn holding(state_dir: &Path, flows: &Path) -> anyhow::Result<Daemon> {
    match find(state_dir, flows).map_err(anyhow::Error::msg)? {
        Some(daemon) => Ok(daemon),
        None => anyhow::bail!(
            "state directory `{}` is in use by another process, and no daemon answers for it",
            state_dir.display()
        ),
    }
}

/// The daemon serving this state directory, if its file is there and its process is the
/// one that wrote it (a stale file is removed, with a log line); in a cluster, the first
/// live node whose file is there. `Err` when the daemon serves another flows directory
/// than `flows`.
pub fn find(state_dir: &Path, flows: &Path) -> Result<Option<Daemon>, String> {
    let mut files = vec![state_dir.join(FILE)];
    if let Ok(entries) = std::fs::read_dir(state_dir) {
        let mut nodes: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("daemon-") && n.ends_with(".json"))
            })
            .collect();
        nodes.sort();
        files.extend(nodes);
    }
    for file in files {
        if let Some(daemon) = live(&file) {
            if let Some(served) = &daemon.flows {
                let asked = absolute(flows);
                if *served != asked {
                    return Err(format!(
                        "the daemon (pid {}) holding `{}` serves the flows in `{}`, not `{}`",
                        daemon.pid,
                        state_dir.display(),
                        served.display(),
                        asked.display()
                    ));
                }
            }
            return Ok(Some(daemon));
        }
    }
    Ok(None)
}

/// The daemon of a discovery file, when the process that wrote it still runs.
fn live(file: &Path) -> Option<Daemon> {
    let bytes = std::fs::read(file).ok()?;
    let Ok(daemon) = serde_json::from_slice::<Daemon>(&bytes) else {
        tracing::warn!(file = %file.display(), "ignoring a discovery file that cannot be read");
        return None;
    };
    if !is_running(&daemon) {
        tracing::warn!(
            file = %file.display(),
            pid = daemon.pid,
            "ignoring a discovery file left by a daemon that is no longer running"
        );
        remove(file);
        return None;
    }
    Some(daemon)
}

/// Whether the daemon's process still runs (where `/proc` can tell): its pid is there
/// and started when the file says. A file without a start time (an older daemon) falls
/// back to the process's command line naming switchboard.
fn is_running(daemon: &Daemon) -> bool {
    let proc_dir = Path::new("/proc");
    if !proc_dir.join("self").is_dir() {
        return true;
    }
    match daemon.started {
        Some(started) => started_at(daemon.pid) == Some(started),
        None => match std::fs::read(proc_dir.join(daemon.pid.to_string()).join("cmdline")) {
            Ok(cmdline) => String::from_utf8_lossy(&cmdline).contains("switchboard"),
            Err(_) => false,
        },
    }
}

/// When process `pid` started, in clock ticks since boot (`/proc/<pid>/stat`, field 22).
fn started_at(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|cwd| cwd.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    })
}
