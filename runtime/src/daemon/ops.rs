//! What the daemon does when a person asks — run a flow now, replay earlier records,
//! resume a paused flow, switch a flow on or off — written once for every front-end: the JSON API and the console
//! call these and only render the answers (a status and JSON, or a page and a redirect).

use std::collections::BTreeMap;
use std::sync::Arc;

use flows::Diagnostic;
use scheduler::{Command, Outcome, Reason};
use serde::Serialize;
use tokio::sync::oneshot;

use super::Shared;

/// Why a run was not started.
#[derive(Debug)]
pub enum Refused {
    /// No flow has that name.
    Unknown,
    /// The flow's file cannot run as it stands: its problems.
    Invalid(Vec<Diagnostic>),
    /// The daemon is stopping.
    Stopping,
}

/// What a run (asked for, or started by itself) came to: the run and its failed records;
/// or why it did not run. The JSON API answers with it as it is.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct RunReply {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<engine::RunSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failures: Option<Vec<engine::RowOutcome>>,
    /// A replay found nothing to send again (no run was begun; its id is 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nothing_to_replay: Option<bool>,
    /// The flow is paused (a run that starts by itself does not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused: Option<engine::pause::Paused>,
    /// Another node of the cluster runs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elsewhere: Option<String>,
    /// Why the run could not start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RunReply {
    /// A run that ended, with its failed records.
    pub fn ran(run: engine::RunSummary, failures: Vec<engine::RowOutcome>) -> RunReply {
        RunReply {
            run: Some(run),
            failures: Some(failures),
            ..RunReply::default()
        }
    }

    /// Why the run could not start.
    pub fn error(why: impl Into<String>) -> RunReply {
        RunReply {
            error: Some(why.into()),
            ..RunReply::default()
        }
    }
}

/// A run's outcome as the timer passes it back.
pub type RunOutcome = Outcome<RunReply>;

/// A failed start, said.
pub fn not_run(why: impl Into<String>) -> RunOutcome {
    Outcome {
        success: false,
        skipped: false,
        report: RunReply::error(why),
    }
}

/// A run asked for: its outcome when it ends. Dropped, the run goes on without anyone
/// listening; its outcome is in the history.
pub type Pending = oneshot::Receiver<RunOutcome>;

/// Ask the timer for a run of `name` now, for `reason`.
pub fn run_now(shared: &Shared, name: &str, reason: Reason) -> Result<Pending, Refused> {
    let valid = shared.snapshot().project.flows.contains_key(name);
    if !valid {
        let invalid = shared.snapshot().errors.get(name).cloned();
        return Err(match invalid {
            Some(problems) => Refused::Invalid(problems),
            None => Refused::Unknown,
        });
    }
    let (reply, outcome) = oneshot::channel();
    shared
        .timer
        .send(Command::RunNow {
            name: name.to_string(),
            reason,
            reply: Some(reply),
        })
        .map_err(|_| Refused::Stopping)?;
    Ok(outcome)
}

/// Resend records of earlier runs of `name` (what `filter` says) in a run now. Each
/// request keeps its own filter, so two replays at once resend what each asked.
pub fn replay(
    shared: &Shared,
    name: &str,
    filter: engine::ReplayFilter,
) -> Result<Pending, Refused> {
    let id = shared.replays.add(filter);
    run_now(shared, name, Reason::Replay(id)).inspect_err(|_| {
        shared.replays.take(id);
    })
}

/// Why a flow could not be resumed.
#[derive(Debug)]
pub enum NotResumed {
    Unknown,
    State(engine::StateError),
}

/// Resume `name` if it is paused (and send what waited in its queue meanwhile): the
/// pause it was under, or `None` when it was not paused.
pub fn resume(shared: &Shared, name: &str) -> Result<Option<engine::pause::Paused>, NotResumed> {
    if !shared.knows(name) {
        return Err(NotResumed::Unknown);
    }
    let resumed = shared
        .store
        .flow(name)
        .and_then(|state| engine::pause::resume(&*state))
        .map_err(NotResumed::State)?;
    if resumed.is_some() {
        tracing::info!(flow = %name, "the flow is resumed");
        super::drain_queues(shared);
    }
    Ok(resumed)
}

