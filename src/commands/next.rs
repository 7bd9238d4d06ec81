//! `switchboard next FLOW`: the coming run times, as if the schedule were armed at
//! `--now`, so every schedule rule can be checked from the command line.

use runtime::scheduler;
use std::collections::BTreeMap;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use scheduler::{describe, upcoming, Spec};

use runtime::Global;
use runtime::{report, wiring};

pub fn next(
    global: &Global,
    name: &str,
    count: usize,
    now: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let project = wiring::load(global, BTreeMap::new());
    wiring::warn(&project);
    let flow = match wiring::find_flow(&project, name) {
        Ok(flow) => flow,
        Err(code) => return Ok(code),
    };
    let now = match now {
        None => Utc::now(),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                anyhow::anyhow!(
                    "--now `{text}` is not an RFC 3339 time\n  hint: give the date, the time and the offset, e.g. 2026-11-21T12:08:00+02:00"
                )
            })?,
    };
    let when = report::when_it_runs(flow);
    let Some(schedule) = &flow.schedule else {
        if json {
            report::json(
                &serde_json::json!({"flow": name, "enabled": flow.enabled, "schedule": null, "runs": when, "timezone": flow.timezone.name(), "next": []}),
            );
        } else {
            outln!("{name}: {when}");
        }
        return Ok(ExitCode::SUCCESS);
    };
    let rule = describe(&schedule.rule);
    // A flow that is off: when it would run, once switched on.
    let spec = Spec::if_enabled(flow);
    let times: Vec<String> = match &spec {
        Some(spec) => upcoming(spec, now, count)
            .iter()
            .map(|t| report::local_time(*t, &flow.timezone))
            .collect(),
        None => Vec::new(),
    };
    if json {
        let (next, if_enabled) = if flow.enabled {
            (times, Vec::new())
        } else {
            (Vec::new(), times)
        };
        report::json(
            &serde_json::json!({"flow": name, "enabled": flow.enabled, "schedule": rule, "timezone": flow.timezone.name(), "next": next, "next_if_enabled": if_enabled}),
        );
        return Ok(ExitCode::SUCCESS);
    }
    if !flow.enabled {
        outln!("{name}: {when}");
        if !times.is_empty() {
            outln!("  switched on (`enabled: true`), it would run:");
            for t in times {
                outln!("    {t}");
            }
        }
    } else if spec.is_none() {
        outln!("{name}: {rule}: it runs each time that flow's run completes");
    } else {
        outln!("{name}: {when}");
        for t in times {
            outln!("  {t}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
