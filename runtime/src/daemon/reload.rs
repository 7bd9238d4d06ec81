//! Keeping the running flows in step with the directory: apply a freshly loaded
//! project (new and changed flows are (re)scheduled, deleted ones removed, invalid ones
//! keep their last good version), and a watcher that reloads within a second of a change.

use std::collections::{BTreeMap, BTreeSet};

use connectors::push::{Push, Remaining, Subscribed};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use flows::Project;
use notify::{RecursiveMode, Watcher};
use scheduler::{after_of, Command, Spec};
use tokio::sync::{broadcast, mpsc};

use super::Shared;
use crate::wiring;

/// Make `fresh` the daemon's view, keeping last good versions of flows that broke.
pub fn apply(shared: &Shared, fresh: Project) {
    let _one_at_a_time = shared
        .reloading
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let served = shared.snapshot();
    let mut current = served.project.clone();
    let mut errors = served.errors.clone();
    // Told to the timer once the new project is served: a run it starts finds its flow.
    let mut timer = Vec::new();
    let present: BTreeSet<String> = fresh
        .flows
        .keys()
        .chain(fresh.invalid.keys())
        .cloned()
        .collect();
    // Accounts: take every valid one from the file; keep the last good version of one
    // that broke, so the flows using it go on.
    let mut accounts = fresh.accounts.clone();
    for (name, old) in &current.accounts.accounts {
        if fresh.accounts.invalid.contains_key(name) {
            accounts.accounts.insert(name.clone(), old.clone());
        }
    }
    let before: BTreeMap<String, u64> = current
        .accounts
        .accounts
        .iter()
        .map(|(name, a)| (name.clone(), a.fingerprint))
        .collect();
    let account_changed =
        |name: &str| before.get(name).copied() != accounts.get(name).map(|a| a.fingerprint);

    let mut subscribe = Vec::new();
    // Off means off: a switched-off push flow's hooks are unregistered.
    let mut switched_off = Vec::new();
    for (name, flow) in &fresh.flows {
        let changed = current
            .flows
            .get(name)
            .map(|old| old.fingerprint != flow.fingerprint)
            .unwrap_or(true);
        // A push source follows its account too: a new token, a new base URL.
        let account_moved = flow
            .source
            .account
            .as_ref()
            .is_some_and(|(account, _)| account_changed(account));
        if changed {
            tracing::info!(flow = %name, file = %flow.file.display(), "flow loaded");
        }
        if (changed || account_moved) && flow.enabled {
            subscribe.push(flow.clone());
        } else if changed && !flow.enabled && flow.source.is_push() {
            switched_off.push(flow.clone());
        }
        current.flows.insert(name.clone(), flow.clone());
        errors.remove(name);
        timer.push(Command::Set {
            name: name.clone(),
            spec: Spec::of(flow),
            after: after_of(flow),
            priority: flow.priority,
        });
    }
    for (name, problems) in &fresh.invalid {
        // Said when they change, not on every reload.
        if errors.get(name) != Some(problems) {
            let keeps = current.flows.contains_key(name);
            for problem in problems {
                tracing::warn!(flow = %name, keeps_last_good = keeps, "{problem}");
            }
        }
        errors.insert(name.clone(), problems.clone());
    }
    for warning in fresh
        .warnings
        .iter()
        .filter(|w| !current.warnings.contains(w))
    {
        tracing::warn!("{warning}");
    }
    current.warnings = fresh.warnings.clone();
    let gone: Vec<String> = current
        .flows
        .keys()
        .filter(|n| !present.contains(*n))
        .cloned()
        .collect();
    let mut unsubscribe = Vec::new();
    for name in gone {
        tracing::info!(flow = %name, "flow file removed; the flow stops");
        if let Some(flow) = current.flows.remove(&name) {
            unsubscribe.push(flow);
        }
        timer.push(Command::Remove { name });
    }
    errors.retain(|name, _| present.contains(name));
    // Subscriptions use the old accounts to stop, the new ones to start.
    for flow in &unsubscribe {
        stop_pushing(shared, &current, flow);
    }
    current.accounts = accounts;
    current.dir = fresh.dir.clone();
    // The settings: the new ones, unless switchboard.yaml broke (its last good stay).
    let settings_broke = fresh.general.iter().any(|p| {
        p.file
            .file_name()
            .is_some_and(|f| f == flows::SETTINGS_FILE)
    });
    if !settings_broke {
        current.settings = fresh.settings.clone();
    }
    for flow in &subscribe {
        start_pushing(shared, &current.accounts, flow);
    }
    for flow in &switched_off {
        stop_pushing(shared, &current, flow);
    }
    for problem in fresh.general.iter().filter(|p| !served.general.contains(p)) {
        tracing::warn!("{problem}");
    }
    shared.swap(super::Snapshot {
        project: current,
        errors,
        general: fresh.general,
    });
    for command in timer {
        let _ = shared.timer.send(command);
    }
}

/// The URL a service should push a flow's events to: the flow's `public_url`, else the
/// daemon's own `/hooks/<flow>` (unknown until the server listens).
fn hook_url(shared: &Shared, push: &dyn Push, flow: &flows::Flow) -> Option<String> {
    match (push.public_url(), shared.hooks_base.get()) {
        (Some(url), _) => Some(url.to_string()),
        (None, Some(base)) => Some(format!("{base}/{}", flow.name)),
        (None, None) => None,
    }
}

