//! Prometheus metrics: runs by status, records by outcome, schedule lag and the next
//! run time per flow, the problems of each flow, runs that ended in a panic and flows
//! paused by their failures, in the text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use engine::{RunStatus, RunSummary};
use scheduler::FlowStatus;

#[derive(Default)]
pub struct Metrics {
    runs: Mutex<BTreeMap<(String, &'static str), u64>>,
    records: Mutex<BTreeMap<(String, &'static str), u64>>,
    panics: Mutex<BTreeMap<String, u64>>,
    pauses: Mutex<BTreeMap<String, u64>>,
    alerts: Mutex<BTreeMap<(String, &'static str), u64>>,
}

impl Metrics {
    pub fn observe(&self, run: &RunSummary) {
        let status = match run.status {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Running => "running",
        };
        if let Ok(mut runs) = self.runs.lock() {
            *runs.entry((run.flow.clone(), status)).or_default() += 1;
        }
        if let Ok(mut records) = self.records.lock() {
            for (outcome, n) in [
                ("sent", run.counts.sent),
                ("failed", run.counts.failed),
                ("skipped", run.counts.skipped),
                ("filtered", run.counts.filtered),
            ] {
                *records.entry((run.flow.clone(), outcome)).or_default() += n;
            }
        }
    }

    /// `flow` was paused by its failures.
    pub fn paused(&self, flow: &str) {
        if let Ok(mut pauses) = self.pauses.lock() {
            *pauses.entry(flow.to_string()).or_default() += 1;
        }
    }

    /// An alert of `condition` was queued for `flow`.
    pub fn alerted(&self, flow: &str, condition: &'static str) {
        if let Ok(mut alerts) = self.alerts.lock() {
            *alerts.entry((flow.to_string(), condition)).or_default() += 1;
        }
    }

    /// A run of `flow` ended in a panic (a bug; the daemon went on).
    pub fn panicked(&self, flow: &str) {
        if let Ok(mut panics) = self.panics.lock() {
            *panics.entry(flow.to_string()).or_default() += 1;
        }
    }

    pub fn render(
        &self,
        status: &BTreeMap<String, FlowStatus>,
        problems: &BTreeMap<String, usize>,
        valid: usize,
        invalid: usize,
    ) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP switchboard_flows Flows loaded, by state.\n# TYPE switchboard_flows gauge"
        );
        let _ = writeln!(out, "switchboard_flows{{state=\"valid\"}} {valid}\nswitchboard_flows{{state=\"invalid\"}} {invalid}");
        let _ = writeln!(out, "# HELP switchboard_runs_total Runs finished, by flow and status.\n# TYPE switchboard_runs_total counter");
        if let Ok(runs) = self.runs.lock() {
            for ((flow, s), n) in runs.iter() {
                let _ = writeln!(
                    out,
                    "switchboard_runs_total{{flow=\"{}\",status=\"{s}\"}} {n}",
                    escape(flow)
                );
            }
        }
        let _ = writeln!(out, "# HELP switchboard_records_total Records handled, by flow and outcome.\n# TYPE switchboard_records_total counter");
        if let Ok(records) = self.records.lock() {
            for ((flow, o), n) in records.iter() {
                let _ = writeln!(
                    out,
                    "switchboard_records_total{{flow=\"{}\",outcome=\"{o}\"}} {n}",
                    escape(flow)
                );
            }
        }
        let _ = writeln!(out, "# HELP switchboard_schedule_lag_seconds How late the last scheduled start was.\n# TYPE switchboard_schedule_lag_seconds gauge");
        for (flow, s) in status {
            if let Some(lag) = s.last_lag_ms {
                let _ = writeln!(
                    out,
                    "switchboard_schedule_lag_seconds{{flow=\"{}\"}} {:.3}",
                    escape(flow),
                    lag as f64 / 1000.0
                );
            }
        }
        let _ = writeln!(out, "# HELP switchboard_next_run_timestamp_seconds When each flow runs next (Unix time).\n# TYPE switchboard_next_run_timestamp_seconds gauge");
        for (flow, s) in status {
            if let Some(next) = s.next_run {
                let _ = writeln!(
                    out,
                    "switchboard_next_run_timestamp_seconds{{flow=\"{}\"}} {}",
                    escape(flow),
                    next.timestamp()
                );
            }
        }
        let _ = writeln!(out, "# HELP switchboard_flow_problems Problems that keep a flow (or its schedule) from running as written.\n# TYPE switchboard_flow_problems gauge");
        for (flow, n) in problems {
            let _ = writeln!(
                out,
                "switchboard_flow_problems{{flow=\"{}\"}} {n}",
                escape(flow)
            );
        }
        let _ = writeln!(out, "# HELP switchboard_run_panics_total Runs that ended in a panic (a bug), by flow.\n# TYPE switchboard_run_panics_total counter");
        if let Ok(panics) = self.panics.lock() {
            for (flow, n) in panics.iter() {
                let _ = writeln!(
                    out,
                    "switchboard_run_panics_total{{flow=\"{}\"}} {n}",
                    escape(flow)
                );
            }
        }
        let _ = writeln!(out, "# HELP switchboard_auto_pauses_total Times a flow was paused by its failing runs, by flow.\n# TYPE switchboard_auto_pauses_total counter");
        if let Ok(pauses) = self.pauses.lock() {
            for (flow, n) in pauses.iter() {
                let _ = writeln!(
                    out,
                    "switchboard_auto_pauses_total{{flow=\"{}\"}} {n}",
                    escape(flow)
                );
            }
        }
        let _ = writeln!(out, "# HELP switchboard_alerts_total Alerts queued for the alert flows, by flow and condition.\n# TYPE switchboard_alerts_total counter");
        if let Ok(alerts) = self.alerts.lock() {
            for ((flow, condition), n) in alerts.iter() {
                let _ = writeln!(
                    out,
                    "switchboard_alerts_total{{flow=\"{}\",condition=\"{condition}\"}} {n}",
                    escape(flow)
                );
            }
        }
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
