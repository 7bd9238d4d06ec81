//! The embedded state: one sled database per state directory, held by one process.
//!
//! sled makes writes durable in the order they were made, which is the whole protocol: a
//! row's key is remembered right after its outcome is stored, and a ledger mark goes
//! after both, so after a crash a mark whose keys are remembered by its run (or a later
//! one) is settled. Marks are made durable by a group commit: every writer waiting at
//! the same time shares one flush.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::FutureExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::integrity::Integrity;
use super::search;
use super::{
    Counts, Durable, FlowState, Found, Handled, History, InFlight, Inbox, Journal, Ledger,
    LedgerMark, Meta, Pruned, Retention, RowOutcome, RowStatus, RunStatus, RunSummary, StateError,
    Store, Trigger,
};
use crate::record::{ChunkPrint, Record};

/// How long opening waits for a lock to be let go of before the directory is called in
/// use (see [`SledStore::open_with`]).
const RELEASE_WAIT: Duration = Duration::from_millis(500);

/// Whether opening failed because another holder has the database's lock.
fn is_locked(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io)
        if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("lock"))
}

/// The state database.
#[derive(Clone)]
pub struct SledStore {
    trees: Trees,
    /// Flushes are shared by every writer waiting at the same time (group commit).
    commits: Arc<GroupCommit>,
}

/// sled's errors, said in the state's own words (the error type names no backend).
impl From<sled::Error> for StateError {
    fn from(e: sled::Error) -> Self {
        match e {
            sled::Error::Io(e) => StateError::Io(format!("state directory (sled): {e}")),
            other => StateError::Database(format!("(sled): {other}")),
        }
    }
}

impl SledStore {
    /// Open (or create) the state in `dir`. Only one process may hold it at a time. A
    /// directory whose database lost data is refused ([`StateError::Lost`]).
    pub fn open(dir: &Path) -> Result<SledStore, StateError> {
        SledStore::open_with(dir, false)
    }

    /// [`SledStore::open`]; with `accept_loss`, a database that lost data is used as it
    /// is (what it forgot may be sent again) and the directory's marker follows it.
    pub fn open_with(dir: &Path, accept_loss: bool) -> Result<SledStore, StateError> {
        // sled caches up to 1 GiB by default; a run walks its data once, so a small
        // cache keeps memory flat without costing time (measured in BENCHMARKS.md).
        let open = || {
            // A database this process has just let go of stays locked until sled's
            // background writes of it end, a moment later: wait that long before
            // calling it held by someone else.
            let deadline = Instant::now() + RELEASE_WAIT;
            loop {
                let opened = sled::Config::new()
                    .path(dir)
                    .cache_capacity(16 << 20)
                    .open();
                match &opened {
                    Err(e) if is_locked(e) && Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    _ => return opened,
                }
            }
        };
        let opened = match open() {
            // A database that cannot be read is a loss like any other; accepted, it is
            // moved aside (kept for a person to look at) and a new one begins.
            Err(sled::Error::Corruption { .. }) if accept_loss => {
                let aside = set_aside(dir)?;
                tracing::warn!(dir = %dir.display(), aside = %aside.display(), "the database cannot be read; it was moved aside and a new one begins (--accept-state-loss)");
                open()
            }
            Err(e @ sled::Error::Corruption { .. }) => {
                return Err(StateError::Lost {
                    dir: dir.to_path_buf(),
                    detail: format!("its database cannot be read ({e})"),
                })
            }
            other => other,
        };
        let db = opened.map_err(|e| {
            if is_locked(&e) {
                StateError::Locked(dir.to_path_buf())
            } else {
                StateError::Open {
                    dir: dir.to_path_buf(),
                    detail: e.to_string(),
                }
            }
        })?;
        let trees = Trees {
            seen: db.open_tree("seen")?,
            runs: db.open_tree("runs")?,
            rows: db.open_tree("rows")?,
            meta: db.open_tree("meta")?,
            ledger: db.open_tree("ledger")?,
            queue: db.open_tree("queue")?,
            running: db.open_tree("running")?,
            found: db.open_tree("found")?,
            db: db.clone(),
        };
        let integrity = Integrity::check(dir, &db, &trees.meta, accept_loss)?;
        let commits = Arc::new(GroupCommit::new(db.clone(), integrity));
        Ok(SledStore { trees, commits })
    }

    /// The state of one flow, as its own type.
    pub fn sled_flow(&self, name: &str) -> SledFlow {
        let mut prefix = name.as_bytes().to_vec();
        prefix.push(0);
        SledFlow {
            name: name.to_string(),
            prefix,
            trees: self.trees.clone(),
            commits: Arc::clone(&self.commits),
        }
    }
}

#[async_trait]
impl Store for SledStore {
    fn flow(&self, name: &str) -> Result<Arc<dyn FlowState>, StateError> {
        Ok(Arc::new(self.sled_flow(name)))
    }

    async fn flush(&self) -> Result<(), StateError> {
        self.commits.durable().await
    }

    fn interrupt_stale_runs(&self, at: DateTime<Utc>) -> Result<Vec<(String, u64)>, StateError> {
        let mut stale = Vec::new();
        for item in self.trees.running.iter() {
            let (key, _) = item?;
            let Some(split) = key.iter().position(|b| *b == 0) else {
                self.trees.running.remove(&key)?;
                continue;
            };
            let name = String::from_utf8_lossy(&key[..split]).into_owned();
            let id = u64_of(&key[split + 1..]);
            let flow = self.sled_flow(&name);
            if let Some(mut summary) = flow.run(id)? {
                if summary.status == RunStatus::Running {
                    super::mark_interrupted(&flow, &mut summary, at)?;
                    stale.push((name, id));
                }
            }
            self.trees.running.remove(&key)?;
        }
        Ok(stale)
    }

