//! One run of a flow: recover sends a crash interrupted, fetch, drop what was handled
//! before, settle the first run's backlog, then deliver with bounded concurrency.
//!
//! The delivery promise lives here, in one pipeline for single sends and batches alike.
//! Records leave in groups — a refill of the send window (a request each), or a batch
//! (one request) — and a group is marked in flight in the state, durably, before any of
//! its requests leaves (groups starting together share one flush); each outcome is
//! stored, with its key remembered, before the group's mark goes. So after a crash the
//! ledger holds exactly the sends whose fate is unknown — never more than the flow's
//! `delivery.concurrency`, or two batches — and the next run resends them marked as
//! possible repeats (or parks them as uncertain with `resend_uncertain: false`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use flows::{Backlog, Flow};
use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use tracing::Instrument;

use crate::connector::{Delivered, Prepared, Receiver, SendError, Source};
use crate::delivery::{send_batch_with_retry, send_with_retry, RetryPolicy};
use crate::keys::{self, Earlier, KeyCheck};
use crate::lookup::LookupStep;
use crate::mapper::Mapper;
use crate::record::{ChunkPrint, Record};
use crate::state::{ChunkNote, Durable, LedgerMark, Sorted};
use crate::state::{
    FlowState, InFlight, RowOutcome, RowStatus, RunStatus, RunSummary, StateError, Trigger,
};
use crate::stop::{Stop, GRACE};

/// Progress of a run's sends, for a progress bar.
pub trait Progress: Send + Sync {
    /// The records to send so far (it grows as a streamed source is read).
    fn start(&self, total: u64);
    /// One record sent, or failed.
    fn advance(&self, failed: bool);
    fn finish(&self);
}

/// Everything a run needs.
pub struct RunContext<'a> {
    pub flow: &'a Flow,
    pub source: &'a dyn Source,
    pub receiver: Arc<dyn Receiver>,
    pub mapper: &'a Mapper,
    /// The flow's `lookup:`, run on each record before it is mapped.
    pub lookup: Option<&'a LookupStep>,
    /// The flow's `steps:`, done for each record instead of `receiver` and `mapper`.
    pub chain: Option<&'a crate::steps::Chain>,
    pub state: &'a dyn FlowState,
    pub trigger: Trigger,
    /// The clock (injectable for tests).
    pub now: &'a (dyn Fn() -> DateTime<Utc> + Sync),
    pub progress: Option<&'a dyn Progress>,
    /// Raised to stop the run early (Ctrl-C, the daemon's drain limit).
    pub stop: Stop,
}

/// What a run did: its summary, and the rows that failed (for the report).
#[derive(Debug, Clone)]
pub struct RunReport {
    pub summary: RunSummary,
    pub failures: Vec<RowOutcome>,
}

impl RunReport {
    /// The answer of a replay that found nothing to send again: no run was begun, so
    /// its id is 0 (run ids start at 1) and history does not hold it.
    fn nothing_to_replay_at(at: DateTime<Utc>, flow: &str) -> RunReport {
        RunReport {
            summary: RunSummary {
                version: 1,
                id: 0,
                flow: flow.to_string(),
                trigger: Trigger::Replay,
                started_at: at,
                finished_at: Some(at),
                status: RunStatus::Succeeded,
                counts: Default::default(),
                error: None,
                node: None,
            },
            failures: Vec::new(),
        }
    }

    /// A replay that found nothing to send again, and so recorded no run.
    pub fn nothing_to_replay(&self) -> bool {
        self.summary.id == 0 && self.summary.trigger == Trigger::Replay
    }
}

/// Which rows of earlier runs `replay` sends again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayFilter {
    /// Only rows of this run (default: any run).
    pub run: Option<u64>,
    /// Only rows parked as uncertain (default: every failed row, uncertain ones included).
    pub only_uncertain: bool,
}

/// A record on its way to the receiver.
struct Pending {
    seq: u64,
    record: Record,
    /// Resent after a crash interrupted an earlier send.
    repeat: bool,
    /// What its `steps:` did before (a replay goes on after them).
    resume: Vec<crate::state::StepOutcome>,
    /// Resent after a crash that may have been the machine's (another boot): what the
    /// state wrote without a flush may be gone.
    rebooted: bool,
}

/// The run's tally, kept apart from the context so sends can borrow the context while
/// outcomes are counted. Outcomes are stored in groups: [`Tally::commit`] writes what
/// [`Tally::record`] collected, together.
struct Tally {
    summary: RunSummary,
    failures: Vec<RowOutcome>,
    seq: u64,
    unstored: Vec<(RowOutcome, bool)>,
    /// Keys of outcomes recorded without remembering the key, since the source's last
    /// chunk was sorted (see [`Intake::chunk`]).
    forgotten: Vec<String>,
    /// When the run's counts were last stored (they are, every second or so, so that
    /// history shows a run's progress and a run cut short keeps its counts).
    saved: std::time::Instant,
    /// The field the flow's look-up adds (not part of a row's digest).
    looked_up: Option<String>,
    /// The flow's filter, as its spec: a filtered row is remembered with it.
    filter: Option<String>,
    /// Outcomes whose key is remembered as handled whatever the row holds (sent,
    /// skipped): a chunk is settled once each of its new records has one.
    kept: u64,
}

/// Outcomes collected before they are stored even when nothing else asks for it.
const COMMIT_EVERY: usize = 256;

