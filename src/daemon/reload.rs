//! Keeping the running flows in step with the directory: apply a freshly loaded
//! project (new and changed flows are (re)scheduled, deleted ones removed, invalid ones
//! keep their last good version), and a watcher that reloads within a second of a change.

use std::collections::{BTreeMap, BTreeSet};
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
    let Ok(mut current) = shared.project.write() else {
        return;
    };
    let Ok(mut errors) = shared.errors.write() else {
        return;
    };
    let present: BTreeSet<String> = fresh
        .flows
        .keys()
        .chain(fresh.invalid.keys())
        .cloned()
        .collect();

    for (name, flow) in &fresh.flows {
        let changed = current
            .flows
            .get(name)
            .map(|old| format!("{old:?}") != format!("{flow:?}"))
            .unwrap_or(true);
        if changed {
            tracing::info!(flow = %name, file = %flow.file.display(), "flow loaded");
            cinnox_subscriptions(shared, &fresh.accounts, flow, None);
            textrequest_hooks(shared, &fresh.accounts, flow, true);
        }
        current.flows.insert(name.clone(), flow.clone());
        errors.remove(name);
        let _ = shared.timer.send(Command::Set {
            name: name.clone(),
            spec: Spec::of(flow),
            after: after_of(flow),
        });
    }
    for (name, problems) in &fresh.invalid {
        let keeps = current.flows.contains_key(name);
        for problem in problems {
            tracing::warn!(flow = %name, keeps_last_good = keeps, "{problem}");
        }
        errors.insert(name.clone(), problems.clone());
    }
    let gone: Vec<String> = current
        .flows
        .keys()
        .filter(|n| !present.contains(*n))
        .cloned()
        .collect();
    for name in gone {
        tracing::info!(flow = %name, "flow file removed; the flow stops");
        if let Some(flow) = current.flows.remove(&name) {
            cinnox_subscriptions(shared, &current.accounts, &flow, Some(&current.flows));
            textrequest_hooks(shared, &current.accounts, &flow, false);
        }
        let _ = shared.timer.send(Command::Remove { name });
    }
    errors.retain(|name, _| present.contains(name));

    // Accounts: take every valid one from the file; keep the last good version of one
    // that broke, so the flows using it go on.
    let mut accounts = fresh.accounts.clone();
    for (name, old) in &current.accounts.accounts {
        if fresh.accounts.invalid.contains_key(name) {
            accounts.accounts.insert(name.clone(), old.clone());
        }
    }
    current.accounts = accounts;
    current.dir = fresh.dir.clone();
    if let Ok(mut general) = shared.general.write() {
        *general = fresh.general;
    }
}

/// The URL a service should push a flow's events to: its `public_url`, else the daemon's
/// own `/hooks/<flow>` (unknown until the server listens).
fn hook_url(shared: &Shared, public_url: Option<&String>, flow: &flows::Flow) -> Option<String> {
    match (public_url, shared.hooks_base.get()) {
        (Some(url), _) => Some(url.clone()),
        (None, Some(base)) => Some(format!("{base}/{}", flow.name)),
        (None, None) => None,
    }
}

