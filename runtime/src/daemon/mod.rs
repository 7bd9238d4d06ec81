//! `switchboard daemon`: the long-running service. It loads every flow, runs the valid
//! ones on their schedules through the scheduler's timer loop, watches the flows
//! directory (a file that turns invalid keeps its last good version running), serves
//! the front-ends' routes (the JSON API, the console, metrics) and the webhooks over
//! HTTP, and once told to stop, stops starting runs, lets the ones in flight finish
//! (bounded) and records any cut short as interrupted.

mod alerts;
pub mod cluster;
pub mod discovery;
pub mod edits;
pub mod hooks;
pub mod metrics;
pub mod ops;
pub mod reload;
mod server;
pub mod trouble;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use engine::{RunStatus, Store, Trigger};
use flows::{Diagnostic, Project};
use scheduler::{
    Command, Outcome, Persisted, Reason, ScheduleStore, StatusBoard, SystemClock, Timer,
};
use tokio::sync::mpsc;

use crate::wiring::Job;
use crate::Global;
use crate::{report, wiring};

/// What the daemon's parts share.
pub struct Shared {
    pub global: Global,
    pub store: Arc<dyn Store>,
    /// What is served now ([`Shared::snapshot`]), swapped whole by a reload.
    snapshot: RwLock<Arc<Snapshot>>,
    /// Held through a reload: reloads (the watcher's, a toggle's) apply one at a time.
    reloading: std::sync::Mutex<()>,
    pub timer: mpsc::UnboundedSender<Command<ops::RunReply>>,
    pub status: StatusBoard,
    pub metrics: metrics::Metrics,
    pub token: Option<String>,
    /// The names the API and the console may be called by (beside addresses, localhost).
    pub hosts: crate::access::Hosts,
    /// `http://<listen address>/hooks`, for push sources without a `public_url`.
    pub hooks_base: std::sync::OnceLock<String>,
    /// What each `Reason::Replay(id)` run resends.
    pub replays: Replays,
    /// Raised when the drain limit passes: runs still going stop sending.
    pub stop_runs: engine::StopHandle,
    /// How long a webhook's body may take to arrive.
    pub body_timeout: Duration,
    /// The sessions' and anti-forgery tokens' keys (the console's sign-in).
    pub console: crate::access::Keys,
    /// Wrong tokens tried at the console's sign-in.
    pub sign_ins: crate::access::SignIns,
    /// Flows whose ended runs are not in the search index yet.
    pub indexing: Indexing,
    /// This node, when the daemon is one of a cluster (`--cluster`).
    pub node: Option<Arc<cluster::Node>>,
    /// The state cannot be written (the disk is full): what, and since when.
    pub trouble: trouble::Troubles,
}

/// The project as the daemon serves it at one moment. Immutable: a reload makes a new
/// one and swaps it in whole, so a reader holds a consistent view for as long as it
/// likes and no lock while it works.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The flows that run (each flow's last good version), and the accounts.
    pub project: Project,
    /// Problems per flow name (a flow can have problems and still run its last good
    /// version).
    pub errors: BTreeMap<String, Vec<Diagnostic>>,
    /// Problems of the directory itself (the accounts file, `switchboard.yaml`).
    pub general: Vec<Diagnostic>,
}

/// Keeping the search index up with the runs: after a run ends, its records are indexed
/// on a blocking thread (off the sending path); a search first finishes what is pending.
#[derive(Default, Clone)]
pub struct Indexing {
    /// Flow name → index passes asked for and not yet done.
    pending: Arc<std::sync::Mutex<BTreeMap<String, usize>>>,
}

impl Indexing {
    /// A run of `flow` is about to start: until the index has taken it, a search
    /// indexes the flow first (the run's end is visible before its indexing is asked
    /// for). Pair with [`Indexing::soon`] once the run ended.
    pub fn run_starts(&self, flow: &str) {
        if let Ok(mut pending) = self.pending.lock() {
            *pending.entry(flow.to_string()).or_default() += 1;
        }
    }

