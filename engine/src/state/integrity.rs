//! Telling a state directory that lost data from a new one. sled opens a deleted,
//! emptied or garbled database as a fresh, empty one — and an empty state means "nothing
//! was ever sent", so every row would go out again. So the directory carries a marker
//! file beside the database, and the database a copy of it: an identity and the number of
//! runs ever begun. The file is only ever written after the database has made at least
//! as many runs durable, so at the next open the database can never be behind the file —
//! unless it lost data. Then the state is refused with a clear error, until a person
//! accepts the loss (`--accept-state-loss`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::StateError;

/// The marker file, in the state directory.
pub const FILE: &str = "switchboard-state.json";

/// The database's copy, in the `meta` tree (no flow's key starts with a zero byte).
const KEY: &[u8] = b"\0state";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Mark {
    #[serde(default)]
    version: u32,
    /// Identifies the database this directory holds.
    id: String,
    /// Runs ever begun in it; never goes back.
    runs: u64,
}

/// The directory's marker, kept in step with the database.
#[derive(Debug)]
pub(crate) struct Integrity {
    file: PathBuf,
    meta: sled::Tree,
    id: String,
    /// Runs begun, as written to the database.
    begun: AtomicU64,
    /// Runs the marker file records.
    recorded: AtomicU64,
}

impl Integrity {
    /// Check the directory's marker against the database, or set both up in a new one.
    /// With `accept_loss`, a database that lost data is taken as it is and the marker
    /// follows it.
    pub(crate) fn check(
        dir: &Path,
        db: &sled::Db,
        meta: &sled::Tree,
        accept_loss: bool,
    ) -> Result<Integrity, StateError> {
        let file = dir.join(FILE);
        let on_disk: Option<Result<Mark, String>> = match std::fs::read(&file) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => Some(Err(e.to_string())),
        };
        let in_db: Option<Mark> = meta
            .get(KEY)?
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let lost = match (&on_disk, &in_db) {
            (None, _) => None,
            (Some(Err(e)), _) => Some(format!("its marker file `{FILE}` cannot be read ({e})")),
            (Some(Ok(_)), None) => Some(
                "the database holds none of the runs the directory recorded (it was deleted, emptied or replaced)"
                    .to_string(),
            ),
            (Some(Ok(file)), Some(db)) if file.id != db.id => {
                Some("the database is not the one this directory held (it was replaced)".to_string())
            }
            (Some(Ok(file)), Some(db)) if db.runs < file.runs => Some(format!(
                "the database knows {} run(s), the directory had begun {} (it was restored from an older copy, or lost writes)",
                db.runs, file.runs
            )),
            _ => None,
        };
        if let Some(detail) = lost {
            if !accept_loss {
                return Err(StateError::Lost {
                    dir: dir.to_path_buf(),
                    detail,
                });
            }
            tracing::warn!(dir = %dir.display(), "{detail}; accepted (--accept-state-loss): rows it sent before may be sent again");
        }
        let mark = match in_db {
            Some(mark) => mark,
            None => {
                let mark = Mark {
                    version: 1,
                    id: format!(
                        "{:016x}{:016x}",
                        rand::random::<u64>(),
                        rand::random::<u64>()
                    ),
                    runs: 0,
                };
                meta.insert(KEY, serde_json::to_vec(&mark)?)?;
                db.flush()?;
                mark
            }
        };
        let integrity = Integrity {
            file,
            meta: meta.clone(),
            id: mark.id.clone(),
            begun: AtomicU64::new(mark.runs),
            recorded: AtomicU64::new(0),
        };
        integrity.record(mark.runs)?;
        Ok(integrity)
    }

    /// Count a run begun, in the database (after the run's own first write).
    pub(crate) fn run_begun(&self) -> Result<(), StateError> {
        let mut runs = 0;
        self.meta.update_and_fetch(KEY, |old| {
            let mut mark: Mark = old
                .and_then(|bytes| serde_json::from_slice(bytes).ok())
                .unwrap_or(Mark {
                    version: 1,
                    id: self.id.clone(),
                    runs: 0,
                });
            mark.runs += 1;
            runs = mark.runs;
            serde_json::to_vec(&mark).ok()
        })?;
        self.begun.fetch_max(runs, Ordering::SeqCst);
        Ok(())
    }

    /// Runs begun and written so far: a flush that starts now makes them durable.
    pub(crate) fn begun(&self) -> u64 {
        self.begun.load(Ordering::SeqCst)
    }

    /// After a flush that covered `runs` begun runs: the marker file may say so.
    pub(crate) fn durable(&self, runs: u64) {
        if runs > self.recorded.load(Ordering::SeqCst) {
            if let Err(e) = self.record(runs) {
                tracing::warn!(file = %self.file.display(), "cannot update the state marker: {e}");
            }
        }
    }

    /// Write the marker file (through a temporary file and a rename, so it is whole).
    fn record(&self, runs: u64) -> Result<(), StateError> {
        let mark = Mark {
            version: 1,
            id: self.id.clone(),
            runs,
        };
        let temporary = self.file.with_extension("json.tmp");
        let write = std::fs::write(&temporary, serde_json::to_vec_pretty(&mark)?)
            .and_then(|()| std::fs::rename(&temporary, &self.file));
        write.map_err(|e| StateError::Io(format!("`{}`: {e}", self.file.display())))?;
        self.recorded.fetch_max(runs, Ordering::SeqCst);
        Ok(())
    }
}