/// How often a run's counts are stored while it runs.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl Tally {
    /// The run's records failed or filtered so far (outcomes that judge a key again).
    fn judged(&self) -> u64 {
        self.summary.counts.failed + self.summary.counts.filtered
    }

    fn new(summary: RunSummary, ctx: &RunContext<'_>) -> Tally {
        Tally {
            summary,
            failures: Vec::new(),
            seq: 0,
            unstored: Vec::new(),
            forgotten: Vec::new(),
            saved: std::time::Instant::now(),
            looked_up: ctx.lookup.map(|step| step.as_name().to_string()),
            filter: ctx.flow.filter.as_ref().map(flows::Filter::spec),
            kept: 0,
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// The next outcome of this run: record `key` ended as `status`, for `reason`.
    fn outcome(
        &mut self,
        key: String,
        status: RowStatus,
        reason: String,
        now: DateTime<Utc>,
    ) -> RowOutcome {
        RowOutcome::new(self.summary.id, self.next_seq(), key, status, now).reason(reason)
    }

    /// Count an outcome and keep it (and whether to remember its key) for the next
    /// commit; stores the group once it is large.
    fn record(
        &mut self,
        state: &dyn FlowState,
        mut outcome: RowOutcome,
        remember: bool,
    ) -> Result<(), StateError> {
        let judged = matches!(outcome.status, RowStatus::Failed | RowStatus::Filtered);
        if remember && judged && !outcome.record.is_empty() {
            let digest = crate::record::digest(&outcome.record, self.looked_up.as_deref());
            outcome.digest = Some(match outcome.status {
                RowStatus::Filtered => {
                    crate::record::filtered_digest(&digest, self.filter.as_deref())
                }
                _ => digest,
            });
        }
        match outcome.status {
            RowStatus::Sent => self.summary.counts.sent += 1,
            RowStatus::Skipped => self.summary.counts.skipped += 1,
            RowStatus::Filtered => self.summary.counts.filtered += 1,
            RowStatus::Failed => {
                self.summary.counts.failed += 1;
                if outcome.retry_next_run {
                    self.summary.counts.retrying += 1;
                }
                self.failures.push(outcome.clone());
            }
        }
        if !remember {
            self.forgotten.push(outcome.key.clone());
        } else if matches!(outcome.status, RowStatus::Sent | RowStatus::Skipped) {
            self.kept += 1;
        }
        self.unstored.push((outcome, remember));
        // Large groups go at once; a slow run's outcomes (and counts) at least every
        // second, so its progress shows while it goes.
        if self.unstored.len() >= COMMIT_EVERY || self.saved.elapsed() >= PROGRESS_EVERY {
            self.commit(state, &[])?;
        }
        Ok(())
    }

    /// [`Tally::commit`], and mark the next sends in flight, in one write.
    fn commit_and_mark(
        &mut self,
        state: &dyn FlowState,
        settled: &[LedgerMark],
        first_seq: u64,
        entries: &[InFlight],
    ) -> Result<(LedgerMark, Durable), StateError> {
        let run = self.summary.id;
        self.store_unstored(state, |group| {
            state.record_and_mark(group, settled, run, first_seq, entries)
        })
    }

    /// Hand the outcomes collected so far to `write`, then let them go; and save the run's
    /// progress when it is due.
    fn store_unstored<T>(
        &mut self,
        state: &dyn FlowState,
        write: impl FnOnce(&[(&RowOutcome, bool)]) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let written = {
            let group: Vec<(&RowOutcome, bool)> = self
                .unstored
                .iter()
                .map(|(outcome, remember)| (outcome, *remember))
                .collect();
            write(&group)?
        };
        self.unstored.clear();
        if self.saved.elapsed() >= PROGRESS_EVERY {
            state.save_run(&self.summary)?;
            self.saved = std::time::Instant::now();
        }
        Ok(written)
    }

    /// Store the outcomes collected so far, then drop the ledger marks whose sends all
    /// have an outcome among them (or stored before).
    fn commit(&mut self, state: &dyn FlowState, settled: &[LedgerMark]) -> Result<(), StateError> {
        if self.unstored.is_empty() && settled.is_empty() {
            return Ok(());
        }
        self.store_unstored(state, |group| state.record(group, settled))
    }
}

/// Record records as skipped, with `reason`, in a run of their own, sending nothing and
/// remembering none (events pushed to a switched-off flow: answered, recorded, not sent).
pub fn record_skipped(
    state: &dyn FlowState,
    trigger: Trigger,
    records: &[Record],
    reason: &str,
    now: DateTime<Utc>,
) -> Result<RunSummary, StateError> {
    let mut summary = state.begin_run(trigger, now)?;
    let outcomes: Vec<RowOutcome> = records
        .iter()
        .enumerate()
        .map(|(i, record)| {
            RowOutcome::new(
                summary.id,
                i as u64 + 1,
                record.key.clone(),
                RowStatus::Skipped,
                now,
            )
            .reason(reason.to_string())
            .with_record(record.fields.clone())
        })
        .collect();
    let refs: Vec<(&RowOutcome, bool)> = outcomes.iter().map(|o| (o, false)).collect();
    state.record(&refs, &[])?;
    let n = records.len() as u64;
    summary.counts.fetched = n;
    summary.counts.skipped = n;
    summary.status = RunStatus::Succeeded;
    summary.finished_at = Some(now);
    state.save_run(&summary)?;
    Ok(summary)
}

/// Record a record that `switchboard test --send` sent to its own recipient as sent, in
/// a run of its own, remembering its key: the next run does not send it again.
pub fn record_test_send(
    state: &dyn FlowState,
    record: &Record,
    remote_id: Option<String>,
    sent: Option<serde_json::Value>,
    now: DateTime<Utc>,
) -> Result<RunSummary, StateError> {
    let mut summary = state.begin_run(Trigger::Manual, now)?;
    let mut outcome = RowOutcome::new(summary.id, 1, record.key.clone(), RowStatus::Sent, now)
        .reason("a test send (`switchboard test --send`): the next run does not send it again")
        .with_record(record.fields.clone());
    outcome.remote_id = remote_id;
    outcome.sent = sent;
    outcome.attempts = 1;
    state.record(&[(&outcome, true)], &[])?;
    summary.counts = crate::state::Counts {
        fetched: 1,
        new: 1,
        sent: 1,
        ..Default::default()
    };
    summary.status = RunStatus::Succeeded;
    summary.finished_at = Some(now);
    state.save_run(&summary)?;
    Ok(summary)
}

/// Run a flow once. State errors abort the run; everything else is recorded in it.
pub async fn run_flow(ctx: RunContext<'_>) -> Result<RunReport, StateError> {
    let mut summary = ctx.state.begin_run(ctx.trigger, (ctx.now)())?;
    let span = tracing::info_span!("run", flow = %ctx.flow.name, run_id = summary.id);
    let skip = ctx.lookup.map(LookupStep::as_name);
    let earlier = match keys::check(ctx.state, ctx.flow, skip)? {
        KeyCheck::Same => None,
        KeyCheck::Rekey(earlier) => Some(earlier),
        KeyCheck::Refused(why) => {
            // Nothing is read or sent: the run says why, and how to go on.
            summary.status = RunStatus::Failed;
            summary.error = Some(why);
            summary.finished_at = Some((ctx.now)());
            ctx.state.save_run(&summary)?;
            return Ok(RunReport {
                summary,
                failures: Vec::new(),
            });
        }
    };
    run_source(ctx, summary, earlier).instrument(span).await
}

/// Send again the failed (or uncertain) rows of earlier runs, as a new run. With nothing
/// to send again no run is begun: the report says so ([`RunReport::nothing_to_replay`]).
pub async fn replay(ctx: RunContext<'_>, filter: ReplayFilter) -> Result<RunReport, StateError> {
    let rows = rows_to_replay(ctx.state, filter)?;
    if rows.is_empty() {
        return Ok(RunReport::nothing_to_replay_at((ctx.now)(), &ctx.flow.name));
    }
    let summary = ctx.state.begin_run(Trigger::Replay, (ctx.now)())?;
    let span = tracing::info_span!("replay", flow = %ctx.flow.name, run_id = summary.id);
    replay_rows(ctx, summary, rows).instrument(span).await
}

/// The rows `replay` sends again: the failed ones the filter asks for whose key has not
/// been sent (or skipped) since — the latest outcome of every key decides.
fn rows_to_replay(
    state: &dyn FlowState,
    filter: ReplayFilter,
) -> Result<Vec<RowOutcome>, StateError> {
    let mut latest: HashMap<String, RowOutcome> = HashMap::new();
    let mut chosen: Vec<String> = Vec::new();
    let mut wanted_keys: HashSet<String> = HashSet::new();
    for row in state.all_rows() {
        let row = row?;
        let wanted = row.status == RowStatus::Failed
            && (!filter.only_uncertain || row.uncertain)
            && filter.run.is_none_or(|id| row.run == id)
            && !row.record.is_empty();
        if wanted && wanted_keys.insert(row.key.clone()) {
            chosen.push(row.key.clone());
        }
        latest.insert(row.key.clone(), row);
    }
    Ok(chosen
        .into_iter()
        .filter_map(|key| latest.remove(&key))
        .filter(|row| row.status == RowStatus::Failed && !row.record.is_empty())
        .collect())
}
async fn run_source(
    ctx: RunContext<'_>,
    summary: RunSummary,
    earlier: Option<Earlier>,
) -> Result<RunReport, StateError> {
    let state = ctx.state;
    let mut tally = Tally::new(summary, &ctx);
    let rekeying = earlier.is_some();
    let mut intake = Intake {
        earlier,
        primed: state.primed()?,
        backlog: ctx.flow.source.backlog(),
        recovered: HashSet::new(),
        chunk: HashSet::new(),
        unremembered: HashSet::new(),
        pushed: ctx.flow.source.is_push(),
        sending: None,
    };
    let (mut todo, recovered_marks) = recover(&ctx, &mut tally, &mut intake.recovered)?;

    // An account refused in one chunk is not asked again in the next.
    let refused: Mutex<Option<SendError>> = Mutex::new(None);
    let mut chunks = ctx.source.stream(CHUNK).await;
    let mut queued = todo.len() as u64;
    if let Some(p) = ctx.progress {
        p.start(queued);
    }
    let mut read_all = false;
    loop {
        // Asked to stop: nothing more is taken from the source (it is read again next run).
        let next = tokio::select! {
            next = chunks.recv() => next,
            _ = ctx.stop.wait() => break,
        };
        match next {
            None => {
                read_all = true;
                break;
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "source failed");
                tally.summary.error = Some(format!("source: {e}"));
                break;
            }
            Some(Ok(fetched)) => intake.take(&ctx, &mut tally, fetched, &mut todo)?,
        }
        // Each chunk is sent before the next is taken: a run holds one chunk at a time.
        queued += todo.len() as u64;
        if let Some(p) = ctx.progress {
            p.start(queued);
        }
        let chunk = enrich(&ctx, &mut tally, std::mem::take(&mut todo)).await?;
        let chunk = screen(&ctx, &mut tally, chunk)?;
        deliver(&ctx, &mut tally, chunk, &refused).await?;
        intake.sent(state, &mut tally)?;
    }
    if read_all {
        state.read_to_end(tally.summary.id, !intake.pushed)?;
        if rekeying && !ctx.stop.is_stopped() {
            // Every row is remembered under the new key once this chunk's outcomes are.
            tally.commit(state, &[])?;
            keys::settle(state, ctx.flow)?;
        }
    }
    // Sends a crash interrupted go even when the source could not be read.
    let todo = enrich(&ctx, &mut tally, todo).await?;
    let todo = screen(&ctx, &mut tally, todo)?;
    deliver(&ctx, &mut tally, todo, &refused).await?;
    if let Some(p) = ctx.progress {
        p.finish();
    }
    // The sends a crash interrupted are handled again: their marks can go — unless the
    // run was stopped before it got to them.
    let settled = if ctx.stop.is_stopped() {
        Vec::new()
    } else {
        recovered_marks
    };
    tally.commit(state, &settled)?;
    finish(&ctx, tally).await
}

