//! Wiring shared by the commands: load and check a flows directory, find a flow, open
//! the state, and run a flow once with its live connectors.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::Utc;
use std::sync::Arc;

use engine::scrub::{self, Scrubber};
use engine::{Mapper, ReplayFilter, RunContext, RunReport, Store, Trigger};
use flows::{Accounts, Flow, LoadOptions, Project};
use indicatif::{ProgressBar, ProgressStyle};

use crate::report;
use crate::Global;

/// Load a flows directory and run every check, connectors' included. Its warnings are
/// for the caller to show, once ([`warn`]).
pub fn load(global: &Global, env: BTreeMap<String, String>) -> Project {
    connectors::load_project(&LoadOptions {
        env,
        ..global.load_options()
    })
}

/// What an environment variable the shell does not set stands for in [`load_for_daemon`].
pub const HELD_BY_THE_DAEMON: &str = "(held by the daemon)";

/// [`load`] for a command that asks the daemon holding the state to act: the daemon has
/// the accounts' secrets, so a variable this shell does not set is no error here.
pub fn load_for_daemon(global: &Global) -> Project {
    connectors::load_project(&LoadOptions {
        unset_as: Some(HELD_BY_THE_DAEMON.to_string()),
        ..global.load_options()
    })
}

/// The daemon holding the state, when one runs (it then has the secrets and the state).
pub fn daemon_holding(global: &Global) -> Option<crate::daemon::discovery::Daemon> {
    crate::daemon::discovery::find(&state_dir(global), &global.flows)
        .ok()
        .flatten()
}

/// Show a project's warnings on stderr (the commands that are not `validate`).
pub fn warn(project: &Project) {
    for warning in &project.warnings {
        eprintln!("{warning}");
    }
}

/// When the flows directory holds no flow file at all: what to say, and a hint. (The
/// default `--flows flows`, run from the Switchboard repository, is its Rust crate.)
pub fn no_flow_files(project: &Project) -> Option<(String, String)> {
    if !project.flows.is_empty() || !project.invalid.is_empty() {
        return None;
    }
    let dir = &project.dir;
    let message = format!(
        "no flow files in `{}`: a flow is a `*.yaml` file there (besides accounts.yaml)",
        dir.display()
    );
    let hint = if dir.join("Cargo.toml").exists() {
        format!(
            "`{}` is a Rust crate, not a flows directory; pass yours with --flows DIR (or SWITCHBOARD_FLOWS), e.g. --flows examples/quickstart",
            dir.display()
        )
    } else {
        "pass the directory of your flow files with --flows DIR (or SWITCHBOARD_FLOWS); `switchboard new NAME` writes a first one".to_string()
    };
    Some((message, hint))
}

/// The PostgreSQL database `--state` names, if it names one (not a directory).
pub fn state_url(global: &Global) -> Option<String> {
    let state = global.state.as_ref()?.to_str()?;
    engine::is_postgres_url(state).then(|| state.to_string())
}

/// The state directory: `--state`, else `.switchboard` beside the flows. With the state in
/// PostgreSQL, the directory beside the flows still holds the daemon's `daemon.json`.
pub fn state_dir(global: &Global) -> PathBuf {
    match &global.state {
        Some(state) if state_url(global).is_none() => state.clone(),
        _ => global.flows.join(".switchboard"),
    }
}

/// Whether the state may hold runs already (a database always may; a directory once it
/// exists).
pub fn state_exists(global: &Global) -> bool {
    state_url(global).is_some() || state_dir(global).exists()
}

/// Open the state, checking it is the one the flows directory was run with
/// ([`engine::binding`]).
pub fn open_store(global: &Global) -> Result<Arc<dyn Store>, engine::StateError> {
    let store = open_unbound(global)?;
    bind(global, &*store, false)?;
    Ok(store)
}

/// Open the state without checking which flows directory it serves (a throw-away state).
pub fn open_unbound(global: &Global) -> Result<Arc<dyn Store>, engine::StateError> {
    if let Some(url) = state_url(global) {
        return Ok(Arc::new(engine::PgStore::open(&url)?));
    }
    let store = engine::SqliteStore::open_with(&state_dir(global), global.accept_state_loss)?;
    Ok(Arc::new(store))
}

