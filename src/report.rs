//! How results look on the terminal (and as JSON).

use engine::{RowOutcome, RowStatus, RunReport, RunSummary};
use flows::Diagnostic;

/// Writing to stdout failed: a closed pipe ends the process quietly (the reader has
/// what it wanted); anything else is reported.
pub fn stdout_failed(e: &std::io::Error) {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write the output: {e}");
    std::process::exit(2);
}

/// Colour only for a person at a terminal who has not asked for none (`NO_COLOR`,
/// <https://no-color.org>): never in files, pipes or a service manager's journal.
pub fn colour_on_stderr() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

pub fn diagnostics(problems: &[Diagnostic]) {
    for problem in problems {
        eprintln!("{problem}");
    }
}

pub fn json<T: serde::Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => outln!("{text}"),
        Err(e) => eprintln!("error: cannot print JSON: {e}"),
    }
}

/// `order-sms run 3: fetched 5, new 2, sent 2, failed 0, skipped 0 (succeeded in 0.41s)`
pub fn run_line(summary: &RunSummary) -> String {
    let c = &summary.counts;
    let took = summary
        .finished_at
        .map(|f| {
            format!(
                " in {:.2}s",
                (f - summary.started_at).num_milliseconds() as f64 / 1000.0
            )
        })
        .unwrap_or_default();
    format!(
        "{} run {}: fetched {}, new {}, sent {}, failed {}, skipped {} ({}{took})",
        summary.flow,
        summary.id,
        c.fetched,
        c.new,
        c.sent,
        c.failed,
        c.skipped,
        status_word(summary)
    )
}

fn status_word(summary: &RunSummary) -> String {
    serde_json::to_value(summary.status)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

pub fn run_report(report: &RunReport, as_json: bool) {
    if report.nothing_to_replay() {
        if as_json {
            json(&serde_json::json!({"run": null, "failures": [], "nothing_to_replay": true}));
        } else {
            outln!(
                "{}: nothing to replay — no failed row waits to be sent again; no run recorded",
                report.summary.flow
            );
        }
        return;
    }
    if as_json {
        json(&serde_json::json!({"run": report.summary, "failures": report.failures}));
        return;
    }
    outln!("{}", run_line(&report.summary));
    if let Some(error) = &report.summary.error {
        outln!("  error: {error}");
    }
    for failure in &report.failures {
        outln!("  {}", row_line(failure));
    }
}

pub fn row_line(row: &RowOutcome) -> String {
    let status = match row.status {
        RowStatus::Sent => "sent",
        RowStatus::Skipped => "skipped",
        RowStatus::Failed => "failed",
    };
    let mut line = format!("{status:<7} {}", row.key);
    if let Some(id) = &row.remote_id {
        line.push_str(&format!("  id {id}"));
    }
    if let Some(reason) = &row.reason {
        line.push_str(&format!("  {reason}"));
    }
    if row.retry_next_run {
        line.push_str("  (will retry next run)");
    }
    if row.repeat {
        line.push_str("  (resent after a crash: may be a repeat)");
    }
    line
}
