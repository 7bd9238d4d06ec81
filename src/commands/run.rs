//! `switchboard run FLOW`: the force-run.

use std::collections::BTreeMap;
use std::process::ExitCode;

use engine::{RunStatus, Trigger};

use crate::cli::Global;
use crate::{report, wiring};

pub async fn run(global: &Global, name: &str, json: bool) -> anyhow::Result<ExitCode> {
    let project = wiring::load(global, BTreeMap::new());
    let flow = match wiring::find_flow(&project, name) {
        Ok(flow) => flow,
        Err(code) => return Ok(code),
    };
    let store = wiring::open_store(global)?;
    let report = wiring::run_once(&project, flow, &store, Trigger::Manual, json).await?;
    report::run_report(&report, json);
    Ok(match report.summary.status {
        RunStatus::Succeeded => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}