    fn search(&self, query: &str, limit: usize) -> Result<Vec<Found>, StateError> {
        let mut found: Vec<Found> = Vec::new();
        for term in search::query_terms(query) {
            let whole = !search::matches_start(&term);
            let mut prefix = term.into_bytes();
            if whole {
                prefix.push(0);
            }
            for item in self.trees.found.scan_prefix(&prefix) {
                if found.len() >= limit {
                    return Ok(found);
                }
                let (key, _) = item?;
                if let Some(hit) = found_of(&key) {
                    if !found.contains(&hit) {
                        found.push(hit);
                    }
                }
            }
        }
        Ok(found)
    }
}

/// The index key of one term of an outcome of `flow`.
fn found_key(term: &str, flow: &str, run: u64, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(term.len() + flow.len() + 18);
    key.extend_from_slice(term.as_bytes());
    key.push(0);
    key.extend_from_slice(flow.as_bytes());
    key.push(0);
    key.extend_from_slice(&run.to_be_bytes());
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The record an index key points at (terms and flow names hold no zero byte).
fn found_of(key: &[u8]) -> Option<Found> {
    let (ids, rest) = key.split_at(key.len().checked_sub(16)?);
    let mut parts = ids.splitn(2, |b| *b == 0);
    let _term = parts.next()?;
    let flow = parts.next()?.strip_suffix(&[0])?;
    Some(Found {
        flow: String::from_utf8_lossy(flow).into_owned(),
        run: u64_of(&rest[..8]),
        seq: u64_of(&rest[8..]),
    })
}

/// Move a damaged database's files into `damaged-<time>/` inside its directory (the
/// marker and the daemon's discovery file stay).
fn set_aside(dir: &Path) -> Result<PathBuf, StateError> {
    let aside = dir.join(format!("damaged-{}", Utc::now().format("%Y%m%dT%H%M%S")));
    let io = |e: std::io::Error| StateError::Io(e.to_string());
    std::fs::create_dir_all(&aside).map_err(io)?;
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let keep =
            name == super::integrity::FILE || name == "daemon.json" || name.starts_with("damaged-");
        if !keep {
            std::fs::rename(entry.path(), aside.join(&*name)).map_err(io)?;
        }
    }
    Ok(aside)
}

/// Group commit: a writer that needs its writes on disk asks for a flush, and one flush
/// serves every writer that asked before it started. Concurrent sends of a run and
/// concurrent webhook requests so share one `fsync` instead of queueing for one each.
///
/// The flush a writer leads runs in a task of its own: if that writer goes away (its
/// request dropped, its run cut short), the flush still ends and still wakes the others.
/// A flush that fails wakes them too, and each tries again (and reports its own error):
/// nobody waits for a flush that will never come.
struct GroupCommit {
    db: sled::Db,
    /// The directory's marker, updated after flushes that made new runs durable.
    integrity: Integrity,
    /// Tickets handed out: a writer takes one after its writes.
    asked: AtomicU64,
    /// The highest ticket whose writes are on disk, and how many flushes ended (failed
    /// ones too): a change wakes every waiter.
    done: tokio::sync::watch::Sender<(u64, u64)>,
    /// Held by the flush under way.
    leader: Arc<tokio::sync::Mutex<()>>,
}