    /// Index `flow`'s ended runs soon, in the background; the flow stops being pending
    /// for the run [`Indexing::run_starts`] announced.
    pub fn soon(&self, store: &Arc<dyn Store>, flow: &str) {
        let (store, flow, this) = (Arc::clone(store), flow.to_string(), self.clone());
        tokio::task::spawn_blocking(move || {
            this.index(&*store, &flow);
            if let Ok(mut pending) = this.pending.lock() {
                if let Some(n) = pending.get_mut(&flow) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        pending.remove(&flow);
                    }
                }
            }
        });
    }

    /// Index now what is pending (a search is about to look).
    pub fn catch_up(&self, store: &dyn Store) {
        let flows: Vec<String> = self
            .pending
            .lock()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        for flow in flows {
            self.index(store, &flow);
        }
    }

    fn index(&self, store: &dyn Store, flow: &str) {
        match store.flow(flow).and_then(|state| state.index_runs()) {
            Ok(0) => {}
            Ok(n) => tracing::debug!(flow, records = n, "indexed for search"),
            Err(e) => tracing::warn!(flow, error = %e, "cannot index the flow's runs for search"),
        }
    }
}

impl Shared {
    /// What is served now. The lock is held for a pointer's copy only (nothing can
    /// panic under it, so it is never poisoned; a poisoned one is still read).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(
            &self
                .snapshot
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Serve `next` from now on.
    fn swap(&self, next: Snapshot) {
        *self
            .snapshot
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(next);
    }

    /// Whether the scheduler's loop answers within 5 s. It takes commands in order, so
    /// once it has answered, every change sent to it before is in its schedule.
    pub async fn scheduler_answers(&self) -> bool {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.timer.send(Command::Ping { reply }).is_ok()
            && matches!(
                tokio::time::timeout(Duration::from_secs(5), answer).await,
                Ok(Ok(()))
            )
    }

    /// Whether the directory has a flow of this name, valid or not.
    pub fn knows(&self, name: &str) -> bool {
        let now = self.snapshot();
        now.project.flows.contains_key(name) || now.errors.contains_key(name)
    }

    /// Every flow the directory has, valid or not, by name.
    pub fn flow_names(&self) -> Vec<String> {
        let now = self.snapshot();
        let mut names: Vec<String> = now.project.flows.keys().cloned().collect();
        names.extend(now.errors.keys().cloned());
        names.sort();
        names.dedup();
        names
    }

    /// In a cluster, which node runs which flow now (nothing alone).
    pub fn holders(&self) -> BTreeMap<String, String> {
        self.store
            .cluster()
            .and_then(|cluster| cluster.holders().ok())
            .unwrap_or_default()
    }

    /// What scrubs the accounts' secrets (and the API token) from what is served.
    pub fn scrubber(&self) -> engine::scrub::Scrubber {
        let mut secrets = self.snapshot().project.accounts.secret_values();
        secrets.extend(self.token.clone());
        engine::scrub::Scrubber::new(secrets)
    }
}

/// Replay requests waiting for their run, each under its own number.
#[derive(Default)]
pub struct Replays {
    next: std::sync::atomic::AtomicU64,
    filters: std::sync::Mutex<BTreeMap<u64, engine::ReplayFilter>>,
}

impl Replays {
    /// Keep a request's filter; the number goes into its `Reason::Replay`.
    pub fn add(&self, filter: engine::ReplayFilter) -> u64 {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if let Ok(mut filters) = self.filters.lock() {
            filters.insert(id, filter);
        }
        id
    }

    /// The request's filter (once: a replay that did not start leaves nothing behind).
    pub fn take(&self, id: u64) -> Option<engine::ReplayFilter> {
        self.filters.lock().ok()?.remove(&id)
    }
}

/// Keeps armed schedules in the flow's state (survives restarts).
struct StateSchedules(Arc<dyn Store>);

