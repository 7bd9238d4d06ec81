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

/// An error and its causes on one line, each cause once: an error that already quotes
/// its cause (`state directory x: IO error: …`) is not followed by it again.
pub fn error_text(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let said = cause.to_string();
        if text.contains(&said) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&said);
    }
    text
}

/// Text made inert for a terminal: control characters other than line breaks and tabs
/// (an escape sequence in a record's field would recolour the screen, move the cursor
/// or set the window title), and the marks that reorder text (bidirectional overrides),
/// are written out as `\u001b` instead of being sent to the terminal — the escape JSON
/// uses too, so JSON output stays valid JSON that decodes to the same text.
pub fn inert(text: &str) -> std::borrow::Cow<'_, str> {
    let hostile = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(hostile) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if hostile(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A time as every human-facing output shows it: RFC 3339 in the flow's timezone, to
/// the second (`2026-11-21T12:20:00+02:00`).
pub fn local_time(t: chrono::DateTime<chrono::Utc>, tz: &chrono_tz::Tz) -> String {
    t.with_timezone(tz)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// When a flow runs, in words: its schedule, or the events that start it, and whether
/// it is switched off.
pub fn when_it_runs(flow: &flows::Flow) -> String {
    let name = &flow.name;
    let rule = flow.schedule.as_ref().map(|s| scheduler::describe(&s.rule));
    let when = match (rule, flow.source.is_push()) {
        (None, true) => format!("on each event pushed to /hooks/{name}"),
        (Some(rule), true) => format!(
            "events pushed to /hooks/{name} are sent {rule} ({})",
            flow.timezone
        ),
        (None, false) => format!("no schedule: only when forced (`switchboard run {name}`)"),
        (Some(rule), false) if rule.starts_with("after ") => rule,
        (Some(rule), false) => format!("{rule} ({})", flow.timezone),
    };
    if flow.enabled {
        when
    } else {
        format!("{when}, but `enabled: false`: it runs only when forced")
    }
}

/// A run's trigger as a word (`schedule`, `event`, `manual`, …).
pub fn trigger_word(trigger: engine::Trigger) -> String {
    serde_json::to_value(trigger)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
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
    // Only flows with a filter drop records: the others' lines stay as they were.
    let filtered = if c.filtered > 0 {
        format!(", filtered {}", c.filtered)
    } else {
        String::new()
    };
    format!(
        "{} run {}: fetched {}, new {}, sent {}, failed {}, skipped {}{filtered} ({}{took})",
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
        RowStatus::Filtered => "filtered",
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
        line.push_str("  (resent: an earlier run stopped while sending it, so it may be a repeat)");
    }
    line
}

/// One step of a record of a flow with `steps:`, as `history --run` shows it.
pub fn step_line(step: &engine::StepOutcome) -> String {
    let status = match step.status {
        engine::StepStatus::Done if step.sent.is_some() => "sent",
        engine::StepStatus::Done => "found",
        engine::StepStatus::Skipped => "skipped",
        engine::StepStatus::Failed => "failed",
    };
    let mut line = format!("step {} {status}", step.step);
    if let Some(id) = &step.remote_id {
        line.push_str(&format!("  id {id}"));
    }
    if let Some(reason) = &step.reason {
        line.push_str(&format!("  {reason}"));
    }
    if step.repeat {
        line.push_str("  (resent: a run stopped while sending it, so it may be a repeat)");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_that_quotes_its_cause_is_not_followed_by_it_again() {
        let io = std::io::Error::other("No space left on device");
        let quoted = anyhow::Error::new(io).context("state directory `x`: No space left on device");
        assert_eq!(
            error_text(&quoted),
            "state directory `x`: No space left on device"
        );
        let plain = anyhow::anyhow!("Connection refused").context("cannot start the daemon");
        assert_eq!(
            error_text(&plain),
            "cannot start the daemon: Connection refused"
        );
    }

    #[test]
    fn escape_codes_in_record_data_are_shown_not_obeyed() {
        assert_eq!(inert("plain text\twith a tab"), "plain text\twith a tab");
        assert_eq!(
            inert("A-1\u{1b}]0;pwned\u{7}\u{1b}[2J"),
            "A-1\\u001b]0;pwned\\u0007\\u001b[2J"
        );
        assert_eq!(inert("\u{9b}31m \u{202e}evil"), "\\u009b31m \\u202eevil");
        // In JSON output the escape is JSON's own: the text decodes to what it was.
        let json = serde_json::to_string(&serde_json::json!({"key": "x\u{9b}y\u{7f}"}))
            .unwrap_or_default();
        let shown = inert(&json);
        let back: serde_json::Value = serde_json::from_str(&shown).unwrap_or_default();
        assert_eq!(back["key"], "x\u{9b}y\u{7f}");
        assert!(!shown.contains('\u{9b}'));
    }

    /// A row resent after its send was cut short says so without calling it a crash: a
    /// daemon stopped cleanly past its drain limit leaves such rows too (issue 12, item 8).
    #[test]
    fn a_repeat_is_described_without_calling_it_a_crash() {
        let row: RowOutcome = serde_json::from_value(serde_json::json!({
            "run": 2, "seq": 1, "key": "A-1", "status": "sent",
            "at": "2026-11-28T12:00:00Z", "repeat": true, "remote_id": "m-1"
        }))
        .expect("from_value succeeds");
        let line = row_line(&row);
        assert_eq!(
            line,
            "sent    A-1  id m-1  (resent: an earlier run stopped while sending it, so it may be a repeat)"
        );
        assert!(!line.contains("crash"), "{line}");
    }
}
