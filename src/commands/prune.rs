//! `switchboard prune [FLOW] [--dry-run]`: drop the runs each flow's `history:` rule
//! does not keep, with their records — in the state, or through the daemon that holds
//! it (which prunes in the background too).

use runtime::engine;
use std::collections::BTreeMap;
use std::process::ExitCode;

use chrono::Utc;
use engine::StateError;
use serde_json::Value;

use runtime::daemon::discovery;
use runtime::prune::FlowPruned;
use runtime::Global;
use runtime::{report, wiring};

pub async fn prune(
    global: &Global,
    only: Option<&str>,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let project = wiring::load(global, BTreeMap::new());
    wiring::warn(&project);
    if let Some(name) = only {
        if let Err(code) = wiring::find_flow(&project, name) {
            return Ok(code);
        }
    }
    let state_dir = wiring::state_dir(global);
    let results: Vec<FlowPruned> = match wiring::open_store(global) {
        Ok(store) => {
            let results = runtime::prune::prune(&project, &*store, only, dry_run, Utc::now());
            store.flush().await?;
            results
        }
        Err(StateError::Locked(_)) => {
            let daemon = discovery::holding(&state_dir, &global.flows)?;
            let mut path = format!("/api/prune?dry_run={dry_run}");
            if let Some(name) = only {
                path.push_str(&format!("&flow={name}"));
            }
            let body: Value =
                super::run::daemon_request(&daemon, reqwest::Method::POST, &path, None).await?;
            return print(body["pruned"].clone(), dry_run, json);
        }
        Err(e) => return Err(e.into()),
    };
    print(serde_json::to_value(&results)?, dry_run, json)
}

fn print(results: Value, dry_run: bool, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        report::json(&serde_json::json!({"dry_run": dry_run, "pruned": results}));
        return Ok(ExitCode::SUCCESS);
    }
    let mut ok = true;
    for result in results.as_array().into_iter().flatten() {
        let one = FlowPruned {
            flow: result["flow"].as_str().unwrap_or("?").to_string(),
            keeps: result["keeps"].as_str().map(String::from),
            pruned: serde_json::from_value(result.clone()).unwrap_or_default(),
            error: result["error"].as_str().map(String::from),
        };
        ok &= one.error.is_none();
        outln!("{}", runtime::prune::line(&one, dry_run));
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