/// Check that `store` is the state the flows directory was run with, and remember the
/// pair; `cluster`: several nodes' copies of the flows share it.
pub fn bind(global: &Global, store: &dyn Store, cluster: bool) -> Result<(), engine::StateError> {
    let url = state_url(global).map(|url| engine::redact_url(&url));
    let dir = state_dir(global);
    let label = url.clone().unwrap_or_else(|| dir.display().to_string());
    let place = engine::binding::StatePlace {
        label: &label,
        dir: url.is_none().then_some(dir.as_path()),
    };
    engine::binding::bind(
        store,
        &global.flows,
        &place,
        cluster,
        global.accept_state_loss,
    )
}

/// A valid flow by name, or the exit code after saying why there is none.
pub fn find_flow<'p>(project: &'p Project, name: &str) -> Result<&'p Flow, ExitCode> {
    if let Some(flow) = project.flows.get(name) {
        return Ok(flow);
    }
    if let Some(problems) = project.invalid.get(name) {
        eprintln!("error: flow `{name}` is invalid:");
        report::diagnostics(problems);
        return Err(ExitCode::from(1));
    }
    let names = project.names();
    eprintln!(
        "error: no flow named `{name}` in `{}`",
        project.dir.display()
    );
    match flows::did_you_mean(name, names.iter().copied()) {
        Some(best) => eprintln!("  hint: did you mean `{best}`?"),
        None if names.is_empty() => {
            if let Some((_, hint)) = no_flow_files(project) {
                eprintln!("  hint: the directory has no flow files; {hint}");
            }
        }
        None => eprintln!("  hint: flows here: {}", names.join(", ")),
    }
    for problem in &project.general {
        eprintln!("{problem}");
    }
    Err(ExitCode::from(1))
}

/// What a run does: read the source, or resend rows of earlier runs.
#[derive(Debug, Clone, Copy)]
pub enum Job {
    Source(Trigger),
    Replay(ReplayFilter),
}

/// What scrubs the accounts' secrets from anything a service says.
pub fn scrubber(accounts: &Accounts) -> Arc<Scrubber> {
    Arc::new(Scrubber::new(accounts.secret_values()))
}

/// A flow's receiver, its errors scrubbed of secrets.
pub fn receiver(flow: &Flow, accounts: &Accounts) -> anyhow::Result<Arc<dyn engine::Receiver>> {
    let receiver = connectors::build_receiver(flow, accounts).map_err(anyhow::Error::msg)?;
    Ok(scrub::receiver(receiver, scrubber(accounts)))
}

/// A flow's source when it fetches its records (`None` for push sources), its errors
/// scrubbed of secrets.
pub fn source(flow: &Flow, accounts: &Accounts) -> anyhow::Result<Option<Box<dyn engine::Source>>> {
    let source = connectors::build_source(flow, accounts).map_err(anyhow::Error::msg)?;
    Ok(source.map(|s| scrub::source(s, scrubber(accounts))))
}

/// A flow's look-up step, if it has one, its errors scrubbed of secrets.
pub fn lookup(flow: &Flow, accounts: &Accounts) -> anyhow::Result<Option<engine::LookupStep>> {
    let built = connectors::build_lookup(flow, accounts).map_err(anyhow::Error::msg)?;
    Ok(match (&flow.lookup, built) {
        (Some(config), Some(lookup)) => Some(
            engine::LookupStep::new(config, scrub::lookup(lookup, scrubber(accounts)))
                .map_err(anyhow::Error::msg)?,
        ),
        _ => None,
    })
}