const SCHEDULE_KEY: &str = "schedule";

impl ScheduleStore for StateSchedules {
    fn load(&self, flow: &str) -> Option<Persisted> {
        let state = self.0.flow(flow).ok()?;
        engine::load_meta(&*state, SCHEDULE_KEY).ok().flatten()
    }

    fn save(&self, flow: &str, state: &Persisted) {
        if let Err(e) = self
            .0
            .flow(flow)
            .and_then(|f| engine::save_meta(&*f, SCHEDULE_KEY, state))
        {
            tracing::error!(flow, error = %e, "cannot save the schedule state");
        }
    }

    /// Nodes of a cluster arm one schedule: what another node armed since this one read
    /// `previous` (the same schedule, another next time) is kept and answered.
    fn arm(&self, flow: &str, previous: Option<&Persisted>, proposed: Persisted) -> Persisted {
        let armed = self.0.flow(flow).and_then(|state| {
            for _ in 0..8 {
                let stored = state.load_meta(SCHEDULE_KEY)?;
                let current: Option<Persisted> =
                    stored.clone().and_then(|v| serde_json::from_value(v).ok());
                if let Some(theirs) =
                    scheduler::armed_by_another(current.as_ref(), previous, &proposed)
                {
                    return Ok(theirs);
                }
                let value = serde_json::to_value(&proposed)?;
                if state.replace_meta(SCHEDULE_KEY, stored.as_ref(), &value)? {
                    return Ok(proposed.clone());
                }
            }
            Err(engine::StateError::Contended(
                "the schedule kept changing while it was armed".into(),
            ))
        });
        armed.unwrap_or_else(|e| {
            tracing::error!(flow, error = %e, "cannot save the schedule state");
            proposed
        })
    }
}

pub use server::{default_max_connections, HttpLimits};

/// Runs at once unless `--max-runs` says: four per core — runs mostly wait on services,
/// and a cap keeps a burst of due flows from starving each other's rate limits.
pub fn default_max_runs() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from) * 4
}

/// How the daemon is run (its command line).
pub struct Options {
    pub listen: SocketAddr,
    pub token: Option<String>,
    /// Names the API and the console answer to, beside IP addresses and `localhost`.
    pub allowed_hosts: Vec<String>,
    pub http: HttpLimits,
    /// On SIGTERM, how long runs in flight may take to finish.
    pub drain_limit: Duration,
    pub prune_every: Duration,
    pub watchdog_every: Duration,
    pub max_runs: usize,
    /// One node of a cluster (`--cluster`).
    pub cluster: Option<cluster::Options>,
    /// What the HTTP server answers: the front-ends' routes over the shared state.
    pub routes: Routes,
}

/// The front-ends' routes over the daemon's shared state.
pub type Routes = fn(Arc<Shared>) -> axum::Router;