/// Records a source run reads in one chunk, about.
const CHUNK: usize = 5_000;

/// What a run knows while it reads its source, chunk after chunk.
struct Intake {
    /// The rows handled under the flow's earlier key, when a person accepted its change.
    earlier: Option<Earlier>,
    /// An earlier run read the source, so the backlog is settled.
    primed: bool,
    backlog: Backlog,
    /// Keys a crash left in the ledger, which this run resends (or parks) already.
    recovered: HashSet<String>,
    /// Keys taken from the chunk being sorted. A key taken in an earlier chunk has an
    /// outcome in the state by now (each chunk is sent before the next is taken), so
    /// the state tells it: it remembers the key as handled by this run — unless its
    /// outcome was one not remembered (a failure to try again next run, a row filtered
    /// with `filtered: retry`), whose keys are kept in `unremembered`. A run holds no
    /// set of every key it took (a million keys were ~100 MB). Should chunks ever overlap
    /// (one sorted while the one before still sends), the keys of every chunk not yet
    /// recorded must be kept here too.
    chunk: HashSet<String>,
    /// Keys taken in earlier chunks whose outcome the state does not remember.
    unremembered: HashSet<String>,
    /// The records are pushed events (each delivered once), not rows read every run.
    pushed: bool,
    /// The chunk being sent, if it holds nothing else to do: it is settled once each of
    /// its new records has an outcome that keeps it handled.
    sending: Option<Sending>,
}

