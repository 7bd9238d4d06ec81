//! The embedded state: one SQLite database file (`state.db`, WAL) in the state
//! directory, compiled in (rusqlite's bundled SQLite), with the same tables as the
//! PostgreSQL state (`engine/migrations/sqlite/`, under the same numbers as
//! `migrations/postgres/`).
//!
//! Writes go through one connection and commit at once without waiting for the disk
//! (`synchronous=NORMAL`: a commit is atomic, and survives the process being killed).
//! What must survive a power loss too — a send's ledger mark before the send starts, a
//! webhook's events before its 200 — waits for a *flush*: one `fsync` of the write-ahead
//! log, shared by every writer waiting at that moment (group commit, [`GroupCommit`]). A
//! row's outcome, its remembered key and the removal of its ledger mark are one
//! transaction, so after a crash the ledger holds exactly the sends without an outcome.
//! Reads go through a few connections of their own (WAL lets them read while the writer
//! writes). [`guard`] keeps one process on a state at a time and refuses a database that
//! lost data.

pub mod guard;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde_json::{Map, Value};

use super::chunks::{self, ChunkNote, ChunkNotes, Sorted};
use super::commit::GroupCommit;
use super::search;
use super::{
    Counts, Durable, FlowState, Found, Handled, History, InFlight, Inbox, Journal, Ledger,
    LedgerMark, Meta, Pruned, Retention, RowOutcome, RowStatus, RunStatus, RunSummary, StateError,
    Store, Trigger,
};
use crate::record::{ChunkPrint, Record};
use guard::{Marker, Shape, DB_FILE};

mod migrations {
    refinery::embed_migrations!("migrations/sqlite");
}

/// Connections that read (the writer reads what it must write with).
const READERS: usize = 3;

/// The page cache of each connection, in KiB (SQLite's `cache_size`, negative: KiB):
/// memory stays flat whatever the state's size.
const WRITER_CACHE_KIB: i64 = 8 * 1024;
const READER_CACHE_KIB: i64 = 4 * 1024;

/// The meta name of the state's own facts (flow ''): identity and durable flushes.
const INTEGRITY: &str = "integrity";
/// The meta name of the last run the search index covers.
const INDEXED: &str = "\u{1}search-indexed";

/// A flow's chunk epoch as it is now (0 before it first moved); `?1` is the flow.
const CHUNK_EPOCH_NOW: &str = "COALESCE((SELECT epoch FROM chunk_epochs WHERE flow = ?1), 0)";

/// A flow's ledger marks and their sends, oldest first.
const LEDGER_OF_FLOW: &str = "SELECT mark, entries FROM ledger WHERE flow = ?1 ORDER BY mark";

/// Move a flow's chunk epoch on; `?1` is the flow.
const NEXT_CHUNK_EPOCH: &str = "INSERT INTO chunk_epochs (flow, epoch) VALUES (?1, 1)
     ON CONFLICT (flow) DO UPDATE SET epoch = epoch + 1";

/// The embedded state.
#[derive(Clone)]
pub struct SqliteStore {
    db: Arc<Db>,
}

/// The database and its connections.
struct Db {
    dir: PathBuf,
    file: PathBuf,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    commits: Arc<GroupCommit>,
    /// The state's identity, as its marker says it.
    id: String,
    /// The write-ahead log, open for its `fsync`s (and when the marker was last written).
    wal: Mutex<(Option<std::fs::File>, Option<std::time::Instant>)>,
    /// Pushed events waiting for the next flush, which writes them all in one
    /// transaction before its `fsync` (webhook requests arriving together share both).
    inbox: Mutex<Vec<Arc<Arrival>>>,
    _lock: guard::Lock,
}

/// One request's events, waiting in the inbox, and what became of them.
struct Arrival {
    flow: String,
    /// Key and fields (as JSON) of each event, the last of each key.
    events: Vec<(String, String)>,
    stored: Mutex<Option<Result<(), StateError>>>,
}

/// How often, at most, a flush counts itself in the database and the marker: more often
/// would add a write and a rename to every flush; the marker lags the database by at
/// most this much (a log lost after a crash is found unless it held only that last
/// moment's writes).
const MARK_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

impl Drop for Db {
    fn drop(&mut self) {
        // The last connection to close copies the log into the database and removes it:
        // close them all, then tell the marker how the file was left.
        let readers = std::mem::take(&mut self.readers);
        drop(readers);
        let writer = std::mem::replace(
            &mut self.writer,
            Mutex::new(match Connection::open_in_memory() {
                Ok(c) => c,
                Err(_) => return,
            }),
        );
        let closed = match writer.into_inner() {
            Ok(connection) => connection.close().is_ok(),
            Err(_) => false,
        };
        if !closed {
            return;
        }
        if let Some(Ok(mut marker)) = guard::read_marker(&self.dir) {
            if marker.id == self.id {
                marker.closed = Shape::of(&self.file);
                let _ = guard::write_marker(&self.dir, &marker);
            }
        }
    }
}

/// What the integrity meta row holds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Facts {
    id: String,
    #[serde(default)]
    durable: u64,
}

/// A rusqlite error of the database at `file`, for people.
fn db_error(file: &Path) -> impl Fn(rusqlite::Error) -> StateError + '_ {
    move |e| sqlite_error(file, e)
}

fn sqlite_error(file: &Path, e: rusqlite::Error) -> StateError {
    use rusqlite::ErrorCode;
    if let rusqlite::Error::SqliteFailure(failure, _) = &e {
        if failure.code == ErrorCode::DiskFull {
            return StateError::DiskFull(format!("state database `{}`", file.display()));
        }
    }
    StateError::Database(format!("`{}`: {e}", file.display()))
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, StateError> {
    Ok(serde_json::to_string(value)?)
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StateError> {
    Ok(serde_json::from_str(text)?)
}

fn status_word(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Running => "running",
        RunStatus::Succeeded => "succeeded",
        RunStatus::Failed => "failed",
        RunStatus::Interrupted => "interrupted",
    }
}

fn row_status_word(status: RowStatus) -> &'static str {
    match status {
        RowStatus::Sent => "sent",
        RowStatus::Skipped => "skipped",
        RowStatus::Failed => "failed",
        RowStatus::Filtered => "filtered",
    }
}

fn row_status_of(word: &str) -> RowStatus {
    match word {
        "skipped" => RowStatus::Skipped,
        "failed" => RowStatus::Failed,
        "filtered" => RowStatus::Filtered,
        _ => RowStatus::Sent,
    }
}

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Open a connection to the database file with the settings every connection uses.
fn connect(file: &Path, read_only: bool, cache_kib: i64) -> rusqlite::Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let connection = Connection::open_with_flags(file, flags)?;
    connection.set_prepared_statement_cache_capacity(64);
    connection.busy_timeout(std::time::Duration::from_secs(30))?;
    connection.execute_batch(&format!(
        "PRAGMA cache_size = -{cache_kib}; PRAGMA temp_store = MEMORY; PRAGMA cell_size_check = ON;"
    ))?;
    Ok(connection)
}

impl SqliteStore {
    /// Open (or create) the state in `dir` (its database `state.db`). One process may hold
    /// it at a time. A database that lost data is refused ([`StateError::Lost`]).
    pub fn open(dir: &Path) -> Result<SqliteStore, StateError> {
        SqliteStore::open_with(dir, false)
    }

