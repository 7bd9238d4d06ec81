//! `switchboard quickstart [EXAMPLE]`: a bundled example (or all of them) run against the
//! built-in stand-in, with a fresh state each time, then what reached each service.
//! Examples whose source is pushed take their sample events from `events.json` through
//! the same intake the daemon's webhook uses; an example's `sandbox.json` is data the
//! services hold before its flows run (cases, payments).

use runtime::{connectors, engine, flows};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use connectors::push::{Door, Taken};
use engine::{RunStatus, Trigger};

use crate::sandbox;
use runtime::Global;
use runtime::{report, wiring};

/// A bundled example: its directory under `examples/`, what it shows, and its files.
struct Example {
    name: &'static str,
    about: &'static str,
    files: &'static [(&'static str, &'static str)],
}

/// Every bundled example (`build.rs` lists `examples/`).
const EXAMPLES: &[Example] = include!(concat!(env!("OUT_DIR"), "/examples.rs"));

/// `quickstart --list`: each bundled example and what it shows.
pub fn list() {
    let width = EXAMPLES.iter().map(|e| e.name.len()).max().unwrap_or(0);
    for example in EXAMPLES {
        outln!("{:width$}  {}", example.name, example.about);
    }
}

pub async fn quickstart(
    global: &Global,
    example: Option<String>,
    dir: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
    let stand_in = sandbox::start(any_port, any_port, false).await?;
    outln!("stand-in for {} on {}", sandbox::services(), stand_in.url());
    // The stand-in and nothing else, whatever an accounts file says (`--dir` may hold
    // real base URLs and real keys).
    connectors::confine::only(
        vec![stand_in.addr.to_string(), stand_in.smtp.to_string()],
        &format!(
            "quickstart talks only to the built-in stand-in at {}; to reach the services of an accounts file, run the flows with `switchboard run FLOW --flows DIR`",
            stand_in.url()
        ),
    );
    let mut ok = true;
    if let Some(dir) = dir {
        ok &= run_dir(global, &dir, &stand_in).await?;
    } else {
        let wanted = example.unwrap_or_else(|| "quickstart".into());
        let chosen: Vec<&Example> = EXAMPLES
            .iter()
            .filter(|e| {
                wanted == "all"
                    || e.name == wanted
                    || wanted == "order-sms" && e.name == "quickstart"
            })
            .collect();
        if chosen.is_empty() {
            let names: Vec<&str> = EXAMPLES.iter().map(|e| e.name).collect();
            let hint = flows::did_you_mean(&wanted, names.iter().copied())
                .map(|best| format!("did you mean `{best}`? "))
                .unwrap_or_default();
            anyhow::bail!(
                "no bundled example `{wanted}`\n  hint: {hint}examples: {}, or `all`",
                names.join(", ")
            );
        }
        for example in chosen {
            outln!("\n== {}: {}", example.name, example.about);
            let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
            let dir = scratch.path().join("flows");
            write_example(&dir, example)?;
            ok &= run_dir(global, &dir, &stand_in).await?;
            stand_in.recorder.clear();
        }
    }
    outln!();
    outln!("run a flow again and nothing is sent twice: `switchboard sandbox` in one terminal,");
    outln!("then `switchboard run order-sms --flows examples/quickstart` twice in another.");
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn write_example(dir: &Path, example: &Example) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in example.files {
        std::fs::write(dir.join(name), text)?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.join("accounts.yaml"),
            std::fs::Permissions::from_mode(0o600),
        )?;
    }
    Ok(())
}

/// Run every flow of `dir` once against the stand-in (fresh state) and show what the
/// stand-in received. Returns whether every run succeeded.
async fn run_dir(global: &Global, dir: &Path, stand_in: &sandbox::Sandbox) -> anyhow::Result<bool> {
    let state = tempfile::tempdir().context("cannot create a state directory")?;
    let global = Global {
        flows: dir.to_path_buf(),
        accounts: None,
        state: Some(state.path().to_path_buf()),
        verbose: global.verbose,
        accept_state_loss: false,
    };
    let url = stand_in.url();
    let mut env = BTreeMap::from([
        ("SWITCHBOARD_SANDBOX_URL".to_string(), url.clone()),
        ("SMTP_PORT".to_string(), stand_in.smtp.port().to_string()),
    ]);
    for standin in connectors::catalogue::standins() {
        for var in standin.env {
            env.insert(var.to_string(), format!("{url}{}", standin.mount));
        }
    }
    let project = wiring::load(&global, env);
    for problem in project.diagnostics() {
        eprintln!("{problem}");
    }
    if project.flows.is_empty() {
        anyhow::bail!("no valid flow in `{}`", dir.display());
    }
    // A throw-away state: it serves these flows once, and no directory remembers it.
    let store = wiring::open_unbound(&global)?;
    let seed = dir.join("sandbox.json");
    if seed.is_file() {
        let n = sandbox::seed(stand_in, &seed)?;
        outln!("the stand-in holds {n} item(s) from sandbox.json before the flows run");
    }
    let before = stand_in.recorder.messages().len();
    let mut ok = project.invalid.is_empty();
    for flow in project.flows.values() {
        let door = Door::of(&project, &flow.name)
            .map_err(|e| anyhow::anyhow!("`{}` cannot take pushed events: {e}", flow.name))?;
        if let Some(door) = door {
            let events = dir.join("events.json");
            let body = std::fs::read(&events).with_context(|| {
                format!(
                    "`{}` takes pushed events; the quickstart sends the samples in {}",
                    flow.name,
                    events.display()
                )
            })?;
            match door
                .take(&body, &BTreeMap::new())
                .map_err(|e| anyhow::anyhow!("{}: {e}", events.display()))?
            {
                Taken::Handshake(_) => {
                    anyhow::bail!("{} is a handshake, not events", events.display())
                }
                Taken::Events { read, queued, .. } => {
                    // Only this flow's share: each flow of the directory is run in turn.
                    let records: Vec<engine::Record> = queued
                        .into_iter()
                        .filter(|(target, _)| target.flow == flow.name)
                        .flat_map(|(_, records)| records)
                        .collect();
                    outln!(
                        "{}: {} sample event(s) queued as the webhook would, {} of other kinds ignored",
                        flow.name,
                        records.len(),
                        read - records.len()
                    );
                    store.flow(&flow.name)?.enqueue(&records)?;
                    store.flush().await?;
                }
            }
        }
        let run = wiring::run_once(
            &project.accounts,
            flow,
            store.flow(&flow.name)?,
            wiring::Job::Source(Trigger::Manual),
            false,
            engine::Stop::never(),
        )
        .await?;
        report::run_report(&run, false);
        ok &= run.summary.status == RunStatus::Succeeded;
    }
    let received: Vec<serde_json::Value> = stand_in
        .recorder
        .messages()
        .into_iter()
        .skip(before)
        .collect();
    outln!("what the stand-in received ({}):", received.len());
    for message in &received {
        outln!("  {}", connectors::standin::describe(message));
    }
    Ok(ok)
}
