//! `switchboard history FLOW`: the connection log, read from the state directory, or
//! from the daemon that holds it.

use runtime::{connectors, engine, flows};
use std::process::ExitCode;

use engine::{RowOutcome, RunSummary, StateError};
use serde::Deserialize;

use runtime::daemon::discovery;
use runtime::Global;
use runtime::{report, wiring};

#[derive(Deserialize)]
struct Runs {
    runs: Vec<RunSummary>,
}

#[derive(Deserialize)]
struct OneRun {
    run: RunSummary,
    rows: Vec<RowOutcome>,
}

pub async fn history(
    global: &Global,
    name: &str,
    run: Option<u64>,
    limit: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let dir = wiring::state_dir(global);
    if !wiring::state_exists(global) {
        if json {
            report::json(&serde_json::json!([]));
        } else {
            outln!("{name}: no runs yet");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (runs, one) = match wiring::open_store(global) {
        Ok(store) => {
            let state = store.flow(name)?;
            match run {
                None => (state.runs(limit)?, None),
                Some(id) => (
                    Vec::new(),
                    Some(state.run(id)?.map(|r| (r, state.rows(id)))),
                ),
            }
        }
        Err(StateError::Locked(_)) => {
            let daemon = discovery::holding(&dir, &global.flows)?;
            let request = crate::commands::run::daemon_request;
            match run {
                None => {
                    let body = request(
                        &daemon,
                        reqwest::Method::GET,
                        &format!("/api/flows/{name}/runs?limit={limit}"),
                        None,
                    )
                    .await?;
                    (serde_json::from_value::<Runs>(body)?.runs, None)
                }
                Some(id) => match request(
                    &daemon,
                    reqwest::Method::GET,
                    &format!("/api/flows/{name}/runs/{id}"),
                    None,
                )
                .await
                {
                    Ok(body) => {
                        let one: OneRun = serde_json::from_value(body)?;
                        (Vec::new(), Some(Some((one.run, Ok(one.rows)))))
                    }
                    Err(e) if e.to_string().contains("has no run") => (Vec::new(), Some(None)),
                    Err(e) => return Err(e),
                },
            }
        }
        Err(e) => return Err(e.into()),
    };
    // Scrubbed on the way out too: history written by an older version may hold a key.
    let project = flows::load_project(&global.load_options(), &connectors::Catalogue);
    let scrubber = wiring::scrubber(&project.accounts);
    // Times in the flow's timezone (UTC for a flow no longer valid).
    let tz = project
        .flows
        .get(name)
        .map(|f| f.timezone)
        .unwrap_or(chrono_tz::UTC);
    let mut runs = runs;
    runs.iter_mut().for_each(|r| scrubber.summary(r));
    let one = one.map(|found| {
        found.map(|(mut summary, rows)| {
            scrubber.summary(&mut summary);
            let rows = rows.map(|mut rows| {
                rows.iter_mut().for_each(|r| scrubber.outcome(r));
                rows
            });
            (summary, rows)
        })
    });
    match (run, one) {
        (Some(id), Some(None)) | (Some(id), None) => {
            eprintln!("error: flow `{name}` has no run {id}");
            return Ok(ExitCode::from(1));
        }
        (_, Some(Some((summary, rows)))) => {
            let rows = rows?;
            if json {
                report::json(&serde_json::json!({"run": summary, "rows": rows}));
            } else {
                outln!("{}", report::run_line(&summary));
                for row in &rows {
                    outln!("  {}", report::row_line(row));
                    // What went out, as ApiX-Drive's log shows it (secrets scrubbed above):
                    // each step's, for a flow with `steps:`.
                    for step in &row.steps {
                        outln!("          {}", report::step_line(step));
                        if let Some(sent) = &step.sent {
                            outln!("            body {sent}");
                        }
                    }
                    if let (Some(sent), true) = (&row.sent, row.steps.is_empty()) {
                        outln!("          body {sent}");
                    }
                }
            }
        }
        (None, _) => {
            if json {
                report::json(&runs);
            } else if runs.is_empty() {
                outln!("{name}: no runs yet");
            } else {
                for summary in &runs {
                    outln!(
                        "{}  {}  {}",
                        report::run_line(summary),
                        report::local_time(summary.started_at, &tz),
                        report::trigger_word(summary.trigger)
                    );
                    if let Some(error) = &summary.error {
                        outln!("  error: {error}");
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