/// Why a flow was not switched.
#[derive(Debug)]
pub enum NotSwitched {
    Unknown,
    /// Its file is invalid: it is mended first.
    Invalid,
    /// The file could not be edited (read-only, gone), in words.
    Failed(String),
}

/// Switch `name` on or off: its file's `enabled:` edited in place (the rest of the file
/// byte for byte, written whole or not at all), the directory reloaded, and — once the
/// scheduler has taken the change — done.
pub async fn set_enabled(shared: &Arc<Shared>, name: &str, on: bool) -> Result<(), NotSwitched> {
    let file = shared
        .snapshot()
        .project
        .flows
        .get(name)
        .map(|f| f.file.clone());
    let Some(file) = file else {
        return Err(if shared.knows(name) {
            NotSwitched::Invalid
        } else {
            NotSwitched::Unknown
        });
    };
    tokio::task::spawn_blocking(move || edit_enabled(&file, on))
        .await
        .map_err(|e| NotSwitched::Failed(e.to_string()))?
        .map_err(NotSwitched::Failed)?;
    tracing::info!(flow = %name, enabled = on, "switched");
    reload_now(shared).await;
    Ok(())
}

/// Reload the directory now (after a change made from a front-end), and wait until the
/// scheduler has taken it: what the caller shows next has the flow as changed.
pub async fn reload_now(shared: &Arc<Shared>) {
    let global = shared.global.clone();
    match tokio::task::spawn_blocking(move || crate::wiring::load(&global, BTreeMap::new())).await {
        Ok(fresh) => serve_now(shared, fresh).await,
        Err(e) => tracing::error!(error = %e, "reload after a change failed"),
    }
}

/// Serve `fresh`, the directory as a change made from a front-end left it, and wait
/// until the scheduler has taken it.
pub async fn serve_now(shared: &Arc<Shared>, fresh: flows::Project) {
    let applied = {
        let shared = Arc::clone(shared);
        tokio::task::spawn_blocking(move || super::reload::apply(&shared, fresh)).await
    };
    if let Err(e) = applied {
        tracing::error!(error = %e, "reload after a change failed");
    }
    if !shared.scheduler_answers().await {
        tracing::warn!("the scheduler did not answer after a change");
    }
}

/// Set `enabled:` in a flow file, keeping everything else as it is.
fn edit_enabled(file: &std::path::Path, on: bool) -> Result<(), String> {
    let linked =
        std::fs::canonicalize(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let file = linked.as_path();
    let shown = file.display();
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let edited = flows::edit::set_enabled(file, &text, on).map_err(|d| d.to_string())?;
    if edited == text {
        return Ok(());
    }
    write_atomically(file, &edited)
}

/// Replace `file` with `text` at once (a reader sees the old file or the new one, never
/// half of it), keeping its mode; a read-only file is refused.
pub(super) fn write_atomically(file: &std::path::Path, text: &str) -> Result<(), String> {
    let shown = file.display();
    let dir = file.parent().unwrap_or(std::path::Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".switchboard-edit-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| format!("cannot write beside {shown}: {e}"))?;
    std::io::Write::write_all(&mut temp, text.as_bytes())
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|e| format!("cannot write beside {shown}: {e}"))?;
    if let Ok(meta) = std::fs::metadata(file) {
        let _ = std::fs::set_permissions(temp.path(), meta.permissions());
        if meta.permissions().readonly() {
            return Err(format!("{shown} is read-only"));
        }
    }
    temp.persist(file)
        .map_err(|e| format!("cannot replace {shown}: {}", e.error))?;
    Ok(())
}
