//! `switchboard accounts check`: ApiX-Drive's active / inactive accounts.

use runtime::{connectors, flows};
use std::process::ExitCode;

use connectors::check::{check_account, AccountStatus};

use runtime::report;
use runtime::Global;

pub async fn check(global: &Global, json: bool) -> anyhow::Result<ExitCode> {
    let project = flows::load_project(&global.load_options(), &connectors::Catalogue);
    if !project.accounts.file.exists() {
        eprintln!(
            "error: no accounts file at `{}`",
            project.accounts.file.display()
        );
        match runtime::wiring::no_flow_files(&project) {
            Some((_, hint)) => eprintln!("  hint: {hint}"),
            None => eprintln!(
                "  hint: accounts.yaml sits beside the flow files (or pass --accounts FILE); `switchboard connectors NAME` lists an account's fields"
            ),
        }
        return Ok(ExitCode::from(1));
    }
    let scrubber = runtime::wiring::scrubber(&project.accounts);
    let mut statuses: Vec<AccountStatus> = Vec::new();
    for account in project.accounts.accounts.values() {
        let mut status = check_account(account).await;
        status.detail = scrubber.string(status.detail);
        statuses.push(status);
    }
    for (name, problems) in &project.accounts.invalid {
        let detail = problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        statuses.push(AccountStatus {
            account: name.clone(),
            connector: "?",
            active: false,
            detail: format!("invalid in accounts.yaml: {detail}"),
        });
    }
    statuses.sort_by(|a, b| a.account.cmp(&b.account));
    if json {
        report::json(&statuses);
    } else if statuses.is_empty() {
        outln!("no accounts in {}", project.accounts.file.display());
    } else {
        for s in &statuses {
            let state = if s.active { "active" } else { "inactive" };
            outln!("{} ({}): {state} — {}", s.account, s.connector, s.detail);
        }
    }
    Ok(if statuses.iter().all(|s| s.active) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
