//! `switchboard history FLOW`: the connection log.

use std::process::ExitCode;

use crate::cli::Global;
use crate::{report, wiring};

pub fn history(
    global: &Global,
    name: &str,
    run: Option<u64>,
    limit: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let dir = wiring::state_dir(global);
    if !dir.exists() {
        if json {
            report::json(&serde_json::json!([]));
        } else {
            println!("{name}: no runs yet");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let store = wiring::open_store(global)?;
    let state = store.flow(name)?;
    match run {
        None => {
            let runs = state.runs(limit)?;
            if json {
                report::json(&runs);
            } else if runs.is_empty() {
                println!("{name}: no runs yet");
            } else {
                for summary in &runs {
                    println!(
                        "{}  {}  {:?}",
                        report::run_line(summary),
                        summary.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
                        summary.trigger
                    );
                    if let Some(error) = &summary.error {
                        println!("  error: {error}");
                    }
                }
            }
        }
        Some(id) => {
            let Some(summary) = state.run(id)? else {
                eprintln!("error: flow `{name}` has no run {id}");
                return Ok(ExitCode::from(1));
            };
            let rows = state.rows(id)?;
            if json {
                report::json(&serde_json::json!({"run": summary, "rows": rows}));
            } else {
                println!("{}", report::run_line(&summary));
                for row in &rows {
                    println!("  {}", report::row_line(row));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
