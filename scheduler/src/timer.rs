//! The timer loop: one task over the next deadlines of every flow (a heap, not a task
//! per flow). It fires due flows, never runs a flow twice at once (triggers that arrive
//! while it runs are kept and run after it: those that read the source as one follow-up
//! run, each replay as its own), starts `after` followers when a run completes, keeps
//! schedules armed across restarts through a [`ScheduleStore`], and on shutdown stops
//! starting runs and returns once the runs in flight have finished.
//!
//! A flow is known by its name: removing it while it runs keeps the run (and whoever
//! waits for it) until the run ends, and a flow that comes back meanwhile is still
//! running — it does not start a second time.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use flows::{After, CatchUp, RunResult};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
use crate::rules::{self, Spec};

/// Why a run was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    /// The schedule's fire due at this time (nodes of a cluster claim it by it).
    Schedule(DateTime<Utc>),
    After,
    Manual,
    /// Events were pushed to the flow (a webhook).
    Event,
    /// A force-run that resends earlier rows; the number identifies the request (what
    /// to resend is the launcher's business).
    Replay(u64),
    /// A node of a cluster takes over a flow whose node stopped mid-run.
    Takeover,
}

impl Reason {
    /// Whether the run reads the flow's source (such triggers coalesce: one run reads
    /// whatever is there), as opposed to a replay of earlier rows.
    pub fn reads_source(self) -> bool {
        !matches!(self, Reason::Replay(_))
    }
}

/// How a run ended, with whatever the launcher wants handed back to a waiting caller.
#[derive(Debug, Clone)]
pub struct Outcome<R> {
    pub success: bool,
    pub report: R,
    /// The launcher did not run the flow (it is paused): no run is counted and no
    /// `after` rule fires.
    pub skipped: bool,
}

/// A boxed future, as launchers return them.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Starts a run of a flow and resolves when it has ended.
pub type Launcher<R> = Arc<dyn Fn(String, Reason) -> BoxFuture<Outcome<R>> + Send + Sync>;

/// What survives a restart for one flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Persisted {
    /// The armed schedule; a different one re-arms.
    pub fingerprint: String,
    #[serde(default)]
    pub next_due: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_start: Option<DateTime<Utc>>,
}

/// Where armed schedules are kept between restarts.
pub trait ScheduleStore: Send + Sync {
    fn load(&self, flow: &str) -> Option<Persisted>;
    fn save(&self, flow: &str, state: &Persisted);

    /// Arm `proposed`, computed from `previous` (what was armed when this timer looked);
    /// what is armed now. A store several timers share (the daemons of a cluster) keeps
    /// the first timer's and answers it to the others, so that they all fire at the same
    /// times (and claim each fire by its due time).
    fn arm(&self, flow: &str, previous: Option<&Persisted>, proposed: Persisted) -> Persisted {
        let _ = previous;
        self.save(flow, &proposed);
        proposed
    }
}

/// For a store several timers share (the daemons of a cluster): what to arm instead of
/// `proposed` — the schedule `current`ly stored, when another timer armed the same
/// schedule since this one read `previous` (so that all keep the first's times) — or
/// `None` to store `proposed`.
pub fn armed_by_another(
    current: Option<&Persisted>,
    previous: Option<&Persisted>,
    proposed: &Persisted,
) -> Option<Persisted> {
    let current = current?;
    let moved = previous
        .is_none_or(|p| p.fingerprint != current.fingerprint || p.next_due != current.next_due);
    (current.fingerprint == proposed.fingerprint && moved).then(|| current.clone())
}

/// A store that forgets (for `next` and tests that need no restart).
#[derive(Debug, Default)]
pub struct NoStore;

impl ScheduleStore for NoStore {
    fn load(&self, _: &str) -> Option<Persisted> {
        None
    }
    fn save(&self, _: &str, _: &Persisted) {}
}

