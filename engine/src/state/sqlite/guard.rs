//! What keeps an embedded state honest: one process at a time (a lock file beside the
//! database), and a marker that tells a database that lost data from a new one.
//!
//! SQLite opens a deleted, emptied or older database as a database like any other — and an
//! empty state means "nothing was ever sent", so every row would go out again. So the
//! directory carries a marker file (`switchboard-state.json`) beside `state.db`, and the
//! database a copy of its facts: the database's identity, and how many flushes were ever
//! made durable (the database counts them in the same write the flush makes durable; the
//! file is written only after). At the next open the database can never be behind the
//! file — unless it lost data: replaced, emptied, restored from an older copy, or its
//! `-wal` file (the writes not yet copied into the database) lost. A database whose pages
//! were damaged (overwritten, truncated) fails SQLite's own check, which runs whenever the
//! file is not exactly as the last clean close left it. Either way the state is refused
//! with a clear error until a person accepts the loss (`--accept-state-loss`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::state::StateError;

/// The database file, in the state directory.
pub const DB_FILE: &str = "state.db";

/// The marker file, in the state directory (the name sled's directories used too).
pub const MARKER: &str = "switchboard-state.json";

/// The lock file: held (flock) by the process that has the state open.
const LOCK: &str = "state.db.lock";

/// How long to wait for a lock this process may just have let go of (a store dropped a
/// moment ago) before calling the directory in use.
const RELEASE_WAIT: Duration = Duration::from_millis(500);

/// The marker's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Marker {
    #[serde(default)]
    pub version: u32,
    /// Identifies the database this directory holds.
    pub id: String,
    /// Flushes made durable in it; never goes back.
    #[serde(default)]
    pub durable: u64,
    /// The database file as the last clean close left it, if the last process closed it
    /// cleanly: unchanged since, it need not be checked page by page again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<Shape>,
    /// Where `switchboard state migrate` moved the state (the database here was set aside).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved: Option<String>,
}

/// A file's length and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Shape {
    pub len: u64,
    pub modified_ns: i128,
}

impl Shape {
    pub(crate) fn of(file: &Path) -> Option<Shape> {
        let meta = std::fs::metadata(file).ok()?;
        let modified = meta.modified().ok()?;
        let ns = match modified.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        };
        Some(Shape {
            len: meta.len(),
            modified_ns: ns,
        })
    }
}

/// The directory's lock, held while the store is open.
pub(crate) struct Lock {
    _file: File,
}

/// Take the directory's lock, or say it is in use.
pub(crate) fn lock(dir: &Path) -> Result<Lock, StateError> {
    let path = dir.join(LOCK);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io(dir, "cannot open its lock file", e))?;
    let deadline = Instant::now() + RELEASE_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Lock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StateError::Locked(dir.to_path_buf()))
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(io(dir, "cannot lock it", e));
            }
        }
    }
}

/// The directory's marker: none, unreadable (why), or what it says.
pub(crate) fn read_marker(dir: &Path) -> Option<Result<Marker, String>> {
    match std::fs::read(dir.join(MARKER)) {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => Some(Err(e.to_string())),
    }
}

/// Write the marker (through a temporary file and a rename, so it is whole).
pub(crate) fn write_marker(dir: &Path, marker: &Marker) -> Result<(), StateError> {
    let file = dir.join(MARKER);
    let temporary = file.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(marker)?;
    std::fs::write(&temporary, bytes)
        .and_then(|()| std::fs::rename(&temporary, &file))
        .map_err(|e| io(dir, "cannot write its marker", e))
}

/// Whether `dir` holds the state as versions before SQLite kept it (a sled database) and
/// no `state.db` yet: an old directory, to be moved with `state migrate`.
pub fn is_old_state(dir: &Path) -> bool {
    !dir.join(DB_FILE).exists() && dir.join("conf").is_file() && dir.join("db").is_file()
}

/// Move a damaged database's files into `damaged-<time>/` inside its directory (the
/// marker, the lock and the daemon's discovery files stay); where they went.
pub(crate) fn set_aside(dir: &Path) -> Result<PathBuf, StateError> {
    let aside = dir.join(format!(
        "damaged-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S")
    ));
    std::fs::create_dir_all(&aside)
        .map_err(|e| io(dir, "cannot set the damaged files aside", e))?;
    for name in [
        DB_FILE.to_string(),
        format!("{DB_FILE}-wal"),
        format!("{DB_FILE}-shm"),
    ] {
        let from = dir.join(&name);
        if from.exists() {
            std::fs::rename(&from, aside.join(&name))
                .map_err(|e| io(dir, "cannot set the damaged files aside", e))?;
        }
    }
    Ok(aside)
}

/// An I/O error of the state directory, for people.
pub(crate) fn io(dir: &Path, what: &str, e: std::io::Error) -> StateError {
    if e.raw_os_error() == Some(28) {
        return StateError::DiskFull(format!("state directory `{}`: {what}", dir.display()));
    }
    StateError::Io(format!("state directory `{}`: {what}: {e}", dir.display()))
}

/// After the state in `dir` moved to `to` (`switchboard state migrate`): its database is
/// kept aside (`state.db.moved-<time>`) and the marker says where the state went, so a
/// command pointed here is told, not handed an empty state. Where the database went.
pub fn retire(dir: &Path, to: &str) -> Result<PathBuf, StateError> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S");
    let kept = dir.join(format!("{DB_FILE}.moved-{stamp}"));
    for (name, kept) in [
        (DB_FILE.to_string(), kept.clone()),
        (
            format!("{DB_FILE}-wal"),
            dir.join(format!("{DB_FILE}-wal.moved-{stamp}")),
        ),
        (
            format!("{DB_FILE}-shm"),
            dir.join(format!("{DB_FILE}-shm.moved-{stamp}")),
        ),
    ] {
        let from = dir.join(name);
        if from.exists() {
            std::fs::rename(&from, &kept)
                .map_err(|e| io(dir, "cannot set the moved database aside", e))?;
        }
    }
    let mut marker = match read_marker(dir) {
        Some(Ok(marker)) => marker,
        _ => Marker {
            version: 2,
            id: String::new(),
            durable: 0,
            closed: None,
            moved: None,
        },
    };
    marker.moved = Some(to.to_string());
    marker.closed = None;
    write_marker(dir, &marker)?;
    Ok(kept)
}
