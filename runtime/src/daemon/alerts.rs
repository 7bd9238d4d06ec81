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
    if flow.source.connector == connectors::alerts::CARD.name {
        return;
    }
    let rule = flow
        .alerts
        .clone()
        .or_else(|| shared.snapshot().project.settings.alerts.clone());
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
            .snapshot()
            .project
            .flows
            .get(target)
            .is_some_and(|f| f.enabled);
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

/// Whether a flow whose schedule's next run was due at `due` is overdue at `now`: the
/// due time is past by more than `grace` and the flow has not started since (a start
/// moves its next due time on). The schedule's own due time, not its usual interval: a
/// daily or weekday flow is not overdue overnight or at the weekend.
pub fn overdue(due: DateTime<Utc>, grace: chrono::Duration, now: DateTime<Utc>) -> bool {
    now - due > grace
}

/// How late a flow may start before it is overdue: one period of its schedule (as its
/// next two times are apart), at most an hour.
pub fn grace(flow: &Flow, now: DateTime<Utc>) -> Option<chrono::Duration> {
    interval(flow, now).map(|period| period.min(chrono::Duration::hours(1)))
}

/// The watchdog: every `every`, each enabled scheduled flow whose next run was due more
/// than its grace ago raises `overdue` — the scheduler stopped firing it (n8n's
/// schedules stop silently), or its run has been stuck since.
pub async fn watch(
    shared: Arc<Shared>,
    every: Duration,
    mut stop: tokio::sync::broadcast::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.recv() => return,
        }
        let now = Utc::now();
        let flows: Vec<Flow> = shared.snapshot().project.flows.values().cloned().collect();
        let status = shared.status.read().map(|s| s.clone()).unwrap_or_default();
        for flow in flows {
            let Some(grace) = grace(&flow, now) else {
                continue;
            };
            let s = status.get(&flow.name).cloned().unwrap_or_default();
            // The first due time after the flow last started (the timer moves its own
            // next time on past triggers a stuck run swallows); before any start, the
            // timer's first.
            let spec = scheduler::Spec::of(&flow);
            let due = match (s.last_started, spec) {
                (Some(last), Some(spec)) => scheduler::next_due(&spec, last, last),
                _ => s.next_run,
            };
            let Some(due) = due else {
                continue;
            };
            let paused = shared
                .store
                .flow(&flow.name)
                .ok()
                .and_then(|state| engine::pause::paused(&*state).ok().flatten())
                .is_some();
            if paused || !overdue(due, grace, now) {
                continue;
            }
            let due = report::local_time(due, &flow.timezone);
            let why = match (s.running, s.last_started) {
                (true, Some(since)) => format!(
                    "its run has been going since {}, and the next was due at {due}",
                    report::local_time(since, &flow.timezone)
                ),
                _ => format!("its run was due at {due} and has not started"),
            };
            let message = format!(
                "{} is overdue: {why} ({}); check `switchboard status`",
                flow.name,
                report::when_it_runs(&flow)
            );
            raise(&shared, &flow, Condition::Overdue, message, None, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn overdue_once_the_due_time_is_past_by_more_than_the_grace() {
        let due = t("2026-11-28T10:00:00Z");
        let grace = chrono::Duration::minutes(15);
        assert!(!overdue(due, grace, t("2026-11-28T10:15:00Z")));
        assert!(overdue(due, grace, t("2026-11-28T10:16:00Z")));
    }

    /// A flow's grace and due time follow its own schedule: daily times and weekday
    /// crons are not overdue overnight or at the weekend (21 false e-mails in ~45
    /// minutes came of taking the gap between two daily times for the interval).
    #[test]
    fn daily_and_weekday_flows_that_ran_on_time_are_not_overdue_between_runs() {
        let parse = |yaml: &str| {
            let dir = tempfile::tempdir().expect("a temporary directory");
            std::fs::write(
                dir.path().join("accounts.yaml"),
                "x: {connector: http, base_url: \"http://127.0.0.1:9\"}\n",
            )
            .expect("the test writes its file");
            std::fs::write(dir.path().join("f.yaml"), yaml).expect("the test writes its file");
            let project = connectors::load_project(&flows::LoadOptions {
                flows_dir: dir.path().to_path_buf(),
                accounts_file: None,
                env: Default::default(),
                check_flows: false,
                unset_as: None,
                overlay: None,
            });
            project
                .flows
                .values()
                .next()
                .cloned()
                .unwrap_or_else(|| panic!("{:?}", project.diagnostics()))
        };
        let base = "source: {connector: alerts}\nreceiver: {connector: http, action: request, account: x}\nmap: {url: /x}\n";
        let twice_daily = parse(&format!("{base}schedule: {{at: [\"09:00\", \"12:20\"]}}\n"));
        let weekdays = parse(&format!("{base}schedule: {{cron: \"0 9 * * MON-FRI\"}}\n"));
        // The due time the timer keeps after a run that started on time.
        let next = |flow: &Flow, ran: &str| {
            let spec = scheduler::Spec::of(flow).unwrap_or_else(|| panic!("scheduled"));
            scheduler::next_due(&spec, t(ran), t(ran)).unwrap_or_else(|| panic!("a next run"))
        };
        // The 12:20 run went on time: at 16:00, and all evening, nothing is overdue.
        let due = next(&twice_daily, "2026-11-27T12:20:00Z");
        for now in [
            "2026-11-27T16:00:00Z",
            "2026-11-27T23:30:00Z",
            "2026-11-28T09:30:00Z",
        ] {
            let slack = grace(&twice_daily, t(now)).unwrap_or_default();
            assert!(!overdue(due, slack, t(now)), "{now}");
        }
        // Friday's run went: all weekend, nothing is overdue.
        let due = next(&weekdays, "2026-11-27T09:00:00Z");
        for now in ["2026-11-28T12:00:00Z", "2026-11-29T23:00:00Z"] {
            let slack = grace(&weekdays, t(now)).unwrap_or_default();
            assert!(!overdue(due, slack, t(now)), "{now}");
        }
        // Monday's 09:00 has not started by 10:01: overdue.
        let slack = grace(&weekdays, t("2026-11-30T10:01:00Z")).unwrap_or_default();
        assert!(overdue(due, slack, t("2026-11-30T10:01:00Z")));
    }
}
