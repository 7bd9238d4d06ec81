//! The state of runs: for each flow the keys already handled, the send ledger, the queue
//! of pushed events and the run history (each run's summary and each row's outcome) —
//! behind [`Store`] and, per flow, [`FlowState`] split by who uses it: the run's
//! [`Journal`] (begin a run, sort a chunk, mark sends in flight, record outcomes, settle,
//! recover a crash's ledger — the durability protocol lives with each implementation),
//! the [`History`] people read, the [`Inbox`] of pushed events and [`Meta`] values.
//! [`SqliteStore`] is the embedded one: one SQLite file per state directory; [`PgStore`]
//! keeps the same in PostgreSQL tables. [`sled_import`] reads the state directories of
//! the releases whose state was sled, for `state migrate` alone.
//!
//! The promise every implementation keeps: a send is marked in flight and that mark is
//! durable before the send starts; a row's outcome, then its remembered key, are stored
//! before its ledger mark goes; so after a crash the ledger holds exactly the sends whose
//! fate is unknown. Stored values carry a `version` and ignore unknown fields, so newer
//! binaries read older state.

pub mod binding;
mod chunks;
mod commit;
pub mod migrate;
pub mod postgres;
pub mod search;
pub mod sled_import;
pub mod sqlite;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::future::{BoxFuture, Shared};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::record::{ChunkPrint, Record};

pub use self::chunks::{ChunkNote, Sorted};
pub use self::postgres::PgStore;
pub use self::search::Found;
pub use self::sqlite::SqliteStore;

/// Problems with the state directory.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state directory `{0}` is in use by another switchboard process (is a daemon running on it?)")]
    Locked(PathBuf),
    #[error("state directory `{}`: {detail}", dir.display())]
    Open { dir: PathBuf, detail: String },
    /// The PostgreSQL state (where, without a password, and what went wrong).
    #[error("state database {0}")]
    Database(String),
    /// Another node took the flow over (this one's lease expired): what this node still
    /// writes for the run is refused, so nothing is recorded twice.
    #[error("flow `{0}`: another node took the flow over (this node's lease on it expired), so this node's writes for it are refused")]
    Fenced(String),
    #[error("state store holds a value that cannot be read: {0}")]
    Corrupt(#[from] serde_json::Error),
    /// A thread working on the state panicked while it held it: what it committed before
    /// is kept; what it was writing is not.
    #[error("{0} panicked; the state keeps what was committed before it (restart switchboard; please report the panic)")]
    Panicked(&'static str),
    /// The work the caller waited for ended without an answer (its task stopped, or the
    /// process is stopping).
    #[error("{0}")]
    Stopped(String),
    /// A value kept changing under a compare-and-set that was tried again and again.
    #[error("{0}")]
    Contended(String),
    /// The ledger mark a send waits for could not be made durable: the send does not
    /// leave.
    #[error("the ledger could not be made durable: {0}")]
    NotDurable(std::sync::Arc<StateError>),
    /// The database lost data (deleted, emptied, replaced, restored from an older copy):
    /// using it would resend what was sent.
    #[error("state directory `{}` has lost data: {detail}\n  a run now would send again rows that were already sent, so it is refused\n  hint: restore the directory from a backup; or, if you know what was lost and accept resending it, run again with --accept-state-loss", dir.display())]
    Lost { dir: PathBuf, detail: String },
    /// The disk (or the database's quota) is full: nothing more can be written until
    /// there is room; what was written before is kept.
    #[error("{0}: no space left on the device\n  hint: free some space (or prune history: `switchboard prune`); the state goes on by itself once it has room")]
    DiskFull(String),
    /// Reading or writing the state's files failed.
    #[error("{0}")]
    Io(String),
    /// The directory holds the state as versions before 0.2 kept it (sled): it is
    /// imported, not read in place.
    #[error("state directory `{}` holds the state in the old format (sled)\n  hint: run `switchboard state migrate` once: it moves every run, record, handled key and queued event into `state.db` and keeps the old files beside it", dir.display())]
    OldFormat { dir: PathBuf },
    /// The state was moved elsewhere (`switchboard state migrate`).
    #[error("the state in `{}` was moved to {to} (`switchboard state migrate`)\n  hint: pass --state (or SWITCHBOARD_STATE) {to}; or, to begin a new state here knowing that rows may be sent again, run once with --accept-state-loss", dir.display())]
    Moved { dir: PathBuf, to: String },
    /// The state is not the one the flows directory was run with ([`binding`]).
    #[error("{detail}\n  hint: pass the state the flows were run with (--state, or SWITCHBOARD_STATE); or, to go on with this one knowing that rows it does not know may be sent again, run once with --accept-state-loss")]
    Unbound { detail: String },
}

/// A send that has started: enough to resend or park the record after a crash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InFlight {
    #[serde(default)]
    pub version: u32,
    pub key: String,
    pub run: u64,
    pub since: DateTime<Utc>,
    #[serde(default)]
    pub record: Map<String, Value>,
    /// The machine's boot when the send started ([`crate::boot_id`]): recovered after
    /// another boot, what the state wrote without a flush may be gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<String>,
}