    /// [`SqliteStore::open`]; with `accept_loss`, a database that lost data is used as it
    /// is (what it forgot may be sent again; an unreadable one is set aside and a new one
    /// begins) and the marker follows it.
    pub fn open_with(dir: &Path, accept_loss: bool) -> Result<SqliteStore, StateError> {
        std::fs::create_dir_all(dir).map_err(|e| guard::io(dir, "cannot create it", e))?;
        let lock = guard::lock(dir)?;
        if guard::is_old_state(dir) {
            return Err(StateError::OldFormat {
                dir: dir.to_path_buf(),
            });
        }
        let file = dir.join(DB_FILE);
        let marker = guard::read_marker(dir);
        if let Some(Ok(Marker {
            moved: Some(to), ..
        })) = &marker
        {
            if !accept_loss {
                return Err(StateError::Moved {
                    dir: dir.to_path_buf(),
                    to: to.clone(),
                });
            }
        }
        let marker = marker.filter(|m| !matches!(m, Ok(Marker { moved: Some(_), .. })));
        let lost = |detail: String| StateError::Lost {
            dir: dir.to_path_buf(),
            detail,
        };
        let (writer, damage) = match open_checked(&file, marker.as_ref()) {
            Ok(writer) => (Some(writer), None),
            Err(Opened::Damaged(detail)) => (None, Some(detail)),
            Err(Opened::Failed(e)) => return Err(e),
        };
        let writer = match (writer, damage) {
            (Some(writer), _) => writer,
            (None, Some(detail)) if accept_loss => {
                let aside = guard::set_aside(dir)?;
                tracing::warn!(dir = %dir.display(), aside = %aside.display(), "{detail}: the database was moved aside and a new one begins (--accept-state-loss)");
                match open_checked(&file, None) {
                    Ok(writer) => writer,
                    Err(Opened::Damaged(detail)) => return Err(lost(detail)),
                    Err(Opened::Failed(e)) => return Err(e),
                }
            }
            (None, detail) => return Err(lost(detail.unwrap_or_default())),
        };
        let err = db_error(&file);
        let facts: Option<Facts> = writer
            .query_row(
                "SELECT value FROM meta WHERE flow = '' AND name = ?1",
                [INTEGRITY],
                |row| row.get::<_, String>(0),
            )
            .optional()
            .map_err(&err)?
            .and_then(|text| serde_json::from_str(&text).ok());
        let problem = match (&marker, &facts) {
            (None, _) => None,
            (Some(Err(e)), _) => Some(format!(
                "its marker file `{}` cannot be read ({e})",
                guard::MARKER
            )),
            (Some(Ok(_)), None) => Some(
                "the database holds none of what the directory recorded (it was deleted, emptied or replaced)"
                    .to_string(),
            ),
            (Some(Ok(marker)), Some(facts)) if marker.id != facts.id => Some(
                "the database is not the one this directory held (it was replaced)".to_string(),
            ),
            (Some(Ok(marker)), Some(facts)) if facts.durable < marker.durable => Some(format!(
                "the database holds {} durable write(s) of the {} the directory recorded (it was restored from an older copy, or its `-wal` file was lost)",
                facts.durable, marker.durable
            )),
            _ => None,
        };
        if let Some(detail) = problem {
            if !accept_loss {
                return Err(lost(detail));
            }
            tracing::warn!(dir = %dir.display(), "{detail}; accepted (--accept-state-loss): rows it sent before may be sent again");
        }
        let facts = match facts {
            Some(facts) => facts,
            None => {
                let facts = Facts {
                    id: format!(
                        "{:016x}{:016x}",
                        rand::random::<u64>(),
                        rand::random::<u64>()
                    ),
                    durable: 0,
                };
                writer
                    .execute(
                        "INSERT OR REPLACE INTO meta (flow, name, value) VALUES ('', ?1, ?2)",
                        params![INTEGRITY, json(&facts)?],
                    )
                    .map_err(&err)?;
                facts
            }
        };
        // Open now: until a clean close says otherwise, the next open checks the pages.
        guard::write_marker(
            dir,
            &Marker {
                version: 2,
                id: facts.id.clone(),
                durable: facts.durable,
                closed: None,
                moved: None,
            },
        )?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(Mutex::new(
                connect(&file, true, READER_CACHE_KIB).map_err(&err)?,
            ));
        }
        let db = Arc::new_cyclic(|weak: &std::sync::Weak<Db>| {
            let weak = weak.clone();
            let flush: super::commit::Flush = Arc::new(move || match weak.upgrade() {
                Some(db) => db.flush(),
                None => Ok(()),
            });
            Db {
                dir: dir.to_path_buf(),
                file: file.clone(),
                writer: Mutex::new(writer),
                readers,
                next_reader: AtomicUsize::new(0),
                commits: Arc::new(GroupCommit::new(flush)),
                id: facts.id.clone(),
                wal: Mutex::new((None, None)),
                inbox: Mutex::new(Vec::new()),
                _lock: lock,
            }
        });
        Ok(SqliteStore { db })
    }

    /// The state of one flow, as its own type.
    pub fn sqlite_flow(&self, name: &str) -> SqliteFlow {
        SqliteFlow {
            name: name.to_string(),
            db: Arc::clone(&self.db),
        }
    }

    /// The database file.
    pub fn file(&self) -> &Path {
        &self.db.file
    }
}

/// Why a database could not be opened: it is damaged (what SQLite found), or something
/// else went wrong.
enum Opened {
    Damaged(String),
    Failed(StateError),
}

