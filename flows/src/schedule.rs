//! The `schedule:` section: which rule decides when a flow runs. Computing the actual
//! run times belongs to the `scheduler` crate; this module only parses and checks.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::NaiveTime;
use marked_yaml::Node;
use serde::Deserialize;

use crate::diag::{Diagnostic, Pos};
use crate::yaml;

/// A flow's schedule: one rule plus what to do about runs missed while down.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub rule: ScheduleRule,
    pub catch_up: CatchUp,
    pub pos: Pos,
}

#[derive(Debug, Clone)]
pub enum ScheduleRule {
    /// `every: 15m` — a fixed interval of at least one minute.
    Every(Duration),
    /// `at: ["09:00", "12:20"]` — daily times in the flow's timezone, sorted, no repeats.
    At(Vec<NaiveTime>),
    /// `cron: "0 9 * * MON-FRI"` — the expression as written and as parsed (6/7 fields).
    Cron {
        expr: String,
        schedule: Box<cron::Schedule>,
    },
    /// `after: other-flow` — run when another flow's run completes.
    After(After),
}

/// `after:` — the flow to follow and which of its outcomes trigger this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct After {
    pub flow: String,
    pub on: Vec<RunResult>,
    pub pos: Pos,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunResult {
    Success,
    Failure,
}

/// What happens on start-up to runs missed while the daemon was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// One run for everything missed.
    #[default]
    Last,
    /// Nothing: wait for the next due time.
    None,
}

/// The longest `every` interval: ten years. Longer ones are surely typos, and a run time
/// computed from one could pass the end of the calendar.
pub const MAX_EVERY: Duration = Duration::from_secs(10 * 366 * 86_400);

const KEYS: &[&str] = &["every", "at", "cron", "after", "catch_up"];
const RULES: &[&str] = &["every", "at", "cron", "after"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAfter {
    flow: String,
    #[serde(default)]
    on: Option<Vec<RunResult>>,
}

pub(crate) fn parse(file: &Path, node: &Node) -> Result<Option<Schedule>, Diagnostic> {
    let pos = Pos::of(node.span());
    let Some(mapping) = node.as_mapping() else {
        return Err(Diagnostic::new(file, pos, "`schedule` must be a mapping")
            .with_hint("for example `schedule: {every: 15m}` or `schedule: {at: [\"09:00\"]}`"));
    };
    for key in mapping.keys() {
        if !KEYS.contains(&key.as_str()) {
            return Err(yaml::unknown_key(
                file,
                Pos::of(key.span()),
                key.as_str(),
                "schedule",
                KEYS,
            ));
        }
    }
    let rules: Vec<(&str, &Node)> = RULES
        .iter()
        .filter_map(|r| mapping.get_node(r).map(|n| (*r, n)))
        .collect();
    let catch_up = match mapping.get_node("catch_up") {
        None => CatchUp::default(),
        Some(n) => yaml::from_node(file, n, "schedule.catch_up")?,
    };
    let (kind, rule_node) = match rules.as_slice() {
        [] => {
            return Err(Diagnostic::new(file, pos, "`schedule` has no rule")
                .with_hint("give one of `every`, `at`, `cron` or `after`"))
        }
        [one] => *one,
        [_, (second, n), ..] => {
            return Err(Diagnostic::new(
                file,
                Pos::of(n.span()),
                format!(
                    "`schedule` has more than one rule (`{}` and `{second}`)",
                    rules[0].0
                ),
            )
            .with_hint("a flow has one schedule rule; make a second flow for a second rule"))
        }
    };
    let at = Pos::of(rule_node.span());
    let rule = match kind {
        "every" => ScheduleRule::Every(parse_every(
            file,
            at,
            yaml::scalar(file, rule_node, "every")?,
        )?),
        "at" => ScheduleRule::At(parse_at(file, rule_node)?),
        "cron" => {
            let expr = yaml::scalar(file, rule_node, "cron")?;
            let schedule = parse_cron(expr).map_err(|e| {
                Diagnostic::new(file, at, format!("`{expr}` is not a cron expression: {e}"))
                    .with_hint("5 fields (`min hour day month weekday`, e.g. `0 9 * * MON-FRI`) or 6 with seconds first")
            })?;
            if schedule.after(&chrono::Utc::now()).next().is_none() {
                return Err(Diagnostic::new(
                    file,
                    at,
                    format!("`cron: {expr}` never fires: no date matches it from now on"),
                )
                .with_hint("check the day and month fields (30 February does not exist)"));
            }
            ScheduleRule::Cron {
                expr: expr.to_string(),
                schedule: Box::new(schedule),
            }
        }
        _ => ScheduleRule::After(parse_after(file, rule_node)?),
    };
    Ok(Some(Schedule {
        rule,
        catch_up,
        pos,
    }))
}

fn parse_every(file: &Path, pos: Pos, text: &str) -> Result<Duration, Diagnostic> {
    let duration = humantime::parse_duration(text).map_err(|_| {
        Diagnostic::new(file, pos, format!("`{text}` is not a duration"))
            .with_hint("write a number and a unit: `10m`, `1h`, `1d`")
    })?;
    if duration > MAX_EVERY {
        return Err(Diagnostic::new(
            file,
            pos,
            format!("`every: {text}` is longer than ten years"),
        )
        .with_hint("for rare runs use `cron` (e.g. `0 9 1 1 *`, each 1 January) or `at`"));
    }
    if duration < Duration::from_secs(60) {
        return Err(Diagnostic::new(
            file,
            pos,
            format!("`every: {text}` is shorter than one minute"),
        )
        .with_hint(
            "the shortest interval is `1m`; for faster runs use a 6-field `cron` with seconds",
        ));
    }
    Ok(duration)
}

fn parse_at(file: &Path, node: &Node) -> Result<Vec<NaiveTime>, Diagnostic> {
    let items: Vec<&Node> = match node {
        Node::Scalar(_) => vec![node],
        Node::Sequence(seq) => seq.iter().collect(),
        Node::Mapping(_) => {
            return Err(Diagnostic::new(
                file,
                Pos::of(node.span()),
                "`at` must be a time or a list of times",
            )
            .with_hint("for example `at: [\"09:00\", \"12:20\"]`"))
        }
    };
    if items.is_empty() {
        return Err(Diagnostic::new(
            file,
            Pos::of(node.span()),
            "`at` lists no times",
        ));
    }
    let mut times = Vec::new();
    for item in items {
        let text = yaml::scalar(file, item, "at")?;
        let time = NaiveTime::parse_from_str(text, "%H:%M").map_err(|_| {
            Diagnostic::new(
                file,
                Pos::of(item.span()),
                format!("`{text}` is not a time of day"),
            )
            .with_hint("write 24-hour `HH:MM`, quoted: `\"09:00\"`")
        })?;
        times.push(time);
    }
    times.sort();
    times.dedup();
    Ok(times)
}

fn parse_after(file: &Path, node: &Node) -> Result<After, Diagnostic> {
    let pos = Pos::of(node.span());
    match node {
        Node::Scalar(s) => Ok(After {
            flow: s.as_str().to_string(),
            on: vec![RunResult::Success],
            pos,
        }),
        _ => {
            let raw: RawAfter = yaml::from_node(file, node, "schedule.after")?;
            let on = raw.on.unwrap_or_else(|| vec![RunResult::Success]);
            if on.is_empty() {
                return Err(Diagnostic::new(file, pos, "`after.on` is empty")
                    .with_hint("list `success`, `failure` or both"));
            }
            Ok(After {
                flow: raw.flow,
                on,
                pos,
            })
        }
    }
}

/// Parse a 5-field (standard) or 6/7-field (seconds first) cron expression.
/// Standard cron counts weekdays 0–7 from Sunday; the `cron` crate counts 1–7 from
/// Sunday, so numeric weekdays of a 5-field expression are translated to names.
pub fn parse_cron(expr: &str) -> Result<cron::Schedule, String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let full = match fields.len() {
        5 => format!(
            "0 {} {} {} {} {}",
            fields[0],
            fields[1],
            fields[2],
            fields[3],
            weekday_names(fields[4])
        ),
        6 | 7 => fields.join(" "),
        n => return Err(format!("it has {n} fields")),
    };
    if fields.len() == 5 {
        out_of_range(&fields)?;
    }
    cron::Schedule::from_str(&full).map_err(|e| {
        // The crate shows its own 6-field form with a caret; its last line is the reason.
        e.to_string()
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default()
            .to_string()
    })
}