/// Serve the flows of `global` until `shutdown` completes (or the scheduler ends on its
/// own: exit code 1), then drain.
pub async fn daemon(
    global: &Global,
    options: Options,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<ExitCode> {
    let Options {
        listen,
        token,
        allowed_hosts,
        http,
        drain_limit,
        prune_every,
        watchdog_every,
        max_runs,
        cluster,
        routes,
    } = options;
    if !listen.ip().is_loopback() && token.is_none() {
        anyhow::bail!(
            "listening on {listen} (not loopback) needs a token: pass --token or set SWITCHBOARD_TOKEN, so the API is not open to the network"
        );
    }
    let state_dir = wiring::state_dir(global);
    let (store, node) = open_state(global, cluster)?;
    let project = wiring::load(global, BTreeMap::new());
    settle_the_last_stop(&store, &project, node.is_some())?;

    let (timer, shared) = scheduler_and_shared(
        global,
        &state_dir,
        &store,
        &node,
        max_runs,
        (token, crate::access::Hosts::new(allowed_hosts)),
        http.body_timeout,
    );
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let _ = shared.hooks_base.set(format!("http://{addr}/hooks"));
    let discovery = discovery::prepare(
        &state_dir,
        addr,
        shared.token.is_some(),
        &global.flows,
        node.as_ref().map(|n| n.options.node.as_str()),
    )?;
    reload::apply(&shared, project);
    drain_queues(&shared);
    // Runs ended while no daemon ran (`switchboard run`, or before an upgrade) join the
    // search index in the background.
    for name in shared.flow_names() {
        shared.indexing.run_starts(&name);
        shared.indexing.soon(&shared.store, &name);
    }
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let watcher = reload::watch(Arc::clone(&shared), stop_tx.subscribe());
    let tasks = Background::spawn(
        &shared,
        &node,
        (listener, routes),
        http,
        prune_every,
        watchdog_every,
        &stop_tx,
    );
    let mut timer_stop = stop_tx.subscribe();
    let mut timer_task = tokio::spawn(timer.run(async move {
        let _ = timer_stop.recv().await;
    }));
    // Announced once the scheduler has taken the flows (it answers in order): from then on
    // what the API and the console say of each flow includes its next run.
    if !shared.scheduler_answers().await {
        tracing::warn!("the scheduler did not answer within 5 s of the start");
    }
    let discovery = discovery.announce()?;
    eprintln!(
        "switchboard daemon: {} flow(s) from {}, API on http://{addr}{}",
        shared.snapshot().project.flows.len(),
        global.flows.display(),
        node.as_ref()
            .map(|n| format!(", node `{}` of a cluster", n.options.node))
            .unwrap_or_default()
    );

    // The scheduler must outlive everything: if it ends on its own (a bug), nothing would
    // run while the API still answered, so the process says so and exits for the
    // service manager to restart it.
    let timer_died = tokio::select! {
        _ = shutdown => None,
        ended = &mut timer_task => Some(match ended {
            Err(e) if e.is_panic() => format!("it panicked: {}", flows::panic_message(e.into_panic().as_ref())),
            _ => "it stopped".to_string(),
        }),
    };
    if let Some(why) = timer_died {
        tracing::error!(
            "the scheduler stopped ({why}); exiting so the service manager restarts the daemon"
        );
        eprintln!("switchboard daemon: error: the scheduler stopped ({why}); exiting");
        let _ = stop_tx.send(());
        tasks.join().await;
        drop(watcher);
        store.flush().await?;
        discovery::remove(&discovery);
        return Ok(ExitCode::from(1));
    }
    drain(&shared, &mut timer_task, drain_limit, &stop_tx).await;
    tasks.join().await;
    drop(watcher);
    store.flush().await?;
    discovery::remove(&discovery);
    eprintln!("switchboard daemon: stopped");
    Ok(ExitCode::SUCCESS)
}

/// This daemon as a node of a cluster, if it is one.
type Node = Option<Arc<cluster::Node>>;

/// The state the daemon keeps: the embedded one (or PostgreSQL), or — a node of a
/// cluster — the PostgreSQL state every node shares, bound and leased.
fn open_state(
    global: &Global,
    cluster: Option<cluster::Options>,
) -> anyhow::Result<(Arc<dyn Store>, Node)> {
    Ok(match cluster {
        None => (
            wiring::open_store(global).with_context(|| "cannot start the daemon")?,
            None,
        ),
        Some(options) => {
            let Some(url) = wiring::state_url(global) else {
                anyhow::bail!(
                    "--cluster needs the state in PostgreSQL, which every node shares: pass --state postgres://user@host/db (or set SWITCHBOARD_STATE)"
                );
            };
            let store: Arc<dyn Store> = Arc::new(
                engine::PgStore::open_cluster(&url, &options.node)
                    .with_context(|| "cannot start the daemon as a node of a cluster")?,
            );
            wiring::bind(global, &*store, true)
                .with_context(|| "cannot start the daemon as a node of a cluster")?;
            let cluster = store
                .cluster()
                .context("the state does not serve a cluster")?;
            (store, Some(Arc::new(cluster::Node { cluster, options })))
        }
    })
}

/// What the last process left: its runs still `running` are recorded as interrupted (in a
/// cluster, whichever node takes a flow's lease settles them instead).
fn settle_the_last_stop(
    store: &Arc<dyn Store>,
    project: &Project,
    in_a_cluster: bool,
) -> anyhow::Result<()> {
    // In a cluster, runs left `running` may be another node's, under way: they are
    // settled by whichever node takes their flow's lease once it expires.
    let stale = match in_a_cluster {
        false => store.interrupt_stale_runs(Utc::now())?,
        true => Vec::new(),
    };
    // Its problems and warnings are logged once, by the first reload below.
    for (flow, id) in stale {
        tracing::warn!(
            flow,
            run = id,
            "a run the last process left unfinished is recorded as interrupted"
        );
    }
    for name in project.names().into_iter().filter(|_| !in_a_cluster) {
        let interrupted = store.flow(name)?.interrupt_unfinished_runs(Utc::now())?;
        if interrupted > 0 {
            tracing::warn!(
                flow = name,
                interrupted,
                "runs cut short by the last stop are marked interrupted"
            );
        }
    }
    Ok(())
}

/// The timer (its launcher runs flows through the shared state) and the shared state
/// (which holds the timer's sender): the knot is tied through a cell filled right after.
fn scheduler_and_shared(
    global: &Global,
    state_dir: &std::path::Path,
    store: &Arc<dyn Store>,
    node: &Option<Arc<cluster::Node>>,
    max_runs: usize,
    (token, hosts): (Option<String>, crate::access::Hosts),
    body_timeout: Duration,
) -> (Timer<ops::RunReply>, Arc<Shared>) {
    let schedules: Arc<dyn ScheduleStore> = Arc::new(StateSchedules(Arc::clone(store)));
    // The launcher needs the shared state, which needs the timer's sender: tie the knot
    // through a cell filled right after.
    let shared_cell: Arc<std::sync::OnceLock<Arc<Shared>>> = Arc::default();
    let launcher_cell = Arc::clone(&shared_cell);
    let launcher: scheduler::Launcher<ops::RunReply> =
        Arc::new(move |name: String, reason: Reason| {
            let shared = launcher_cell.get().cloned();
            Box::pin(async move {
                match shared {
                    Some(shared) => run_flow(&shared, &name, reason).await,
                    None => ops::not_run("the daemon is starting"),
                }
            })
        });
    let timer = Timer::new(Arc::new(SystemClock), launcher, schedules).with_max_runs(max_runs);
    let shared = Arc::new(Shared {
        global: Global {
            flows: global.flows.clone(),
            accounts: global.accounts.clone(),
            state: global.state.clone().or(Some(state_dir.to_path_buf())),
            verbose: global.verbose,
            accept_state_loss: global.accept_state_loss,
        },
        store: Arc::clone(store),
        snapshot: RwLock::default(),
        reloading: Default::default(),
        timer: timer.sender(),
        status: timer.status(),
        metrics: metrics::Metrics::default(),
        token,
        hosts,
        hooks_base: Default::default(),
        replays: Default::default(),
        stop_runs: engine::Stop::new().0,
        body_timeout,
        console: Default::default(),
        sign_ins: Default::default(),
        indexing: Default::default(),
        node: node.clone(),
        trouble: Default::default(),
    });
    let _ = shared_cell.set(Arc::clone(&shared));
    (timer, shared)
}

/// Prune the history of flows with a `history:` rule every `every`, first a minute after
/// the start, off the runtime's threads: runs go on meanwhile (SQLite's WAL lets them read and
/// write beside the deletes; PostgreSQL's rows are locked one by one).
async fn prune_in_background(
    shared: Arc<Shared>,
    every: Duration,
    mut stop: tokio::sync::broadcast::Receiver<()>,
) {
    let mut next = tokio::time::Instant::now() + every.min(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = stop.recv() => return,
        }
        next = tokio::time::Instant::now() + every;
        // The plan is taken from what is served now (a reload may come meanwhile).
        let plan = crate::prune::plan(&shared.snapshot().project, None);
        let store = Arc::clone(&shared.store);
        let pass = tokio::task::spawn_blocking(move || {
            crate::prune::prune_planned(plan, &*store, false, Utc::now())
        })
        .await;
        for result in pass.unwrap_or_default() {
            if result.error.is_some() || result.pruned.runs > 0 {
                tracing::info!(flow = %result.flow, "{}", crate::prune::line(&result, false));
            }
        }
    }
}