/// A ledger entry: the sends marked in flight together (a refill of the send window, a
/// batch, or — as older versions wrote — one send). Opaque outside the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerMark(pub(crate) Vec<u8>);

/// What a crash left in the ledger: the sends whose fate is unknown, and the marks to
/// settle once they are handled again.
#[derive(Debug, Default)]
pub struct Ledger {
    pub entries: Vec<InFlight>,
    pub marks: Vec<LedgerMark>,
}

/// Resolves once the marks written before it was made are durable; shared by every send
/// of the group it was made for.
pub type Durable = Shared<BoxFuture<'static, Result<(), Arc<StateError>>>>;

/// How a run was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// `switchboard run`, or the API's force-run.
    Manual,
    /// The schedule.
    Schedule,
    /// Another flow's completion.
    After,
    /// Events pushed to the flow (a webhook, CINNOX, Text Request).
    Event,
    /// `switchboard replay`: rows of earlier runs sent again.
    Replay,
    /// A node of a cluster took the flow over from a node that stopped renewing its
    /// lease (it died mid-run): the run settles what that node left in flight.
    Takeover,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    /// Every new record was sent or skipped.
    Succeeded,
    /// The source failed, or at least one record failed.
    Failed,
    /// Cut short (shutdown or crash) before it finished.
    Interrupted,
}

/// Counts of a run's records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Counts {
    /// Records the source returned.
    pub fetched: u64,
    /// Records not handled in an earlier run.
    pub new: u64,
    pub sent: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Dropped by the flow's `filter:`.
    pub filtered: u64,
    /// Of the failed, those tried again by the next run (a passing failure: a timeout, a
    /// 5xx): not remembered, so a record failing so run after run is in each run's count.
    #[serde(default)]
    pub retrying: u64,
}

/// One run, as history shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunSummary {
    #[serde(default)]
    pub version: u32,
    pub id: u64,
    pub flow: String,
    pub trigger: Trigger,
    pub started_at: DateTime<Utc>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    pub status: RunStatus,
    #[serde(default)]
    pub counts: Counts,
    /// Why the run as a whole failed (the source could not be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The node of a cluster that ran it (`switchboard daemon --cluster`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RowStatus {
    Sent,
    Skipped,
    Failed,
    /// Dropped by the flow's `filter:` (not sent, not failed, not retried).
    Filtered,
}

