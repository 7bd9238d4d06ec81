//! Reading a state directory left by the releases whose state was sled, for
//! `switchboard state migrate` and nothing else: every flow's runs, records, handled keys,
//! sends in flight, queued events and small values, as [`Export`] gives them to a move.
//! Nothing here writes the old layout; a run never opens it.
//!
//! The layout read (one sled database, trees shared by every flow, each key starting
//! with the flow's name and a zero byte): `runs` (`run id` → a run's summary), `rows`
//! (`run id, lowest seq, highest seq` → a chunk of outcomes; older: `run id, first seq`
//! → one outcome), `seen` (record key → the run that handled it), `ledger` (`\0\0group\0`,
//! run id, first seq → the sends marked together; older: record key → one send), `queue`
//! (record key → `1`, arrival number, fields; older: the fields alone) and `meta` (name →
//! a JSON value). The directory's marker file (`switchboard-state.json`) and the
//! database's copy of it (`\0state` in `meta`) tell a database that lost data from a
//! whole one: such a directory is refused unless the loss is accepted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

use super::migrate::{Export, ExportHistory};
use super::{Handled, InFlight, RowOutcome, RowStatus, RunSummary, StateError};
use crate::record::Record;

/// How long opening waits for a lock just let go of before calling the directory in use.
const RELEASE_WAIT: Duration = Duration::from_millis(500);

/// The ledger keys of sends marked together start with this, after the flow's prefix.
const GROUP: &[u8] = b"\0\0group\0";

/// The first byte of a queued event's value (a JSON object starts with `{`).
const QUEUED: u8 = 1;

/// The database's copy of the directory's marker, in `meta`.
const MARK: &[u8] = b"\0state";

/// The marker, as the directory and the database keep it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct Mark {
    id: String,
    runs: u64,
}

/// What the `seen` tree keeps for a handled key.
#[derive(Deserialize)]
struct Seen {
    run: u64,
    status: RowStatus,
    #[serde(default)]
    digest: Option<String>,
}

/// An old sled state directory, open for reading.
pub struct SledState {
    runs: sled::Tree,
    rows: sled::Tree,
    seen: sled::Tree,
    ledger: sled::Tree,
    queue: sled::Tree,
    meta: sled::Tree,
}

/// sled's errors, said in the state's own words (the error type names no backend).
impl From<sled::Error> for StateError {
    fn from(e: sled::Error) -> Self {
        match e {
            sled::Error::Io(e) => StateError::Io(format!("old state directory (sled): {e}")),
            other => StateError::Database(format!("(sled): {other}")),
        }
    }
}

/// Whether opening failed because another holder has the database's lock.
fn is_locked(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io)
        if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("lock"))
}

impl SledState {
    /// Open the old state in `dir`. A database that cannot be read, or holds fewer runs
    /// than its directory's marker recorded (deleted, emptied, rolled back), is refused
    /// ([`StateError::Lost`]); with `accept_loss` what it holds is read as it is.
    pub fn open(dir: &Path, accept_loss: bool) -> Result<SledState, StateError> {
        let deadline = Instant::now() + RELEASE_WAIT;
        let db = loop {
            match sled::Config::new()
                .path(dir)
                .cache_capacity(16 << 20)
                .open()
            {
                Err(e) if is_locked(&e) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) if is_locked(&e) => return Err(StateError::Locked(dir.to_path_buf())),
                Err(e @ sled::Error::Corruption { .. }) => {
                    return Err(StateError::Lost {
                        dir: dir.to_path_buf(),
                        detail: format!(
                            "its database cannot be read ({e}), so nothing can be moved from it"
                        ),
                    })
                }
                Err(e) => {
                    return Err(StateError::Open {
                        dir: dir.to_path_buf(),
                        detail: e.to_string(),
                    })
                }
                Ok(db) => break db,
            }
        };
        let state = SledState {
            runs: db.open_tree("runs")?,
            rows: db.open_tree("rows")?,
            seen: db.open_tree("seen")?,
            ledger: db.open_tree("ledger")?,
            queue: db.open_tree("queue")?,
            meta: db.open_tree("meta")?,
        };
        if let Some(detail) = state.lost(dir)? {
            if !accept_loss {
                return Err(StateError::Lost {
                    dir: dir.to_path_buf(),
                    detail,
                });
            }
            tracing::warn!(dir = %dir.display(), "{detail}; accepted (--accept-state-loss): what it forgot is not moved, and rows it sent before may be sent again");
        }
        Ok(state)
    }

    /// What the marker file says the database lost, if anything.
    fn lost(&self, dir: &Path) -> Result<Option<String>, StateError> {
        let file = super::sqlite::guard::MARKER;
        let on_disk: Result<Mark, String> = match std::fs::read(dir.join(file)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| e.to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => Err(e.to_string()),
        };
        let in_db: Option<Mark> = self
            .meta
            .get(MARK)?
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        Ok(match (on_disk, in_db) {
            (Err(e), _) => Some(format!("its marker file `{file}` cannot be read ({e})")),
            (Ok(_), None) => Some(
                "the database holds none of the runs the directory recorded (it was deleted, emptied or replaced)"
                    .to_string(),
            ),
            (Ok(file), Some(db)) if file.id != db.id => {
                Some("the database is not the one this directory held (it was replaced)".to_string())
            }
            (Ok(file), Some(db)) if db.runs < file.runs => Some(format!(
                "the database knows {} run(s), the directory had begun {} (it was restored from an older copy, or lost writes)",
                db.runs, file.runs
            )),
            _ => None,
        })
    }

    /// Every (key after the flow's prefix, value) of `tree` for `flow`.
    fn scan(
        tree: &sled::Tree,
        flow: &str,
    ) -> impl Iterator<Item = Result<(Vec<u8>, sled::IVec), StateError>> {
        let prefix = prefix(flow);
        let skip = prefix.len();
        tree.scan_prefix(prefix).map(move |item| {
            let (key, value) = item?;
            Ok((key[skip..].to_vec(), value))
        })
    }
}