/// What the loop is told.
pub enum Command<R> {
    /// Add or replace a flow: its own schedule (if it runs by itself) and its `after`.
    Set {
        name: String,
        spec: Option<Spec>,
        after: Option<After>,
        priority: flows::Priority,
    },
    /// Forget a flow.
    Remove { name: String },
    /// Force-run now; the reply receives the run's report (of the follow-up run when the
    /// flow is running already).
    RunNow {
        name: String,
        reason: Reason,
        reply: Option<oneshot::Sender<Outcome<R>>>,
    },
    /// A run ended (sent by the loop's own run tasks).
    Finished { name: String, outcome: Outcome<R> },
    /// Answered at once by a loop that is alive (a health check).
    Ping { reply: oneshot::Sender<()> },
}

/// A flow as the daemon shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FlowStatus {
    /// Why the schedule cannot be computed (the flow does not run by itself meanwhile).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub schedule: Option<String>,
    pub next_run: Option<DateTime<Utc>>,
    pub running: bool,
    pub last_started: Option<DateTime<Utc>>,
    pub last_success: Option<bool>,
    /// How late the last scheduled start was, in milliseconds.
    pub last_lag_ms: Option<i64>,
    pub runs: u64,
    /// Due, but waiting for a free run slot (`--max-runs`): since when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_since: Option<DateTime<Utc>>,
}

/// Shared, read-only view of every flow's status.
pub type StatusBoard = Arc<RwLock<BTreeMap<String, FlowStatus>>>;

struct Entry<R> {
    spec: Option<Spec>,
    after: Option<After>,
    priority: flows::Priority,
    next: Option<DateTime<Utc>>,
    running: bool,
    /// Due, waiting for a run slot: triggers meanwhile join it like a running flow's.
    queued: bool,
    /// Removed while it ran: forgotten once the run ends (unless set again meanwhile).
    retired: bool,
    /// Who waits for the run in flight.
    waiters: Vec<oneshot::Sender<Outcome<R>>>,
    /// Triggers that arrived while running, in order, each with its waiters: those that
    /// read the source share one follow-up run; each replay is a run of its own.
    pending: VecDeque<(Reason, Vec<oneshot::Sender<Outcome<R>>>)>,
}

impl<R> Entry<R> {
    fn new() -> Self {
        Entry {
            spec: None,
            after: None,
            priority: flows::Priority::Normal,
            next: None,
            running: false,
            queued: false,
            retired: false,
            waiters: Vec::new(),
            pending: VecDeque::new(),
        }
    }

    /// Keep a trigger for after the run in flight.
    fn defer(&mut self, reason: Reason, reply: Option<oneshot::Sender<Outcome<R>>>) {
        if reason.reads_source() {
            if let Some((_, waiters)) = self.pending.iter_mut().find(|(r, _)| r.reads_source()) {
                waiters.extend(reply);
                return;
            }
        }
        self.pending
            .push_back((reason, reply.into_iter().collect()));
    }
}

/// The timer loop. Build it, keep its [`Timer::sender`], then `run` it.
pub struct Timer<R> {
    clock: Arc<dyn Clock>,
    launcher: Launcher<R>,
    store: Arc<dyn ScheduleStore>,
    entries: HashMap<String, Entry<R>>,
    heap: BinaryHeap<Reverse<(DateTime<Utc>, String)>>,
    tx: mpsc::UnboundedSender<Command<R>>,
    rx: mpsc::UnboundedReceiver<Command<R>>,
    status: StatusBoard,
    accepting: bool,
    in_flight: usize,
    /// Runs at once, at most; more due wait in `waiting`.
    max_runs: usize,
    /// Flows due while every slot is taken: name, why, since when.
    waiting: Vec<(String, Reason, DateTime<Utc>)>,
}