/// What happened to one record in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RowOutcome {
    #[serde(default)]
    pub version: u32,
    pub run: u64,
    pub seq: u64,
    pub key: String,
    pub status: RowStatus,
    /// Why it was skipped or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The service's error code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The service's id for the sent message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_id: Option<String>,
    #[serde(default)]
    pub attempts: u32,
    /// A transient failure: the record is tried again on the next run.
    #[serde(default)]
    pub retry_next_run: bool,
    /// Sent again after a crash interrupted an earlier send: the recipient may have it twice.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub repeat: bool,
    /// A crash interrupted its send and the flow says `resend_uncertain: false`: parked for
    /// a person to replay (`switchboard replay FLOW --uncertain`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub uncertain: bool,
    pub at: DateTime<Utc>,
    /// The record's fields, for replay.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub record: Map<String, Value>,
    /// The request's body as it went to the service (or would have, for a send that
    /// failed): what ApiX-Drive's log shows as the data sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub sent: Option<Value>,
    /// The request's method and URL (`POST https://…/messages`), kept for a record that
    /// failed: what a person checks first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
    /// A failed row remembered as handled: the digest of its fields as the source gave
    /// them ([`crate::record::digest`]), so that it is taken again once fixed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// A flow with `steps:`: what each step did for the record, in order (the steps it
    /// never reached are absent). A replay goes on from the first failed one, with the
    /// answers of those before it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub steps: Vec<StepOutcome>,
}

/// What one step of a flow's `steps:` did for one record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepOutcome {
    /// The step's name.
    pub step: String,
    pub status: StepStatus,
    /// Why it was skipped or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The service's error code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The service's id for what the step sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_id: Option<String>,
    /// What later steps read as `steps.NAME`: a look-up's result, an action's
    /// `{id, status}`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub answer: Value,
    #[serde(default)]
    pub attempts: u32,
    /// Sent again after a crash interrupted this step's send: it may have arrived twice.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub repeat: bool,
    /// The request's body, for an action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub sent: Option<Value>,
    pub at: DateTime<Utc>,
}

/// How one step ended for one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    /// Sent (an action) or answered (a look-up).
    Done,
    /// Not done: its `when:` did not hold.
    Skipped,
    Failed,
}

impl StepOutcome {
    /// Whether a replay or a resumed record keeps it (it is not done again).
    pub fn finished(&self) -> bool {
        self.status != StepStatus::Failed
    }
}

/// The `Meta` name under which a record's progress through `steps:` is kept while it is
/// under way (and after a failure a later run may cure): the steps it finished, so that
/// a crash or a retry resumes the record after them. The store drops it when the
/// record's outcome is stored and remembered.
pub fn progress_key(key: &str) -> String {
    format!("{PROGRESS_PREFIX}{key}")
}

/// What every [`progress_key`] starts with.
pub const PROGRESS_PREFIX: &str = "steps/";

