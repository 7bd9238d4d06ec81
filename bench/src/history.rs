//! `history`: how big the state directory grows over a simulated year of a flow, with
//! and without a `history:` rule — the store's own writes (begin run, record outcomes,
//! save run; remembered keys included), as a run makes them, at the run times a
//! 15-minute schedule would have, with the pruning the daemon does hourly. No HTTP: what
//! is measured is the disk.

use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use engine::{FlowState, Retention, RowOutcome, RowStatus, RunStatus, SqliteStore, Store, Trigger};
use serde_json::{json, Map};

#[derive(clap::Args, Clone)]
pub struct Options {
    /// Runs to simulate (a year of a 15-minute schedule: 35,040).
    #[arg(long, default_value_t = 35_040)]
    pub runs: usize,
    /// Records each run sends.
    #[arg(long, default_value_t = 100)]
    pub records: usize,
    /// The history kept in the pruned case, in days.
    #[arg(long, default_value_t = 30)]
    pub keep_days: i64,
    /// In the pruned case, forget the keys of handled records too (`forget_handled`).
    #[arg(long)]
    pub forget_handled: bool,
    /// Measure the pruned case only.
    #[arg(long)]
    pub pruned_only: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            runs: 35_040,
            records: 100,
            keep_days: 30,
            forget_handled: false,
            pruned_only: false,
        }
    }
}

impl Options {
    pub fn sized(self, smoke: bool) -> Options {
        if smoke {
            Options {
                runs: self.runs.min(200),
                records: self.records.min(10),
                keep_days: 1,
                ..self
            }
        } else {
            self
        }
    }
}

/// One record's outcome as an 8x8 run stores it: its fields, the body sent, the umid.
pub(crate) fn outcome(run: u64, seq: u64, at: DateTime<Utc>) -> RowOutcome {
    let key = format!("O-{run}-{seq}");
    let mut record = Map::new();
    record.insert("order_id".into(), json!(key));
    record.insert("name".into(), json!("Olena Kovalenko"));
    record.insert(
        "phone".into(),
        json!(format!("+38050{:07}", (run * 100 + seq) % 10_000_000)),
    );
    record.insert("status".into(), json!("paid"));
    RowOutcome {
        version: 1,
        run,
        seq,
        key: key.clone(),
        status: RowStatus::Sent,
        reason: None,
        code: None,
        remote_id: Some(format!("5b0c{run:08x}-0000-4000-8000-{seq:012x}")),
        attempts: 1,
        retry_next_run: false,
        repeat: false,
        uncertain: false,
        at,
        sent: Some(json!({
            "destination": record["phone"],
            "text": format!("Hi Olena Kovalenko, your order {key} is paid. Thank you!"),
            "clientMessageId": format!("orders:{key}"),
        })),
        record,
        call: None,
        digest: None,
        steps: Vec::new(),
    }
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        total += if path.is_dir() {
            dir_size(&path)
        } else {
            entry.metadata().map(|m| m.len()).unwrap_or(0)
        };
    }
    total
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The store the measurement writes to.
fn open(dir: &Path) -> anyhow::Result<Box<dyn Store>> {
    Ok(Box::new(SqliteStore::open(dir)?))
}

/// Simulate the year in `dir`, pruning hourly when `keep` is given; the store's size
/// then, and after it is closed and opened again.
async fn year(
    dir: &Path,
    options: &Options,
    keep: Option<Duration>,
    forget_handled: bool,
) -> anyhow::Result<(u64, u64, f64)> {
    let started = Instant::now();
    let store = open(dir)?;
    let state = store.flow("orders")?;
    let begin = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")?.with_timezone(&Utc);
    for i in 0..options.runs {
        let at = begin + Duration::minutes(15 * i as i64);
        write_run(&*state, options.records, at)?;
        // The daemon prunes hourly.
        if let (Some(keep), true) = (keep, i % 4 == 3) {
            let retention = Retention {
                before: Some(at - keep),
                forget_handled,
                ..Retention::default()
            };
            state.prune(&retention, false)?;
        }
        if i % 500 == 499 {
            store.flush().await?;
        }
    }
    store.flush().await?;
    let size = dir_size(dir);
    let took = started.elapsed().as_secs_f64();
    drop(state);
    drop(store);
    let reopened = open(dir)?;
    reopened.flush().await?;
    drop(reopened);
    Ok((size, dir_size(dir), took))
}