/// A chunk whose only work is sending its new records.
struct Sending {
    note: ChunkNote,
    /// Its records that were new.
    new: u64,
    /// [`Tally::kept`] when it was taken.
    kept_before: u64,
    /// The run's failed and filtered records when it was taken.
    judged_before: u64,
}

impl Intake {
    /// Sort one chunk of the source: rejects fail, records handled before (or recovered)
    /// are dropped, repeated keys and the first run's backlog are skipped, the rest join
    /// `todo`.
    fn take(
        &mut self,
        ctx: &RunContext<'_>,
        tally: &mut Tally,
        fetched: crate::connector::Fetched,
        todo: &mut Vec<Pending>,
    ) -> Result<(), StateError> {
        let state = ctx.state;
        // The keys of the last chunk whose outcomes the state does not remember (before
        // this chunk records anything of its own).
        for key in tally.forgotten.drain(..) {
            if self.chunk.contains(&key) {
                self.unremembered.insert(key);
            }
        }
        self.chunk.clear();
        tally.summary.counts.fetched += (fetched.records.len() + fetched.rejects.len()) as u64;
        for reject in fetched.rejects {
            let outcome = tally.outcome(
                reject.key,
                RowStatus::Failed,
                format!("source: {}", reject.reason),
                (ctx.now)(),
            );
            tally.record(state, outcome, false)?;
        }
        let run = tally.summary.id;
        self.sending = None;
        // A chunk of rows found before to hold nothing new, read again unchanged: none of
        // its keys need asking.
        let print = (!self.pushed && !fetched.records.is_empty()).then(|| {
            ChunkPrint::of(
                &fetched.records,
                tally.looked_up.as_deref(),
                tally.filter.as_deref(),
            )
        });
        // What the state remembers of the chunk's keys, asked at once.
        let keys: Vec<&str> = fetched.records.iter().map(|r| r.key.as_str()).collect();
        let (remembered, note) = match state.sort_chunk(print, &keys, run)? {
            Sorted::Settled => return Ok(()),
            Sorted::Keys { remembered, note } => (remembered, note),
        };
        drop(keys);
        // Whether the chunk may be settled: nothing in it but records handled before and
        // new ones to send (no repeats, no records a crash left in flight, nothing else
        // in the same delivery).
        let mut settles = todo.is_empty();
        let mut handled = 0;
        let total = fetched.records.len() as u64;
        let kept_before = tally.kept;
        let judged_before = tally.judged();
        for (record, remembered) in fetched.records.into_iter().zip(remembered) {
            // Taken earlier this run (maybe in an earlier chunk, and sent since): a
            // duplicate. (A key a crash left in the ledger is this run's too, but taken
            // from the ledger, not the source: its rows are simply not new.)
            let repeated = self.chunk.contains(&record.key)
                || self.unremembered.contains(&record.key)
                || (remembered.as_ref().is_some_and(|h| h.run == run)
                    && !self.recovered.contains(&record.key));
            settles &= !repeated;
            if !repeated && self.recovered.contains(&record.key) {
                settles = false;
                continue;
            }
            if !repeated && !self.pushed {
                // A file's rows are read again every run: handled ones are simply not new,
                // unless the row failed and has been fixed since.
                let filter = tally.filter.as_deref();
                if still_handled(remembered.as_ref(), &record, ctx.lookup, filter).is_some() {
                    handled += 1;
                    continue;
                }
            }
            if !repeated && self.pushed {
                // A failed event sent again corrected (other data under its key) is new;
                // the same data again is a repeat, as is any event that went out.
                let filter = tally.filter.as_deref();
                let seen = still_handled(remembered.as_ref(), &record, ctx.lookup, filter);
                // An event without an id is known by its payload: the same payload after
                // the flow's redelivery window is a new event (another edit of the same
                // contact), not a repeat.
                let seen = match seen {
                    Some(run) if crate::record::is_payload_keyed(&record.key) => {
                        let window = chrono::Duration::from_std(ctx.flow.redelivery_window)
                            .unwrap_or(chrono::Duration::MAX);
                        let handled_at = state.run(run)?.map(|r| r.started_at);
                        handled_at
                            .filter(|at| (ctx.now)() - *at < window)
                            .map(|_| run)
                    }
                    seen => seen,
                };
                if let Some(run) = seen {
                    // A pushed event is never read twice, so one seen before is a repeat
                    // delivery, and says so in the history.
                    let outcome = tally
                        .outcome(
                            record.key,
                            RowStatus::Skipped,
                            format!("duplicate: an event with this key was handled in run {run}"),
                            (ctx.now)(),
                        )
                        .with_record(record.fields);
                    tally.record(state, outcome, false)?;
                    continue;
                }
            }
            // Handled under the flow's earlier key: known by its data, remembered under
            // the new key, not sent again.
            if !repeated && !self.pushed {
                if let Some(earlier) = &self.earlier {
                    if earlier.holds(&record, tally.looked_up.as_deref()) {
                        settles = false;
                        self.chunk.insert(record.key.clone());
                        let reason = format!(
                            "handled before, under the flow's earlier key ({}): known by its data, not sent again",
                            earlier.was
                        );
                        let outcome = tally
                            .outcome(record.key, RowStatus::Skipped, reason, (ctx.now)())
                            .with_record(record.fields);
                        tally.record(state, outcome, true)?;
                        continue;
                    }
                }
            }
            // Skipped records: a repeated key (its first occurrence decides), or the
            // first run's backlog (remembered, so it is never sent).
            let skip = if repeated {
                Some((
                    format!(
                        "duplicate: key `{}` appears earlier in the source",
                        record.key
                    ),
                    false,
                ))
            } else {
                self.chunk.insert(record.key.clone());
                tally.summary.counts.new += 1;
                (!self.primed && self.backlog == Backlog::Skip).then(|| {
                    (
                        "backlog: the row was there before the flow's first run (backlog: skip)"
                            .to_string(),
                        true,
                    )
                })
            };
            if let Some((reason, remember)) = skip {
                let outcome = tally
                    .outcome(record.key, RowStatus::Skipped, reason, (ctx.now)())
                    .with_record(record.fields);
                tally.record(state, outcome, remember)?;
                continue;
            }
            todo.push(Pending {
                seq: tally.next_seq(),
                record,
                repeat: false,
                resume: Vec::new(),
                rebooted: false,
            });
        }
        match note {
            Some(note) if settles && handled == total => state.settle(note, run)?,
            Some(note) if settles => {
                self.sending = Some(Sending {
                    note,
                    new: total - handled,
                    kept_before,
                    judged_before,
                })
            }
            _ => {}
        }
        Ok(())
    }

