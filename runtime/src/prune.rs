//! Bounded history: which runs each flow keeps (its `history:`, else the one in
//! `switchboard.yaml`, else all) and the pruning both `switchboard prune` and the
//! daemon's background pass do. The keys of handled records are kept unless a flow says
//! `forget_handled`, so pruning never makes a row new again.

use chrono::{DateTime, Utc};
use engine::{Pruned, Retention, Store};
use flows::{Flow, History, Project};
use serde::Serialize;

/// What pruning did (or would do) to one flow.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FlowPruned {
    pub flow: String,
    /// What the flow keeps, in words (`30d, 1000 runs`); `None`: everything.
    pub keeps: Option<String>,
    #[serde(flatten)]
    pub pruned: Pruned,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The history rule of `flow` in `project`: its own, else the directory's.
pub fn history<'p>(project: &'p Project, flow: &'p Flow) -> Option<&'p History> {
    flow.history
        .as_ref()
        .or(project.settings.history.as_ref())
        .filter(|h| h.bounds())
}

/// The runs a history rule keeps, as of `now`.
pub fn retention(history: &History, now: DateTime<Utc>) -> Retention {
    Retention {
        before: history
            .keep
            .and_then(|keep| chrono::Duration::from_std(keep).ok())
            .and_then(|keep| now.checked_sub_signed(keep)),
        keep_runs: history.keep_runs,
        forget_handled: history.forget_handled,
    }
}

fn words(history: &History) -> String {
    let mut parts = Vec::new();
    if let Some(keep) = history.keep {
        parts.push(humantime::format_duration(keep).to_string());
    }
    if let Some(runs) = history.keep_runs {
        parts.push(format!("{runs} runs"));
    }
    if history.forget_handled {
        parts.push("handled keys forgotten".into());
    }
    parts.join(", ")
}

/// Each valid flow of `project` (or only `only`) with its history rule: what
/// [`prune_planned`] works through, taken so that no lock on the project is held while
/// the store prunes.
pub fn plan(project: &Project, only: Option<&str>) -> Vec<(String, Option<History>)> {
    project
        .flows
        .values()
        .filter(|flow| only.is_none_or(|name| flow.name == name))
        .map(|flow| (flow.name.clone(), history(project, flow).cloned()))
        .collect()
}

/// Prune every valid flow of `project` (or only `only`) by its rule.
pub fn prune(
    project: &Project,
    store: &dyn Store,
    only: Option<&str>,
    dry_run: bool,
    now: DateTime<Utc>,
) -> Vec<FlowPruned> {
    prune_planned(plan(project, only), store, dry_run, now)
}

/// Prune each planned flow by its rule.
pub fn prune_planned(
    plan: Vec<(String, Option<History>)>,
    store: &dyn Store,
    dry_run: bool,
    now: DateTime<Utc>,
) -> Vec<FlowPruned> {
    plan.into_iter()
        .map(|(flow, rule)| {
            let Some(rule) = rule else {
                return FlowPruned {
                    flow,
                    keeps: None,
                    pruned: Pruned::default(),
                    error: None,
                };
            };
            let result = store
                .flow(&flow)
                .and_then(|state| state.prune(&retention(&rule, now), dry_run));
            let (pruned, error) = match result {
                Ok(pruned) => (pruned, None),
                Err(e) => (Pruned::default(), Some(e.to_string())),
            };
            FlowPruned {
                flow,
                keeps: Some(words(&rule)),
                pruned,
                error,
            }
        })
        .collect()
}

/// One flow's result as a line for people.
pub fn line(result: &FlowPruned, dry_run: bool) -> String {
    let Some(keeps) = &result.keeps else {
        return format!(
            "{}: keeps all its history (no `history:` in the flow or switchboard.yaml)",
            result.flow
        );
    };
    if let Some(error) = &result.error {
        return format!("{}: cannot prune: {error}", result.flow);
    }
    let p = &result.pruned;
    let verb = if dry_run { "would drop" } else { "dropped" };
    let keys = if p.keys > 0 {
        format!(" and {} handled key(s)", p.keys)
    } else {
        String::new()
    };
    format!(
        "{}: keeps {keeps}; {verb} {} run(s) with {} record(s){keys}",
        result.flow, p.runs, p.records
    )
}