/// Start the push flows that run on every event and have events waiting (acknowledged
/// before the last stop, or a crash): they are not left waiting for the next event.
pub fn drain_queues(shared: &Shared) {
    for flow in shared.snapshot().project.flows.values() {
        if !flow.source.is_push() || flow.schedule.is_some() || !flow.enabled {
            continue;
        }
        let waiting = shared
            .store
            .flow(&flow.name)
            .and_then(|state| state.has_queued())
            .unwrap_or(false);
        if waiting {
            tracing::info!(flow = %flow.name, "events queued before the start are sent now");
            let _ = shared.timer.send(Command::RunNow {
                name: flow.name.clone(),
                reason: Reason::Event,
                reply: None,
            });
        }
    }
}

/// Pause `flow` if its failures call for it (its `auto_pause` rule), saying so.
fn auto_pause(shared: &Shared, flow: &flows::Flow) {
    let Some(rule) = &flow.auto_pause else {
        return;
    };
    let now = Utc::now();
    let grace = chrono::Duration::from_std(rule.grace).unwrap_or(chrono::Duration::MAX);
    let paused = shared.store.flow(&flow.name).and_then(|state| {
        if engine::pause::paused(&*state)?.is_some() {
            return Ok(None);
        }
        let Some(reason) = engine::pause::due(&*state, rule.after, grace, now)? else {
            return Ok(None);
        };
        let paused = engine::pause::Paused { reason, at: now };
        engine::pause::pause(&*state, &paused)?;
        Ok(Some(paused))
    });
    match paused {
        Ok(Some(paused)) => {
            tracing::warn!(flow = %flow.name, reason = %paused.reason, "the flow is paused; `switchboard resume {}` resumes it", flow.name);
            shared.metrics.paused(&flow.name);
            alerts::raise(
                shared,
                flow,
                flows::alerts::Condition::Paused,
                format!(
                    "{} is paused: {}; `switchboard resume {}` resumes it",
                    flow.name, paused.reason, flow.name
                ),
                None,
                0,
            );
        }
        Ok(None) => {}
        Err(e) => tracing::error!(flow = %flow.name, error = %e, "cannot record the flow's pause"),
    }
}