/// A number outside its field's range in a 5-field cron, said in the field's words.
fn out_of_range(fields: &[&str]) -> Result<(), String> {
    const RANGES: [(&str, u32, u32); 5] = [
        ("minute", 0, 59),
        ("hour", 0, 23),
        ("day-of-month", 1, 31),
        ("month", 1, 12),
        ("day-of-week", 0, 7),
    ];
    for (field, (what, low, high)) in fields.iter().zip(RANGES) {
        let numbers = field
            .split([',', '-', '/'])
            .filter(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()));
        for (i, part) in numbers.enumerate() {
            let n: u32 = part.parse().unwrap_or(u32::MAX);
            // After `/` is a step, not a value: any step from 1 is fine.
            let is_step = field
                .split('/')
                .nth(1)
                .is_some_and(|step| step == part && i > 0);
            if !is_step && (n < low || n > high) {
                return Err(format!(
                    "`{part}` is out of range for the {what} field, which takes {low} to {high}"
                ));
            }
        }
    }
    Ok(())
}

fn weekday_names(field: &str) -> String {
    const NAMES: [&str; 8] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];
    let mut out = String::new();
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String, after_slash: bool| {
        if !digits.is_empty() {
            match digits.parse::<usize>() {
                Ok(n) if n < 8 && !after_slash => out.push_str(NAMES[n]),
                _ => out.push_str(digits),
            }
            digits.clear();
        }
    };
    let mut after_slash = false;
    for c in field.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out, after_slash);
            after_slash = c == '/';
            out.push(c);
        }
    }
    flush(&mut digits, &mut out, after_slash);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_field_weekdays_count_from_sunday_zero() {
        assert_eq!(weekday_names("1-5"), "MON-FRI");
        assert_eq!(weekday_names("0,6"), "SUN,SAT");
        assert_eq!(weekday_names("*/2"), "*/2");
        assert_eq!(weekday_names("MON-FRI"), "MON-FRI");
        assert!(parse_cron("0 9 * * 1-5").is_ok());
        assert!(parse_cron("*/2 * * * * *").is_ok());
        assert!(parse_cron("0 9 * *").is_err());
    }
}
