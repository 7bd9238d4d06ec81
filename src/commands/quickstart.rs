//! `switchboard quickstart`: the bundled example flows, run against the built-in
//! stand-in, with a fresh state each time, then the messages that went out.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use engine::{RunStatus, Trigger};
use serde_json::Value;

use crate::cli::Global;
use crate::{report, sandbox, wiring};

/// The bundled example, so the quickstart works from any directory.
const BUNDLED: &[(&str, &str)] = &[
    (
        "order-sms.yaml",
        include_str!("../../examples/quickstart/order-sms.yaml"),
    ),
    (
        "accounts.yaml",
        include_str!("../../examples/quickstart/accounts.yaml"),
    ),
    (
        "orders.csv",
        include_str!("../../examples/quickstart/orders.csv"),
    ),
];

pub async fn quickstart(global: &Global, dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let flows_dir = match dir {
        Some(dir) => dir,
        None => {
            let dir = scratch.path().join("flows");
            std::fs::create_dir_all(&dir)?;
            for (name, text) in BUNDLED {
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
            dir
        }
    };
    let stand_in = sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0)), false).await?;
    println!(
        "stand-in for the 8x8 SMS API listening on {}",
        stand_in.url()
    );

    let global = Global {
        flows: flows_dir.clone(),
        accounts: None,
        state: Some(scratch.path().join("state")),
        verbose: global.verbose,
    };
    let env = BTreeMap::from([("SWITCHBOARD_SANDBOX_URL".to_string(), stand_in.url())]);
    let project = wiring::load(&global, env);
    for problem in project.diagnostics() {
        eprintln!("{problem}");
    }
    if project.flows.is_empty() {
        anyhow::bail!("no valid flow in `{}`", flows_dir.display());
    }
    let store = wiring::open_store(&global)?;
    let mut ok = project.invalid.is_empty();
    for flow in project.flows.values() {
        let run = wiring::run_once(
            &project.accounts,
            flow,
            &store,
            wiring::Job::Source(Trigger::Manual),
            false,
        )
        .await?;
        report::run_report(&run, false);
        ok &= run.summary.status == RunStatus::Succeeded;
    }

    let messages = stand_in.recorder.messages();
    println!();
    println!("messages the stand-in received ({}):", messages.len());
    for m in &messages {
        let text = field(m, "text");
        let info = connectors::sms::analyse(&text);
        let parts = if info.parts == 1 {
            "1 part".to_string()
        } else {
            format!("{} parts", info.parts)
        };
        println!(
            "  to {} from {} [{}, {parts}]: {text}",
            field(m, "destination"),
            field(m, "source"),
            info.encoding
        );
    }
    println!();
    println!("run it again and nothing is sent twice: try `switchboard run order-sms --flows examples/quickstart`");
    println!("with `switchboard sandbox` running in another terminal.");
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn field(message: &Value, name: &str) -> String {
    message
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or("-")
        .to_string()
}
