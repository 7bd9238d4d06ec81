//! Alerts: when a run fails, records fail, an account is refused, a flow is paused, or a
//! scheduled flow has not run for twice its interval (the watchdog), the daemon queues an
//! alert record in each alert flow the flow's `alerts.to` (or `switchboard.yaml`'s) names
//! and starts it — so
//! alerts go out through the project's own receivers, with their retries and history. An
//! alert of one kind for one flow goes at most once per `every`; those held back meanwhile
//! are counted in the next. Alert flows never alert (no loops); texts are scrubbed of
//! every secret; a failing alert flow is recorded in its own history, not retried forever.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use engine::{RunReport, RunStatus};
use flows::alerts::Condition;
use flows::Flow;
use scheduler::{Command, Reason};
use serde::{Deserialize, Serialize};

use super::Shared;
use crate::report;

/// Per condition, in the alerting flow's state: when an alert last went, and how many
/// were held back since.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Sent {
    last: Option<DateTime<Utc>>,
    held_back: u64,
}

const KEY: &str = "alerts";

/// The alerts a finished run calls for: the run failed as a whole, or records failed.
pub fn after_run(shared: &Shared, flow: &Flow, run: &RunReport) {
    if run.summary.status != RunStatus::Failed {
        return;
    }
    let summary = &run.summary;
    if let Some(error) = &summary.error {
        raise(
            shared,
            flow,
            Condition::RunFailed,
            format!("run {} of {} failed: {error}", summary.id, flow.name),
            Some(summary.id),
            summary.counts.failed,
        );
    } else if let Some(refused) = run.failures.iter().find(|row| {
        row.reason
            .as_deref()
            .is_some_and(|r| r.starts_with("unauthorized: "))
    }) {
        // The credentials were refused: the account, not the records, is the problem.
        raise(
            shared,
            flow,
            Condition::AccountInactive,
            format!(
                "the account `{}` of {} was refused ({}); {} record(s) wait for it — `switchboard accounts check` says more",
                flow.receiver.account,
                flow.name,
                refused.reason.as_deref().unwrap_or_default().trim_start_matches("unauthorized: "),
                summary.counts.failed
            ),
            Some(summary.id),
            summary.counts.failed,
        );
    } else if summary.counts.failed > 0 {
        let first = run
            .failures
            .first()
            .map(|row| {
                format!(
                    " (first: {}: {})",
                    row.key,
                    row.reason.as_deref().unwrap_or("failed")
                )
            })
            .unwrap_or_default();
        raise(
            shared,
            flow,
            Condition::RecordsFailed,
            format!(
                "{} of {} records failed in run {} of {}{first}",
                summary.counts.failed, summary.counts.new, summary.id, flow.name
            ),
            Some(summary.id),
            summary.counts.failed,
        );
    }
}

/// Raise an alert of `condition` for `flow`, unless its rule does not ask for it or one
/// went within `every` (then it is counted, for the next).
pub fn raise(
    shared: &Shared,
    flow: &Flow,
    condition: Condition,
    message: String,
    run: Option<u64>,
    failed: u64,
) {
    if flow.source.connector == connectors::catalogue::names::ALERTS {
        return;
    }
    let rule = flow.alerts.clone().or_else(|| {
        shared
            .project
            .read()
            .ok()
            .and_then(|p| p.settings.alerts.clone())
    });
    let Some(rule) = rule.filter(|r| r.on.contains(&condition)) else {
        return;
    };
    let now = Utc::now();
    let held_back = match debounce(shared, &flow.name, condition, rule.every, now) {
        Ok(Some(held_back)) => held_back,
        Ok(None) => {
            tracing::debug!(flow = %flow.name, condition = condition.name(), "alert held back (one went within `every`)");
            return;
        }
        Err(e) => {
            tracing::error!(flow = %flow.name, error = %e, "cannot keep the alert's state; sending it");
            0
        }
    };
    let mut message = shared.scrubber().string(message);
    if held_back > 0 {
        message.push_str(&format!(
            " ({held_back} more like it held back in the last {})",
            humantime::format_duration(rule.every)
        ));
    }
    let at = report::local_time(now, &flow.timezone);
    let record = connectors::alerts::record(
        &flow.name,
        condition.name(),
        &message,
        run,
        failed,
        held_back,
        &at,
    );
    tracing::warn!(flow = %flow.name, condition = condition.name(), "{message}");
    for (target, _) in &rule.to {
        let enabled = shared
            .project
            .read()
            .ok()
            .and_then(|p| p.flows.get(target).map(|f| f.enabled))
            .unwrap_or(false);
        let queued = shared.store.flow(target).and_then(|state| {
            if enabled {
                state.enqueue(std::slice::from_ref(&record))
            } else {
                // Off means off for alert flows too: recorded, not sent.
                engine::record_skipped(
                    &*state,
                    engine::Trigger::Event,
                    std::slice::from_ref(&record),
                    "not sent: the alert flow is switched off (`enabled: false`)",
                    now,
                )
                .map(|_| ())
            }
        });
        match queued {
            Ok(()) if !enabled => {}
            Ok(()) => {
                shared.metrics.alerted(&flow.name, condition.name());
                let _ = shared.timer.send(Command::RunNow {
                    name: target.clone(),
                    reason: Reason::Event,
                    reply: None,
                });
            }
            Err(e) => {
                tracing::error!(flow = %flow.name, alert_flow = %target, error = %e, "cannot queue the alert")
            }
        }
    }
}

