//! One run of a flow: fetch, drop what was handled before, settle the first run's
//! backlog, map, prepare, deliver with bounded concurrency, and record every record's
//! outcome before its key is remembered.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use flows::{Backlog, Flow};
use futures::stream::{self, StreamExt};
use tracing::Instrument;

use crate::connector::{Receiver, SendError, Source};
use crate::delivery::{send_with_retry, RetryPolicy};
use crate::mapper::Mapper;
use crate::record::Record;
use crate::state::{FlowState, RowOutcome, RowStatus, RunStatus, RunSummary, StateError, Trigger};

/// Progress of a run's sends, for a progress bar.
pub trait Progress: Send + Sync {
    fn start(&self, total: u64);
    fn advance(&self);
    fn finish(&self);
}

/// Everything a run needs.
pub struct RunContext<'a> {
    pub flow: &'a Flow,
    pub source: &'a dyn Source,
    pub receiver: Arc<dyn Receiver>,
    pub mapper: &'a Mapper,
    pub state: &'a FlowState,
    pub trigger: Trigger,
    /// The clock (injectable for tests).
    pub now: &'a (dyn Fn() -> DateTime<Utc> + Sync),
    pub progress: Option<&'a dyn Progress>,
}

/// What a run did: its summary, and the rows that failed (for the report).
#[derive(Debug, Clone)]
pub struct RunReport {
    pub summary: RunSummary,
    pub failures: Vec<RowOutcome>,
}

/// Run a flow once. State errors abort the run; everything else is recorded in it.
pub async fn run_flow(ctx: RunContext<'_>) -> Result<RunReport, StateError> {
    let summary = ctx.state.begin_run(ctx.trigger, (ctx.now)())?;
    let span = tracing::info_span!("run", flow = %ctx.flow.name, run_id = summary.id);
    run_inner(ctx, summary).instrument(span).await
}

async fn run_inner(ctx: RunContext<'_>, mut summary: RunSummary) -> Result<RunReport, StateError> {
    let run_id = summary.id;
    let state = ctx.state;
    let mut failures = Vec::new();

    let fetched = match ctx.source.fetch().await {
        Ok(fetched) => fetched,
        Err(e) => {
            tracing::warn!(error = %e, "source failed");
            summary.status = RunStatus::Failed;
            summary.error = Some(format!("source: {e}"));
            summary.finished_at = Some((ctx.now)());
            state.finish_run(&summary)?;
            state.flush().await?;
            return Ok(RunReport { summary, failures });
        }
    };
    summary.counts.fetched = (fetched.records.len() + fetched.rejects.len()) as u64;
    let primed = state.is_primed()?;
    let backlog = ctx.flow.source.backlog();
    let mut seq = 0u64;
    let mut next_seq = || {
        seq += 1;
        seq
    };

    for reject in fetched.rejects {
        let outcome = RowOutcome::new(
            run_id,
            next_seq(),
            reject.key,
            RowStatus::Failed,
            (ctx.now)(),
        )
        .reason(format!("source: {}", reject.reason));
        state.record(&outcome, false)?;
        summary.counts.failed += 1;
        failures.push(outcome);
    }

    let mut in_this_run = HashSet::new();
    let mut todo: Vec<(u64, Record)> = Vec::new();
    for record in fetched.records {
        if state.is_seen(&record.key)? {
            continue;
        }
        // Skipped records: a repeated key (its first occurrence decides), or the first
        // run's backlog (remembered, so it is never sent).
        let skip = if !in_this_run.insert(record.key.clone()) {
            Some((
                format!(
                    "duplicate: key `{}` appears earlier in the source",
                    record.key
                ),
                false,
            ))
        } else {
            summary.counts.new += 1;
            (!primed && backlog == Backlog::Skip).then(|| {
                (
                    "backlog: the row was there before the flow's first run (backlog: skip)"
                        .to_string(),
                    true,
                )
            })
        };
        if let Some((reason, remember)) = skip {
            let outcome = RowOutcome::new(
                run_id,
                next_seq(),
                record.key,
                RowStatus::Skipped,
                (ctx.now)(),
            )
            .reason(reason)
            .with_record(record.fields);
            state.record(&outcome, remember)?;
            summary.counts.skipped += 1;
            continue;
        }
        todo.push((next_seq(), record));
    }
    state.set_primed()?;

    if let Some(p) = ctx.progress {
        p.start(todo.len() as u64);
    }
    let policy = RetryPolicy::from(&ctx.flow.delivery);
    let refused: Mutex<Option<SendError>> = Mutex::new(None);
    let ctx_ref = &ctx;
    let deliver = |(seq, record): (u64, Record)| {
        let receiver = Arc::clone(&ctx_ref.receiver);
        let policy = &policy;
        let refused = &refused;
        async move {
            deliver_one(
                ctx_ref,
                receiver.as_ref(),
                policy,
                refused,
                run_id,
                seq,
                record,
            )
            .await
        }
    };
    let mut outcomes = stream::iter(todo)
        .map(deliver)
        .buffer_unordered(ctx.flow.delivery.concurrency);
    while let Some((outcome, remember)) = outcomes.next().await {
        state.record(&outcome, remember)?;
        match outcome.status {
            RowStatus::Sent => summary.counts.sent += 1,
            RowStatus::Skipped => summary.counts.skipped += 1,
            RowStatus::Failed => {
                summary.counts.failed += 1;
                failures.push(outcome);
            }
        }
        if let Some(p) = ctx.progress {
            p.advance();
        }
    }
    if let Some(p) = ctx.progress {
        p.finish();
    }

    summary.status = if summary.counts.failed > 0 {
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    };
    summary.finished_at = Some((ctx.now)());
    state.finish_run(&summary)?;
    state.flush().await?;
    failures.sort_by_key(|f| f.seq);
    tracing::info!(counts = ?summary.counts, status = ?summary.status, "run finished");
    Ok(RunReport { summary, failures })
}

/// Map, prepare and send one record. Returns its outcome and whether to remember its key
/// (not for failures a later run may cure: transient errors and refused credentials).
async fn deliver_one(
    ctx: &RunContext<'_>,
    receiver: &dyn Receiver,
    policy: &RetryPolicy,
    refused: &Mutex<Option<SendError>>,
    run_id: u64,
    seq: u64,
    record: Record,
) -> (RowOutcome, bool) {
    let now = ctx.now;
    let outcome = RowOutcome::new(run_id, seq, record.key.clone(), RowStatus::Failed, now());
    let refused_already = refused.lock().map(|r| r.clone()).unwrap_or(None);
    if let Some(error) = refused_already {
        let outcome = outcome
            .reason(format!(
                "not sent: the account was refused earlier in this run ({error})"
            ))
            .code(error.code())
            .with_record(record.fields)
            .retry_next_run();
        return (outcome, false);
    }
    let fields = match ctx.mapper.render(&record, now()) {
        Ok(fields) => fields,
        Err(e) => {
            return (
                outcome
                    .reason(format!("map: {e}"))
                    .with_record(record.fields),
                true,
            )
        }
    };
    let reference = format!("{}:{}", ctx.flow.name, record.key);
    let request = match receiver.prepare(fields, &reference) {
        Ok(request) => request,
        Err(e) => {
            return (
                outcome
                    .reason(format!("invalid for the receiver: {e}"))
                    .code(e.code())
                    .with_record(record.fields),
                true,
            )
        }
    };
    let (result, attempts) = send_with_retry(receiver, &request, policy).await;
    let mut outcome = outcome.with_record(record.fields);
    outcome.attempts = attempts;
    outcome.at = now();
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
            at,
            record: serde_json::Map::new(),
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