    /// After a chunk's sends: it is settled if each of its new records is now remembered
    /// as handled whatever the row holds (sent, or skipped as backlog) — none failed,
    /// filtered, or left unsent by a stop.
    fn sent(&mut self, state: &dyn FlowState, tally: &mut Tally) -> Result<(), StateError> {
        let Some(sending) = self.sending.take() else {
            return Ok(());
        };
        if tally.kept - sending.kept_before == sending.new
            && tally.judged() == sending.judged_before
        {
            // Their outcomes first: the note must not reach the disk without them.
            tally.commit(state, &[])?;
            state.settle(sending.note, tally.summary.id)?;
        }
        Ok(())
    }
}

/// The run that handled this record, if one did and the record is still the one it
/// handled: a row that failed and whose data has changed since is new again (and said
/// to be, in the log), as is a filtered one once its data or the flow's filter changed.
pub fn handled_before(
    state: &dyn FlowState,
    record: &Record,
    lookup: Option<&LookupStep>,
    flow: &Flow,
) -> Result<Option<u64>, StateError> {
    let filter = flow.filter.as_ref().map(flows::Filter::spec);
    Ok(still_handled(
        state.handled(&record.key)?.as_ref(),
        record,
        lookup,
        filter.as_deref(),
    ))
}

/// The run that handled `record`, when what the state remembers of its key still covers
/// it (see [`handled_before`]).
fn still_handled(
    handled: Option<&crate::state::Handled>,
    record: &Record,
    lookup: Option<&LookupStep>,
    filter: Option<&str>,
) -> Option<u64> {
    let handled = handled?;
    let skip = lookup.map(LookupStep::as_name);
    if handled.covers(|| crate::record::digest(&record.fields, skip), filter) {
        return Some(handled.run);
    }
    tracing::info!(key = %record.key, judged_in = handled.run, "the row failed or was filtered before, and its data or the flow's filter has changed since: it is taken again");
    None
}

/// Sends a crash left in the ledger: resent as possible repeats, or parked as uncertain.
/// Their keys go into `recovered`.
fn recover(
    ctx: &RunContext<'_>,
    tally: &mut Tally,
    recovered: &mut HashSet<String>,
) -> Result<(Vec<Pending>, Vec<LedgerMark>), StateError> {
    let mut todo = Vec::new();
    let ledger = ctx.state.recover()?;
    for entry in ledger.entries {
        recovered.insert(entry.key.clone());
        tally.summary.counts.new += 1;
        let seq = tally.next_seq();
        if ctx.flow.resend_uncertain {
            tracing::warn!(key = %entry.key, interrupted_run = entry.run, "resending a send a crash interrupted; it may arrive twice");
            let rebooted = entry.boot.is_none() || entry.boot.as_deref() != crate::boot_id();
            todo.push(Pending {
                seq,
                record: Record::new(entry.key, entry.record),
                repeat: true,
                resume: Vec::new(),
                rebooted,
            });
        } else {
            let outcome = RowOutcome::new(tally.summary.id, seq, entry.key, RowStatus::Failed, (ctx.now)())
                .reason(format!(
                    "uncertain: run {} was interrupted while sending it, so it may have been delivered; \
                     if it was not, send it with `switchboard replay {} --uncertain`",
                    entry.run, ctx.flow.name
                ))
                .with_record(entry.record);
            let mut outcome = outcome;
            outcome.uncertain = true;
            tally.record(ctx.state, outcome, true)?;
        }
    }
    Ok((todo, ledger.marks))
}

async fn replay_rows(
    ctx: RunContext<'_>,
    summary: RunSummary,
    rows: Vec<RowOutcome>,
) -> Result<RunReport, StateError> {
    let refused: Mutex<Option<SendError>> = Mutex::new(None);
    let mut tally = Tally::new(summary, &ctx);
    let mut todo = Vec::with_capacity(rows.len());
    for row in rows {
        tally.summary.counts.fetched += 1;
        tally.summary.counts.new += 1;
        todo.push(Pending {
            seq: tally.next_seq(),
            record: Record::new(row.key, row.record),
            repeat: false,
            resume: row.steps,
            rebooted: false,
        });
    }
    if let Some(p) = ctx.progress {
        p.start(todo.len() as u64);
    }
    let todo = enrich(&ctx, &mut tally, todo).await?;
    let todo = screen(&ctx, &mut tally, todo)?;
    deliver(&ctx, &mut tally, todo, &refused).await?;
    if let Some(p) = ctx.progress {
        p.finish();
    }
    finish(&ctx, tally).await
}

