//! How other commands find a running daemon: it writes `daemon.json` (pid, API URL and
//! the flows directory it serves) into the state directory it holds once it is ready, and
//! removes it on a clean stop. A file left by a daemon that died is recognised (its
//! process is gone, or is another program) and not trusted; one naming another flows
//! directory is refused.

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
}

const FILE: &str = "daemon.json";

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
) -> anyhow::Result<Prepared> {
    // A state in PostgreSQL leaves the directory to this file alone: it may not exist yet.
    std::fs::create_dir_all(state_dir)?;
    let path = state_dir.join(FILE);
    let written = state_dir.join(format!("{FILE}.{}", std::process::id()));
    let daemon = Daemon {
        pid: std::process::id(),
        url: format!("http://{addr}"),
        token_required,
        flows: Some(absolute(flows)),
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

/// The daemon serving this state directory, if its file is there and its process is a
/// running switchboard (a stale file is removed, with a log line). `Err` when the
/// daemon serves another flows directory than `flows`.
pub fn find(state_dir: &Path, flows: &Path) -> Result<Option<Daemon>, String> {
    let file = state_dir.join(FILE);
    let Ok(bytes) = std::fs::read(&file) else {
        return Ok(None);
    };
    let Ok(daemon) = serde_json::from_slice::<Daemon>(&bytes) else {
        tracing::warn!(file = %file.display(), "ignoring a discovery file that cannot be read");
        return Ok(None);
    };
    if !is_switchboard(daemon.pid) {
        tracing::warn!(
            file = %file.display(),
            pid = daemon.pid,
            "ignoring a discovery file left by a daemon that is no longer running"
        );
        remove(&file);
        return Ok(None);
    }
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
    Ok(Some(daemon))
}

/// Whether process `pid` runs and is a switchboard (where `/proc` can tell).
fn is_switchboard(pid: u32) -> bool {
    let proc_dir = Path::new("/proc");
    if !proc_dir.is_dir() {
        return true;
    }
    match std::fs::read(proc_dir.join(pid.to_string()).join("cmdline")) {
        Ok(cmdline) => String::from_utf8_lossy(&cmdline).contains("switchboard"),
        Err(_) => false,
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|cwd| cwd.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    })
}