/// The first name after every name that starts with the ASCII `prefix`.
pub(crate) fn after_prefix(prefix: &str) -> String {
    let mut bytes = prefix.as_bytes().to_vec();
    if let Some(last) = bytes.last_mut() {
        *last += 1;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// What the state remembers of a handled key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled {
    /// The run that handled it.
    pub run: u64,
    pub status: RowStatus,
    /// For a failed row: the digest of the fields it failed with.
    pub digest: Option<String>,
}

impl Handled {
    /// Whether a record with this key, now carrying fields of `digest`, is still the one
    /// handled: any record that was sent or skipped is; a failed one only while its data
    /// is the same (a row fixed in the source is new again); a filtered one while its
    /// data and the flow's filter (its spec, `filter`) are the same.
    pub fn covers(&self, digest: impl FnOnce() -> String, filter: Option<&str>) -> bool {
        match (&self.status, &self.digest) {
            (RowStatus::Failed, Some(judged_with)) => *judged_with == digest(),
            (RowStatus::Filtered, Some(judged_with)) => {
                *judged_with == crate::record::filtered_digest(&digest(), filter)
            }
            _ => true,
        }
    }
}

/// The state of every flow.
#[async_trait]
pub trait Store: Send + Sync {
    /// One flow's state.
    fn flow(&self, name: &str) -> Result<Arc<dyn FlowState>, StateError>;

    /// Make everything written so far durable.
    async fn flush(&self) -> Result<(), StateError>;

    /// Record as interrupted every run that a stopped process left `running` (none can
    /// be running now: the store is held by one process). Returns each (flow, run id).
    fn interrupt_stale_runs(&self, at: DateTime<Utc>) -> Result<Vec<(String, u64)>, StateError>;

    /// The records of every flow's history that carried `query` (see [`search`] for how
    /// values are matched: a value, its start, or a phone number's digits), at most
    /// `limit`, from the index [`History::index_runs`] keeps (no scan of the history).
    fn search(&self, query: &str, limit: usize) -> Result<Vec<Found>, StateError>;

    /// The cluster this store is shared by, when several processes share it
    /// ([`PgStore::open_cluster`]); `None` when one process holds it.
    fn cluster(&self) -> Option<Arc<dyn Cluster>> {
        None
    }
}

/// Several daemons sharing one store act as one: a flow runs on one node at a time
/// (its **lease**, renewed while the run goes on, with a **fencing number** every write
/// of the run carries), each scheduled fire runs once (a claim on (flow, due time) one
/// node wins), and a trigger that finds the flow running elsewhere is left with the
/// holder to run once more after (coalescing, cluster-wide). Times are the database's.
pub trait Cluster: Send + Sync {
    /// This node's name, as status and history show it.
    fn node(&self) -> &str;

    /// Take the flow's lease, unless a live node holds it. A lease taken from a node
    /// that stopped renewing it holds that node's unfinished sends (its ledger).
    fn lease(&self, flow: &str, terms: LeaseTerms) -> Result<Claim, StateError>;

    /// Keep the lease another `terms.ttl`: false when it is lost (another node took the
    /// flow over), when the run must stop.
    fn renew(&self, lease: &Lease) -> Result<bool, StateError>;

    /// Give the lease back after the run. When another node left a trigger meanwhile,
    /// the lease is kept and the trigger returned: run once more.
    fn release(&self, lease: &Lease) -> Result<Option<String>, StateError>;

    /// Leave a trigger (`reason`) with the node running the flow, for one more run
    /// after its own (one at most, however many are left): false when no live node
    /// holds the flow now (take the lease instead).
    fn leave_pending(&self, flow: &str, reason: &str) -> Result<bool, StateError>;

    /// Claim the flow's scheduled fire at `due`: true for the one node that wins it.
    fn claim_fire(&self, flow: &str, due: DateTime<Utc>) -> Result<bool, StateError>;

    /// Flows whose holder stopped renewing its lease without giving it back.
    fn abandoned(&self) -> Result<Vec<String>, StateError>;

    /// Flows with pushed events waiting and no node holding them.
    fn unattended_queues(&self) -> Result<Vec<String>, StateError>;

    /// Which node holds which flow now.
    fn holders(&self) -> Result<std::collections::BTreeMap<String, String>, StateError>;
}

/// How long a lease lasts: the node starts sends for `send_for` after each renewal; the
/// database keeps the lease for `ttl` after it (longer by the flow's `delivery.max_time`,
/// so that no other node takes the flow over while a send started in time may still be
/// under way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTerms {
    pub send_for: std::time::Duration,
    pub ttl: std::time::Duration,
}

/// What taking a lease gave.
pub enum Claim {
    Taken(Lease),
    /// A live node runs the flow.
    Busy {
        node: String,
    },
}

/// The right to run a flow: its state, fenced (writes made once the lease is lost are
/// refused with [`StateError::Fenced`]).
pub struct Lease {
    pub flow: String,
    pub fence: u64,
    pub terms: LeaseTerms,
    pub state: Arc<dyn FlowState>,
}

/// One flow's state, split by who uses it: the [`Journal`] a run writes, the [`History`]
/// people read, the [`Inbox`] of pushed events and the [`Meta`] values of the scheduler
/// and the daemon.
pub trait FlowState: Journal + History + Inbox + Meta {
    fn name(&self) -> &str;
}

