//! `switchboard daemon --cluster`: this node's part in a cluster of daemons sharing one
//! PostgreSQL state (see [`engine::Cluster`]). A run first takes its flow's lease, renews
//! it while it goes on and stops if it is lost; a scheduled fire runs on the one node that
//! claims it; a trigger for a flow another node runs is left with that node (it runs once
//! more after); and every second the node looks for flows whose node stopped mid-run
//! (its lease expired) and for pushed events no node is running, and takes them over.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use engine::{Claim, Cluster, Lease, LeaseTerms, StateError, Trigger};
use scheduler::{Command, Outcome, Reason};
use serde_json::Value;

use super::Shared;
use crate::wiring::{self, Job};

/// How the node was started.
#[derive(Debug, Clone)]
pub struct Options {
    pub node: String,
    /// How long sends start after a renewal (see `--lease`).
    pub lease: Duration,
}

/// The host's name, as a node's default name.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "switchboard".to_string())
}

/// A node's cluster, as the daemon's parts use it.
pub struct Node {
    pub cluster: Arc<dyn Cluster>,
    pub options: Options,
}

/// Run a blocking call of the cluster off the runtime's threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StateError> + Send + 'static,
) -> Result<T, StateError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(StateError::Stopped(format!(
            "the cluster call stopped: {e}"
        )))
    })
}

/// The word a trigger is left with the holder under (the trigger's own name), and back.
fn word(reason: Reason) -> String {
    match serde_json::to_value(super::trigger(reason)) {
        Ok(Value::String(word)) => word,
        _ => "manual".into(),
    }
}

fn trigger_of(word: &str) -> Trigger {
    serde_json::from_value(Value::String(word.to_string())).unwrap_or(Trigger::Manual)
}

/// Not run here: another node runs it.
fn skipped(elsewhere: String) -> super::ops::RunOutcome {
    Outcome {
        success: false,
        skipped: true,
        report: super::ops::RunReply {
            elsewhere: Some(elsewhere),
            ..super::ops::RunReply::default()
        },
    }
}

/// What holding the flow for a run came to.
pub enum Held {
    /// The run ran (and any runs left for after it): the report of the run asked for.
    Ran(anyhow::Result<engine::RunReport>),
    /// It runs elsewhere, or not at all: what the timer is told.
    Not(super::ops::RunOutcome),
}

impl Node {
    /// The lease's terms for a flow: sends start for `--lease` after each renewal; the
    /// database keeps the lease the flow's `delivery.max_time` longer, so a send started
    /// in time ends before another node may take the flow over.
    pub fn terms(&self, flow: &flows::Flow) -> LeaseTerms {
        LeaseTerms {
            send_for: self.options.lease,
            ttl: self.options.lease + flow.delivery.max_time,
        }
    }