/// Open the database for writing, bring its tables up to date, and check its pages when
/// the file is not as the last clean close left it.
fn open_checked(
    file: &Path,
    marker: Option<&Result<Marker, String>>,
) -> Result<Connection, Opened> {
    let known = marker.and_then(|m| m.as_ref().ok());
    // Gone or emptied while the directory says it held data: nothing to open.
    let len = std::fs::metadata(file).map(|m| m.len()).ok();
    if known.is_some_and(|m| m.durable > 0 || m.closed.is_some()) {
        match len {
            None => return Err(Opened::Damaged("its database file is gone".into())),
            Some(0) => return Err(Opened::Damaged("its database file is empty".into())),
            _ => {}
        }
    }
    let damaged = |e: rusqlite::Error| -> Opened {
        use rusqlite::ErrorCode;
        match &e {
            rusqlite::Error::SqliteFailure(f, _)
                if matches!(f.code, ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) =>
            {
                Opened::Damaged(format!("its database cannot be read ({e})"))
            }
            _ => Opened::Failed(sqlite_error(file, e)),
        }
    };
    let new = len.is_none_or(|l| l == 0);
    // As the last clean close left it (looked at before this open makes a new log).
    let unchanged = known
        .and_then(|m| m.closed)
        .is_some_and(|closed| Shape::of(file) == Some(closed))
        && !file.with_file_name(format!("{DB_FILE}-wal")).exists();
    let mut writer = connect(file, false, WRITER_CACHE_KIB).map_err(damaged)?;
    if new {
        // Before the first table: pages freed by pruning go back to the disk.
        writer
            .execute_batch("PRAGMA auto_vacuum = INCREMENTAL;")
            .map_err(damaged)?;
    }
    writer
        .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        .map_err(damaged)?;
    if !new && !unchanged {
        let verdict: Vec<String> = writer
            .prepare("PRAGMA quick_check(5)")
            .and_then(|mut statement| {
                statement
                    .query_map([], |row| row.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()
            })
            .map_err(damaged)?;
        if verdict.first().map(String::as_str) != Some("ok") {
            return Err(Opened::Damaged(format!(
                "its database is damaged (SQLite's check: {})",
                verdict.join("; ")
            )));
        }
    }
    migrations::migrations::runner()
        .run(&mut writer)
        .map_err(|e| {
            Opened::Failed(StateError::Database(format!(
                "`{}`: migrating the state's tables: {e}",
                file.display()
            )))
        })?;
    Ok(writer)
}

impl Db {
    /// Run `f` in a transaction on the writer, committed at once (not waiting for the
    /// disk).
    fn write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let mut writer = self.writer()?;
        let tx = writer.transaction().map_err(db_error(&self.file))?;
        let value = f(&tx)?;
        tx.commit().map_err(db_error(&self.file))?;
        Ok(value)
    }

    fn writer(&self) -> Result<MutexGuard<'_, Connection>, StateError> {
        self.writer
            .lock()
            .map_err(|_| StateError::Panicked("a writer of the state"))
    }

    /// Run `f` on a reading connection (a free one, else the next in turn).
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        for reader in &self.readers {
            if let Ok(connection) = reader.try_lock() {
                return f(&connection);
            }
        }
        let n = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len().max(1);
        let Some(reader) = self.readers.get(n) else {
            return f(&*self.writer()?);
        };
        let connection = reader
            .lock()
            .map_err(|_| StateError::Panicked("a reader of the state"))?;
        f(&connection)
    }

    /// The two text columns of each row `sql` selects with `params`, in its order.
    fn text_pairs(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<(String, String)>, StateError> {
        let err = db_error(&self.file);
        self.read(|c| {
            let mut statement = c.prepare_cached(sql).map_err(&err)?;
            let rows = statement
                .query_map(params, |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(&err)?;
            rows.collect::<rusqlite::Result<_>>().map_err(&err)
        })
    }

    /// Write the inbox's events: all in one transaction, or (if that fails) each
    /// request's on its own, so that each learns its own fate.
    fn write_arrivals(&self) -> Result<(), StateError> {
        let arrivals = std::mem::take(
            &mut *self
                .inbox
                .lock()
                .map_err(|_| StateError::Panicked("a webhook request"))?,
        );
        if arrivals.is_empty() {
            return Ok(());
        }
        let together = self.write(|tx| {
            arrivals
                .iter()
                .try_for_each(|arrival| insert_events(tx, &self.file, arrival))
        });
        for arrival in &arrivals {
            let stored = match &together {
                Ok(()) => Ok(()),
                Err(_) => self.write(|tx| insert_events(tx, &self.file, arrival)),
            };
            if let Ok(mut slot) = arrival.stored.lock() {
                *slot = Some(stored);
            }
        }
        Ok(())
    }

    /// Make everything committed so far durable: one `fsync` of the write-ahead log
    /// (which holds every commit not yet copied into the database file; a copy syncs the
    /// database file before the log is reused). At most every [`MARK_EVERY`] the flush
    /// also counts itself in the database first, and the marker after.
    fn flush(&self) -> Result<(), StateError> {
        self.write_arrivals()?;
        let err = db_error(&self.file);
        let mut wal = self
            .wal
            .lock()
            .map_err(|_| StateError::Panicked("a flush of the state"))?;
        let mark = wal.1.is_none_or(|at| at.elapsed() >= MARK_EVERY);
        let durable = if mark {
            let writer = self.writer()?;
            writer
                .execute(
                    "UPDATE meta SET value = json_set(value, '$.durable', json_extract(value, '$.durable') + 1)
                     WHERE flow = '' AND name = ?1",
                    [INTEGRITY],
                )
                .map_err(&err)?;
            Some(
                writer
                    .query_row(
                        "SELECT json_extract(value, '$.durable') FROM meta WHERE flow = '' AND name = ?1",
                        [INTEGRITY],
                        |row| row.get::<_, i64>(0),
                    )
                    .map_err(&err)? as u64,
            )
        } else {
            None
        };
        if wal.0.is_none() {
            let log = self.file.with_file_name(format!("{DB_FILE}-wal"));
            wal.0 = std::fs::File::open(&log).ok();
        }
        let synced = match &wal.0 {
            Some(log) => log.sync_data(),
            // No log yet: every commit is in the database file itself.
            None => std::fs::File::open(&self.file).and_then(|f| f.sync_data()),
        };
        synced.map_err(|e| guard::io(&self.dir, "cannot flush its database to disk", e))?;
        if let Some(durable) = durable {
            guard::write_marker(
                &self.dir,
                &Marker {
                    version: 2,
                    id: self.id.clone(),
                    durable,
                    closed: None,
                    moved: None,
                },
            )?;
            wal.1 = Some(std::time::Instant::now());
        }
        Ok(())
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn flow(&self, name: &str) -> Result<Arc<dyn FlowState>, StateError> {
        Ok(Arc::new(self.sqlite_flow(name)))
    }

    async fn flush(&self) -> Result<(), StateError> {
        self.db.commits.durable().await
    }

    fn interrupt_stale_runs(&self, at: DateTime<Utc>) -> Result<Vec<(String, u64)>, StateError> {
        let err = db_error(&self.db.file);
        let running: Vec<(String, i64)> = self.db.read(|c| {
            let mut statement = c
                .prepare("SELECT flow, id FROM runs WHERE status = 'running' ORDER BY flow, id")
                .map_err(&err)?;
            let rows = statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(&err)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(&err)
        })?;
        let mut stale = Vec::new();
        for (name, id) in running {
            let flow = self.sqlite_flow(&name);
            if let Some(mut summary) = flow.run(id as u64)? {
                super::mark_interrupted(&flow, &mut summary, at)?;
                stale.push((name, id as u64));
            }
        }
        Ok(stale)
    }

    fn search(&self, query: &str, limit: usize) -> Result<Vec<Found>, StateError> {
        let terms = search::query_terms(query);
        let err = db_error(&self.db.file);
        let limit_sql = i64_of(limit as u64);
        self.db.read(|c| {
            let mut found: Vec<Found> = Vec::new();
            for term in &terms {
                let hits: Vec<(String, i64, i64)> = if !search::matches_start(term) {
                    let mut statement = c
                        .prepare_cached(
                            "SELECT flow, run, seq FROM found WHERE term = ?1 ORDER BY flow, run, seq LIMIT ?2",
                        )
                        .map_err(&err)?;
                    let rows = statement
                        .query_map(params![term, limit_sql], |row| {
                            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                        })
                        .map_err(&err)?;
                    rows.collect::<rusqlite::Result<_>>().map_err(&err)?
                } else {
                    let end = format!("{term}\u{10FFFF}");
                    let mut statement = c
                        .prepare_cached(
                            "SELECT flow, run, seq FROM found WHERE term >= ?1 AND term < ?2 ORDER BY term, flow, run, seq LIMIT ?3",
                        )
                        .map_err(&err)?;
                    let rows = statement
                        .query_map(params![term, end, limit_sql], |row| {
                            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                        })
                        .map_err(&err)?;
                    rows.collect::<rusqlite::Result<_>>().map_err(&err)?
                };
                for (flow, run, seq) in hits {
                    let hit = Found {
                        flow,
                        run: run as u64,
                        seq: seq as u64,
                    };
                    if !found.contains(&hit) {
                        found.push(hit);
                    }
                    if found.len() >= limit {
                        return Ok(found);
                    }
                }
            }
            Ok(found)
        })
    }
}

/// One flow's rows of the tables.
#[derive(Clone)]
pub struct SqliteFlow {
    name: String,
    db: Arc<Db>,
}

/// A ledger mark about to be written: its name and its sends, as JSON.
struct Mark {
    name: String,
    entries: String,
}

impl Mark {
    fn new(run: u64, first_seq: u64, entries: &[InFlight]) -> Result<Mark, StateError> {
        Ok(Mark {
            name: format!("{run:020}:{first_seq:020}"),
            entries: json(&entries)?,
        })
    }

    fn done(self) -> LedgerMark {
        LedgerMark(self.name.into_bytes())
    }
}

/// Outcomes about to be written, as JSON, with the last of each remembered key.
struct Outcomes<'o> {
    outcomes: &'o [(&'o RowOutcome, bool)],
    values: Vec<String>,
    remembered: Vec<usize>,
}