/// What a run writes and asks, in its own words: begin, sort a chunk, mark sends in
/// flight (returning once they are durable), record outcomes with the marks they settle,
/// settle a chunk, finish. How the store keeps these consistent (epochs, chunk notes,
/// ledger marks) stays behind it.
#[async_trait]
pub trait Journal: Send + Sync {
    /// Begin a run: it gets the next id and is stored as running.
    fn begin_run(&self, trigger: Trigger, at: DateTime<Utc>) -> Result<RunSummary, StateError>;

    /// Store a run's summary: its progress while it runs, then its end.
    fn save_run(&self, summary: &RunSummary) -> Result<(), StateError>;

    /// What is remembered of a record with this key, if one was handled.
    fn handled(&self, key: &str) -> Result<Option<Handled>, StateError>;

    /// Sort one chunk of a source read again, in one call: a chunk found before to hold
    /// nothing new and read back unchanged (`print`) is [`Sorted::Settled`] (its keys
    /// need no look-up); otherwise what is remembered of each key, in order, and — for a
    /// chunk with a print — the note that settles it once its work is done
    /// ([`Journal::settle`]). The note carries what makes it safe; a run only hands it
    /// back.
    fn sort_chunk(
        &self,
        print: Option<ChunkPrint>,
        keys: &[&str],
        run: u64,
    ) -> Result<Sorted, StateError>;

    /// Settle a chunk sorted by [`Journal::sort_chunk`]: every record of it is now
    /// remembered (written before the note, so a crash cannot keep the note without
    /// them), so it is skipped whole while it reads back unchanged.
    fn settle(&self, note: ChunkNote, run: u64) -> Result<(), StateError>;

    /// Whether a run has read the source to its end once (the backlog is settled).
    fn primed(&self) -> Result<bool, StateError>;

    /// Run `run` read the source to its end: the flow is primed, and — when the run read
    /// the whole source (`whole`: a source that is read, not pushed) — the notes of
    /// chunks it did not see go, as they are no longer in it.
    fn read_to_end(&self, run: u64, whole: bool) -> Result<(), StateError>;

    /// Sends about to start, marked in flight together. The returned future resolves
    /// once the mark is durable: no send may start before.
    fn mark_in_flight(
        &self,
        run: u64,
        first_seq: u64,
        entries: &[InFlight],
    ) -> Result<(LedgerMark, Durable), StateError>;

    /// [`Journal::record`] these outcomes and settled marks, then
    /// [`Journal::mark_in_flight`] the next sends — in one write where the store can
    /// (a refill of the send window stores what ended and marks what starts together).
    fn record_and_mark(
        &self,
        outcomes: &[(&RowOutcome, bool)],
        settled: &[LedgerMark],
        run: u64,
        first_seq: u64,
        entries: &[InFlight],
    ) -> Result<(LedgerMark, Durable), StateError> {
        self.record(outcomes, settled)?;
        self.mark_in_flight(run, first_seq, entries)
    }

    /// Store outcomes: each row's outcome, then (when its flag says so) its key as
    /// handled — and a pushed event with that key leaves the queue, in the same write (a
    /// crash after it does not leave the event to be read again as a duplicate) — then
    /// the ledger marks all of whose sends now have an outcome.
    fn record(
        &self,
        outcomes: &[(&RowOutcome, bool)],
        settled: &[LedgerMark],
    ) -> Result<(), StateError>;

    /// What a crash left in the ledger: sends whose outcome never reached the disk.
    /// Entries whose outcome did (their key remembered by their run or a later one) are
    /// settled and not returned.
    fn recover(&self) -> Result<Ledger, StateError>;

    /// Make everything written so far durable.
    async fn durable(&self) -> Result<(), StateError>;

    /// Mark this flow's runs left `running` by a process that stopped as interrupted.
    fn interrupt_unfinished_runs(&self, at: DateTime<Utc>) -> Result<usize, StateError>;
}

/// What happened, as people and the console read it: runs, their records, search's
/// feed, pruning.
pub trait History: Send + Sync {
    /// The most recent runs, newest first.
    fn runs(&self, limit: usize) -> Result<Vec<RunSummary>, StateError>;