/// A flow's keys start with its name and a zero byte.
fn prefix(flow: &str) -> Vec<u8> {
    let mut prefix = flow.as_bytes().to_vec();
    prefix.push(0);
    prefix
}

fn u64_of(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    let n = bytes.len().min(8);
    buf[..n].copy_from_slice(&bytes[..n]);
    u64::from_be_bytes(buf)
}

/// The names of the flows with something in `tree`: one key read per flow (after a
/// flow's first key, the scan jumps past its prefix).
fn flows_in(tree: &sled::Tree, names: &mut BTreeSet<String>) -> Result<(), StateError> {
    let mut next: Option<Vec<u8>> = Some(Vec::new());
    while let Some(from) = next.take() {
        let Some(item) = tree.range(from..).next() else {
            break;
        };
        let (key, _) = item?;
        let Some(split) = key.iter().position(|b| *b == 0) else {
            let mut after = key.to_vec();
            after.push(0);
            next = Some(after);
            continue;
        };
        names.insert(String::from_utf8_lossy(&key[..split]).into_owned());
        let mut after = key[..split].to_vec();
        after.push(1);
        next = Some(after);
    }
    Ok(())
}

/// The outcomes in one value of the `rows` tree: a chunk, or (older) a single outcome.
fn rows_of(value: &[u8]) -> Result<Vec<RowOutcome>, StateError> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Chunk(Vec<RowOutcome>),
        One(Box<RowOutcome>),
    }
    Ok(match serde_json::from_slice(value)? {
        Stored::Chunk(rows) => rows,
        Stored::One(row) => vec![*row],
    })
}

impl ExportHistory for SledState {
    fn all_runs(&self, flow: &str) -> Result<Vec<RunSummary>, StateError> {
        // Keyed by the run's number, big-endian: oldest first.
        SledState::scan(&self.runs, flow)
            .map(|item| Ok(serde_json::from_slice(&item?.1)?))
            .collect()
    }

    fn run_rows(&self, flow: &str, run: u64) -> Result<Vec<RowOutcome>, StateError> {
        let mut rows = Vec::new();
        for item in SledState::scan(&self.rows, flow) {
            let (key, value) = item?;
            if key.len() >= 8 && u64_of(&key[..8]) == run {
                rows.extend(rows_of(&value)?);
            }
        }
        rows.sort_by_key(|row| row.seq);
        Ok(rows)
    }

    fn all_queued(&self, flow: &str) -> Result<Vec<Record>, StateError> {
        let mut queued: Vec<(u64, Record)> = SledState::scan(&self.queue, flow)
            .map(|item| {
                let (key, value) = item?;
                let (arrived, fields) = match value.split_first() {
                    Some((&QUEUED, rest)) if rest.len() >= 8 => (u64_of(&rest[..8]), &rest[8..]),
                    _ => (0, &value[..]),
                };
                let key = String::from_utf8_lossy(&key).into_owned();
                Ok((arrived, Record::new(key, serde_json::from_slice(fields)?)))
            })
            .collect::<Result<_, StateError>>()?;
        // In the order they arrived: a contact edited twice is sent edit by edit.
        queued.sort_by_key(|(arrived, _)| *arrived);
        Ok(queued.into_iter().map(|(_, record)| record).collect())
    }
}

impl Export for SledState {
    fn flow_names(&self) -> Result<Vec<String>, StateError> {
        let mut names = BTreeSet::new();
        for tree in [
            &self.runs,
            &self.seen,
            &self.queue,
            &self.ledger,
            &self.meta,
        ] {
            flows_in(tree, &mut names)?;
        }
        // The state's own flow ('') holds its marker alone unless it holds more.
        if names.contains("") && self.all_meta("")?.is_empty() {
            names.remove("");
        }
        Ok(names.into_iter().collect())
    }