/// Run the flow's look-up on each record (as many at once as sends may be); a record
/// whose look-up fails is recorded as failed and goes no further.
async fn enrich(
    ctx: &RunContext<'_>,
    tally: &mut Tally,
    todo: Vec<Pending>,
) -> Result<Vec<Pending>, StateError> {
    let Some(step) = ctx.lookup else {
        return Ok(todo);
    };
    let policy = RetryPolicy::from(&ctx.flow.delivery);
    let concurrency = ctx.flow.delivery.concurrency.get();
    let looked_up: Vec<(Pending, Result<(), crate::LookupFailure>)> = futures::stream::iter(todo)
        .map(|mut pending| {
            let policy = &policy;
            async move {
                // A failed look-up leaves the record as it was.
                let found = step.enrich(&mut pending.record, policy, &ctx.stop).await;
                (pending, found)
            }
        })
        .buffered(concurrency)
        .collect()
        .await;
    let mut ready = Vec::with_capacity(looked_up.len());
    for (pending, found) in looked_up {
        match found {
            Ok(()) => ready.push(pending),
            Err(failure) => {
                let mut outcome = RowOutcome::new(
                    tally.summary.id,
                    pending.seq,
                    pending.record.key,
                    RowStatus::Failed,
                    (ctx.now)(),
                )
                .reason(failure.reason)
                .code(failure.code.as_deref())
                .with_record(pending.record.fields);
                outcome.repeat = pending.repeat;
                let remember = !failure.retry_next_run;
                if failure.retry_next_run {
                    outcome = outcome.retry_next_run();
                }
                tally.record(ctx.state, outcome, remember)?;
            }
        }
    }
    Ok(ready)
}

/// Judge each record by the flow's `filter:` (after its look-up): the ones it passes go
/// on; a dropped one is recorded `filtered` with the reason — remembered with its data
/// (`filtered: remember`, and always for pushed events, which are not read again) or
/// not (`retry`) — and one it cannot judge fails with the reason.
fn screen(
    ctx: &RunContext<'_>,
    tally: &mut Tally,
    todo: Vec<Pending>,
) -> Result<Vec<Pending>, StateError> {
    let Some(filter) = &ctx.flow.filter else {
        return Ok(todo);
    };
    let remember = ctx.flow.filtered == flows::Filtered::Remember || ctx.flow.source.push;
    let mut pass = Vec::with_capacity(todo.len());
    for pending in todo {
        let (status, reason, remember) =
            match crate::stages::judge(Some(filter), &pending.record.fields) {
                crate::stages::Judged::Pass => {
                    pass.push(pending);
                    continue;
                }
                crate::stages::Judged::Filtered(why) => (RowStatus::Filtered, why, remember),
                crate::stages::Judged::Failed(why) => (RowStatus::Failed, why, true),
            };
        let mut outcome = RowOutcome::new(
            tally.summary.id,
            pending.seq,
            pending.record.key,
            status,
            (ctx.now)(),
        )
        .reason(reason)
        .with_record(pending.record.fields);
        outcome.repeat = pending.repeat;
        tally.record(ctx.state, outcome, remember)?;
        if let Some(p) = ctx.progress {
            p.advance(status == RowStatus::Failed);
        }
    }
    Ok(pass)
}

/// Runs with at least this many records use the receiver's batch request, if it has one.
const BATCH_FROM: usize = 20;

/// Records on the wire together, and a part of them still to come back.
struct Group {
    mark: LedgerMark,
    left: usize,
}

/// The one delivery pipeline. Records are prepared (mapped, checked; those that cannot go
/// are recorded at once) and leave in groups, each marked in flight and durable before
/// it leaves: for single sends a group is a refill of the send window (`concurrency`
/// requests in flight, refilled once a quarter is free), for batches a batch (two in
/// flight, one sending while the next is prepared). Outcomes that come back together are
/// stored together; a group's mark goes with its last outcome.
async fn deliver(
    ctx: &RunContext<'_>,
    tally: &mut Tally,
    todo: Vec<Pending>,
    refused: &Mutex<Option<SendError>>,
) -> Result<(), StateError> {
    // What the source phase decided (skips, rejects) is stored before sends begin.
    tally.commit(ctx.state, &[])?;
    if todo.is_empty() {
        return Ok(());
    }
    let policy = RetryPolicy::from(&ctx.flow.delivery);
    // A record's steps go one after another: no batches.
    let batch = match ctx.chain {
        Some(_) => 1,
        None => ctx.receiver.batch_size(),
    };
    let batching = batch > 1 && todo.len() >= BATCH_FROM;
    // How many units (requests, or batches) may be on the wire, and how many records a
    // new group takes at least (single sends) or at most (batches).
    let (slots, refill_from) = if batching {
        (2, 1)
    } else {
        let concurrency = ctx.flow.delivery.concurrency.get();
        (concurrency, (concurrency / 4).max(1))
    };
    let run_id = tally.summary.id;
    let mut queue = todo.into_iter().peekable();
    let mut running = FuturesUnordered::new();
    let mut groups: HashMap<u64, Group> = HashMap::new();
    // Marks whose sends all have an outcome, stored with those outcomes at the next
    // commit: the one made before the window is refilled (so the sends whose fate the
    // state does not know — under way, or ended and not stored — never outnumber the
    // window), or at the end.
    let mut settled: Vec<LedgerMark> = Vec::new();
    // Once asked to stop: no new groups, and the sends under way have until then.
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        if deadline.is_none() && ctx.stop.is_stopped() {
            deadline = Some(tokio::time::Instant::now() + GRACE);
        }
        while deadline.is_none() && queue.peek().is_some() {
            let free = slots - running.len();
            if free < refill_from {
                break;
            }
            let take = if batching { batch } else { free };
            let mut sendable: Vec<ToSend> = Vec::with_capacity(take);
            for pending in queue.by_ref().take(take) {
                match ready(ctx, refused, run_id, pending) {
                    Ready::Done(outcome, remember) => tally.record(ctx.state, outcome, remember)?,
                    Ready::Send(send) => sendable.push(send),
                }
            }
            let Some(first) = sendable.first() else {
                continue;
            };
            let first_seq = first.outcome.seq;
            let marks: Vec<InFlight> = sendable
                .iter()
                .map(|send| in_flight(ctx, run_id, &send.outcome.key, &send.fields))
                .collect();
            // What ended is stored as what starts is marked: the sends whose fate the
            // state does not know never outnumber the window.
            let (mark, durable) = tally.commit_and_mark(
                ctx.state,
                &std::mem::take(&mut settled),
                first_seq,
                &marks,
            )?;
            groups.insert(
                first_seq,
                Group {
                    mark,
                    left: sendable.len(),
                },
            );
            if batching {
                running
                    .push(send_unit(ctx, &policy, refused, durable, first_seq, sendable).boxed());
            } else {
                for send in sendable {
                    running.push(
                        send_unit(
                            ctx,
                            &policy,
                            refused,
                            durable.clone(),
                            first_seq,
                            vec![send],
                        )
                        .boxed(),
                    );
                }
            }
        }
        let first = tokio::select! {
            first = running.next() => first,
            _ = ctx.stop.wait(), if deadline.is_none() => continue,
            _ = sleep_until(deadline) => {
                tracing::warn!(
                    abandoned = running.len(),
                    "sends still under way when the run stopped stay in the ledger for the next run"
                );
                break;
            }
        };
        let Some(first) = first else {
            break;
        };
        let mut finished = vec![first?];
        while let Some(Some(more)) = running.next().now_or_never() {
            finished.push(more?);
        }
        for (group, outcomes) in finished {
            let count = outcomes.len();
            for (outcome, remember) in outcomes {
                let failed = outcome.status == RowStatus::Failed;
                tally.record(ctx.state, outcome, remember)?;
                if let Some(p) = ctx.progress {
                    p.advance(failed);
                }
            }
            if let Some(state) = groups.get_mut(&group) {
                state.left = state.left.saturating_sub(count);
                if state.left == 0 {
                    if let Some(done) = groups.remove(&group) {
                        settled.push(done.mark);
                    }
                }
            }
        }
        // Nothing more to send meanwhile: what ended is stored now.
        if running.is_empty() || queue.peek().is_none() || deadline.is_some() {
            tally.commit(ctx.state, &std::mem::take(&mut settled))?;
        }
    }
    tally.commit(ctx.state, &settled)?;
    Ok(())
}

