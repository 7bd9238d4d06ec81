//! `switchboard status`: the flows as the running daemon sees them; `switchboard flows`:
//! the same list without needing a daemon (ApiX-Drive's connection list) — from the
//! daemon when one runs, else from the files and the state.

use runtime::{engine, scheduler};
use std::collections::BTreeMap;
use std::process::ExitCode;

use chrono::Utc;
use engine::RunSummary;
use serde::Serialize;
use serde_json::Value;

use runtime::daemon::discovery;
use runtime::Global;
use runtime::{report, wiring};

/// One line of the list: a flow, when it runs, and how its last run went.
#[derive(Debug, Serialize)]
struct Listed {
    name: String,
    enabled: Option<bool>,
    schedule: Option<String>,
    next_run: Option<String>,
    running: bool,
    /// In a cluster: the node running it now.
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<String>,
    /// Due, waiting for a run slot (`--max-runs`) since then.
    #[serde(skip_serializing_if = "Option::is_none")]
    waiting_since: Option<String>,
    /// Paused by its failing runs: why and since when.
    paused: Option<engine::pause::Paused>,
    last_run: Option<RunSummary>,
    error: Vec<String>,
}

pub async fn status(global: &Global, json: bool) -> anyhow::Result<ExitCode> {
    let dir = wiring::state_dir(global);
    let daemon = match discovery::find(&dir, &global.flows) {
        Ok(daemon) => daemon,
        Err(why) => {
            eprintln!("error: {why}");
            eprintln!("  hint: pass the daemon's directory with --flows, or give this one its own --state");
            return Ok(ExitCode::from(1));
        }
    };
    let Some(daemon) = daemon else {
        eprintln!(
            "error: no daemon is running for the state directory `{}`",
            dir.display()
        );
        eprintln!(
            "  hint: start one with `switchboard daemon --flows {}`; `switchboard flows` lists the flows without one",
            global.flows.display()
        );
        return Ok(ExitCode::from(1));
    };
    let body: Value =
        crate::commands::run::daemon_request(&daemon, reqwest::Method::GET, "/api/flows", None)
            .await?;
    if json {
        report::json(&body);
        return Ok(ExitCode::SUCCESS);
    }
    print(&from_api(&body));
    Ok(ExitCode::SUCCESS)
}

/// `switchboard flows`: the list from the daemon when one runs, else from the files and
/// the state (next times as a daemon started now would run them).
pub async fn flows(global: &Global, json: bool) -> anyhow::Result<ExitCode> {
    let dir = wiring::state_dir(global);
    if let Ok(Some(daemon)) = discovery::find(&dir, &global.flows) {
        let body: Value =
            crate::commands::run::daemon_request(&daemon, reqwest::Method::GET, "/api/flows", None)
                .await?;
        let listed = from_api(&body);
        if json {
            report::json(&serde_json::json!({"daemon": daemon.url, "flows": listed}));
        } else {
            outln!("(from the daemon at {})", daemon.url);
            print(&listed);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let project = wiring::load(global, BTreeMap::new());
    wiring::warn(&project);
    if let Some((message, hint)) = wiring::no_flow_files(&project) {
        eprintln!("error: {message}\n  hint: {hint}");
        return Ok(ExitCode::from(1));
    }
    let store = if dir.exists() {
        wiring::open_store(global).ok()
    } else {
        None
    };
    let now = Utc::now();
    let mut listed: Vec<Listed> = Vec::new();
    for flow in project.flows.values() {
        let next_run = scheduler::Spec::of(flow)
            .and_then(|spec| scheduler::upcoming(&spec, now, 1).into_iter().next())
            .map(|at| report::local_time(at, &flow.timezone));
        listed.push(Listed {
            name: flow.name.clone(),
            enabled: Some(flow.enabled),
            schedule: Some(report::when_it_runs(flow)),
            next_run,
            running: false,
            node: None,
            waiting_since: None,
            paused: paused(store.as_deref(), &flow.name),
            last_run: last_run(store.as_deref(), &flow.name),
            error: Vec::new(),
        });
    }
    for (name, problems) in &project.invalid {
        listed.push(Listed {
            name: name.clone(),
            enabled: None,
            schedule: None,
            next_run: None,
            running: false,
            node: None,
            waiting_since: None,
            paused: paused(store.as_deref(), name),
            last_run: last_run(store.as_deref(), name),
            error: problems.iter().map(ToString::to_string).collect(),
        });
    }
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    if json {
        report::json(&serde_json::json!({"daemon": null, "flows": listed}));
    } else {
        outln!(
            "(no daemon runs for this directory: next times are as one started now would run them)"
        );
        print(&listed);
    }
    Ok(if project.invalid.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn paused(store: Option<&dyn engine::Store>, name: &str) -> Option<engine::pause::Paused> {
    engine::pause::paused(&*store?.flow(name).ok()?).ok()?
}

fn last_run(store: Option<&dyn engine::Store>, name: &str) -> Option<RunSummary> {
    store?.flow(name).ok()?.runs(1).ok()?.pop()
}

fn from_api(body: &Value) -> Vec<Listed> {
    body["flows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|flow| Listed {
            name: flow["name"].as_str().unwrap_or("?").to_string(),
            enabled: flow["enabled"].as_bool(),
            schedule: flow["schedule"].as_str().map(String::from),
            next_run: flow["next_run"].as_str().map(String::from),
            running: flow["running"] == Value::Bool(true),
            node: flow["node"].as_str().map(String::from),
            waiting_since: flow["waiting_since"].as_str().map(String::from),
            paused: serde_json::from_value(flow["paused"].clone()).ok(),
            last_run: serde_json::from_value(flow["last_run"].clone()).ok(),
            error: flow["error"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p.as_str().map(String::from))
                .collect(),
        })
        .collect()
}

fn print(listed: &[Listed]) {
    for flow in listed {
        let schedule = flow.schedule.as_deref().unwrap_or("invalid: not scheduled");
        let next = flow
            .next_run
            .as_deref()
            .map(|n| format!(", next {n}"))
            .unwrap_or_default();
        let enabled = if flow.enabled == Some(false) {
            " (disabled)"
        } else {
            ""
        };
        let running = match (&flow.waiting_since, flow.running) {
            (Some(since), _) => format!(
                ", waiting since {since}: every run slot is taken (`--max-runs`); higher `priority` goes first"
            ),
            (None, true) => match &flow.node {
                Some(node) => format!(", running now on node {node}"),
                None => ", running now".to_string(),
            },
            (None, false) => String::new(),
        };
        outln!("{}{enabled}: {schedule}{next}{running}", flow.name);
        if let Some(paused) = &flow.paused {
            outln!(
                "  paused since {}: {} (`switchboard resume {}` resumes it)",
                paused.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                paused.reason,
                flow.name
            );
        }
        if let Some(last) = &flow.last_run {
            outln!("  last: {}", report::run_line(last));
        }
        for problem in &flow.error {
            outln!("  error: {problem}");
        }
    }
}