impl<'o> Outcomes<'o> {
    fn new(outcomes: &'o [(&'o RowOutcome, bool)]) -> Result<Outcomes<'o>, StateError> {
        let values = outcomes
            .iter()
            .map(|(outcome, _)| json(*outcome))
            .collect::<Result<_, _>>()?;
        let remembered = last_of_each(
            outcomes
                .iter()
                .map(|(outcome, remember)| remember.then_some(outcome.key.as_str())),
        );
        Ok(Outcomes {
            outcomes,
            values,
            remembered,
        })
    }
}

impl SqliteFlow {
    /// A request's events as the queue keeps them: the last of each key.
    fn arrival(&self, records: &[Record]) -> Result<Arrival, StateError> {
        let events = last_of_each(records.iter().map(|r| Some(r.key.as_str())))
            .into_iter()
            .map(|i| Ok((records[i].key.clone(), json(&records[i].fields)?)))
            .collect::<Result<_, StateError>>()?;
        Ok(Arrival {
            flow: self.name.clone(),
            events,
            stored: Mutex::new(None),
        })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StateError + '_ {
        db_error(&self.db.file)
    }

    fn mark_in(&self, tx: &rusqlite::Transaction<'_>, mark: &Mark) -> Result<(), StateError> {
        tx.prepare_cached(
            "INSERT OR REPLACE INTO ledger (flow, mark, entries) VALUES (?1, ?2, ?3)",
        )
        .and_then(|mut s| s.execute(params![self.name, mark.name, mark.entries]))
        .map_err(self.err())?;
        Ok(())
    }

    /// The outcomes, then their keys, then the marks they settle, in `tx`. Lost in a
    /// crash, the transaction is lost whole, and the marks it would have settled are still
    /// there, so those sends count as in flight.
    fn record_in(
        &self,
        tx: &rusqlite::Transaction<'_>,
        outcomes: &Outcomes<'_>,
        settled: &[LedgerMark],
    ) -> Result<(), StateError> {
        let err = self.err();
        let mut insert = tx
            .prepare_cached(
                "INSERT OR REPLACE INTO rows (flow, run, seq, outcome) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(&err)?;
        for ((outcome, _), value) in outcomes.outcomes.iter().zip(&outcomes.values) {
            insert
                .execute(params![
                    self.name,
                    i64_of(outcome.run),
                    i64_of(outcome.seq),
                    value
                ])
                .map_err(&err)?;
        }
        // A key remembered before and now judged (failed, filtered) may be new again for
        // the data a settled chunk holds: the epoch moves on, in this transaction.
        let mut known = tx
            .prepare_cached("SELECT 1 FROM seen WHERE flow = ?1 AND key = ?2")
            .map_err(&err)?;
        let mut judged_again = false;
        for i in &outcomes.remembered {
            let outcome = outcomes.outcomes[*i].0;
            if matches!(outcome.status, RowStatus::Failed | RowStatus::Filtered)
                && known
                    .exists(params![self.name, outcome.key])
                    .map_err(&err)?
            {
                judged_again = true;
                break;
            }
        }
        if judged_again {
            tx.execute(NEXT_CHUNK_EPOCH, [&self.name]).map_err(&err)?;
        }
        let mut remember = tx
            .prepare_cached(
                "INSERT INTO seen (flow, key, run, status, digest) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (flow, key) DO UPDATE SET run = excluded.run, status = excluded.status, digest = excluded.digest",
            )
            .map_err(&err)?;
        let mut dequeue = tx
            .prepare_cached("DELETE FROM queue WHERE flow = ?1 AND key = ?2")
            .map_err(&err)?;
        for i in &outcomes.remembered {
            let outcome = outcomes.outcomes[*i].0;
            remember
                .execute(params![
                    self.name,
                    outcome.key,
                    i64_of(outcome.run),
                    row_status_word(outcome.status),
                    outcome.digest
                ])
                .map_err(&err)?;
            // A pushed event leaves the queue with its outcome.
            dequeue
                .execute(params![self.name, outcome.key])
                .map_err(&err)?;
            // A record's progress through `steps:` goes with its outcome.
            if !outcome.steps.is_empty() {
                tx.prepare_cached("DELETE FROM meta WHERE flow = ?1 AND name = ?2")
                    .and_then(|mut s| {
                        s.execute(params![self.name, super::progress_key(&outcome.key)])
                    })
                    .map_err(&err)?;
            }
        }
        let mut settle = tx
            .prepare_cached("DELETE FROM ledger WHERE flow = ?1 AND mark = ?2")
            .map_err(&err)?;
        for mark in settled {
            settle
                .execute(params![self.name, String::from_utf8_lossy(&mark.0)])
                .map_err(&err)?;
        }
        Ok(())
    }

    /// Summaries that `sql` selects (`?1` is the flow, `?2` the argument).
    fn summaries(&self, sql: &str, arg: i64) -> Result<Vec<RunSummary>, StateError> {
        let err = self.err();
        let texts: Vec<String> = self.db.read(|c| {
            let mut statement = c.prepare_cached(sql).map_err(&err)?;
            let rows = statement
                .query_map(params![self.name, arg], |row| row.get::<_, String>(0))
                .map_err(&err)?;
            rows.collect::<rusqlite::Result<_>>().map_err(&err)
        })?;
        texts.iter().map(|t| parse(t)).collect()
    }

    /// Outcomes that `sql` selects (`?1` flow, `?2`, `?3`, `?4` the arguments).
    fn outcomes(&self, sql: &str, args: [i64; 3]) -> Result<Vec<RowOutcome>, StateError> {
        let err = self.err();
        let texts: Vec<String> = self.db.read(|c| {
            let mut statement = c.prepare_cached(sql).map_err(&err)?;
            let rows = statement
                .query_map(params![self.name, args[0], args[1], args[2]], |row| {
                    row.get::<_, String>(0)
                })
                .map_err(&err)?;
            rows.collect::<rusqlite::Result<_>>().map_err(&err)
        })?;
        texts.iter().map(|t| parse(t)).collect()
    }

    fn indexed(&self) -> Result<u64, StateError> {
        Ok(self
            .load_meta(INDEXED)?
            .and_then(|v| v.as_u64())
            .unwrap_or(0))
    }
}

/// Queue one request's events (a key queued again replaces its event and arrives anew:
/// a new row number).
fn insert_events(
    tx: &rusqlite::Transaction<'_>,
    file: &Path,
    arrival: &Arrival,
) -> Result<(), StateError> {
    let err = db_error(file);
    let mut insert = tx
        .prepare_cached("INSERT OR REPLACE INTO queue (flow, key, fields) VALUES (?1, ?2, ?3)")
        .map_err(&err)?;
    for (key, fields) in &arrival.events {
        insert
            .execute(params![arrival.flow, key, fields])
            .map_err(&err)?;
    }
    Ok(())
}

/// The places of the last of each key (`None`: not counted), in order: the last word
/// on a key is the one kept.
fn last_of_each<'k>(keys: impl Iterator<Item = Option<&'k str>>) -> Vec<usize> {
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (i, key) in keys.enumerate() {
        if let Some(key) = key {
            last.insert(key, i);
        }
    }
    let mut places: Vec<usize> = last.into_values().collect();
    places.sort_unstable();
    places
}