fn write_run(state: &dyn FlowState, records: usize, at: DateTime<Utc>) -> anyhow::Result<()> {
    let mut summary = state.begin_run(Trigger::Schedule, at)?;
    let outcomes: Vec<RowOutcome> = (0..records as u64)
        .map(|seq| outcome(summary.id, seq, at))
        .collect();
    let refs: Vec<(&RowOutcome, bool)> = outcomes.iter().map(|o| (o, true)).collect();
    state.record(&refs, &[])?;
    summary.counts.fetched = records as u64;
    summary.counts.new = records as u64;
    summary.counts.sent = records as u64;
    summary.status = RunStatus::Succeeded;
    summary.finished_at = Some(at + Duration::seconds(2));
    state.save_run(&summary)?;
    Ok(())
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    println!(
        "history: {} runs of {} records (a 15-minute flow for {:.1} days), state directory size, SQLite",
        options.runs,
        options.records,
        options.runs as f64 / 96.0,
    );
    let scratch = tempfile::tempdir()?;
    let keep = Duration::days(options.keep_days);
    // (label, kept days, forget handled keys)
    let mut cases = vec![
        ("keep everything", None, false),
        ("history: {keep: Nd}", Some(keep), options.forget_handled),
    ];
    if !options.pruned_only && !options.forget_handled {
        cases.push(("history: {keep: Nd, forget_handled}", Some(keep), true));
    }
    if options.pruned_only {
        cases.remove(0);
    }
    let mut pruned_sizes = Vec::new();
    for &(label, keep, forget) in &cases {
        let dir = scratch.path().join("year");
        let (size, reopened, took) = year(&dir, &options, keep, forget).await?;
        let mut label = label.replace('N', &options.keep_days.to_string());
        if keep.is_some() && forget && !label.contains("forget") {
            label = label.replace('}', ", forget_handled}");
        }
        println!(
            "  {label:<40} {:>12} at the end, {:>12} after reopening ({took:.0}s to write)",
            mib(size),
            mib(reopened)
        );
        if keep.is_some() {
            pruned_sizes.push(reopened);
        }
        std::fs::remove_dir_all(&dir)?;
    }
    if let [remembering, forgetting] = pruned_sizes[..] {
        // The two pruned cases differ only by the keys of the runs pruned away.
        let kept_runs = (options.keep_days * 96) as usize;
        let forgotten_keys = options.runs.saturating_sub(kept_runs) * options.records;
        if forgotten_keys > 0 {
            println!(
                "  disk per remembered key: {:.0} B ({} keys; the two pruned cases' difference)",
                remembering.saturating_sub(forgetting) as f64 / forgotten_keys as f64,
                forgotten_keys
            );
        }
    }
    if options.pruned_only {
        return Ok(());
    }
    // The space pruning a full history at once gives back.
    let dir = scratch.path().join("late");
    let (before, _, _) = year(&dir, &options, None, false).await?;
    let store = open(&dir)?;
    let state = store.flow("orders")?;
    let last = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")?.with_timezone(&Utc)
        + Duration::minutes(15 * options.runs as i64);
    let started = Instant::now();
    let pruned = state.prune(
        &Retention {
            before: Some(last - keep),
            ..Retention::default()
        },
        false,
    )?;
    store.flush().await?;
    let took = started.elapsed().as_secs_f64();
    let right_after = dir_size(&dir);
    drop(state);
    drop(store);
    let reopened = open(&dir)?;
    reopened.flush().await?;
    drop(reopened);
    println!(
        "  pruned once at the end:  {} → {} right after, {} after reopening ({} runs, {} records dropped in {took:.1}s)",
        mib(before),
        mib(right_after),
        mib(dir_size(&dir)),
        pruned.runs,
        pruned.records
    );
    Ok(())
}
