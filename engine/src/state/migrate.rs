//! Moving a state from one store to another: an old sled directory into SQLite (the way
//! off sled, read by [`super::sled_import`]), an embedded state into PostgreSQL (a move
//! to several daemons), and back.
//! Every flow's runs, records, handled keys, sends in flight, queued events and small
//! values (armed schedules, pauses, the flows directory it serves) go over; what is
//! derived is rebuilt instead (the search index, the notes of chunks found to hold
//! nothing new). The counts are read back from the target and compared before the move
//! is called done.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{FlowState, Handled, InFlight, RowOutcome, RunSummary, StateError, Store};
use crate::record::Record;

/// A state's history and queue, as a move reads them.
pub trait ExportHistory {
    /// Every run of the flow, oldest first.
    fn all_runs(&self, flow: &str) -> Result<Vec<RunSummary>, StateError>;

    /// The records of one run, in record order.
    fn run_rows(&self, flow: &str, run: u64) -> Result<Vec<RowOutcome>, StateError>;

    /// The pushed events waiting for a run, in the order they arrived.
    fn all_queued(&self, flow: &str) -> Result<Vec<Record>, StateError>;
}

/// A store that runs flows reads them through its flows' own history and inbox.
impl<T: Store> ExportHistory for T {
    fn all_runs(&self, flow: &str) -> Result<Vec<RunSummary>, StateError> {
        let mut runs = self.flow(flow)?.runs(usize::MAX)?;
        runs.reverse();
        Ok(runs)
    }

    fn run_rows(&self, flow: &str, run: u64) -> Result<Vec<RowOutcome>, StateError> {
        self.flow(flow)?.rows(run)
    }

    fn all_queued(&self, flow: &str) -> Result<Vec<Record>, StateError> {
        self.flow(flow)?.queued()
    }
}

/// What a state gives up in a move: everything it holds, flow by flow.
pub trait Export: ExportHistory {
    /// Every flow the state holds anything for (the state's own values, flow `''`, too).
    fn flow_names(&self) -> Result<Vec<String>, StateError>;

    /// Every key the flow remembers as handled.
    fn all_handled(&self, flow: &str) -> Result<Vec<(String, Handled)>, StateError>;

    /// The sends in flight (their marks' run and first record, and the sends).
    fn all_in_flight(&self, flow: &str) -> Result<Vec<(u64, u64, Vec<InFlight>)>, StateError>;

    /// Every small value kept for the flow (not the derived ones: chunk notes, the index
    /// mark).
    fn all_meta(&self, flow: &str) -> Result<Vec<(String, Value)>, StateError>;
}

/// A state a move can go into (and come out of): a store that runs flows.
pub trait Portable: Store + Export {
    /// Remember these keys as handled, as they are.
    fn put_handled(&self, flow: &str, handled: &[(String, Handled)]) -> Result<(), StateError>;
}

/// How much of each kind a flow (or a whole state) holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub runs: u64,
    pub records: u64,
    pub handled: u64,
    pub in_flight: u64,
    pub queued: u64,
    pub values: u64,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.runs += other.runs;
        self.records += other.records;
        self.handled += other.handled;
        self.in_flight += other.in_flight;
        self.queued += other.queued;
        self.values += other.values;
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} run(s), {} record(s), {} handled key(s), {} send(s) in flight, {} queued event(s), {} value(s)",
            self.runs, self.records, self.handled, self.in_flight, self.queued, self.values
        )
    }
}

/// What a move did: per flow, and in all.
#[derive(Debug, Default)]
pub struct Moved {
    pub flows: BTreeMap<String, Tally>,
    pub total: Tally,
}

/// Meta names that are derived, not moved (rebuilt by the target on its own).
fn derived(name: &str) -> bool {
    name.starts_with('\u{1}') || name.starts_with('\0')
}

/// Copy everything of `from` into `to`, which must hold nothing yet; then read the
/// counts back from `to` and compare them with what was read from `from`.
pub fn copy(from: &dyn Export, to: &dyn Portable) -> Result<Moved, StateError> {
    let already = to.flow_names()?;
    if !already.is_empty() {
        return Err(StateError::Io(format!(
            "the target already holds a state (flows: {}): a state moves into an empty one",
            already.join(", ")
        )));
    }
    let mut moved = Moved::default();
    for name in from.flow_names()? {
        let target = to.flow(&name)?;
        let tally = copy_flow(from, to, &*target, &name)?;
        let check = count(to, &name)?;
        if check != tally {
            return Err(StateError::Io(format!(
                "flow `{name}`: the target holds {check} after the move, but {tally} were read: nothing is called done"
            )));
        }
        moved.total.add(&tally);
        moved.flows.insert(name, tally);
    }
    Ok(moved)
}

fn copy_flow(
    from: &dyn Export,
    to: &dyn Portable,
    target: &dyn FlowState,
    name: &str,
) -> Result<Tally, StateError> {
    let mut tally = Tally::default();
    // Oldest first, each with its records.
    for run in &from.all_runs(name)? {
        target.save_run(run)?;
        let rows: Vec<RowOutcome> = from.run_rows(name, run.id)?;
        for chunk in rows.chunks(1000) {
            let outcomes: Vec<(&RowOutcome, bool)> = chunk.iter().map(|r| (r, false)).collect();
            target.record(&outcomes, &[])?;
        }
        tally.runs += 1;
        tally.records += rows.len() as u64;
    }
    let handled = from.all_handled(name)?;
    for chunk in handled.chunks(10_000) {
        to.put_handled(name, chunk)?;
    }
    tally.handled = handled.len() as u64;
    for (run, first_seq, entries) in from.all_in_flight(name)? {
        tally.in_flight += entries.len() as u64;
        // Written, not waited for: the move ends with a flush of everything.
        let _ = target.mark_in_flight(run, first_seq, &entries)?;
    }
    let queued = from.all_queued(name)?;
    target.enqueue(&queued)?;
    tally.queued = queued.len() as u64;
    for (key, value) in from.all_meta(name)? {
        target.save_meta(&key, &value)?;
        tally.values += 1;
    }
    Ok(tally)
}

/// What a flow of `store` holds, counted as [`copy`] moves it.
pub fn count(store: &dyn Export, name: &str) -> Result<Tally, StateError> {
    let runs = store.all_runs(name)?;
    let mut records = 0;
    for run in &runs {
        records += store.run_rows(name, run.id)?.len() as u64;
    }
    let in_flight = store
        .all_in_flight(name)?
        .iter()
        .map(|(_, _, entries)| entries.len() as u64)
        .sum();
    Ok(Tally {
        runs: runs.len() as u64,
        records,
        handled: store.all_handled(name)?.len() as u64,
        in_flight,
        queued: store.all_queued(name)?.len() as u64,
        values: store.all_meta(name)?.len() as u64,
    })
}

/// Keep only the values a move carries.
pub(crate) fn moved_meta(values: Vec<(String, Value)>) -> Vec<(String, Value)> {
    values
        .into_iter()
        .filter(|(name, _)| !derived(name))
        .collect()
}