    fn run(&self, id: u64) -> Result<Option<RunSummary>, StateError>;

    /// Every row outcome of one run, in order.
    fn rows(&self, run: u64) -> Result<Vec<RowOutcome>, StateError>;

    /// At most `limit` row outcomes of one run, in order, from `from_seq` on (a page of
    /// a long run, without reading the rest).
    fn rows_from(
        &self,
        run: u64,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<RowOutcome>, StateError>;

    /// Add the records of every run that ended since the last call to the search index
    /// ([`Store::search`]), in run order, stopping at a run under way; how many records.
    /// Called after runs, off the sending path (an index write per value of every record
    /// would halve the send rate).
    fn index_runs(&self) -> Result<u64, StateError>;

    /// Every row outcome of every run, oldest run first.
    fn all_rows(&self) -> Box<dyn Iterator<Item = Result<RowOutcome, StateError>> + Send + '_>;

    /// Drop the runs `retention` does not keep, with their records (or, `dry_run`, only
    /// count them). The newest run and runs under way are always kept; so are the keys
    /// of handled records, unless `retention.forget_handled`.
    fn prune(&self, retention: &Retention, dry_run: bool) -> Result<Pruned, StateError>;

    /// How many pushed events wait in the queue, and how many records are in flight in
    /// the ledger (sent or being sent, outcome not stored): what `/metrics` shows.
    fn backlog(&self) -> Result<(usize, usize), StateError>;

    /// How many records are remembered as failed by runs `run` and later: each record
    /// once, however often it failed, and none that a later run or a replay sent.
    fn failed_since(&self, run: u64) -> Result<u64, StateError>;
}

/// Pushed events waiting for their run (written durably before the sender's answer).
#[async_trait]
pub trait Inbox: Journal {
    /// Queue events for the flow's next run (an event with a key already queued
    /// replaces it). Durable once [`Store::flush`] returns.
    fn enqueue(&self, records: &[Record]) -> Result<(), StateError>;

    /// Queue events and return once they are durable (a webhook's 200 waits for this). A
    /// store may write the events of requests arriving together in one transaction.
    async fn enqueue_durably(&self, records: &[Record]) -> Result<(), StateError> {
        self.enqueue(records)?;
        self.durable().await
    }

    /// The queued events, in the order they arrived.
    fn queued(&self) -> Result<Vec<Record>, StateError>;

    /// Whether any event waits for a run.
    fn has_queued(&self) -> Result<bool, StateError>;

    /// Drop queued events that are handled (their key is remembered).
    fn drop_handled_from_queue(&self) -> Result<usize, StateError>;
}

/// Small values kept for the flow (its schedule, a pause, the backlog's start).
pub trait Meta: Send + Sync {
    fn load_meta(&self, key: &str) -> Result<Option<Value>, StateError>;

    fn save_meta(&self, key: &str, value: &Value) -> Result<(), StateError>;

    /// Store several values at once (one write where the store can).
    fn save_metas(&self, entries: &[(String, Value)]) -> Result<(), StateError> {
        for (key, value) in entries {
            self.save_meta(key, value)?;
        }
        Ok(())
    }

    /// Every value whose name starts with `prefix` (an ASCII prefix), by name.
    fn metas_under(&self, prefix: &str) -> Result<Vec<(String, Value)>, StateError>;

    /// Store `value` under `key` only if what is stored is `expected` (`None`: nothing);
    /// whether it was. Several nodes arming one schedule agree through it.
    fn replace_meta(
        &self,
        key: &str,
        expected: Option<&Value>,
        value: &Value,
    ) -> Result<bool, StateError> {
        // One process holds a store that has no cluster: load and save do.
        if self.load_meta(key)?.as_ref() != expected {
            return Ok(false);
        }
        self.save_meta(key, value)?;
        Ok(true)
    }
}

/// Which runs history keeps: those that finished after `before` (when set) and the
/// newest `keep_runs` (when set); a run must pass both to stay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retention {
    pub before: Option<DateTime<Utc>>,
    pub keep_runs: Option<usize>,
    /// Forget the keys of records the pruned runs handled (they would be sent again
    /// if still in the source).
    pub forget_handled: bool,
}