impl FlowState for SqliteFlow {
    fn name(&self) -> &str {
        &self.name
    }
}

impl ChunkNotes for SqliteFlow {
    fn handled_many(&self, keys: &[&str]) -> Result<Vec<Option<Handled>>, StateError> {
        let err = self.err();
        self.db.read(|c| {
            let mut statement = c
                .prepare_cached("SELECT run, status, digest FROM seen WHERE flow = ?1 AND key = ?2")
                .map_err(&err)?;
            keys.iter()
                .map(|key| {
                    statement
                        .query_row(params![self.name, key], |row| {
                            Ok(Handled {
                                run: row.get::<_, i64>(0)? as u64,
                                status: row_status_of(&row.get::<_, String>(1)?),
                                digest: row.get(2)?,
                            })
                        })
                        .optional()
                        .map_err(&err)
                })
                .collect()
        })
    }

    fn chunk_epoch(&self) -> Result<u64, StateError> {
        let err = self.err();
        self.db.read(|c| {
            c.query_row(&format!("SELECT {CHUNK_EPOCH_NOW}"), [&self.name], |row| {
                row.get::<_, i64>(0)
            })
            .map(|epoch| epoch as u64)
            .map_err(&err)
        })
    }

    fn chunk_settled(&self, print: &ChunkPrint, run: u64) -> Result<bool, StateError> {
        let err = self.err();
        let print = print.as_bytes().to_vec();
        // Most chunks read again are settled and seen by this run already: read first.
        let noted: Option<i64> = self.db.read(|c| {
            c.prepare_cached(&format!(
                "SELECT run FROM settled_chunks WHERE flow = ?1 AND print = ?2 AND epoch = {CHUNK_EPOCH_NOW}"
            ))
            .and_then(|mut s| s.query_row(params![self.name, print], |row| row.get(0)).optional())
            .map_err(&err)
        })?;
        match noted {
            None => Ok(false),
            Some(seen_by) if seen_by == i64_of(run) => Ok(true),
            Some(_) => self.db.write(|tx| {
                let changed = tx
                    .execute(
                        &format!(
                            "UPDATE settled_chunks SET run = ?3
                             WHERE flow = ?1 AND print = ?2 AND epoch = {CHUNK_EPOCH_NOW}"
                        ),
                        params![self.name, print, i64_of(run)],
                    )
                    .map_err(&err)?;
                Ok(changed > 0)
            }),
        }
    }

    fn settle_chunk(&self, print: &ChunkPrint, epoch: u64, run: u64) -> Result<(), StateError> {
        let err = self.err();
        self.db.write(|tx| {
            tx.execute(
                "INSERT INTO settled_chunks (flow, print, epoch, run) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (flow, print) DO UPDATE SET epoch = excluded.epoch, run = excluded.run",
                params![self.name, print.as_bytes().to_vec(), i64_of(epoch), i64_of(run)],
            )
            .map_err(&err)?;
            Ok(())
        })
    }

    fn forget_chunks_unseen_by(&self, run: u64) -> Result<(), StateError> {
        let err = self.err();
        self.db.write(|tx| {
            tx.execute(
                &format!(
                    "DELETE FROM settled_chunks WHERE flow = ?1 AND (run <> ?2 OR epoch <> {CHUNK_EPOCH_NOW})"
                ),
                params![self.name, i64_of(run)],
            )
            .map_err(&err)?;
            Ok(())
        })
    }
}

#[async_trait]
impl Journal for SqliteFlow {
    fn begin_run(&self, trigger: Trigger, at: DateTime<Utc>) -> Result<RunSummary, StateError> {
        let err = self.err();
        self.db.write(|tx| {
            let id: i64 = tx
                .query_row(
                    "SELECT COALESCE(MAX(id), 0) + 1 FROM runs WHERE flow = ?1",
                    [&self.name],
                    |row| row.get(0),
                )
                .map_err(&err)?;
            let summary = RunSummary {
                version: 1,
                id: id as u64,
                flow: self.name.clone(),
                trigger,
                started_at: at,
                finished_at: None,
                status: RunStatus::Running,
                counts: Counts::default(),
                error: None,
                node: None,
            };
            tx.execute(
                "INSERT INTO runs (flow, id, status, summary) VALUES (?1, ?2, 'running', ?3)",
                params![self.name, id, json(&summary)?],
            )
            .map_err(&err)?;
            Ok(summary)
        })
    }

