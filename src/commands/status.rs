//! `switchboard status`: the flows as the running daemon sees them.

use std::process::ExitCode;

use serde_json::Value;

use crate::cli::Global;
use crate::daemon::discovery;
use crate::{report, wiring};

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
            "  hint: start one with `switchboard daemon --flows {}`",
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
    let flows = body["flows"].as_array().cloned().unwrap_or_default();
    for flow in flows {
        let name = flow["name"].as_str().unwrap_or("?");
        let schedule = flow["schedule"].as_str().unwrap_or("no schedule");
        let next = flow["next_run"]
            .as_str()
            .map(|n| format!(", next {n}"))
            .unwrap_or_default();
        let enabled = if flow["enabled"] == Value::Bool(false) {
            " (disabled)"
        } else {
            ""
        };
        let running = if flow["running"] == Value::Bool(true) {
            ", running now"
        } else {
            ""
        };
        outln!("{name}{enabled}: {schedule}{next}{running}");
        if let Ok(last) = serde_json::from_value::<engine::RunSummary>(flow["last_run"].clone()) {
            outln!("  last: {}", report::run_line(&last));
        }
        for problem in flow["error"].as_array().into_iter().flatten() {
            outln!("  error: {}", problem.as_str().unwrap_or_default());
        }
    }
    Ok(ExitCode::SUCCESS)
}