/// What a prune dropped (or would drop).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Pruned {
    pub runs: u64,
    pub records: u64,
    /// Keys of handled records forgotten (`forget_handled` only).
    pub keys: u64,
}

/// The runs `retention` drops, of a flow's runs oldest first: a run must be among the
/// newest `keep_runs` and have ended after `before` to stay; the newest run and runs
/// under way always stay.
fn prunable<'r>(
    runs: &'r [RunSummary],
    retention: &'r Retention,
) -> impl Iterator<Item = &'r RunSummary> + 'r {
    let total = runs.len();
    runs.iter().enumerate().filter_map(move |(i, run)| {
        if i + 1 == total || run.status == RunStatus::Running {
            return None;
        }
        let newer = total - i - 1;
        let too_many = retention.keep_runs.is_some_and(|keep| newer >= keep);
        let ended = run.finished_at.unwrap_or(run.started_at);
        let too_old = retention.before.is_some_and(|before| ended < before);
        (too_many || too_old).then_some(run)
    })
}

/// Record the runs of a flow left `running` because the state could not be written
/// (the disk was full) as failed, with `reason`, their counts from their stored
/// outcomes; how many. Called once the state can be written again.
pub fn fail_unfinished_runs(
    state: &dyn FlowState,
    at: DateTime<Utc>,
    reason: &str,
) -> Result<usize, StateError> {
    let mut failed = 0;
    for mut summary in state.runs(20)? {
        if summary.status != RunStatus::Running {
            continue;
        }
        summary.error = Some(reason.to_string());
        mark_interrupted(state, &mut summary, at)?;
        summary.status = RunStatus::Failed;
        state.save_run(&summary)?;
        failed += 1;
    }
    Ok(failed)
}

/// Store a run as interrupted, with the counts its stored outcomes give: sent, failed
/// and skipped as recorded; fetched and new at least as many as were handled. It ended
/// with its last recorded outcome (or, with none, when it began) — not `at`, when the
/// next process found it: the time the process was down is not the run's.
fn mark_interrupted(
    state: &dyn FlowState,
    summary: &mut RunSummary,
    at: DateTime<Utc>,
) -> Result<(), StateError> {
    let (mut sent, mut failed, mut skipped, mut filtered) = (0, 0, 0, 0);
    let mut last = summary.started_at;
    for row in state.rows(summary.id)? {
        last = last.max(row.at);
        match row.status {
            RowStatus::Sent => sent += 1,
            RowStatus::Skipped => skipped += 1,
            RowStatus::Failed => failed += 1,
            RowStatus::Filtered => filtered += 1,
        }
    }
    let counts = &mut summary.counts;
    counts.sent = sent;
    counts.failed = failed;
    counts.skipped = skipped;
    counts.filtered = filtered;
    counts.new = counts.new.max(sent + failed + filtered);
    counts.fetched = counts.fetched.max(counts.new);
    summary.status = RunStatus::Interrupted;
    summary.finished_at = Some(last.min(at));
    summary
        .error
        .get_or_insert_with(|| "interrupted: the process stopped before the run finished".into());
    state.save_run(summary)
}

/// A small value kept for a flow, read as `T`.
pub fn load_meta<T: serde::de::DeserializeOwned>(
    state: &dyn FlowState,
    key: &str,
) -> Result<Option<T>, StateError> {
    match state.load_meta(key)? {
        Some(value) => Ok(Some(serde_json::from_value(value)?)),
        None => Ok(None),
    }
}

/// Keep a small value for a flow.
pub fn save_meta<T: Serialize>(
    state: &dyn FlowState,
    key: &str,
    value: &T,
) -> Result<(), StateError> {
    state.save_meta(key, &serde_json::to_value(value)?)
}