    fn save_run(&self, summary: &RunSummary) -> Result<(), StateError> {
        let err = self.err();
        let value = json(summary)?;
        self.db.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO runs (flow, id, status, summary) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (flow, id) DO UPDATE SET status = excluded.status, summary = excluded.summary",
            )
            .and_then(|mut s| {
                s.execute(params![
                    self.name,
                    i64_of(summary.id),
                    status_word(summary.status),
                    value
                ])
            })
            .map_err(&err)?;
            Ok(())
        })
    }

    fn handled(&self, key: &str) -> Result<Option<Handled>, StateError> {
        Ok(self.handled_many(&[key])?.pop().flatten())
    }

    fn sort_chunk(
        &self,
        print: Option<ChunkPrint>,
        keys: &[&str],
        run: u64,
    ) -> Result<Sorted, StateError> {
        chunks::sort(self, print, keys, run)
    }

    fn settle(&self, note: ChunkNote, run: u64) -> Result<(), StateError> {
        chunks::settle(self, note, run)
    }

    fn primed(&self) -> Result<bool, StateError> {
        chunks::primed(self)
    }

    fn read_to_end(&self, run: u64, whole: bool) -> Result<(), StateError> {
        chunks::read_to_end(self, run, whole)
    }

    fn mark_in_flight(
        &self,
        run: u64,
        first_seq: u64,
        entries: &[InFlight],
    ) -> Result<(LedgerMark, Durable), StateError> {
        let mark = Mark::new(run, first_seq, entries)?;
        self.db.write(|tx| self.mark_in(tx, &mark))?;
        // The ticket is taken right after the commit: marks made together share a flush.
        Ok((mark.done(), self.db.commits.durable_later()))
    }

    fn record_and_mark(
        &self,
        outcomes: &[(&RowOutcome, bool)],
        settled: &[LedgerMark],
        run: u64,
        first_seq: u64,
        entries: &[InFlight],
    ) -> Result<(LedgerMark, Durable), StateError> {
        let outcomes = Outcomes::new(outcomes)?;
        let mark = Mark::new(run, first_seq, entries)?;
        // What ended and what starts, in one transaction.
        self.db.write(|tx| {
            self.record_in(tx, &outcomes, settled)?;
            self.mark_in(tx, &mark)
        })?;
        Ok((mark.done(), self.db.commits.durable_later()))
    }

    fn record(
        &self,
        outcomes: &[(&RowOutcome, bool)],
        settled: &[LedgerMark],
    ) -> Result<(), StateError> {
        if outcomes.is_empty() && settled.is_empty() {
            return Ok(());
        }
        let outcomes = Outcomes::new(outcomes)?;
        self.db.write(|tx| self.record_in(tx, &outcomes, settled))
    }

    fn recover(&self) -> Result<Ledger, StateError> {
        let marked = self.db.text_pairs(LEDGER_OF_FLOW, [&self.name])?;
        let mut ledger = Ledger::default();
        for (mark, entries) in marked {
            let members: Vec<InFlight> = parse(&entries)?;
            let keys: Vec<&str> = members.iter().map(|m| m.key.as_str()).collect();
            let handled = self.handled_many(&keys)?;
            for (member, handled) in members.iter().zip(handled) {
                // Settled: its outcome is stored (its key remembered by its run or later).
                if handled.is_none_or(|h| h.run < member.run) {
                    ledger.entries.push(member.clone());
                }
            }
            ledger.marks.push(LedgerMark(mark.into_bytes()));
        }
        Ok(ledger)
    }

    async fn durable(&self) -> Result<(), StateError> {
        self.db.commits.durable().await
    }

    fn interrupt_unfinished_runs(&self, at: DateTime<Utc>) -> Result<usize, StateError> {
        let running = self.summaries(
            "SELECT summary FROM runs INDEXED BY runs_running WHERE flow = ?1 AND status = 'running' AND ?2 = ?2",
            0,
        )?;
        let count = running.len();
        for mut summary in running {
            super::mark_interrupted(self, &mut summary, at)?;
        }
        Ok(count)
    }
}

impl History for SqliteFlow {
    fn runs(&self, limit: usize) -> Result<Vec<RunSummary>, StateError> {
        self.summaries(
            "SELECT summary FROM runs WHERE flow = ?1 ORDER BY id DESC LIMIT ?2",
            i64_of(limit as u64),
        )
    }

    fn run(&self, id: u64) -> Result<Option<RunSummary>, StateError> {
        Ok(self
            .summaries(
                "SELECT summary FROM runs WHERE flow = ?1 AND id = ?2",
                i64_of(id),
            )?
            .pop())
    }

    fn rows(&self, run: u64) -> Result<Vec<RowOutcome>, StateError> {
        self.outcomes(
            "SELECT outcome FROM rows WHERE flow = ?1 AND run = ?2 AND ?3 = ?4 ORDER BY seq",
            [i64_of(run), 0, 0],
        )
    }

    fn rows_from(
        &self,
        run: u64,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<RowOutcome>, StateError> {
        self.outcomes(
            "SELECT outcome FROM rows WHERE flow = ?1 AND run = ?2 AND seq >= ?3 ORDER BY seq LIMIT ?4",
            [i64_of(run), i64_of(from_seq), i64_of(limit as u64)],
        )
    }

    fn index_runs(&self) -> Result<u64, StateError> {
        let mut indexed = self.indexed()?;
        let mut rows_indexed = 0;
        let after = self.summaries(
            "SELECT summary FROM runs WHERE flow = ?1 AND id > ?2 ORDER BY id",
            i64_of(indexed),
        )?;
        let err = self.err();
        for summary in after {
            // Runs are indexed in order, once they ended: one under way stops the pass.
            if summary.status == RunStatus::Running {
                break;
            }
            let rows = self.rows(summary.id)?;
            indexed = summary.id;
            let mark = json(&Value::from(indexed))?;
            self.db.write(|tx| {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO found (term, flow, run, seq) VALUES (?1, ?2, ?3, ?4)",
                    )
                    .map_err(&err)?;
                for row in &rows {
                    for term in search::terms_of(row) {
                        insert
                            .execute(params![term, self.name, i64_of(row.run), i64_of(row.seq)])
                            .map_err(&err)?;
                    }
                }
                tx.execute(
                    "INSERT OR REPLACE INTO meta (flow, name, value) VALUES (?1, ?2, ?3)",
                    params![self.name, INDEXED, mark],
                )
                .map_err(&err)?;
                Ok(())
            })?;
            rows_indexed += rows.len() as u64;
        }
        Ok(rows_indexed)
    }

    fn all_rows(&self) -> Box<dyn Iterator<Item = Result<RowOutcome, StateError>> + Send + '_> {
        Box::new(AllRows {
            flow: self,
            after: (0, 0),
            buffer: std::collections::VecDeque::new(),
            done: false,
        })
    }

    fn prune(&self, retention: &Retention, dry_run: bool) -> Result<Pruned, StateError> {
        let runs = self.summaries(
            "SELECT summary FROM runs WHERE flow = ?1 AND ?2 = ?2 ORDER BY id",
            0,
        )?;
        let ids: Vec<i64> = super::prunable(&runs, retention)
            .map(|r| i64_of(r.id))
            .collect();
        if ids.is_empty() {
            return Ok(Pruned::default());
        }
        let err = self.err();
        let forget = retention.forget_handled;
        let pruned = self.db.write(|tx| {
            let mut pruned = Pruned {
                runs: ids.len() as u64,
                ..Pruned::default()
            };
            let mut count_rows = tx
                .prepare_cached("SELECT COUNT(*) FROM rows WHERE flow = ?1 AND run = ?2")
                .map_err(&err)?;
            let mut count_keys = tx
                .prepare_cached("SELECT COUNT(*) FROM seen WHERE flow = ?1 AND run = ?2")
                .map_err(&err)?;
            for id in &ids {
                pruned.records += count_rows
                    .query_row(params![self.name, id], |row| row.get::<_, i64>(0))
                    .map_err(&err)? as u64;
                if forget {
                    // A key is forgotten when a pruned run is the last to have handled it.
                    pruned.keys += count_keys
                        .query_row(params![self.name, id], |row| row.get::<_, i64>(0))
                        .map_err(&err)? as u64;
                }
            }
            if dry_run {
                return Ok(pruned);
            }
            for id in &ids {
                if forget {
                    // Named: SQLite (3.50) otherwise walks every key of the flow by the
                    // primary key's `flow` prefix, once per pruned run.
                    tx.execute(
                        "DELETE FROM seen INDEXED BY seen_run WHERE flow = ?1 AND run = ?2",
                        params![self.name, id],
                    )
                    .map_err(&err)?;
                }
                for table in ["rows", "found"] {
                    tx.execute(
                        &format!("DELETE FROM {table} WHERE flow = ?1 AND run = ?2"),
                        params![self.name, id],
                    )
                    .map_err(&err)?;
                }
                tx.execute(
                    "DELETE FROM runs WHERE flow = ?1 AND id = ?2",
                    params![self.name, id],
                )
                .map_err(&err)?;
            }
            if forget && pruned.keys > 0 {
                // Forgotten keys are new again: no settled chunk is taken as it was.
                tx.execute(NEXT_CHUNK_EPOCH, [&self.name]).map_err(&err)?;
            }
            Ok(pruned)
        })?;
        if !dry_run {
            // The pages the pruned runs held go back to the disk: the file shrinks.
            // Each step of the pragma frees a page: it is stepped to its end.
            let writer = self.db.writer()?;
            writer
                .prepare("PRAGMA incremental_vacuum")
                .and_then(|mut statement| {
                    let mut rows = statement.query([])?;
                    while rows.next()?.is_some() {}
                    Ok(())
                })
                .map_err(&err)?;
        }
        Ok(pruned)
    }

    fn backlog(&self) -> Result<(usize, usize), StateError> {
        let err = self.err();
        self.db.read(|c| {
            c.query_row(
                "SELECT (SELECT COUNT(*) FROM queue WHERE flow = ?1),
                        (SELECT COALESCE(SUM(json_array_length(entries)), 0) FROM ledger WHERE flow = ?1)",
                [&self.name],
                |row| Ok((row.get::<_, i64>(0)? as usize, row.get::<_, i64>(1)? as usize)),
            )
            .map_err(&err)
        })
    }

    fn failed_since(&self, run: u64) -> Result<u64, StateError> {
        let err = self.err();
        self.db.read(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM seen INDEXED BY seen_failed
                 WHERE flow = ?1 AND run >= ?2 AND status = 'failed'",
                params![self.name, i64_of(run)],
                |row| row.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(&err)
        })
    }
}