/// Send one unit — a record, or a batch of them — once its group's mark is durable, and
/// settle each record's outcome. Returns the group and the outcomes (with whether to
/// remember each key).
async fn send_unit(
    ctx: &RunContext<'_>,
    policy: &RetryPolicy,
    refused: &Mutex<Option<SendError>>,
    durable: Durable,
    group: u64,
    sendable: Vec<ToSend>,
) -> Result<(u64, Vec<(RowOutcome, bool)>), StateError> {
    durable.await.map_err(StateError::NotDurable)?;
    if let Some(chain) = ctx.chain {
        let mut outcomes = Vec::with_capacity(sendable.len());
        for send in sendable {
            outcomes.push(walk(ctx, chain, policy, send).await?);
        }
        return Ok((group, outcomes));
    }
    // The requests move out (a batch's bodies are not copied); the rest is settled after.
    let (requests, settling): (Vec<Prepared>, Vec<_>) = sendable
        .into_iter()
        .filter_map(|s| Some((s.request?, (s.outcome, s.fields))))
        .unzip();
    let (results, attempts) = if let [one] = requests.as_slice() {
        let (result, attempts) =
            send_with_retry(ctx.receiver.as_ref(), one, policy, &ctx.stop).await;
        (vec![result], attempts)
    } else {
        send_batch_with_retry(ctx.receiver.as_ref(), &requests, policy, &ctx.stop).await
    };
    // Each body, moved (not copied) into its row's outcome: what went out is recorded.
    let outcomes = settling
        .into_iter()
        .zip(results)
        .zip(requests)
        .map(|(((mut outcome, fields), result), request)| {
            if result.is_err() {
                outcome.call = Some(format!("{} {}", request.method.as_str(), request.url));
            }
            outcome.sent = Some(request.body);
            settle(ctx, refused, outcome, fields, result, attempts)
        })
        .collect();
    Ok((group, outcomes))
}

/// Take one record through the flow's steps, and settle its outcome: sent when no step
/// stopped it (skipped when every action's `when` held it back), else failed at the step
/// that did — remembered unless a later run may cure it.
async fn walk(
    ctx: &RunContext<'_>,
    chain: &crate::steps::Chain,
    policy: &RetryPolicy,
    send: ToSend,
) -> Result<(RowOutcome, bool), StateError> {
    let ToSend {
        outcome,
        fields,
        resume,
        rebooted,
        ..
    } = send;
    let run = outcome.run;
    let repeat = match (outcome.repeat, rebooted) {
        (false, _) => crate::steps::Repeat::No,
        (true, false) => crate::steps::Repeat::FirstSend,
        (true, true) => crate::steps::Repeat::EverySend,
    };
    let walked = chain
        .walk(
            ctx,
            policy,
            run,
            crate::steps::Walk {
                key: &outcome.key,
                fields: &fields,
                resume,
                repeat,
            },
        )
        .await?;
    let mut outcome = outcome.with_record(fields);
    outcome.at = (ctx.now)();
    outcome.attempts = walked.attempts;
    outcome.repeat = walked.repeat();
    outcome.remote_id = walked.last_id();
    let remember = match &walked.failure {
        None if walked.nothing_done(chain) => {
            outcome.status = RowStatus::Skipped;
            outcome.reason = Some(
                walked
                    .note()
                    .unwrap_or_else(|| "no step sent anything".into()),
            );
            true
        }
        None => {
            outcome.status = RowStatus::Sent;
            outcome.reason = walked.note();
            true
        }
        Some(failure) => {
            outcome.status = RowStatus::Failed;
            outcome.reason = Some(failure.reason.clone());
            outcome.code = failure.code.clone();
            outcome.uncertain = failure.uncertain;
            outcome.retry_next_run = failure.retry_next_run;
            !failure.retry_next_run
        }
    };
    outcome.steps = walked.steps;
    Ok((outcome, remember))
}