/// `Some(held back since the last)` when an alert may go now (and it is marked sent);
/// `None` when one went within `every` (and this one is counted).
fn debounce(
    shared: &Shared,
    flow: &str,
    condition: Condition,
    every: Duration,
    now: DateTime<Utc>,
) -> Result<Option<u64>, engine::StateError> {
    let state = shared.store.flow(flow)?;
    let mut sent: BTreeMap<String, Sent> = engine::load_meta(&*state, KEY)?.unwrap_or_default();
    let entry = sent.entry(condition.name().to_string()).or_default();
    let every = chrono::Duration::from_std(every).unwrap_or(chrono::Duration::MAX);
    let go = entry.last.is_none_or(|last| now - last >= every);
    let result = if go {
        entry.last = Some(now);
        Some(std::mem::take(&mut entry.held_back))
    } else {
        entry.held_back += 1;
        None
    };
    engine::save_meta(&*state, KEY, &sent)?;
    Ok(result)
}

/// How long a flow's schedule goes between runs (from its next two times), if it runs
/// by itself on time.
pub fn interval(flow: &Flow, now: DateTime<Utc>) -> Option<chrono::Duration> {
    let spec = scheduler::Spec::of(flow)?;
    match scheduler::upcoming(&spec, now, 2).as_slice() {
        [first, second] => Some(*second - *first),
        _ => None,
    }
}

/// Whether a flow that last started at `last` (or, never, since `since`) is overdue at
/// `now`: more than twice its interval has passed.
pub fn overdue(interval: chrono::Duration, last: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now - last > interval * 2
}

/// The watchdog: every `every`, each enabled scheduled flow that has not started for
/// twice its interval raises `overdue` — the scheduler stopped firing it (n8n's schedules
/// stop silently), or its run has been stuck since.
pub async fn watch(
    shared: Arc<Shared>,
    every: Duration,
    mut stop: tokio::sync::broadcast::Receiver<()>,
) {
    let since = Utc::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.recv() => return,
        }
        let now = Utc::now();
        let flows: Vec<Flow> = shared
            .project
            .read()
            .map(|p| p.flows.values().cloned().collect())
            .unwrap_or_default();
        let status = shared.status.read().map(|s| s.clone()).unwrap_or_default();
        for flow in flows {
            let Some(interval) = interval(&flow, now) else {
                continue;
            };
            let s = status.get(&flow.name).cloned().unwrap_or_default();
            let last = s.last_started.unwrap_or(since).max(since);
            let paused = shared
                .store
                .flow(&flow.name)
                .ok()
                .and_then(|state| engine::pause::paused(&*state).ok().flatten())
                .is_some();
            if paused || !overdue(interval, last, now) {
                continue;
            }
            let why = if s.running {
                "its run has been going since"
            } else {
                "it has not started since"
            };
            let message = format!(
                "{} is overdue: {why} {} ({}); check `switchboard status`",
                flow.name,
                report::local_time(last, &flow.timezone),
                report::when_it_runs(&flow)
            );
            raise(&shared, &flow, Condition::Overdue, message, None, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overdue_after_twice_the_interval() {
        let t0 = DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let every = chrono::Duration::minutes(15);
        assert!(!overdue(every, t0, t0 + chrono::Duration::minutes(30)));
        assert!(overdue(every, t0, t0 + chrono::Duration::minutes(31)));
    }
}