#[async_trait]
impl Inbox for SqliteFlow {
    fn enqueue(&self, records: &[Record]) -> Result<(), StateError> {
        let arrival = self.arrival(records)?;
        self.db
            .write(|tx| insert_events(tx, &self.db.file, &arrival))
    }

    async fn enqueue_durably(&self, records: &[Record]) -> Result<(), StateError> {
        let arrival = Arc::new(self.arrival(records)?);
        self.db
            .inbox
            .lock()
            .map_err(|_| StateError::Panicked("a webhook request"))?
            .push(Arc::clone(&arrival));
        // The flush that covers this call writes the inbox first.
        self.db.commits.durable().await?;
        let stored = arrival.stored.lock().ok().and_then(|mut slot| slot.take());
        stored.unwrap_or_else(|| Err(StateError::Io("the events were not written".into())))
    }

    fn queued(&self) -> Result<Vec<Record>, StateError> {
        let queued = self.db.text_pairs(
            "SELECT key, fields FROM queue WHERE flow = ?1 ORDER BY arrived",
            [&self.name],
        )?;
        queued
            .into_iter()
            .map(|(key, fields)| Ok(Record::new(key, parse::<Map<String, Value>>(&fields)?)))
            .collect()
    }

    fn has_queued(&self) -> Result<bool, StateError> {
        let err = self.err();
        self.db.read(|c| {
            c.prepare_cached("SELECT EXISTS (SELECT 1 FROM queue WHERE flow = ?1)")
                .and_then(|mut s| s.query_row([&self.name], |row| row.get(0)))
                .map_err(&err)
        })
    }

    fn drop_handled_from_queue(&self) -> Result<usize, StateError> {
        let err = self.err();
        self.db.write(|tx| {
            tx.prepare_cached(
                "DELETE FROM queue WHERE flow = ?1
                   AND EXISTS (SELECT 1 FROM seen WHERE seen.flow = ?1 AND seen.key = queue.key)",
            )
            .and_then(|mut s| s.execute([&self.name]))
            .map_err(&err)
        })
    }
}

impl Meta for SqliteFlow {
    fn load_meta(&self, key: &str) -> Result<Option<Value>, StateError> {
        let err = self.err();
        let text: Option<String> = self.db.read(|c| {
            c.prepare_cached("SELECT value FROM meta WHERE flow = ?1 AND name = ?2")
                .and_then(|mut s| {
                    s.query_row(params![self.name, key], |row| row.get(0))
                        .optional()
                })
                .map_err(&err)
        })?;
        text.map(|t| parse(&t)).transpose()
    }

    fn save_metas(&self, entries: &[(String, Value)]) -> Result<(), StateError> {
        let err = self.err();
        let texts: Vec<(&str, String)> = entries
            .iter()
            .map(|(key, value)| Ok((key.as_str(), json(value)?)))
            .collect::<Result<_, StateError>>()?;
        self.db.write(|tx| {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO meta (flow, name, value) VALUES (?1, ?2, ?3)",
                )
                .map_err(&err)?;
            for (key, text) in &texts {
                insert
                    .execute(params![self.name, key, text])
                    .map_err(&err)?;
            }
            Ok(())
        })
    }

    fn metas_under(&self, prefix: &str) -> Result<Vec<(String, Value)>, StateError> {
        let pairs = self.db.text_pairs(
            "SELECT name, value FROM meta WHERE flow = ?1 AND name >= ?2 AND name < ?3 ORDER BY name",
            [self.name.as_str(), prefix, &super::after_prefix(prefix)],
        )?;
        pairs
            .into_iter()
            .map(|(name, text)| Ok((name, parse(&text)?)))
            .collect()
    }

    fn save_meta(&self, key: &str, value: &Value) -> Result<(), StateError> {
        let err = self.err();
        let text = json(value)?;
        self.db.write(|tx| {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO meta (flow, name, value) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut s| s.execute(params![self.name, key, text]))
            .map_err(&err)?;
            Ok(())
        })
    }

    fn replace_meta(
        &self,
        key: &str,
        expected: Option<&Value>,
        value: &Value,
    ) -> Result<bool, StateError> {
        let err = self.err();
        let text = json(value)?;
        self.db.write(|tx| {
            let now: Option<String> = tx
                .query_row(
                    "SELECT value FROM meta WHERE flow = ?1 AND name = ?2",
                    params![self.name, key],
                    |row| row.get(0),
                )
                .optional()
                .map_err(&err)?;
            let now: Option<Value> = now.map(|t| parse(&t)).transpose()?;
            if now.as_ref() != expected {
                return Ok(false);
            }
            tx.execute(
                "INSERT OR REPLACE INTO meta (flow, name, value) VALUES (?1, ?2, ?3)",
                params![self.name, key, text],
            )
            .map_err(&err)?;
            Ok(true)
        })
    }
}

/// Every outcome of a flow, oldest run first, read a page at a time (the history is not
/// held in memory at once).
struct AllRows<'f> {
    flow: &'f SqliteFlow,
    /// The last (run, seq) read.
    after: (i64, i64),
    buffer: std::collections::VecDeque<Result<RowOutcome, StateError>>,
    done: bool,
}

/// Outcomes read at a time by [`AllRows`].
const PAGE: i64 = 1000;