/// Tell a push flow's service where to push, in the background; what it asks the flow
/// to remember (hooks registered) is kept in the flow's state.
fn start_pushing(shared: &Shared, accounts: &flows::Accounts, flow: &flows::Flow) {
    let Some(push) = connectors::push::push_of(flow, accounts) else {
        return;
    };
    let Some(url) = hook_url(shared, push.as_ref(), flow) else {
        return;
    };
    let Ok(state) = shared.store.flow(&flow.name) else {
        return;
    };
    let name = flow.name.clone();
    tokio::spawn(async move {
        let remembered = state.load_meta(push.memory_key()).ok().flatten();
        let out = push.subscribe(&url, remembered).await;
        report(&name, &*state, push.memory_key(), out);
    });
}

/// Tell a removed push flow's service to stop pushing to it; flows of the same channel
/// that remain keep what they take.
fn stop_pushing(shared: &Shared, current: &Project, flow: &flows::Flow) {
    let Some(push) = connectors::push::push_of(flow, &current.accounts) else {
        return;
    };
    let Some(url) = hook_url(shared, push.as_ref(), flow) else {
        return;
    };
    let Ok(state) = shared.store.flow(&flow.name) else {
        return;
    };
    let channel = push.channel();
    let remaining: Vec<(Arc<dyn Push>, String)> = match &channel {
        None => Vec::new(),
        Some(channel) => current
            .flows
            .values()
            .filter(|other| other.enabled && other.name != flow.name)
            .filter_map(|other| {
                let other_push = connectors::push::push_of(other, &current.accounts)?;
                if other_push.channel().as_ref() != Some(channel) {
                    return None;
                }
                let other_url = hook_url(shared, other_push.as_ref(), other)?;
                Some((other_push, other_url))
            })
            .collect(),
    };
    let name = flow.name.clone();
    tokio::spawn(async move {
        let remaining: Vec<Remaining<'_>> = remaining
            .iter()
            .map(|(push, url)| Remaining {
                push: push.as_ref(),
                url: url.clone(),
            })
            .collect();
        let remembered = state.load_meta(push.memory_key()).ok().flatten();
        let out = push.unsubscribe(&url, &remaining, remembered).await;
        report(&name, &*state, push.memory_key(), out);
    });
}

/// Log what a subscription call did and keep what it asks to remember.
fn report(name: &str, state: &dyn engine::FlowState, key: &str, out: Subscribed) {
    for done in &out.done {
        tracing::info!(flow = %name, "{done}");
    }
    for failed in &out.failed {
        tracing::error!(flow = %name, "{failed}");
    }
    if let Some(remember) = out.remember {
        if let Err(e) = state.save_meta(key, &remember) {
            tracing::error!(flow = %name, "cannot remember the service's subscriptions: {e}");
        }
    }
}

/// Watch the flows directory and reload on changes to `*.yaml` files.
/// The returned watcher stops when dropped.
pub fn watch(
    shared: Arc<Shared>,
    mut stop: broadcast::Receiver<()>,
) -> Option<Box<dyn Watcher + Send>> {
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let on_event = move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            if event.paths.iter().any(|p| is_flow_file(p)) {
                let _ = tx.send(());
            }
        }
    };
    let dir = shared.global.flows.clone();
    let watcher: Option<Box<dyn Watcher + Send>> = match notify::recommended_watcher(
        on_event.clone(),
    ) {
        Ok(mut w) => match w.watch(&dir, RecursiveMode::NonRecursive) {
            Ok(()) => Some(Box::new(w)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the flows directory; polling it every 2s instead");
                poll_watcher(&dir, on_event)
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "no file-system notifications; polling the flows directory every 2s instead");
            poll_watcher(&dir, on_event)
        }
    };
    // SIGHUP reloads, as daemons do (its default would end the process without a word).
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    tokio::spawn(async move {
        loop {
            let hangup = async {
                match hangups.as_mut() {
                    Some(hangups) => hangups.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = stop.recv() => return,
                _ = hangup => {
                    tracing::info!("SIGHUP: reloading the flows directory and the accounts file");
                }
                event = rx.recv() => {
                    if event.is_none() { return; }
                    // Editors write in bursts: settle, then reload once.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    while rx.try_recv().is_ok() {}
                }
            }
            let global = shared.global.clone();
            let fresh =
                tokio::task::spawn_blocking(move || wiring::load(&global, BTreeMap::new())).await;
            if let Ok(fresh) = fresh {
                apply(&shared, fresh);
            }
        }
    });
    watcher
}

fn poll_watcher(
    dir: &Path,
    on_event: impl notify::EventHandler,
) -> Option<Box<dyn Watcher + Send>> {
    let config = notify::Config::default().with_poll_interval(Duration::from_secs(2));
    let mut watcher = notify::PollWatcher::new(on_event, config).ok()?;
    watcher.watch(dir, RecursiveMode::NonRecursive).ok()?;
    Some(Box::new(watcher))
}

fn is_flow_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml") | Some("yml")
    )
}
