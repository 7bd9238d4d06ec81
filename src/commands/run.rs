//! `switchboard run FLOW`: the force-run. When a daemon holds the state directory the
//! run is asked of it over its API; the output is the same either way.

use runtime::{engine, flows};
use std::collections::BTreeMap;
use std::process::ExitCode;

use chrono::Utc;
use engine::{ReplayFilter, RowOutcome, RunReport, RunStatus, RunSummary, StateError, Trigger};
use serde::Deserialize;
use serde_json::Value;

use runtime::daemon::discovery::{self, Daemon};
use runtime::wiring::Job;
use runtime::Global;
use runtime::{report, wiring};

/// `switchboard run FLOW [--accept-key-change]`.
pub async fn run(
    global: &Global,
    name: &str,
    json: bool,
    accept_key_change: bool,
) -> anyhow::Result<ExitCode> {
    let job = Job::Source(Trigger::Manual);
    run_job(global, name, job, json, accept_key_change).await
}

/// `switchboard replay FLOW [--run ID] [--failed|--uncertain]`.
pub async fn replay(
    global: &Global,
    name: &str,
    filter: ReplayFilter,
    json: bool,
) -> anyhow::Result<ExitCode> {
    run_job(global, name, Job::Replay(filter), json, false).await
}

/// `switchboard resume FLOW`: lift the pause its failing runs put on it — through the
/// daemon when one holds the state (which then sends the events that waited), else in
/// the state itself.
pub async fn resume(global: &Global, name: &str, json: bool) -> anyhow::Result<ExitCode> {
    // Through a daemon that holds the state, this shell needs none of the secrets.
    let held = wiring::daemon_holding(global);
    let project = match held {
        Some(_) => wiring::load_for_daemon(global),
        None => wiring::load(global, BTreeMap::new()),
    };
    wiring::warn(&project);
    let flow = match wiring::find_flow(&project, name) {
        Ok(flow) => flow,
        Err(code) => return Ok(code),
    };
    let state_dir = wiring::state_dir(global);
    let resumed: Option<engine::pause::Paused> = match wiring::open_store(global) {
        Ok(store) => engine::pause::resume(&*store.flow(name)?)?,
        Err(StateError::Locked(_)) => {
            let daemon = discovery::holding(&state_dir, &global.flows)?;
            let path = format!("/api/flows/{name}/resume");
            let body = daemon_request(&daemon, reqwest::Method::POST, &path, None).await?;
            serde_json::from_value(body["resumed"].clone()).unwrap_or(None)
        }
        Err(e) => return Err(e.into()),
    };
    if json {
        report::json(&serde_json::json!({"flow": name, "resumed": resumed}));
    } else {
        match &resumed {
            Some(paused) => outln!(
                "{name}: resumed (paused since {}: {})",
                report::local_time(paused.at, &flow.timezone),
                paused.reason
            ),
            None => outln!("{name}: not paused; nothing to do"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_job(
    global: &Global,
    name: &str,
    job: Job,
    json: bool,
    accept_key_change: bool,
) -> anyhow::Result<ExitCode> {
    // A daemon holding the state runs the flow with the secrets it holds: this shell
    // needs none of them.
    if let Some(daemon) = wiring::daemon_holding(global) {
        let report = through_daemon(&daemon, name, job, accept_key_change).await?;
        report::run_report(&report, json);
        return Ok(exit_code(&report));
    }
    let project = wiring::load(global, BTreeMap::new());
    wiring::warn(&project);
    let flow = match wiring::find_flow(&project, name) {
        Ok(flow) => flow,
        Err(code) => return Ok(code),
    };
    let state_dir = wiring::state_dir(global);
    let report = match wiring::open_store(global) {
        Ok(store) => {
            for (flow, id) in store.interrupt_stale_runs(Utc::now())? {
                tracing::warn!(
                    flow,
                    run = id,
                    "a run the last process left unfinished is recorded as interrupted"
                );
            }
            let state = store.flow(&flow.name)?;
            if accept_key_change {
                engine::keys::accept(&*state, flow)?;
            }
            let (handle, stop) = engine::Stop::new();
            let signals = tokio::spawn(stop_on_signal(handle));
            let report = wiring::run_once(&project.accounts, flow, state, job, json, stop).await;
            signals.abort();
            report?
        }
        Err(StateError::Locked(_)) => {
            let daemon = discovery::holding(&state_dir, &global.flows)?;
            through_daemon(&daemon, name, job, accept_key_change).await?
        }
        Err(e) => return Err(e.into()),
    };
    report::run_report(&report, json);
    Ok(exit_code(&report))
}

/// A run's exit code: 0 succeeded, 130 interrupted, 1 failed.
fn exit_code(report: &RunReport) -> ExitCode {
    match report.summary.status {
        RunStatus::Succeeded => ExitCode::SUCCESS,
        RunStatus::Interrupted => ExitCode::from(130),
        _ => ExitCode::from(1),
    }
}

/// Ctrl-C or SIGTERM stops the run: what is under way finishes and the run is recorded
/// as interrupted with its counts. A second one quits at once (the ledger keeps what was
/// in flight for the next run).
async fn stop_on_signal(handle: engine::StopHandle) {
    runtime::signal::shutdown().await;
    eprintln!(
        "switchboard: stopping: sends under way finish (at most {}s), the rest goes in the next run; press Ctrl-C again to quit at once",
        engine::STOP_GRACE.as_secs()
    );
    handle.stop();
    runtime::signal::shutdown().await;
    eprintln!("switchboard: quitting; the next run settles the sends that were under way");
    std::process::exit(130);
}

#[derive(Deserialize)]
struct ApiReport {
    run: RunSummary,
    #[serde(default)]
    failures: Vec<RowOutcome>,
}

async fn through_daemon(
    daemon: &Daemon,
    name: &str,
    job: Job,
    accept_key_change: bool,
) -> anyhow::Result<RunReport> {
    tracing::info!(url = %daemon.url, "a daemon holds the state; asking it to run the flow");
    let path = match job {
        Job::Source(_) if accept_key_change => {
            format!("/api/flows/{name}/run?accept_key_change=true")
        }
        Job::Source(_) => format!("/api/flows/{name}/run"),
        Job::Replay(filter) => {
            let run = filter
                .run
                .map(|id| format!("&run={id}"))
                .unwrap_or_default();
            format!(
                "/api/flows/{name}/replay?uncertain={}{run}",
                filter.only_uncertain
            )
        }
    };
    let body = daemon_request(daemon, reqwest::Method::POST, &path, None).await?;
    let report: ApiReport = serde_json::from_value(body)?;
    Ok(RunReport {
        summary: report.run,
        failures: report.failures,
    })
}

/// A request to the daemon's API; its `{"error": …}` answers become errors.
pub async fn daemon_request(
    daemon: &Daemon,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<Value> {
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", daemon.url));
    if let Some(body) = body {
        request = request.json(body);
    }
    if let Ok(token) = std::env::var("SWITCHBOARD_TOKEN") {
        request = request.bearer_auth(token);
    } else if daemon.token_required {
        anyhow::bail!("the daemon requires a token: set SWITCHBOARD_TOKEN");
    }
    let response = request.send().await.map_err(|e| {
        if e.is_connect() {
            anyhow::anyhow!(
                "the daemon at {} does not answer (it is not listening)\n  hint: is it running? `switchboard status` says",
                daemon.url
            )
        } else {
            anyhow::anyhow!(
                "the daemon at {} stopped answering before it replied (was it stopped?)\n  hint: a run it was doing is recorded as interrupted: `switchboard history FLOW` shows it",
                daemon.url
            )
        }
    })?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if let Some(error) = body.get("error").and_then(Value::as_str) {
        // An invalid flow's problems, each at its place, as `validate` shows them.
        let problems: Vec<String> = body["problems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| serde_json::from_value::<flows::Diagnostic>(p.clone()).ok())
            .map(|p| format!("\n{p}"))
            .collect();
        anyhow::bail!(
            "the daemon says: {error} (HTTP {}){}",
            status.as_u16(),
            problems.concat()
        );
    }
    Ok(body)
}