    fn all_handled(&self, flow: &str) -> Result<Vec<(String, Handled)>, StateError> {
        SledState::scan(&self.seen, flow)
            .map(|item| {
                let (key, value) = item?;
                // Older versions stored other shapes: a key is handled whatever its value.
                let handled = serde_json::from_slice::<Seen>(&value)
                    .map(|s| Handled {
                        run: s.run,
                        status: s.status,
                        digest: s.digest,
                    })
                    .unwrap_or(Handled {
                        run: 0,
                        status: RowStatus::Sent,
                        digest: None,
                    });
                Ok((String::from_utf8_lossy(&key).into_owned(), handled))
            })
            .collect()
    }

    fn all_in_flight(&self, flow: &str) -> Result<Vec<(u64, u64, Vec<InFlight>)>, StateError> {
        let mut marks = Vec::new();
        let mut single: BTreeMap<u64, Vec<InFlight>> = BTreeMap::new();
        for item in SledState::scan(&self.ledger, flow) {
            let (key, value) = item?;
            if let Some(ids) = key.strip_prefix(GROUP) {
                let (run, first) = ids.split_at(ids.len().min(8));
                marks.push((u64_of(run), u64_of(first), serde_json::from_slice(&value)?));
            } else {
                // An entry of its own, as earlier versions wrote for every send.
                let entry: InFlight = serde_json::from_slice(&value)?;
                single.entry(entry.run).or_default().push(entry);
            }
        }
        marks.extend(single.into_iter().map(|(run, entries)| (run, 0, entries)));
        Ok(marks)
    }

    fn all_meta(&self, flow: &str) -> Result<Vec<(String, Value)>, StateError> {
        let mut values = Vec::new();
        for item in SledState::scan(&self.meta, flow) {
            let (key, value) = item?;
            let Ok(name) = std::str::from_utf8(&key) else {
                continue;
            };
            // The directory's marker is the old store's own: the new one keeps its own.
            if flow.is_empty() && name == "state" {
                continue;
            }
            if let Ok(value) = serde_json::from_slice::<Value>(&value) {
                values.push((name.to_string(), value));
            }
        }
        Ok(super::migrate::moved_meta(values))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A copy of one of the directories the last sled release wrote
    /// (`tests/fixtures/sled-state`): opening it may write, the fixture stays as made.
    pub(crate) fn fixture(name: &str) -> tempfile::TempDir {
        let from = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/sled-state")
            .join(name);
        let to = tempfile::tempdir().expect("a temporary directory");
        for entry in std::fs::read_dir(&from).unwrap_or_else(|e| panic!("{}: {e}", from.display()))
        {
            let entry = entry.expect("it succeeds");
            // `blobs/` is empty (git keeps no empty directory; sled makes it again).
            if entry.path().is_dir() {
                continue;
            }
            std::fs::copy(entry.path(), to.path().join(entry.file_name()))
                .expect("the test copies the file");
        }
        to
    }

    #[test]
    fn a_directory_that_lost_runs_is_refused_until_the_loss_is_accepted() -> Result<(), StateError>
    {
        let dir = fixture("order-sms");
        let marker = dir.path().join(super::super::sqlite::guard::MARKER);
        let mut mark: Value = serde_json::from_slice(
            &std::fs::read(&marker).map_err(|e| StateError::Io(e.to_string()))?,
        )?;
        // The directory had begun more runs than the database knows: it was rolled back.
        mark["runs"] = Value::from(mark["runs"].as_u64().unwrap_or(0) + 5);
        std::fs::write(&marker, serde_json::to_vec(&mark)?)
            .map_err(|e| StateError::Io(e.to_string()))?;
        let refused = SledState::open(dir.path(), false);
        assert!(
            matches!(&refused, Err(StateError::Lost { detail, .. }) if detail.contains("restored from an older copy")),
            "{:?}",
            refused.err()
        );
        let accepted = SledState::open(dir.path(), true)?;
        assert_eq!(accepted.all_handled("order-sms")?.len(), 3);
        Ok(())
    }

    #[test]
    fn a_garbled_database_is_refused_not_read_as_empty() {
        let dir = fixture("order-sms");
        let db = dir.path().join("db");
        let mut bytes = std::fs::read(&db).expect("the test reads the file");
        for b in bytes.iter_mut().skip(64) {
            *b ^= 0x5a;
        }
        std::fs::write(&db, bytes).expect("the test writes its file");
        // However sled reads what is left, the directory's marker says runs were begun:
        // a database that shows none of them is not moved as if it were whole.
        let opened = SledState::open(dir.path(), false);
        assert!(
            matches!(&opened, Err(StateError::Lost { .. })),
            "{:?}",
            opened.as_ref().map(|s| s.flow_names().ok())
        );
    }
}
