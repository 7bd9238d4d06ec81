//! `switchboard quickstart [EXAMPLE]`: a bundled example (or all of them) run against the
//! built-in stand-in, with a fresh state each time, then what reached each service.
//! Examples whose source is pushed (CINNOX) take their sample events from `events.json`
//! through the same normalising and queueing the daemon's webhook uses.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use connectors::push::{Door, Taken};
use engine::{RunStatus, Trigger};
use serde_json::Value;

use crate::cli::Global;
use crate::{report, sandbox, wiring};

/// A bundled example: its directory under `examples/`, what it shows, and its files.
struct Example {
    name: &'static str,
    about: &'static str,
    files: &'static [(&'static str, &'static str)],
}

macro_rules! files {
    ($dir:literal: $($file:literal),+) => {
        &[$(($file, include_str!(concat!("../../examples/", $dir, "/", $file)))),+]
    };
}

const EXAMPLES: &[Example] = &[
    Example {
        name: "quickstart",
        about: "new rows of a CSV file become 8x8 SMS",
        files: files!("quickstart": "order-sms.yaml", "accounts.yaml", "orders.csv"),
    },
    Example {
        name: "cinnox-missed-enquiry",
        about: "a missed CINNOX enquiry opens an Aranda ticket",
        files: files!("cinnox-missed-enquiry": "missed-enquiry.yaml", "accounts.yaml", "events.json"),
    },
    Example {
        name: "cinnox-new-contact",
        about: "a new CINNOX contact gets a Text Request welcome message",
        files: files!("cinnox-new-contact": "welcome.yaml", "accounts.yaml", "events.json"),
    },
    Example {
        name: "google-sheet-sms",
        about: "new rows of a Google Sheet become 8x8 SMS",
        files: files!("google-sheet-sms": "sheet-sms.yaml", "accounts.yaml"),
    },
];

pub async fn quickstart(
    global: &Global,
    example: Option<String>,
    dir: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let stand_in = sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0)), false).await?;
    outln!(
        "stand-in for 8x8, Text Request, Aranda, CINNOX and Google Sheets on {}",
        stand_in.url()
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
    let env = BTreeMap::from([
        ("SWITCHBOARD_SANDBOX_URL".to_string(), url.clone()),
        ("CINNOX_BASE_URL".to_string(), url.clone()),
        ("ARANDA_BASE_URL".to_string(), format!("{url}/asms")),
        ("TEXTREQUEST_BASE_URL".to_string(), format!("{url}/api/v3")),
        ("GOOGLE_SHEETS_BASE_URL".to_string(), url.clone()),
    ]);
    let project = wiring::load(&global, env);
    for problem in project.diagnostics() {
        eprintln!("{problem}");
    }
    if project.flows.is_empty() {
        anyhow::bail!("no valid flow in `{}`", dir.display());
    }
    let store = wiring::open_store(&global)?;
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
            &*store,
            wiring::Job::Source(Trigger::Manual),
            false,
            engine::Stop::never(),
        )
        .await?;
        report::run_report(&run, false);
        ok &= run.summary.status == RunStatus::Succeeded;
    }
    let received = stand_in.recorder.messages();
    outln!("what the stand-in received ({}):", received.len());
    for message in &received {
        outln!("  {}", describe(message));
    }
    Ok(ok)
}

/// One received request as a line: the parts a person checks.
fn describe(m: &Value) -> String {
    match field(m, "service").as_str() {
        "8x8" => {
            let text = field(m, "text");
            let info = connectors::sms::analyse(&text);
            let parts = if info.parts == 1 {
                "1 part".to_string()
            } else {
                format!("{} parts", info.parts)
            };
            format!(
                "8x8 SMS to {} from {} [{}, {parts}]: {text}",
                field(m, "destination"),
                field(m, "source"),
                info.encoding
            )
        }
        "textrequest" => format!(
            "Text Request to {} as {}: {}",
            field(m, "phone_number"),
            field(m, "sender_name"),
            field(m, "body")
        ),
        "aranda" => format!(
            "Aranda case {}: {} ({})",
            field(m, "id"),
            field(m, "subject"),
            field(m, "description")
        ),
        other => format!("{other}: {}", serde_json::to_string(m).unwrap_or_default()),
    }
}

fn field(message: &Value, name: &str) -> String {
    match message.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}