async fn finish(ctx: &RunContext<'_>, tally: Tally) -> Result<RunReport, StateError> {
    if ctx.flow.source.is_push() {
        ctx.state.drop_handled_from_queue()?;
    }
    let mut tally = tally;
    tally.commit(ctx.state, &[])?;
    let Tally {
        mut summary,
        mut failures,
        ..
    } = tally;
    summary.status = if ctx.stop.is_stopped() {
        summary.error.get_or_insert_with(|| {
            "interrupted: the run was stopped before it finished; what it did not send goes in the next run".into()
        });
        RunStatus::Interrupted
    } else if summary.counts.failed > 0 || summary.error.is_some() {
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    };
    summary.finished_at = Some((ctx.now)());
    ctx.state.save_run(&summary)?;
    ctx.state.durable().await?;
    failures.sort_by_key(|f| f.seq);
    let c = &summary.counts;
    tracing::info!(
        fetched = c.fetched,
        new = c.new,
        sent = c.sent,
        failed = c.failed,
        skipped = c.skipped,
        status = %serde_json::to_value(summary.status).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
        "run finished"
    );
    Ok(RunReport { summary, failures })
}

/// A record made ready to send, or its outcome when it cannot be sent.
// One short-lived value per record, moved once: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Ready {
    Send(ToSend),
    Done(RowOutcome, bool),
}

/// A record's request, with the outcome it will complete and its fields (for history).
struct ToSend {
    outcome: RowOutcome,
    /// The request (`None` for a flow with `steps:`, whose requests are made step by
    /// step).
    request: Option<Prepared>,
    fields: serde_json::Map<String, serde_json::Value>,
    /// What its `steps:` did before.
    resume: Vec<crate::state::StepOutcome>,
    /// See [`Pending::rebooted`].
    rebooted: bool,
}

/// Map and prepare one record (no I/O). Records of an account refused earlier in the
/// run fail fast here.
fn ready(
    ctx: &RunContext<'_>,
    refused: &Mutex<Option<SendError>>,
    run_id: u64,
    pending: Pending,
) -> Ready {
    let now = ctx.now;
    let Pending {
        seq,
        record,
        repeat,
        resume,
        rebooted,
    } = pending;
    let mut outcome = RowOutcome::new(run_id, seq, record.key.clone(), RowStatus::Failed, now());
    outcome.repeat = repeat;
    let refused_already = refused.lock().map(|r| r.clone()).unwrap_or(None);
    if let Some(error) = refused_already {
        let outcome = outcome
            .reason(format!(
                "not sent: the account was refused earlier in this run ({error})"
            ))
            .code(error.code())
            .with_record(record.fields)
            .retry_next_run();
        return Ready::Done(outcome, false);
    }
    if ctx.chain.is_some() {
        return Ready::Send(ToSend {
            outcome,
            request: None,
            fields: record.fields,
            resume,
            rebooted,
        });
    }
    let (record, fields) = crate::stages::map(ctx.mapper, record, now());
    let prepared = fields.and_then(|fields| {
        crate::stages::prepare(&*ctx.receiver, &ctx.flow.name, &record.key, fields)
    });
    match prepared {
        Ok(request) => Ready::Send(ToSend {
            outcome,
            request: Some(request),
            fields: record.fields,
            resume,
            rebooted,
        }),
        Err(unsendable) => Ready::Done(
            outcome
                .reason(unsendable.reason)
                .code(unsendable.code.as_deref())
                .with_record(record.fields),
            true,
        ),
    }
}

/// The outcome of a send, and whether to remember the key (not for failures a later run
/// may cure: transient errors and refused credentials).
fn settle(
    ctx: &RunContext<'_>,
    refused: &Mutex<Option<SendError>>,
    outcome: RowOutcome,
    fields: serde_json::Map<String, serde_json::Value>,
    result: Result<Delivered, SendError>,
    attempts: u32,
) -> (RowOutcome, bool) {
    let mut outcome = outcome.with_record(fields);
    outcome.attempts = attempts;
    outcome.at = (ctx.now)();
    match result {
        Ok(delivered) => {
            outcome.status = RowStatus::Sent;
            outcome.remote_id = delivered.remote_id;
            (outcome, true)
        }
        Err(e @ SendError::Permanent { .. }) => {
            (outcome.reason(e.to_string()).code(e.code()), true)
        }
        Err(e @ SendError::Transient { .. }) => {
            (outcome.reason(e.to_string()).retry_next_run(), false)
        }
        Err(SendError::Uncertain { reason }) => {
            let mut outcome = outcome.reason(format!(
                "uncertain: {reason}; it may have been delivered, so it is not sent again by itself — if it was not, send it with `switchboard replay {} --uncertain`",
                ctx.flow.name
            ));
            outcome.uncertain = true;
            (outcome, true)
        }
        Err(e @ SendError::Unauthorized { .. }) => {
            if let Ok(mut r) = refused.lock() {
                r.get_or_insert_with(|| e.clone());
            }
            (
                outcome
                    .reason(format!("unauthorized: {e}"))
                    .code(e.code())
                    .retry_next_run(),
                false,
            )
        }
    }
}

/// The ledger entry of a send about to start.
fn in_flight(
    ctx: &RunContext<'_>,
    run: u64,
    key: &str,
    fields: &serde_json::Map<String, serde_json::Value>,
) -> InFlight {
    InFlight {
        version: 1,
        key: key.to_string(),
        run,
        since: (ctx.now)(),
        record: fields.clone(),
        boot: crate::boot_id().map(String::from),
    }
}

/// Sleep until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl RowOutcome {
    fn new(run: u64, seq: u64, key: String, status: RowStatus, at: DateTime<Utc>) -> Self {
        RowOutcome {
            version: 1,
            run,
            seq,
            key,
            status,
            reason: None,
            code: None,
            remote_id: None,
            attempts: 0,
            retry_next_run: false,
            repeat: false,
            uncertain: false,
            at,
            record: serde_json::Map::new(),
            sent: None,
            call: None,
            digest: None,
            steps: Vec::new(),
        }
    }

    fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    fn code(mut self, code: Option<&str>) -> Self {
        self.code = code.map(String::from);
        self
    }

    fn with_record(mut self, record: serde_json::Map<String, serde_json::Value>) -> Self {
        self.record = record;
        self
    }

    fn retry_next_run(mut self) -> Self {
        self.retry_next_run = true;
        self
    }
}