impl GroupCommit {
    fn new(db: sled::Db, integrity: Integrity) -> GroupCommit {
        GroupCommit {
            db,
            integrity,
            asked: AtomicU64::new(0),
            done: tokio::sync::watch::Sender::new((0, 0)),
            leader: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// A ticket for everything written so far: [`GroupCommit::wait`] returns once it is
    /// durable. Taking it right after the writes (not when the waiting starts) lets
    /// writers that wrote before a flush began share that flush.
    fn ticket(&self) -> Ticket {
        Ticket(self.asked.fetch_add(1, Ordering::SeqCst) + 1)
    }

    /// Return once everything this task wrote before the call is durable.
    async fn durable(self: &Arc<Self>) -> Result<(), StateError> {
        let ticket = self.ticket();
        self.wait(ticket).await
    }

    /// A future, shareable, that resolves once what was written before now is durable.
    fn durable_later(self: &Arc<Self>) -> Durable {
        let ticket = self.ticket();
        let commits = Arc::clone(self);
        async move { commits.wait(ticket).await.map_err(Arc::new) }
            .boxed()
            .shared()
    }

    /// Return once the writes made before `ticket` was taken are durable.
    async fn wait(self: &Arc<Self>, Ticket(ticket): Ticket) -> Result<(), StateError> {
        let mut done = self.done.subscribe();
        loop {
            if done.borrow_and_update().0 >= ticket {
                return Ok(());
            }
            match Arc::clone(&self.leader).try_lock_owned() {
                Ok(leading) => {
                    // Every ticket up to here was taken after its writes: this flush,
                    // which starts now, covers them all.
                    let covered = self.asked.load(Ordering::SeqCst);
                    let runs = self.integrity.begun();
                    let commits = Arc::clone(self);
                    let flushed = tokio::spawn(async move {
                        let flushed = flush(commits.db.clone()).await;
                        if flushed.is_ok() {
                            commits.integrity.durable(runs);
                        }
                        // Free the lead before waking the others, so that one of them
                        // can lead the next flush at once.
                        drop(leading);
                        commits.done.send_modify(|(d, ended)| {
                            if flushed.is_ok() {
                                *d = (*d).max(covered);
                            }
                            *ended += 1;
                        });
                        flushed
                    })
                    .await;
                    match flushed {
                        Ok(result) => result?,
                        Err(e) => {
                            return Err(StateError::Stopped(format!("the flush stopped: {e}")))
                        }
                    }
                }
                Err(_) => {
                    // Someone is flushing; their flush may have started before our
                    // writes, so wait for it to end and look again.
                    if done.changed().await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// Writes waiting to be durable: everything written before the ticket was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ticket(u64);

/// Flush on a blocking thread.
///
/// The store uses no sled transactions or batches, on purpose: in sled 0.34 a flush
/// holds the store's read lock while it waits for the log flusher, which itself needs
/// that lock; a transaction or batch waiting for the write lock in between blocks new
/// readers, and all three wait forever (spacejam/sled#1412; found with 1,000 flows in one
/// daemon). Plain writes take only the read lock.
async fn flush(db: sled::Db) -> Result<(), StateError> {
    tokio::task::spawn_blocking(move || db.flush())
        .await
        .map_err(|e| StateError::Stopped(format!("the flush stopped: {e}")))??;
    Ok(())
}

/// The store's trees, shared by every flow: each flow's keys start with its name and a
/// zero byte (one tree per flow would cost ten thousand flows seconds to open and
/// hundreds of megabytes).
#[derive(Clone)]
struct Trees {
    /// `flow \0 record key` → the run that handled it.
    seen: sled::Tree,
    /// `flow \0 run id` → [`RunSummary`].
    runs: sled::Tree,
    /// `flow \0 run id, lowest seq, highest seq` → a chunk of [`RowOutcome`]s (older
    /// versions: `flow \0 run id, first seq`).
    rows: sled::Tree,
    /// `flow \0 name` → small values (primed, the armed schedule).
    meta: sled::Tree,
    /// `flow \0 record key` → [`InFlight`]: records whose send has started and whose
    /// outcome is not stored yet. What is here after a crash may have been sent.
    ledger: sled::Tree,
    /// `flow \0 record key` → a pushed event waiting for its run: [`QUEUED`], its arrival
    /// number, then its fields as JSON (older versions stored the fields alone).
    queue: sled::Tree,
    /// `flow \0 run id` → nothing: the runs under way, so that the ones a stopped
    /// process left can be found at the next start without reading all history.
    running: sled::Tree,
    /// `term \0 flow \0 run id, seq` → nothing: the search index ([`super::search`]),
    /// one entry per term of each outcome of an ended run, across flows (one scan finds
    /// a value in all of them); written after the run by [`History::index_runs`], off
    /// the sending path.
    found: sled::Tree,
    /// The database, for numbers that only grow (queued events' arrival order).
    db: sled::Db,
}

/// The first byte of a queued event's value (a JSON object starts with `{`).
const QUEUED: u8 = 1;

/// Ledger keys of batch entries start with this (after the flow's prefix); record keys
/// cannot, as no source makes a key that starts with a zero byte.
const GROUP: &[u8] = b"\0\0group\0";

const PRIMED: &[u8] = b"primed";

/// Meta keys of the chunks of the source found to hold nothing new start with this
/// (followed by the chunk's print; the value is the epoch it was found at and the last
/// run that saw it).
const SETTLED_CHUNK: &[u8] = b"\0chunk\0";

/// Meta key: the flow's chunk epoch ([`Journal::chunk_epoch`]).
const CHUNK_EPOCH: &[u8] = b"\0chunk-epoch";

/// Meta key: the last run the search index covers.
const INDEXED: &[u8] = b"\0search-indexed";

/// What the `seen` tree keeps for a remembered key.
#[derive(Serialize, Deserialize)]
struct Seen {
    run: u64,
    status: RowStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
}

impl Seen {
    fn of(outcome: &RowOutcome) -> Seen {
        Seen {
            run: outcome.run,
            status: outcome.status,
            digest: outcome.digest.clone(),
        }
    }
}

/// One flow's slice of the store.
#[derive(Clone)]
pub struct SledFlow {
    name: String,
    prefix: Vec<u8>,
    trees: Trees,
    commits: Arc<GroupCommit>,
}

impl SledFlow {
    /// This flow's key for `suffix`.
    fn key(&self, suffix: &[u8]) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.prefix.len() + suffix.len());
        key.extend_from_slice(&self.prefix);
        key.extend_from_slice(suffix);
        key
    }

    /// This flow's meta key for a settled chunk.
    fn chunk_key(&self, print: &ChunkPrint) -> Vec<u8> {
        let mut suffix = SETTLED_CHUNK.to_vec();
        suffix.extend_from_slice(print.as_bytes());
        self.key(&suffix)
    }

    /// Forget the handled keys of `rows` that run `run` is the last word on (a later run
    /// that handled the key again keeps it); how many.
    fn forget_handled_by(
        &self,
        run: u64,
        rows: &[RowOutcome],
        dry_run: bool,
    ) -> Result<u64, StateError> {
        let mut forgotten = 0;
        for row in rows {
            let key = self.key(row.key.as_bytes());
            let Some(value) = self.trees.seen.get(&key)? else {
                continue;
            };
            let seen: Seen = serde_json::from_slice(&value)?;
            if seen.run == run {
                forgotten += 1;
                if !dry_run {
                    if forgotten == 1 {
                        // A forgotten key is new again: no chunk that holds it is settled.
                        self.next_chunk_epoch()?;
                    }
                    self.trees.seen.remove(key)?;
                }
            }
        }
        if forgotten > 0 && !dry_run {
            // Again once the keys are gone: a run that looked them up while they went
            // read the epoch before this.
            self.next_chunk_epoch()?;
        }
        Ok(forgotten)
    }

    /// Move the chunk epoch on: every settled chunk noted so far is to be looked up again.
    fn next_chunk_epoch(&self) -> Result<(), StateError> {
        self.trees
            .meta
            .fetch_and_update(self.key(CHUNK_EPOCH), |epoch| {
                Some((epoch.map_or(0, u64_of) + 1).to_be_bytes().to_vec())
            })?;
        Ok(())
    }

    /// The last run whose records the search index holds (runs are indexed in order).
    fn indexed(&self) -> Result<u64, StateError> {
        self.meta_number(INDEXED)
    }

    /// A number this flow keeps under a meta key (0 before one was written).
    fn meta_number(&self, key: &[u8]) -> Result<u64, StateError> {
        Ok(self
            .trees
            .meta
            .get(self.key(key))?
            .map_or(0, |v| u64_of(&v)))
    }

    /// Whether an in-flight entry's outcome is on disk: its key remembered by its run or
    /// a later one.
    fn is_settled(&self, entry: &InFlight) -> Result<bool, StateError> {
        Ok(match self.trees.seen.get(self.key(entry.key.as_bytes()))? {
            Some(seen) => serde_json::from_slice::<Seen>(&seen)
                .map(|seen| seen.run >= entry.run)
                .unwrap_or(false),
            None => false,
        })
    }
}

impl FlowState for SledFlow {
    fn name(&self) -> &str {
        &self.name
    }
}

#[async_trait]
impl Journal for SledFlow {
    fn begin_run(
        &self,
        trigger: Trigger,
        started_at: DateTime<Utc>,
    ) -> Result<RunSummary, StateError> {
        let id = match self
            .trees
            .runs
            .scan_prefix(&self.prefix)
            .next_back()
            .transpose()?
        {
            Some((k, _)) => u64_of(&k[self.prefix.len()..]) + 1,
            None => 1,
        };
        let summary = RunSummary {
            version: 1,
            id,
            flow: self.name.clone(),
            trigger,
            started_at,
            finished_at: None,
            status: RunStatus::Running,
            counts: Counts::default(),
            error: None,
            node: None,
        };
        self.trees
            .runs
            .insert(self.key(&id.to_be_bytes()), serde_json::to_vec(&summary)?)?;
        self.trees
            .running
            .insert(self.key(&id.to_be_bytes()), b"".as_slice())?;
        self.commits.integrity.run_begun()?;
        Ok(summary)
    }

    fn save_run(&self, summary: &RunSummary) -> Result<(), StateError> {
        self.trees.runs.insert(
            self.key(&summary.id.to_be_bytes()),
            serde_json::to_vec(summary)?,
        )?;
        if summary.status != RunStatus::Running {
            self.trees
                .running
                .remove(self.key(&summary.id.to_be_bytes()))?;
        }
        Ok(())
    }

    fn handled(&self, key: &str) -> Result<Option<Handled>, StateError> {
        Ok(self.trees.seen.get(self.key(key.as_bytes()))?.map(|seen| {
            // Older versions stored other shapes: a key is handled whatever its value.
            serde_json::from_slice::<Seen>(&seen)
                .map(|s| Handled {
                    run: s.run,
                    status: s.status,
                    digest: s.digest,
                })
                .unwrap_or(Handled {
                    run: 0,
                    status: RowStatus::Sent,
                    digest: None,
                })
        }))
    }

    fn chunk_epoch(&self) -> Result<u64, StateError> {
        self.meta_number(CHUNK_EPOCH)
    }

    fn chunk_settled(&self, print: &ChunkPrint, run: u64) -> Result<bool, StateError> {
        let key = self.chunk_key(print);
        let Some(note) = self.trees.meta.get(&key)? else {
            return Ok(false);
        };
        let (epoch, seen_by) = note_of(&note);
        if epoch != self.chunk_epoch()? {
            return Ok(false);
        }
        if seen_by != run {
            self.trees.meta.insert(key, &note_value(epoch, run))?;
        }
        Ok(true)
    }

    fn settle_chunk(&self, print: &ChunkPrint, epoch: u64, run: u64) -> Result<(), StateError> {
        self.trees
            .meta
            .insert(self.chunk_key(print), &note_value(epoch, run))?;
        Ok(())
    }

    fn forget_chunks_unseen_by(&self, run: u64) -> Result<(), StateError> {
        let now = self.chunk_epoch()?;
        for item in self.trees.meta.scan_prefix(self.key(SETTLED_CHUNK)) {
            let (key, note) = item?;
            let (epoch, seen_by) = note_of(&note);
            if epoch != now || seen_by != run {
                self.trees.meta.remove(key)?;
            }
        }
        Ok(())
    }

    fn primed(&self) -> Result<bool, StateError> {
        Ok(self.trees.meta.contains_key(self.key(PRIMED))?)
    }

    fn set_primed(&self) -> Result<(), StateError> {
        self.trees.meta.insert(self.key(PRIMED), b"1".as_slice())?;
        Ok(())
    }

    fn mark_in_flight(
        &self,
        run: u64,
        first_seq: u64,
        entries: &[InFlight],
    ) -> Result<(LedgerMark, Durable), StateError> {
        let mut suffix = GROUP.to_vec();
        suffix.extend_from_slice(&run.to_be_bytes());
        suffix.extend_from_slice(&first_seq.to_be_bytes());
        let key = self.key(&suffix);
        self.trees
            .ledger
            .insert(key.as_slice(), serde_json::to_vec(entries)?)?;
        // The ticket is taken right after the write: marks made together share a flush.
        Ok((LedgerMark(key), self.commits.durable_later()))
    }

    fn record(
        &self,
        outcomes: &[(&RowOutcome, bool)],
        settled: &[LedgerMark],
    ) -> Result<(), StateError> {
        // Outcomes go in chunks (one sled value per chunk, keyed by its first row): a
        // write per row was half of a run's time. Plain writes (see [`flush`] for why).
        for chunk in outcomes.chunks(ROWS_PER_VALUE) {
            let rows: Vec<&RowOutcome> = chunk.iter().map(|(outcome, _)| *outcome).collect();
            // Outcomes come as sends end, not in record order: the key says the lowest
            // and the highest record of the chunk, so a page finds every chunk it needs.
            let (Some(first), Some(min), Some(max)) = (
                rows.first(),
                rows.iter().map(|r| r.seq).min(),
                rows.iter().map(|r| r.seq).max(),
            ) else {
                continue;
            };
            let mut span = [0u8; 24];
            span[..8].copy_from_slice(&first.run.to_be_bytes());
            span[8..16].copy_from_slice(&min.to_be_bytes());
            span[16..].copy_from_slice(&max.to_be_bytes());
            self.trees
                .rows
                .insert(self.key(&span), serde_json::to_vec(&rows)?)?;
        }
        // A key remembered before and now judged (failed, filtered) may be new again for
        // the data a settled chunk holds: those notes go first, before the key changes.
        let mut judged_again = false;
        for (outcome, remember) in outcomes {
            let judged = matches!(outcome.status, RowStatus::Failed | RowStatus::Filtered);
            if *remember
                && judged
                && self
                    .trees
                    .seen
                    .contains_key(self.key(outcome.key.as_bytes()))?
            {
                judged_again = true;
                break;
            }
        }
        if judged_again {
            self.next_chunk_epoch()?;
        }
        for (outcome, remember) in outcomes {
            if *remember {
                self.trees.seen.insert(
                    self.key(outcome.key.as_bytes()),
                    serde_json::to_vec(&Seen::of(outcome))?,
                )?;
                self.trees.queue.remove(self.key(outcome.key.as_bytes()))?;
            }
        }
        if judged_again {
            // Again once the keys are judged: see [`SledFlow::forget_handled_by`].
            self.next_chunk_epoch()?;
        }
        for mark in settled {
            self.trees.ledger.remove(mark.0.as_slice())?;
        }
        Ok(())
    }

    fn recover(&self) -> Result<Ledger, StateError> {
        let mut ledger = Ledger::default();
        for item in self.trees.ledger.scan_prefix(&self.prefix) {
            let (key, value) = item?;
            let mark = LedgerMark(key.to_vec());
            if key[self.prefix.len()..].starts_with(GROUP) {
                let members: Vec<InFlight> = serde_json::from_slice(&value)?;
                for member in members {
                    if !self.is_settled(&member)? {
                        ledger.entries.push(member);
                    }
                }
                ledger.marks.push(mark);
                continue;
            }
            // An entry of its own, as earlier versions wrote for every send.
            let entry: InFlight = serde_json::from_slice(&value)?;
            if self.is_settled(&entry)? {
                self.trees.ledger.remove(&key)?;
            } else {
                ledger.entries.push(entry);
                ledger.marks.push(mark);
            }
        }
        Ok(ledger)
    }

    async fn durable(&self) -> Result<(), StateError> {
        self.commits.durable().await
    }

    fn interrupt_unfinished_runs(&self, at: DateTime<Utc>) -> Result<usize, StateError> {
        let running: Vec<RunSummary> = self
            .trees
            .runs
            .scan_prefix(&self.prefix)
            .map(|item| Ok(serde_json::from_slice::<RunSummary>(&item?.1)?))
            .collect::<Result<Vec<_>, StateError>>()?
            .into_iter()
            .filter(|summary| summary.status == RunStatus::Running)
            .collect();
        let count = running.len();
        for mut summary in running {
            super::mark_interrupted(self, &mut summary, at)?;
        }
        Ok(count)
    }
}

impl History for SledFlow {
    fn runs(&self, limit: usize) -> Result<Vec<RunSummary>, StateError> {
        self.trees
            .runs
            .scan_prefix(&self.prefix)
            .rev()
            .take(limit)
            .map(|item| Ok(serde_json::from_slice(&item?.1)?))
            .collect()
    }

    fn run(&self, id: u64) -> Result<Option<RunSummary>, StateError> {
        match self.trees.runs.get(self.key(&id.to_be_bytes()))? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    fn rows(&self, run: u64) -> Result<Vec<RowOutcome>, StateError> {
        let mut rows = Vec::new();
        for item in self.trees.rows.scan_prefix(self.key(&run.to_be_bytes())) {
            rows.extend(rows_of(&item?.1)?);
        }
        rows.sort_by_key(|row| row.seq);
        Ok(rows)
    }

    fn rows_from(
        &self,
        run: u64,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<RowOutcome>, StateError> {
        let prefix = self.key(&run.to_be_bytes());
        let mut rows = Vec::new();
        // Records `start..end` make a page (record numbers have no gaps unless a crash
        // left some); the chunks holding them are those whose span meets it. A chunk's
        // key starts with its lowest record, so the scan stops at the first past the page.
        let mut start = from_seq;
        loop {
            let end = start.saturating_add(limit as u64);
            let mut more = false;
            for item in self.trees.rows.scan_prefix(&prefix) {
                let (key, value) = item?;
                let span = &key[prefix.len()..];
                // Older versions keyed a chunk by its first record only: read them all.
                let (min, max) = match span.len() {
                    16.. => (u64_of(&span[..8]), u64_of(&span[8..16])),
                    _ => (0, u64::MAX),
                };
                if min >= end {
                    more = true;
                    break;
                }
                if max < start {
                    continue;
                }
                rows.extend(
                    rows_of(&value)?
                        .into_iter()
                        .filter(|row| row.seq >= start && row.seq < end),
                );
            }
            if rows.len() >= limit || !more {
                break;
            }
            start = end;
        }
        rows.sort_by_key(|row| row.seq);
        rows.truncate(limit);
        Ok(rows)
    }

    fn index_runs(&self) -> Result<u64, StateError> {
        let mut indexed = self.indexed()?;
        let mut rows_indexed = 0;
        let from = self.key(&(indexed + 1).to_be_bytes());
        let end = self.key(&u64::MAX.to_be_bytes());
        for item in self.trees.runs.range(from..end) {
            let (key, value) = item?;
            let summary: RunSummary = serde_json::from_slice(&value)?;
            // Runs are indexed in order, once they ended: one under way stops the pass.
            if summary.status == RunStatus::Running {
                break;
            }
            for chunk in self
                .trees
                .rows
                .scan_prefix(self.key(&summary.id.to_be_bytes()))
            {
                for row in rows_of(&chunk?.1)? {
                    for term in search::terms_of(&row) {
                        self.trees.found.insert(
                            found_key(&term, &self.name, row.run, row.seq),
                            b"".as_slice(),
                        )?;
                    }
                    rows_indexed += 1;
                }
            }
            indexed = u64_of(&key[self.prefix.len()..]);
            self.trees
                .meta
                .insert(self.key(INDEXED), &indexed.to_be_bytes())?;
        }
        Ok(rows_indexed)
    }

    fn all_rows(&self) -> Box<dyn Iterator<Item = Result<RowOutcome, StateError>> + Send + '_> {
        Box::new(self.trees.rows.scan_prefix(&self.prefix).flat_map(|item| {
            match item
                .map_err(StateError::from)
                .and_then(|(_, v)| rows_of(&v))
            {
                Ok(rows) => rows.into_iter().map(Ok).collect::<Vec<_>>(),
                Err(e) => vec![Err(e)],
            }
        }))
    }

    fn prune(&self, retention: &Retention, dry_run: bool) -> Result<Pruned, StateError> {
        let runs: Vec<RunSummary> = self
            .trees
            .runs
            .scan_prefix(&self.prefix)
            .map(|item| Ok(serde_json::from_slice::<RunSummary>(&item?.1)?))
            .collect::<Result<_, StateError>>()?;
        let indexed = self.indexed()?;
        let mut pruned = Pruned::default();
        for run in super::prunable(&runs, retention) {
            for item in self.trees.rows.scan_prefix(self.key(&run.id.to_be_bytes())) {
                let (row_key, value) = item?;
                let rows = rows_of(&value)?;
                pruned.records += rows.len() as u64;
                if !dry_run && run.id <= indexed {
                    for row in &rows {
                        for term in search::terms_of(row) {
                            self.trees
                                .found
                                .remove(found_key(&term, &self.name, row.run, row.seq))?;
                        }
                    }
                }
                if retention.forget_handled {
                    // The run's own records name the keys it handled: no scan of them all.
                    pruned.keys += self.forget_handled_by(run.id, &rows, dry_run)?;
                }
                if !dry_run {
                    self.trees.rows.remove(row_key)?;
                }
            }
            if !dry_run {
                self.trees.runs.remove(self.key(&run.id.to_be_bytes()))?;
            }
            pruned.runs += 1;
        }
        Ok(pruned)
    }

    fn backlog(&self) -> Result<(usize, usize), StateError> {
        let queued = self.trees.queue.scan_prefix(&self.prefix).keys().count();
        let mut in_flight = 0;
        for item in self.trees.ledger.scan_prefix(&self.prefix) {
            let (key, value) = item?;
            in_flight += if key[self.prefix.len()..].starts_with(GROUP) {
                serde_json::from_slice::<Vec<serde::de::IgnoredAny>>(&value)?.len()
            } else {
                1
            };
        }
        Ok((queued, in_flight))
    }
}

impl Inbox for SledFlow {
    fn enqueue(&self, records: &[Record]) -> Result<(), StateError> {
        for record in records {
            let arrived = self.trees.db.generate_id()?;
            let mut value = vec![QUEUED];
            value.extend_from_slice(&arrived.to_be_bytes());
            serde_json::to_writer(&mut value, &record.fields)?;
            self.trees
                .queue
                .insert(self.key(record.key.as_bytes()), value)?;
        }
        Ok(())
    }

    fn queued(&self) -> Result<Vec<Record>, StateError> {
        let mut queued: Vec<(u64, Record)> = self
            .trees
            .queue
            .scan_prefix(&self.prefix)
            .map(|item| {
                let (key, value) = item?;
                let key = String::from_utf8_lossy(&key[self.prefix.len()..]).into_owned();
                let (arrived, fields) = match value.split_first() {
                    Some((&QUEUED, rest)) if rest.len() >= 8 => {
                        let mut n = [0u8; 8];
                        n.copy_from_slice(&rest[..8]);
                        (u64::from_be_bytes(n), &rest[8..])
                    }
                    _ => (0, &value[..]),
                };
                Ok((arrived, Record::new(key, serde_json::from_slice(fields)?)))
            })
            .collect::<Result<_, StateError>>()?;
        // In the order they arrived: a contact edited twice is sent edit by edit.
        queued.sort_by_key(|(arrived, _)| *arrived);
        Ok(queued.into_iter().map(|(_, record)| record).collect())
    }

    fn has_queued(&self) -> Result<bool, StateError> {
        Ok(self
            .trees
            .queue
            .scan_prefix(&self.prefix)
            .next()
            .transpose()?
            .is_some())
    }

    fn drop_handled_from_queue(&self) -> Result<usize, StateError> {
        let mut dropped = 0;
        for item in self.trees.queue.scan_prefix(&self.prefix) {
            let (key, _) = item?;
            if self.trees.seen.contains_key(&key)? {
                self.trees.queue.remove(&key)?;
                dropped += 1;
            }
        }
        Ok(dropped)
    }
}

impl Meta for SledFlow {
    fn load_meta(&self, key: &str) -> Result<Option<Value>, StateError> {
        match self.trees.meta.get(self.key(key.as_bytes()))? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    fn save_meta(&self, key: &str, value: &Value) -> Result<(), StateError> {
        self.trees
            .meta
            .insert(self.key(key.as_bytes()), serde_json::to_vec(value)?)?;
        Ok(())
    }
}

/// Row outcomes stored together in one value of the `rows` tree.
const ROWS_PER_VALUE: usize = 64;

/// The outcomes in one value of the `rows` tree: a chunk, or (as older versions wrote)
/// a single outcome.
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

/// A settled chunk's note: the epoch it was found at and the last run that saw it.
fn note_value(epoch: u64, run: u64) -> [u8; 16] {
    let mut note = [0u8; 16];
    note[..8].copy_from_slice(&epoch.to_be_bytes());
    note[8..].copy_from_slice(&run.to_be_bytes());
    note
}

fn note_of(note: &[u8]) -> (u64, u64) {
    match note.split_at_checked(8) {
        Some((epoch, run)) => (u64_of(epoch), u64_of(run)),
        None => (u64::MAX, 0),
    }
}

fn u64_of(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    let n = bytes.len().min(8);
    buf[..n].copy_from_slice(&bytes[..n]);
    u64::from_be_bytes(buf)
}

/// The names of the flows with something in `tree` (each key starts with the flow's name
/// and a zero byte).
fn flows_in(
    tree: &sled::Tree,
    names: &mut std::collections::BTreeSet<String>,
) -> Result<(), StateError> {
    let mut next: Option<Vec<u8>> = Some(Vec::new());
    // One key per flow: after reading a flow's first key, jump past its prefix.
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

impl super::migrate::Portable for SledStore {
    fn flow_names(&self) -> Result<Vec<String>, StateError> {
        let mut names = std::collections::BTreeSet::new();
        for tree in [
            &self.trees.runs,
            &self.trees.seen,
            &self.trees.queue,
            &self.trees.ledger,
            &self.trees.meta,
        ] {
            flows_in(tree, &mut names)?;
        }
        // The state's own flow ('') holds its integrity mark alone unless it holds more.
        if names.contains("") && self.all_meta("")?.is_empty() {
            names.remove("");
        }
        Ok(names.into_iter().collect())
    }

    fn all_handled(&self, flow: &str) -> Result<Vec<(String, Handled)>, StateError> {
        let state = self.sled_flow(flow);
        let mut handled = Vec::new();
        for item in self.trees.seen.scan_prefix(&state.prefix) {
            let (key, _) = item?;
            let name = String::from_utf8_lossy(&key[state.prefix.len()..]).into_owned();
            if let Some(h) = state.handled(&name)? {
                handled.push((name, h));
            }
        }
        Ok(handled)
    }

    fn put_handled(&self, _flow: &str, _handled: &[(String, Handled)]) -> Result<(), StateError> {
        Err(StateError::Io(
            "a sled state is only read from: a state moves into SQLite or PostgreSQL".into(),
        ))
    }

    fn all_in_flight(&self, flow: &str) -> Result<Vec<(u64, u64, Vec<InFlight>)>, StateError> {
        let state = self.sled_flow(flow);
        let mut marks = Vec::new();
        let mut single: std::collections::BTreeMap<u64, Vec<InFlight>> = Default::default();
        for item in self.trees.ledger.scan_prefix(&state.prefix) {
            let (key, value) = item?;
            let suffix = &key[state.prefix.len()..];
            if let Some(ids) = suffix.strip_prefix(GROUP) {
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
        let state = self.sled_flow(flow);
        let mut values = Vec::new();
        for item in self.trees.meta.scan_prefix(&state.prefix) {
            let (key, value) = item?;
            let Ok(name) = std::str::from_utf8(&key[state.prefix.len()..]) else {
                continue;
            };
            // The directory's integrity mark is the store's own, not moved.
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
mod tests {
    use super::*;
    use serde_json::Map;

    use crate::state::tests::outcome;

    #[tokio::test]
    async fn a_writer_that_goes_away_while_leading_a_flush_leaves_nobody_waiting(
    ) -> Result<(), StateError> {
        use futures::FutureExt as _;
        let dir = tempfile::tempdir().map_err(|e| StateError::Io(e.to_string()))?;
        let store = SledStore::open(dir.path())?;
        let flow = store.flow("orders")?;
        flow.enqueue(&[Record::new("A-1", Map::new())])?;
        // The first writer leads the flush, the second waits for it; the first is dropped
        // (its request cancelled) while its flush is under way.
        let mut leader = Box::pin(store.flush());
        let mut waiter = Box::pin(store.flush());
        assert!(
            (&mut leader).now_or_never().is_none(),
            "the flush is under way"
        );
        flow.enqueue(&[Record::new("A-2", Map::new())])?;
        let _ = (&mut waiter).now_or_never();
        drop(leader);
        tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .map_err(|_| StateError::Stopped("the waiter was left waiting".into()))??;
        Ok(())
    }

    #[test]
    fn queued_events_come_out_in_the_order_they_arrived() -> Result<(), StateError> {
        let dir = tempfile::tempdir().map_err(|e| StateError::Io(e.to_string()))?;
        let store = SledStore::open(dir.path())?;
        let flow = store.sled_flow("hooks");
        // A value as older versions wrote it: the fields alone (read first).
        store
            .trees
            .queue
            .insert(flow.key(b"old"), br#"{"n": 0}"#.to_vec())?;
        let event = |key: &str, n: u64| {
            let mut fields = Map::new();
            fields.insert("n".into(), n.into());
            Record::new(key, fields)
        };
        flow.enqueue(&[event("zz", 1), event("aa", 2)])?;
        flow.enqueue(&[event("mm", 3)])?;
        let order: Vec<String> = flow.queued()?.into_iter().map(|r| r.key).collect();
        assert_eq!(order, ["old", "zz", "aa", "mm"], "arrival, not key, order");
        Ok(())
    }

    fn copy_dir(from: &Path, to: &Path) {
        let _ = std::fs::create_dir_all(to);
        for entry in std::fs::read_dir(from).into_iter().flatten().flatten() {
            let target = to.join(entry.file_name());
            if entry.path().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                let _ = std::fs::copy(entry.path(), target);
            }
        }
    }

    async fn one_run(dir: &Path) -> Result<(), StateError> {
        let store = SledStore::open(dir)?;
        let flow = store.flow("orders")?;
        let run = flow.begin_run(Trigger::Manual, Utc::now())?;
        flow.record(
            &[(
                &outcome(run.id, 0, &format!("A-{}", run.id), RowStatus::Sent),
                true,
            )],
            &[],
        )?;
        store.flush().await
    }

    #[tokio::test]
    async fn a_database_that_lost_data_is_refused_until_the_loss_is_accepted(
    ) -> Result<(), StateError> {
        let tmp = tempfile::tempdir().map_err(|e| StateError::Io(e.to_string()))?;
        let dir = tmp.path().join("state");
        one_run(&dir).await?;
        let older = tmp.path().join("older");
        copy_dir(&dir, &older);
        one_run(&dir).await?;
        one_run(&dir).await?;

        // Emptied, replaced by random bytes, deleted: each is found out.
        for damage in ["empty", "random", "deleted"] {
            let damaged = tmp.path().join(damage);
            copy_dir(&dir, &damaged);
            let db = damaged.join("db");
            match damage {
                "empty" => std::fs::write(&db, b"").map_err(|e| StateError::Io(e.to_string()))?,
                "random" => std::fs::write(
                    &db,
                    (0..8192u32)
                        .map(|i| (i * 7919 % 251) as u8)
                        .collect::<Vec<u8>>(),
                )
                .map_err(|e| StateError::Io(e.to_string()))?,
                _ => std::fs::remove_file(&db).map_err(|e| StateError::Io(e.to_string()))?,
            }
            match SledStore::open(&damaged) {
                Err(StateError::Lost { detail, .. }) => assert!(
                    detail.contains("none of the runs") || detail.contains("cannot be read"),
                    "{detail}"
                ),
                Err(other) => panic!("{damage}: expected Lost, got {other}"),
                Ok(_) => panic!("{damage}: a damaged database was opened as if new"),
            }
            assert!(
                SledStore::open_with(&damaged, true).is_ok(),
                "{damage}: accepted"
            );
        }
        // An older copy of the database put back (not of the whole directory, whose
        // marker would go back with it): it went back in time.
        let marker = std::fs::read(dir.join(super::super::integrity::FILE))
            .map_err(|e| StateError::Io(e.to_string()))?;
        std::fs::remove_dir_all(&dir).map_err(|e| StateError::Io(e.to_string()))?;
        copy_dir(&older, &dir);
        std::fs::write(dir.join(super::super::integrity::FILE), marker)
            .map_err(|e| StateError::Io(e.to_string()))?;
        match SledStore::open(&dir) {
            Err(StateError::Lost { detail, .. }) => {
                assert!(
                    detail.contains("knows 1 run(s), the directory had begun 3"),
                    "{detail}"
                )
            }
            Err(other) => panic!("expected Lost, got {other}"),
            Ok(_) => panic!("an older database was opened as if current"),
        }
        // Accepted knowingly: the directory follows the database from then on.
        drop(SledStore::open_with(&dir, true)?);
        one_run(&dir).await?;
        assert!(SledStore::open(&dir).is_ok());
        Ok(())
    }
}
