//! Auto-pause (Zapier's rule): a flow whose last `after` runs all failed, with no
//! successful run within the grace period, stops hammering a service it cannot reach —
//! it is paused, with the reason, until a person resumes it. The mark lives in the flow's
//! state, so a restart keeps it; while paused, scheduled and chained runs do not start
//! and pushed events wait in the queue (nothing is lost); a force-run still runs.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::state::{load_meta, save_meta, FlowState, RunStatus, StateError};

const KEY: &str = "paused";

/// Why and since when a flow is paused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Paused {
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// The flow's pause, if it is paused.
pub fn paused(state: &dyn FlowState) -> Result<Option<Paused>, StateError> {
    // A resumed flow keeps `null` under the key.
    Ok(load_meta::<Option<Paused>>(state, KEY)?.flatten())
}

/// Pause the flow.
pub fn pause(state: &dyn FlowState, paused: &Paused) -> Result<(), StateError> {
    save_meta(state, KEY, &Some(paused))
}

/// Resume the flow; the pause it had, if any.
pub fn resume(state: &dyn FlowState) -> Result<Option<Paused>, StateError> {
    let was = paused(state)?;
    if was.is_some() {
        save_meta::<Option<Paused>>(state, KEY, &None)?;
    }
    Ok(was)
}

/// The most runs looked at for the start of a failing streak (a flow that runs every
/// minute makes 1,440 a day).
const LOOK_BACK: usize = 100_000;

/// Whether the flow should be paused now: its last `after` runs all failed and none of
/// its runs succeeded within `grace` of `now` (it has been failing for at least that
/// long). The reason, if so.
pub fn due(
    state: &dyn FlowState,
    after: usize,
    grace: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<Option<String>, StateError> {
    let after = after.max(1);
    // Most failed runs end here: the last `after` are read, and only when they all failed
    // the ones before them, for the start of the failures.
    let last = state.runs(after)?;
    if last.len() < after || last.iter().any(|r| r.status != RunStatus::Failed) {
        return Ok(None);
    }
    let since = now - grace;
    // Walk back through the failures (in growing pages: a flow that runs every few
    // minutes fails a hundred times in a day) to a success, or to a failure older than
    // the grace period: the flow has failed all that time.
    let mut limit = (after * 4).max(64);
    let failing_long_enough = loop {
        let runs = state.runs(limit)?;
        let mut verdict = None;
        for run in &runs {
            match run.status {
                RunStatus::Failed if run.started_at <= since => {
                    verdict = Some(true);
                    break;
                }
                RunStatus::Succeeded => {
                    verdict = Some(false);
                    break;
                }
                // Failed within the grace period, interrupted, running: look further.
                _ => {}
            }
        }
        if let Some(verdict) = verdict {
            break verdict;
        }
        if runs.len() < limit || limit >= LOOK_BACK {
            // The whole history (or as much as is looked at) failed within the period.
            break false;
        }
        limit = (limit * 4).min(LOOK_BACK);
    };
    if !failing_long_enough {
        return Ok(None);
    }
    // What went wrong last: the run's error, else its first failed record's reason.
    let why = match last.first() {
        Some(run) => match &run.error {
            Some(error) => error.clone(),
            None => state
                .rows(run.id)?
                .into_iter()
                .find(|row| row.status == crate::state::RowStatus::Failed)
                .and_then(|row| row.reason.map(|reason| format!("{}: {reason}", row.key)))
                .unwrap_or_else(|| "records failed".into()),
        },
        None => "records failed".into(),
    };
    Ok(Some(format!(
        "the last {after} runs failed, with no success for {} (last: {why})",
        humanize(grace)
    )))
}

fn humanize(d: chrono::Duration) -> String {
    d.to_std()
        .map(|d| humantime::format_duration(d).to_string())
        .unwrap_or_else(|_| "a while".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{SqliteStore, Store, Trigger};

    fn at(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_000_000 + h * 3600, 0).unwrap_or_default()
    }

    #[test]
    fn paused_after_n_failures_once_the_grace_period_has_passed() -> Result<(), StateError> {
        let dir = tempfile::tempdir().map_err(|e| StateError::Io(e.to_string()))?;
        let store = SqliteStore::open(dir.path())?;
        let state = store.flow("f")?;
        let run = |h: i64, status: RunStatus| -> Result<(), StateError> {
            let mut summary = state.begin_run(Trigger::Schedule, at(h))?;
            summary.status = status;
            summary.error = Some(format!("run at {h}h"));
            state.save_run(&summary)
        };
        run(0, RunStatus::Succeeded)?;
        for h in 1..=3 {
            run(h, RunStatus::Failed)?;
        }
        let grace = chrono::Duration::hours(24);
        // Three failures, but a success 3 hours ago: within the grace period.
        assert_eq!(due(&*state, 3, grace, at(3))?, None);
        // Not yet `after` failures.
        assert_eq!(due(&*state, 4, grace, at(30))?, None);
        // 30 hours on, the failures began 29 hours ago and nothing succeeded since.
        let why = due(&*state, 3, grace, at(30))?.unwrap_or_default();
        assert_eq!(
            why,
            "the last 3 runs failed, with no success for 1day (last: run at 3h)"
        );
        // A flow that runs every 15 minutes, succeeding once at 30h and failing after:
        // ten failures are only 2.5 hours, but a day on nothing has succeeded for 24h.
        let frequent = store.flow("every-15m")?;
        for quarter in 0..110 {
            let mut summary = frequent.begin_run(
                Trigger::Schedule,
                at(30) + chrono::Duration::minutes(15 * quarter),
            )?;
            summary.status = if quarter == 0 {
                RunStatus::Succeeded
            } else {
                RunStatus::Failed
            };
            summary.error = Some("source: file missing".into());
            frequent.save_run(&summary)?;
        }
        let quarters = |n: i64| at(30) + chrono::Duration::minutes(15 * n);
        assert!(
            due(&*frequent, 10, grace, quarters(110))?.is_some(),
            "frequent failures pause too"
        );
        assert_eq!(
            due(&*frequent, 10, grace, quarters(20))?,
            None,
            "not before the grace period"
        );
        // One success among the last three: not due.
        run(31, RunStatus::Succeeded)?;
        run(32, RunStatus::Failed)?;
        assert_eq!(due(&*state, 3, chrono::Duration::zero(), at(40))?, None);
        // Paused, resumed, and the mark survives reopening.
        pause(
            &*state,
            &Paused {
                reason: why.clone(),
                at: at(30),
            },
        )?;
        assert_eq!(paused(&*state)?.map(|p| p.reason), Some(why.clone()));
        assert_eq!(resume(&*state)?.map(|p| p.reason), Some(why));
        assert_eq!(paused(&*state)?, None);
        assert_eq!(resume(&*state)?, None);
        Ok(())
    }
}
