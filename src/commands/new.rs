//! `switchboard new FLOW --source CONNECTOR --receiver CONNECTOR [--action A]`: a
//! commented flow file and the accounts it needs, written from the connector catalogue
//! ([`runtime::scaffold`]), ready for `validate` to point at what is left to fill in.

use std::process::ExitCode;

use runtime::scaffold::{self, NewFlow, FILL_IN};
use runtime::Global;

/// What `switchboard new` was asked.
pub struct NewArgs<'a> {
    pub flow: &'a str,
    pub source: &'a str,
    pub receiver: &'a str,
    pub action: Option<&'a str>,
}

pub fn new(global: &Global, args: NewArgs<'_>) -> anyhow::Result<ExitCode> {
    let flow = args.flow;
    let created = scaffold::create(
        global,
        NewFlow {
            flow,
            source: args.source,
            receiver: args.receiver,
            action: args.action,
            accounts: None,
            path: None,
            map: &[],
        },
    )?;
    outln!("wrote {}", created.file.display());
    for name in &created.accounts_added {
        outln!(
            "added the account `{name}` to {} (its secrets come from the environment)",
            created.accounts_file.display()
        );
    }
    outln!(
        "next: replace each {FILL_IN} (`switchboard validate` points at what is left), preview with `switchboard test {flow}`, then set `enabled: true`"
    );
    Ok(ExitCode::SUCCESS)
}