/// What follows a run that ran: its metrics and log line, and when it failed, its
/// alerts and the flow's auto-pause.
fn run_ended(shared: &Shared, flow: &flows::Flow, run: &engine::RunReport) {
    shared.metrics.observe(&run.summary);
    tracing::info!(flow = %flow.name, "{}", report::run_line(&run.summary));
    if run.summary.status == RunStatus::Failed {
        alerts::after_run(shared, flow, run);
        auto_pause(shared, flow);
    }
}

/// One run, as the timer's launcher: the flow's last good version, its report as JSON.
/// A panic in the run (a bug) is that run's failure, recorded, not the daemon's end.
async fn run_flow(shared: &Shared, name: &str, reason: Reason) -> ops::RunOutcome {
    let run = std::panic::AssertUnwindSafe(run_flow_once(shared, name, reason));
    match futures::FutureExt::catch_unwind(run).await {
        Ok(outcome) => outcome,
        Err(panic) => {
            let message = flows::panic_message(panic.as_ref());
            tracing::error!(flow = name, "the run ended in a panic: {message}");
            shared.metrics.panicked(name);
            if let Ok(state) = shared.store.flow(name) {
                let _ = state.interrupt_unfinished_runs(Utc::now());
            }
            // The run announced to the index (if it got that far) has ended too.
            shared.indexing.soon(&shared.store, name);
            ops::not_run(format!(
                "internal error: the run ended in a panic: {message}"
            ))
        }
    }
}