    /// Hold the flow for a run started for `reason`: claim its scheduled fire, then its
    /// lease; a flow another node runs gets the trigger left with it, or (a person's
    /// force-run or replay) waits for it.
    async fn hold(
        &self,
        shared: &Shared,
        flow: &flows::Flow,
        reason: Reason,
    ) -> Result<Lease, super::ops::RunOutcome> {
        let name = flow.name.clone();
        let failed = |e: StateError| super::ops::not_run(e.to_string());
        if let Reason::Schedule(due) = reason {
            let (cluster, flow_name) = (Arc::clone(&self.cluster), name.clone());
            let won = blocking(move || cluster.claim_fire(&flow_name, due))
                .await
                .map_err(failed)?;
            if !won {
                tracing::debug!(flow = %name, %due, "another node runs this fire");
                return Err(skipped("another node claimed this fire".into()));
            }
        }
        let terms = self.terms(flow);
        let stop = shared.stop_runs.subscribe();
        loop {
            let (cluster, flow_name) = (Arc::clone(&self.cluster), name.clone());
            let claim = blocking(move || cluster.lease(&flow_name, terms))
                .await
                .map_err(failed)?;
            let node = match claim {
                Claim::Taken(lease) => return Ok(lease),
                Claim::Busy { node } => node,
            };
            match reason {
                // Another node took it over first.
                Reason::Takeover => return Err(skipped(format!("node {node} runs it"))),
                Reason::Manual | Reason::Replay(_) => {
                    if stop.is_stopped() {
                        return Err(failed(StateError::Stopped("the daemon is stopping".into())));
                    }
                    tracing::debug!(flow = %name, node, "the flow runs on another node: waiting for it");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Reason::Schedule(_) | Reason::After | Reason::Event => {
                    let (cluster, flow_name) = (Arc::clone(&self.cluster), name.clone());
                    let said = word(reason);
                    let left = blocking(move || cluster.leave_pending(&flow_name, &said))
                        .await
                        .map_err(failed)?;
                    if left {
                        tracing::debug!(flow = %name, node, "the flow runs on another node: it runs once more after");
                        return Err(skipped(format!("node {node} runs it, and once more after")));
                    }
                    // Given back meanwhile: take it.
                }
            }
        }
    }

    /// A run in the cluster: the flow held, runs a node that stopped left unfinished
    /// marked interrupted, the run under a renewed lease, then one more for each trigger
    /// another node left meanwhile.
    pub async fn run(
        &self,
        shared: &Shared,
        accounts: &flows::Accounts,
        flow: &flows::Flow,
        reason: Reason,
        job: Job,
    ) -> Held {
        let lease = match self.hold(shared, flow, reason).await {
            Ok(lease) => Arc::new(lease),
            Err(outcome) => return Held::Not(outcome),
        };
        // Holding the lease, no other node runs the flow: a run still `running` is one a
        // node that stopped left.
        let state = Arc::clone(&lease.state);
        match blocking(move || state.interrupt_unfinished_runs(chrono::Utc::now())).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(flow = %flow.name, interrupted = n, "took the flow over from a node that stopped: its runs are marked interrupted and its sends in flight settled")
            }
            Err(e) => return Held::Ran(Err(e.into())),
        }
        // The run asked for is the one answered with (a person's force-run gets its own
        // report); the runs after it for triggers other nodes left are this node's own.
        let first = self.run_held(shared, accounts, flow, &lease, job).await;
        let mut left = self.give_back(shared, flow, &lease).await;
        while let Some(trigger) = left {
            tracing::debug!(flow = %flow.name, trigger, "another node left a trigger meanwhile: once more");
            let job = Job::Source(trigger_of(&trigger));
            if let Ok(run) = self.run_held(shared, accounts, flow, &lease, job).await {
                super::run_ended(shared, flow, &run);
            }
            left = self.give_back(shared, flow, &lease).await;
        }
        Held::Ran(first)
    }

    /// One run under the held lease, renewed while it goes on.
    async fn run_held(
        &self,
        shared: &Shared,
        accounts: &flows::Accounts,
        flow: &flows::Flow,
        lease: &Arc<Lease>,
        job: Job,
    ) -> anyhow::Result<engine::RunReport> {
        let (handle, stop) = engine::Stop::new();
        let keeper = tokio::spawn(keep(
            Arc::clone(&self.cluster),
            Arc::clone(lease),
            handle,
            shared.stop_runs.subscribe(),
        ));
        let ran = wiring::run_once(accounts, flow, Arc::clone(&lease.state), job, true, stop).await;
        keeper.abort();
        ran
    }

    /// Give the lease back; the trigger another node left meanwhile, if the flow runs once
    /// more for it here (not when the daemon is stopping).
    async fn give_back(
        &self,
        shared: &Shared,
        flow: &flows::Flow,
        lease: &Arc<Lease>,
    ) -> Option<String> {
        let (cluster, held) = (Arc::clone(&self.cluster), Arc::clone(lease));
        match blocking(move || cluster.release(&held)).await {
            Ok(Some(left)) if !shared.stop_runs.subscribe().is_stopped() => Some(left),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(flow = %flow.name, error = %e, "cannot give the flow's lease back: it expires by itself");
                None
            }
        }
    }
}

/// Renew the run's lease every third of `send_for`; stop the run when it is lost, or
/// when the daemon stops runs.
async fn keep(
    cluster: Arc<dyn Cluster>,
    lease: Arc<Lease>,
    handle: engine::StopHandle,
    daemon: engine::Stop,
) {
    let every = (lease.terms.send_for / 3).max(Duration::from_millis(50));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = daemon.wait() => {
                handle.stop();
                return;
            }
        }
        let (cluster, held) = (Arc::clone(&cluster), Arc::clone(&lease));
        match blocking(move || cluster.renew(&held)).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::error!(flow = %lease.flow, "another node took the flow over (this node's lease expired): the run stops, and what it still writes is refused");
                handle.stop();
                return;
            }
            Err(e) => {
                tracing::warn!(flow = %lease.flow, error = %e, "cannot renew the flow's lease; new sends stop when it lapses");
            }
        }
    }
}

/// Every second: take over the flows whose node stopped renewing its lease, and run the
/// pushed events no node is running (seen two ticks in a row: the node that took them
/// is about to run them otherwise).
pub async fn watch(
    shared: Arc<Shared>,
    node: Arc<Node>,
    mut stop: tokio::sync::broadcast::Receiver<()>,
) {
    let mut unattended_before: BTreeSet<String> = BTreeSet::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.recv() => return,
        }
        let cluster = Arc::clone(&node.cluster);
        let found =
            blocking(move || Ok((cluster.abandoned()?, cluster.unattended_queues()?))).await;
        let (abandoned, unattended) = match found {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for flows to take over");
                continue;
            }
        };
        let now = shared.snapshot();
        let p = &now.project;
        let (valid, push): (BTreeSet<String>, BTreeSet<String>) = (
            p.flows.keys().cloned().collect(),
            p.flows
                .values()
                .filter(|f| f.source.is_push() && f.schedule.is_none() && f.enabled)
                .map(|f| f.name.clone())
                .collect(),
        );
        for name in abandoned.into_iter().filter(|n| valid.contains(n)) {
            tracing::warn!(flow = %name, "the node running the flow stopped renewing its lease: taking it over");
            let _ = shared.timer.send(Command::RunNow {
                name,
                reason: Reason::Takeover,
                reply: None,
            });
        }
        let unattended: BTreeSet<String> = unattended
            .into_iter()
            .filter(|n| push.contains(n))
            .collect();
        for name in unattended.intersection(&unattended_before) {
            tracing::info!(flow = %name, "pushed events wait and no node runs them: running them");
            let _ = shared.timer.send(Command::RunNow {
                name: name.clone(),
                reason: Reason::Event,
                reply: None,
            });
        }
        unattended_before = unattended;
    }
}