/// A flow's `steps:`, each built as the one-step flow doing it alone (`None` for a
/// one-step flow): the same receivers, look-ups, scrubbing and metrics.
pub fn chain(flow: &Flow, accounts: &Accounts) -> anyhow::Result<Option<engine::Chain>> {
    if flow.steps.is_empty() {
        return Ok(None);
    }
    let mut steps = Vec::with_capacity(flow.steps.len());
    for step in &flow.steps {
        let one = flow.step_flow(step);
        let built = match &step.kind {
            flows::steps::StepKind::Lookup(_) => {
                let lookup = lookup(&one, accounts)?
                    .ok_or_else(|| anyhow::anyhow!("step `{}`: no look-up", step.name))?;
                engine::ChainStep::lookup(step, lookup)
            }
            flows::steps::StepKind::Action { .. } => {
                let receiver =
                    crate::daemon::metrics::timed_step(receiver(&one, accounts)?, &one, &step.name);
                engine::ChainStep::action(step, receiver, compiled(&one)?)
            }
        };
        steps.push(built);
    }
    Ok(Some(engine::Chain::new(steps)))
}

/// A flow's map, compiled; its problems as one error.
pub(crate) fn compiled(flow: &Flow) -> anyhow::Result<Mapper> {
    Mapper::new(flow).map_err(|problems| {
        anyhow::anyhow!(problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"))
    })
}

/// Run one flow once, with a progress bar when stderr is a terminal.
pub async fn run_once(
    accounts: &Accounts,
    flow: &Flow,
    state: Arc<dyn engine::FlowState>,
    job: Job,
    quiet: bool,
    stop: engine::Stop,
) -> anyhow::Result<RunReport> {
    let receiver = crate::daemon::metrics::timed(receiver(flow, accounts)?, flow);
    let mapper = compiled(flow)?;
    let lookup = lookup(flow, accounts)?;
    let chain = chain(flow, accounts)?;
    let source = source(flow, accounts)?.unwrap_or_else(|| Box::new(engine::Queued(state.clone())));
    let bar = (!quiet && std::io::stderr().is_terminal()).then(Bar::new);
    let now = Utc::now;
    let ctx = RunContext {
        flow,
        source: source.as_ref(),
        receiver,
        mapper: &mapper,
        lookup: lookup.as_ref(),
        chain: chain.as_ref(),
        state: &*state,
        trigger: match job {
            Job::Source(trigger) => trigger,
            Job::Replay(_) => Trigger::Replay,
        },
        now: &now,
        progress: bar.as_ref().map(|b| b as &dyn engine::Progress),
        stop,
    };
    let report = match job {
        Job::Source(_) => engine::run_flow(ctx).await,
        Job::Replay(filter) => engine::replay(ctx, filter).await,
    };
    report.with_context(|| format!("running flow `{}`", flow.name))
}

/// A progress bar for runs longer than a second, on a terminal: records done of those
/// to send, the rate, failures, the time left.
struct Bar {
    bar: ProgressBar,
    started: std::time::Instant,
    failed: std::sync::atomic::AtomicU64,
    shown: std::sync::atomic::AtomicBool,
}

impl Bar {
    fn new() -> Self {
        Bar {
            bar: ProgressBar::hidden(),
            started: std::time::Instant::now(),
            failed: Default::default(),
            shown: Default::default(),
        }
    }

    /// Drawn once the run has taken a second: quick runs print only their report.
    fn show_when_slow(&self) {
        use std::sync::atomic::Ordering;
        if self.started.elapsed() >= std::time::Duration::from_secs(1)
            && !self.shown.swap(true, Ordering::Relaxed)
        {
            if let Ok(style) =
                ProgressStyle::with_template("{bar:40} {pos}/{len} done, {per_sec}, {msg}eta {eta}")
            {
                self.bar.set_style(style);
            }
            self.bar
                .set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
    }
}

impl engine::Progress for Bar {
    fn start(&self, total: u64) {
        self.bar.set_length(total);
        self.show_when_slow();
    }

    fn advance(&self, failed: bool) {
        use std::sync::atomic::Ordering;
        if failed {
            let n = self.failed.fetch_add(1, Ordering::Relaxed) + 1;
            self.bar.set_message(format!("{n} failed, "));
        }
        self.bar.inc(1);
        self.show_when_slow();
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