/// Register the CINNOX event subscriptions of a CINNOX-triggered flow, in the background;
/// a failure is logged (and `accounts check` shows a bad token). With `removed_from`, the
/// flow is gone: CINNOX keeps one URL per event family and app, so a family another flow
/// on the account still takes is handed to that flow's URL (the daemon gives events to
/// every CINNOX flow of the account, whichever URL they arrive at); the others are
/// switched off.
fn cinnox_subscriptions(
    shared: &Shared,
    accounts: &flows::Accounts,
    flow: &flows::Flow,
    removed_from: Option<&BTreeMap<String, flows::Flow>>,
) {
    let flows::SourceConfig::Cinnox(source) = &flow.source else {
        return;
    };
    let Some(flows::AccountKind::Cinnox(account)) =
        accounts.get(&source.account).map(|a| a.kind.clone())
    else {
        return;
    };
    let Some(url) = hook_url(shared, source.public_url.as_ref(), flow) else {
        return;
    };
    let mut families: Vec<&'static str> = source
        .events
        .iter()
        .map(|e| connectors::cinnox::family_of(e))
        .collect();
    families.sort();
    families.dedup();
    // Each family's URL, and whether it stays on.
    let plan: Vec<(&'static str, String, bool)> = families
        .into_iter()
        .map(|family| {
            let Some(remaining) = removed_from else {
                return (family, url.clone(), true);
            };
            let heir = remaining.values().find_map(|other| match &other.source {
                flows::SourceConfig::Cinnox(s)
                    if s.account == source.account
                        && s.events
                            .iter()
                            .any(|e| connectors::cinnox::family_of(e) == family) =>
                {
                    hook_url(shared, s.public_url.as_ref(), other)
                }
                _ => None,
            });
            match heir {
                Some(heir) => (family, heir, true),
                None => (family, url.clone(), false),
            }
        })
        .collect();
    let name = flow.name.clone();
    tokio::spawn(async move {
        for (family, url, enabled) in plan {
            match connectors::cinnox::subscribe(&account, family, &url, enabled).await {
                Ok(()) => {
                    tracing::info!(flow = %name, family, %url, enabled, "CINNOX event subscription updated")
                }
                Err(e) => {
                    tracing::error!(flow = %name, family, "cannot update the CINNOX event subscription: {e}")
                }
            }
        }
    });
}

/// Where the flow's state keeps the Text Request hooks registered for it.
const TEXTREQUEST_HOOKS: &str = "textrequest_hooks";

/// Register the Text Request hooks a flow needs (one per event) and delete the ones it
/// no longer needs — all of them when the flow is removed. The registered hooks are kept
/// in the flow's state, so a restart does not register duplicates.
fn textrequest_hooks(
    shared: &Shared,
    accounts: &flows::Accounts,
    flow: &flows::Flow,
    enabled: bool,
) {
    use connectors::textrequest::trigger::{self, Hook};
    let flows::SourceConfig::TextRequest(source) = &flow.source else {
        return;
    };
    let Some(flows::AccountKind::TextRequest(account)) =
        accounts.get(&source.account).map(|a| a.kind.clone())
    else {
        return;
    };
    let Some(url) = hook_url(shared, source.public_url.as_ref(), flow) else {
        return;
    };
    let wanted: Vec<(u64, String, String)> = if enabled {
        source
            .events
            .iter()
            .map(|e| (source.dashboard_id, e.clone(), trigger::target_url(&url, e)))
            .collect()
    } else {
        Vec::new()
    };
    let Ok(state) = shared.store.flow(&flow.name) else {
        return;
    };
    let name = flow.name.clone();
    tokio::spawn(async move {
        let registered: Vec<Hook> = engine::load_meta(&*state, TEXTREQUEST_HOOKS)
            .ok()
            .flatten()
            .unwrap_or_default();
        let mut kept = Vec::new();
        for hook in registered {
            let still = wanted
                .iter()
                .any(|(d, e, u)| *d == hook.dashboard_id && *e == hook.event && *u == hook.url);
            if still {
                kept.push(hook);
                continue;
            }
            match trigger::unsubscribe(&account, &hook).await {
                Ok(()) => {
                    tracing::info!(flow = %name, hook = hook.id, event = %hook.event, "Text Request hook deleted")
                }
                Err(e) => {
                    tracing::error!(flow = %name, hook = hook.id, "cannot delete the Text Request hook: {e}");
                    kept.push(hook);
                }
            }
        }
        for (dashboard, event, url) in &wanted {
            if kept
                .iter()
                .any(|h| h.dashboard_id == *dashboard && &h.event == event && &h.url == url)
            {
                continue;
            }
            match trigger::subscribe(&account, *dashboard, event, url).await {
                Ok(hook) => {
                    tracing::info!(flow = %name, hook = hook.id, %event, %url, "Text Request hook registered");
                    kept.push(hook);
                }
                Err(e) => {
                    tracing::error!(flow = %name, %event, "cannot register the Text Request hook: {e}")
                }
            }
        }
        if let Err(e) = engine::save_meta(&*state, TEXTREQUEST_HOOKS, &kept) {
            tracing::error!(flow = %name, "cannot remember the Text Request hooks: {e}");
        }
    });
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
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.recv() => return,
                event = rx.recv() => {
                    if event.is_none() { return; }
                    // Editors write in bursts: settle, then reload once.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    while rx.try_recv().is_ok() {}
                    let global = shared.global.clone();
                    let fresh = tokio::task::spawn_blocking(move || wiring::load(&global, BTreeMap::new())).await;
                    if let Ok(fresh) = fresh {
                        apply(&shared, fresh);
                    }
                }
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