async fn run_flow_once(shared: &Shared, name: &str, reason: Reason) -> ops::RunOutcome {
    let now = shared.snapshot();
    let (flow, accounts) = (
        now.project.flows.get(name).cloned(),
        now.project.accounts.clone(),
    );
    let Some(flow) = flow else {
        return ops::not_run(format!("no valid flow named `{name}`"));
    };
    let job = match reason {
        Reason::Replay(id) => match shared.replays.take(id) {
            Some(filter) => Job::Replay(filter),
            None => return ops::not_run("the replay request is gone (its caller stopped waiting)"),
        },
        reason => Job::Source(trigger(reason)),
    };
    // A paused flow does not start by itself; pushed events wait in its queue. A person's
    // force-run or replay still runs.
    let by_itself = matches!(
        reason,
        Reason::Schedule(_) | Reason::After | Reason::Event | Reason::Takeover
    );
    if by_itself {
        let paused = shared
            .store
            .flow(name)
            .and_then(|state| engine::pause::paused(&*state));
        if let Ok(Some(paused)) = paused {
            tracing::debug!(flow = name, reason = %paused.reason, "paused: the run does not start");
            return Outcome {
                success: false,
                skipped: true,
                report: ops::RunReply {
                    paused: Some(paused),
                    ..ops::RunReply::default()
                },
            };
        }
    }
    let stop = shared.stop_runs.subscribe();
    shared.indexing.run_starts(name);
    let ran = match &shared.node {
        None => match shared.store.flow(name) {
            Ok(state) => wiring::run_once(&accounts, &flow, state, job, true, stop).await,
            Err(e) => Err(e.into()),
        },
        Some(node) => match node.run(shared, &accounts, &flow, reason, job).await {
            cluster::Held::Ran(ran) => ran,
            cluster::Held::Not(outcome) => {
                shared.indexing.soon(&shared.store, name);
                return outcome;
            }
        },
    };
    shared.indexing.soon(&shared.store, name);
    match ran {
        Ok(run) if run.nothing_to_replay() => Outcome {
            success: true,
            skipped: false,
            report: ops::RunReply {
                nothing_to_replay: Some(true),
                ..ops::RunReply::ran(run.summary, Vec::new())
            },
        },
        Ok(run) => {
            run_ended(shared, &flow, &run);
            Outcome {
                success: run.summary.status == RunStatus::Succeeded,
                skipped: false,
                report: ops::RunReply::ran(run.summary, run.failures),
            }
        }
        Err(e) => {
            if let Some(state_error) = e.downcast_ref::<engine::StateError>() {
                shared.trouble.report(state_error, Some(name));
            }
            tracing::error!(flow = name, error = %report::error_text(&e), "the run could not start");
            ops::not_run(report::error_text(&e))
        }
    }
}

/// The engine's trigger for a scheduler's reason: the one mapping between the two (a
/// replay's request is left with a cluster's holder, and started, as a manual run).
pub(crate) fn trigger(reason: Reason) -> Trigger {
    match reason {
        Reason::Schedule(_) => Trigger::Schedule,
        Reason::Takeover => Trigger::Takeover,
        Reason::After => Trigger::After,
        Reason::Event => Trigger::Event,
        Reason::Manual | Reason::Replay(_) => Trigger::Manual,
    }
}