impl<R: Clone + Default + Send + 'static> Timer<R> {
    pub fn new(
        clock: Arc<dyn Clock>,
        launcher: Launcher<R>,
        store: Arc<dyn ScheduleStore>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Timer {
            clock,
            launcher,
            store,
            entries: HashMap::new(),
            heap: BinaryHeap::new(),
            tx,
            rx,
            status: StatusBoard::default(),
            accepting: true,
            in_flight: 0,
            max_runs: usize::MAX,
            waiting: Vec::new(),
        }
    }

    /// Run at most `n` flows at once (at least 1); when more are due, the higher
    /// `priority` starts first, then the one waiting longest.
    pub fn with_max_runs(mut self, n: usize) -> Self {
        self.max_runs = n.max(1);
        self
    }

    /// Where to send [`Command`]s.
    pub fn sender(&self) -> mpsc::UnboundedSender<Command<R>> {
        self.tx.clone()
    }

    /// The live status of every flow.
    pub fn status(&self) -> StatusBoard {
        Arc::clone(&self.status)
    }

    /// Run until `shutdown` resolves and the runs in flight have ended.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            self.fire_due();
            if !self.accepting && self.in_flight == 0 {
                return;
            }
            let now = self.clock.now();
            let wait = self
                .heap
                .peek()
                .map(|Reverse((due, _))| (*due - now).to_std().unwrap_or(Duration::ZERO))
                .unwrap_or(Duration::from_secs(3600));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                command = self.rx.recv() => match command {
                    Some(command) => self.handle(command),
                    None => return,
                },
                _ = &mut shutdown, if self.accepting => {
                    tracing::info!(in_flight = self.in_flight, "stopping: no new runs will start");
                    self.accepting = false;
                }
            }
        }
    }

    fn handle(&mut self, command: Command<R>) {
        match command {
            Command::Set {
                name,
                spec,
                after,
                priority,
            } => {
                self.set(name.clone(), spec, after);
                if let Some(entry) = self.entries.get_mut(&name) {
                    entry.priority = priority;
                }
            }
            Command::Remove { name } => self.remove(name),
            Command::RunNow {
                name,
                reason,
                reply,
            } => self.trigger(&name, reason, reply),
            Command::Finished { name, outcome } => self.finished(name, outcome),
            Command::Ping { reply } => {
                let _ = reply.send(());
            }
        }
    }

    /// Forget a flow; one that is running is kept until its run ends (its identity, the
    /// name, still owns that run), then forgotten.
    fn remove(&mut self, name: String) {
        match self.entries.get_mut(&name) {
            Some(entry) if entry.running => {
                entry.retired = true;
                entry.spec = None;
                entry.after = None;
                entry.next = None;
                self.update_status(&name, |s| {
                    s.schedule = None;
                    s.next_run = None;
                });
            }
            _ => {
                self.entries.remove(&name);
                if let Ok(mut board) = self.status.write() {
                    board.remove(&name);
                }
            }
        }
    }

    fn set(&mut self, name: String, spec: Option<Spec>, after: Option<After>) {
        let now = self.clock.now();
        let saved = self.store.load(&name);
        let next = match &spec {
            None => {
                // Disarmed (disabled, or `after` only): forget the armed time, so that
                // enabling the flow again arms it afresh (the 5-minute rule applies).
                if let Some(saved) = saved.filter(|s| !s.fingerprint.is_empty()) {
                    self.store.save(
                        &name,
                        &Persisted {
                            fingerprint: String::new(),
                            next_due: None,
                            last_start: saved.last_start,
                        },
                    );
                }
                None
            }
            Some(spec) => {
                let fingerprint = spec.fingerprint();
                let last_start = saved.as_ref().and_then(|s| s.last_start);
                let next = match saved
                    .as_ref()
                    .filter(|s| s.fingerprint == fingerprint)
                    .and_then(|s| s.next_due)
                {
                    // Unchanged schedule: keep its next time (a restart does not re-arm).
                    Some(due) if due > now => Some(due),
                    // Missed (the daemon was down, or it is just starting as the fire
                    // falls due): fired at once, as the fire it was — so that in a
                    // cluster, where the other nodes may be firing it this very moment,
                    // it is claimed once, not run again as a fire of its own.
                    Some(missed) => match spec.catch_up {
                        CatchUp::Last => Some(missed),
                        CatchUp::None => {
                            self.computed(&name, || rules::next_due(spec, missed, now))
                        }
                    },
                    None => self.computed(&name, || rules::first_due(spec, now, last_start)),
                };
                let proposed = Persisted {
                    fingerprint,
                    next_due: next,
                    last_start,
                };
                self.store.arm(&name, saved.as_ref(), proposed).next_due
            }
        };
        let describe = spec.as_ref().map(|s| rules::describe(&s.rule)).or_else(|| {
            after
                .as_ref()
                .map(|a| rules::describe(&flows::ScheduleRule::After(a.clone())))
        });
        let entry = self.entries.entry(name.clone()).or_insert_with(Entry::new);
        entry.retired = false;
        entry.spec = spec;
        entry.after = after;
        entry.next = next;
        if let Some(due) = next {
            self.heap.push(Reverse((due, name.clone())));
        }
        self.update_status(&name, |s| {
            s.schedule = describe;
            s.next_run = next;
        });
    }

    /// Start every flow whose time has come.
    fn fire_due(&mut self) {
        let now = self.clock.now();
        while let Some(Reverse((due, _))) = self.heap.peek() {
            if *due > now {
                break;
            }
            let Some(Reverse((due, name))) = self.heap.pop() else {
                break;
            };
            let Some(entry) = self.entries.get_mut(&name) else {
                continue;
            };
            if entry.next != Some(due) {
                continue; // re-armed or removed since this deadline was queued
            }
            let Some(spec) = entry.spec.clone() else {
                continue;
            };
            let next = self.computed(&name, || rules::next_due(&spec, due, now));
            let fired = Persisted {
                fingerprint: spec.fingerprint(),
                next_due: Some(due),
                last_start: None,
            };
            let proposed = Persisted {
                fingerprint: spec.fingerprint(),
                next_due: next,
                last_start: Some(now),
            };
            let next = self.store.arm(&name, Some(&fired), proposed).next_due;
            let Some(entry) = self.entries.get_mut(&name) else {
                continue;
            };
            entry.next = next;
            if let Some(next) = next {
                self.heap.push(Reverse((next, name.clone())));
            }
            let lag = (now - due).num_milliseconds();
            self.update_status(&name, |s| {
                s.next_run = next;
                s.last_lag_ms = Some(lag);
            });
            if self.accepting {
                self.trigger(&name, Reason::Schedule(due), None);
            }
        }
    }

    /// A run time computed by the rules; a panic there (a bug) stops this flow's
    /// schedule, with the reason in its status, and nothing else.
    fn computed(
        &self,
        name: &str,
        rule: impl FnOnce() -> Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(rule)) {
            Ok(next) => next,
            Err(panic) => {
                let message = flows::panic_message(panic.as_ref());
                tracing::error!(flow = name, "the schedule cannot be computed: {message}");
                self.update_status(name, |s| {
                    s.error = Some(format!("the schedule cannot be computed: {message}"));
                });
                None
            }
        }
    }

    /// Start a run now, or keep the trigger for after the run in flight.
    fn trigger(&mut self, name: &str, reason: Reason, reply: Option<oneshot::Sender<Outcome<R>>>) {
        if !self.accepting {
            return; // dropping `reply` tells a waiting caller the daemon is stopping
        }
        let entry = match self.entries.get_mut(name) {
            Some(entry) => entry,
            // A flow the loop has not been told of yet (a force-run racing its load):
            // the launcher decides whether it exists.
            None => self.entries.entry(name.to_string()).or_insert_with(|| {
                let mut entry = Entry::new();
                entry.retired = true;
                entry
            }),
        };
        if entry.running || entry.queued {
            entry.defer(reason, reply);
            return;
        }
        entry.waiters.extend(reply);
        if self.in_flight >= self.max_runs {
            entry.queued = true;
            let since = self.clock.now();
            self.waiting.push((name.to_string(), reason, since));
            self.update_status(name, |s| s.waiting_since = Some(since));
            tracing::info!(
                flow = name,
                in_flight = self.in_flight,
                "every run slot is taken: the flow waits its turn"
            );
            return;
        }
        self.launch(name.to_string(), reason);
    }

    /// Start waiting flows while slots are free: the highest priority first, then the
    /// one waiting longest.
    fn start_waiting(&mut self) {
        while self.accepting && self.in_flight < self.max_runs && !self.waiting.is_empty() {
            let priority = |name: &str| {
                self.entries
                    .get(name)
                    .map_or(flows::Priority::Normal, |e| e.priority)
            };
            let best = self
                .waiting
                .iter()
                .enumerate()
                .max_by(|(_, a), (_, b)| priority(&a.0).cmp(&priority(&b.0)).then(b.2.cmp(&a.2)))
                .map(|(i, _)| i);
            let Some(best) = best else {
                break;
            };
            let (name, reason, _) = self.waiting.remove(best);
            if let Some(entry) = self.entries.get_mut(&name) {
                entry.queued = false;
            }
            self.update_status(&name, |s| s.waiting_since = None);
            self.launch(name, reason);
        }
    }

    fn launch(&mut self, name: String, reason: Reason) {
        let Some(entry) = self.entries.get_mut(&name) else {
            return;
        };
        entry.running = true;
        self.in_flight += 1;
        let started = self.clock.now();
        self.update_status(&name, |s| {
            s.running = true;
            s.last_started = Some(started);
        });
        let finished_name = name.clone();
        let launcher = Arc::clone(&self.launcher);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            // A launcher that panics (a bug) still ends its run: the flow is not left
            // "running" forever and the loop can still stop.
            let run =
                std::panic::AssertUnwindSafe(async move { launcher(name.clone(), reason).await });
            let outcome = match futures::FutureExt::catch_unwind(run).await {
                Ok(outcome) => outcome,
                Err(panic) => {
                    tracing::error!(
                        "a run ended in a panic: {}",
                        flows::panic_message(panic.as_ref())
                    );
                    Outcome {
                        success: false,
                        skipped: false,
                        report: R::default(),
                    }
                }
            };
            let _ = tx.send(Command::Finished {
                name: finished_name,
                outcome,
            });
        });
    }

    fn finished(&mut self, name: String, outcome: Outcome<R>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let ran = !outcome.skipped;
        let result = if outcome.success {
            RunResult::Success
        } else {
            RunResult::Failure
        };
        let mut follow_up = None;
        let mut forget = false;
        if let Some(entry) = self.entries.get_mut(&name) {
            entry.running = false;
            for waiter in entry.waiters.drain(..) {
                let _ = waiter.send(outcome.clone());
            }
            if let Some((reason, waiters)) = entry.pending.pop_front() {
                entry.waiters = waiters;
                follow_up = Some(reason);
            }
            forget = entry.retired && follow_up.is_none();
        }
        if forget {
            self.entries.remove(&name);
            if let Ok(mut board) = self.status.write() {
                board.remove(&name);
            }
        } else {
            self.update_status(&name, |s| {
                s.running = false;
                if ran {
                    s.last_success = Some(outcome.success);
                    s.runs += 1;
                }
            });
        }
        let followers: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| {
                ran && e
                    .after
                    .as_ref()
                    .is_some_and(|a| a.flow == name && a.on.contains(&result))
            })
            .map(|(n, _)| n.clone())
            .collect();
        for follower in followers {
            self.trigger(&follower, Reason::After, None);
        }
        if let Some(reason) = follow_up {
            if self.accepting {
                // Its follow-up waits its turn like any due flow: a free slot goes to the
                // highest priority first.
                if let Some(entry) = self.entries.get_mut(&name) {
                    entry.queued = true;
                }
                let since = self.clock.now();
                self.waiting.push((name.clone(), reason, since));
            } else if let Some(entry) = self.entries.get_mut(&name) {
                entry.waiters.clear();
                entry.pending.clear();
            }
        }
        self.start_waiting();
    }

    fn update_status(&self, name: &str, change: impl FnOnce(&mut FlowStatus)) {
        if let Ok(mut board) = self.status.write() {
            change(board.entry(name.to_string()).or_default());
        }
    }
}

#[cfg(test)]
mod tests;