impl Iterator for AllRows<'_> {
    type Item = Result<RowOutcome, StateError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buffer.is_empty() && !self.done {
            let flow = self.flow;
            let err = flow.err();
            let (run, seq) = self.after;
            let page: Result<Vec<(i64, i64, String)>, StateError> = flow.db.read(|c| {
                let mut statement = c
                    .prepare_cached(
                        "SELECT run, seq, outcome FROM rows WHERE flow = ?1 AND (run, seq) > (?2, ?3)
                         ORDER BY run, seq LIMIT ?4",
                    )
                    .map_err(&err)?;
                let rows = statement
                    .query_map(params![flow.name, run, seq, PAGE], |row| {
                        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                    })
                    .map_err(&err)?;
                rows.collect::<rusqlite::Result<_>>().map_err(&err)
            });
            match page {
                Ok(page) => {
                    if (page.len() as i64) < PAGE {
                        self.done = true;
                    }
                    if let Some((run, seq, _)) = page.last() {
                        self.after = (*run, *seq);
                    }
                    self.buffer
                        .extend(page.into_iter().map(|(_, _, text)| parse(&text)));
                }
                Err(e) => {
                    self.done = true;
                    self.buffer.push_back(Err(e));
                }
            }
        }
        self.buffer.pop_front()
    }
}

impl super::migrate::Portable for SqliteStore {
    fn put_handled(&self, flow: &str, handled: &[(String, Handled)]) -> Result<(), StateError> {
        let err = db_error(&self.db.file);
        self.db.write(|tx| {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO seen (flow, key, run, status, digest) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(&err)?;
            for (key, h) in handled {
                insert
                    .execute(params![flow, key, i64_of(h.run), row_status_word(h.status), h.digest])
                    .map_err(&err)?;
            }
            Ok(())
        })
    }
}

impl super::migrate::Export for SqliteStore {
    fn flow_names(&self) -> Result<Vec<String>, StateError> {
        let err = db_error(&self.db.file);
        self.db.read(|c| {
            let mut statement = c
                .prepare(
                    "SELECT flow FROM runs UNION SELECT flow FROM seen UNION SELECT flow FROM queue
                     UNION SELECT flow FROM ledger
                     UNION SELECT flow FROM meta WHERE NOT (flow = '' AND name = ?1)
                     ORDER BY 1",
                )
                .map_err(&err)?;
            let rows = statement
                .query_map([INTEGRITY], |row| row.get(0))
                .map_err(&err)?;
            rows.collect::<rusqlite::Result<_>>().map_err(&err)
        })
    }

    fn all_handled(&self, flow: &str) -> Result<Vec<(String, Handled)>, StateError> {
        let err = db_error(&self.db.file);
        self.db.read(|c| {
            let mut statement = c
                .prepare("SELECT key, run, status, digest FROM seen WHERE flow = ?1 ORDER BY key")
                .map_err(&err)?;
            let rows = statement
                .query_map([flow], |row| {
                    Ok((
                        row.get(0)?,
                        Handled {
                            run: row.get::<_, i64>(1)? as u64,
                            status: row_status_of(&row.get::<_, String>(2)?),
                            digest: row.get(3)?,
                        },
                    ))
                })
                .map_err(&err)?;
            rows.collect::<rusqlite::Result<_>>().map_err(&err)
        })
    }

    fn all_in_flight(&self, flow: &str) -> Result<Vec<(u64, u64, Vec<InFlight>)>, StateError> {
        let marked = self.db.text_pairs(LEDGER_OF_FLOW, [flow])?;
        marked
            .into_iter()
            .map(|(mark, entries)| {
                let (run, seq) = mark.split_once(':').unwrap_or((&mark, "0"));
                Ok((
                    run.parse().unwrap_or(0),
                    seq.parse().unwrap_or(0),
                    parse(&entries)?,
                ))
            })
            .collect()
    }

    fn all_meta(&self, flow: &str) -> Result<Vec<(String, Value)>, StateError> {
        let values = self.db.text_pairs(
            "SELECT name, value FROM meta WHERE flow = ?1 AND NOT (flow = '' AND name = ?2) ORDER BY name",
            params![flow, INTEGRITY],
        )?;
        let values = values
            .into_iter()
            .map(|(name, value)| Ok((name, parse(&value)?)))
            .collect::<Result<Vec<_>, StateError>>()?;
        Ok(super::migrate::moved_meta(values))
    }
}

/// What `switchboard state check` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// SQLite's integrity check: `ok`, or the first problems it found.
    pub pages: Vec<String>,
    /// What the directory's marker says of the database: `None` when they agree.
    pub lost: Option<String>,
    /// The file's size, in bytes.
    pub bytes: u64,
}

impl Checked {
    pub fn ok(&self) -> bool {
        self.pages == ["ok"] && self.lost.is_none()
    }
}

/// Check a state database (`file`: `state.db`, or a backup of one) while it may be in
/// use: SQLite's full integrity check, and — for the database of a state directory —
/// the directory's marker against what the database holds.
pub fn check(file: &Path) -> Result<Checked, StateError> {
    let err = db_error(file);
    if !file.is_file() {
        return Err(StateError::Io(format!(
            "`{}` is not a state database (no such file)",
            file.display()
        )));
    }
    let connection = connect(file, true, READER_CACHE_KIB).map_err(&err)?;
    let pages: Vec<String> = connection
        .prepare("PRAGMA integrity_check(20)")
        .and_then(|mut s| {
            s.query_map([], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(&err)?;
    let facts: Option<Facts> = connection
        .query_row(
            "SELECT value FROM meta WHERE flow = '' AND name = ?1",
            [INTEGRITY],
            |row| row.get::<_, String>(0),
        )
        .optional()
        .map_err(&err)?
        .and_then(|text| serde_json::from_str(&text).ok());
    let beside_marker = file.file_name().is_some_and(|n| n == DB_FILE);
    let dir = file.parent().unwrap_or(Path::new("."));
    let lost = match (
        beside_marker.then(|| guard::read_marker(dir)).flatten(),
        facts,
    ) {
        (None, _) => None,
        (Some(Err(e)), _) => Some(format!("its marker file cannot be read ({e})")),
        (Some(Ok(_)), None) => {
            Some("the database holds none of what the directory recorded".into())
        }
        (Some(Ok(m)), Some(f)) if m.id != f.id => {
            Some("the database is not the one the directory held".into())
        }
        (Some(Ok(m)), Some(f)) if f.durable < m.durable => Some(format!(
            "the database holds {} durable write(s) of the {} the directory recorded",
            f.durable, m.durable
        )),
        _ => None,
    };
    Ok(Checked {
        pages,
        lost,
        bytes: std::fs::metadata(file).map(|m| m.len()).unwrap_or(0),
    })
}

/// Copy a state database into `to` while it may be in use (SQLite's online backup: the
/// copy is the database as of one moment, whole); its size.
pub fn backup(file: &Path, to: &Path) -> Result<u64, StateError> {
    let err = db_error(file);
    if to.exists() {
        return Err(StateError::Io(format!(
            "`{}` exists already: a backup goes to a new file",
            to.display()
        )));
    }
    let connection = connect(file, true, READER_CACHE_KIB).map_err(&err)?;
    connection
        .backup(rusqlite::MAIN_DB, to, None)
        .map_err(db_error(to))?;
    Ok(std::fs::metadata(to).map(|m| m.len()).unwrap_or(0))
}

impl SqliteStore {
    /// Rebuild the database file without the space pruned history left: its size before
    /// and after, in bytes.
    pub fn vacuum(&self) -> Result<(u64, u64), StateError> {
        let err = db_error(&self.db.file);
        let size = || {
            std::fs::metadata(&self.db.file)
                .map(|m| m.len())
                .unwrap_or(0)
        };
        let writer = self.db.writer()?;
        writer
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .map_err(&err)?;
        let before = size();
        writer
            .execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")
            .map_err(&err)?;
        Ok((before, size()))
    }
}