/// The daemon's tasks beside the timer: the HTTP server (API, console, webhooks), the
/// hourly pruner, the alerts' watchdog, the state's recovery and — in a cluster — the
/// watch for flows to take over. Each ends when the stop is broadcast.
struct Background {
    server: tokio::task::JoinHandle<()>,
    pruner: tokio::task::JoinHandle<()>,
    watchdog: tokio::task::JoinHandle<()>,
    recovery: tokio::task::JoinHandle<()>,
    taking_over: Option<tokio::task::JoinHandle<()>>,
}

impl Background {
    #[allow(clippy::too_many_arguments)]
    fn spawn(
        shared: &Arc<Shared>,
        node: &Option<Arc<cluster::Node>>,
        (listener, routes): (tokio::net::TcpListener, Routes),
        http: server::HttpLimits,
        prune_every: Duration,
        watchdog_every: Duration,
        stop_tx: &tokio::sync::broadcast::Sender<()>,
    ) -> Background {
        let app = routes(Arc::clone(shared));
        Background {
            server: tokio::spawn(server::serve(
                listener,
                app,
                http,
                stop_tx.subscribe(),
                Duration::from_secs(5),
            )),
            pruner: tokio::spawn(prune_in_background(
                Arc::clone(shared),
                prune_every,
                stop_tx.subscribe(),
            )),
            watchdog: tokio::spawn(alerts::watch(
                Arc::clone(shared),
                watchdog_every,
                stop_tx.subscribe(),
            )),
            recovery: tokio::spawn(trouble::recover(Arc::clone(shared), stop_tx.subscribe())),
            taking_over: node.as_ref().map(|node| {
                tokio::spawn(cluster::watch(
                    Arc::clone(shared),
                    Arc::clone(node),
                    stop_tx.subscribe(),
                ))
            }),
        }
    }

    /// Wait for each to end (at most 5 s each) once the stop was broadcast.
    async fn join(self) {
        let wait = Duration::from_secs(5);
        let _ = tokio::time::timeout(wait, self.server).await;
        let _ = tokio::time::timeout(wait, self.pruner).await;
        let _ = tokio::time::timeout(wait, self.watchdog).await;
        let _ = tokio::time::timeout(wait, self.recovery).await;
        if let Some(taking_over) = self.taking_over {
            let _ = tokio::time::timeout(wait, taking_over).await;
        }
    }
}

/// Stop: runs in flight get `drain_limit` to end; past it they stop sending and are
/// recorded as interrupted. Alone, no run of the state can be under way afterwards, so
/// any left `running` is marked interrupted; in a cluster, other nodes' can be.
async fn drain(
    shared: &Arc<Shared>,
    timer_task: &mut tokio::task::JoinHandle<()>,
    drain_limit: Duration,
    stop_tx: &tokio::sync::broadcast::Sender<()>,
) {
    eprintln!(
        "switchboard daemon: stopping; waiting up to {}s for runs in flight",
        drain_limit.as_secs_f64()
    );
    let _ = stop_tx.send(());
    if tokio::time::timeout(drain_limit, &mut *timer_task)
        .await
        .is_err()
    {
        // Past the limit, runs stop sending before their summaries are taken: what they
        // record is what went out.
        eprintln!(
            "switchboard daemon: runs still in flight after {}s stop sending; they are recorded as interrupted",
            drain_limit.as_secs_f64()
        );
        shared.stop_runs.stop();
        let more = engine::STOP_GRACE + Duration::from_secs(2);
        if tokio::time::timeout(more, &mut *timer_task).await.is_err() {
            tracing::warn!("runs that did not stop in time are recorded as interrupted");
        }
    }
    // Alone, no run of the state can be under way now; in a cluster, other nodes' can.
    let names: Vec<String> = shared.snapshot().project.flows.keys().cloned().collect();
    for name in names.into_iter().filter(|_| shared.node.is_none()) {
        if let Ok(flow) = shared.store.flow(&name) {
            let _ = flow.interrupt_unfinished_runs(Utc::now());
        }
    }
}
