//! How other commands find a running daemon: it writes `daemon.json` (pid and API URL)
//! into the state directory it holds, and removes it on a clean stop.

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
}

const FILE: &str = "daemon.json";

pub fn write(state_dir: &Path, addr: SocketAddr, token_required: bool) -> anyhow::Result<PathBuf> {
    let path = state_dir.join(FILE);
    let daemon = Daemon {
        pid: std::process::id(),
        url: format!("http://{addr}"),
        token_required,
    };
    std::fs::write(&path, serde_json::to_vec_pretty(&daemon)?)?;
    Ok(path)
}

pub fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// The daemon serving this state directory, if its file is there.
pub fn find(state_dir: &Path) -> Option<Daemon> {
    let bytes = std::fs::read(state_dir.join(FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}
