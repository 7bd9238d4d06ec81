//! `switchboard.yaml` beside the flows: what applies to every flow of the directory
//! unless a flow says otherwise — today how much history is kept (`history:`). It is
//! optional; its problems are the directory's, reported with `file:line:col` like any.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::diag::{Diagnostic, Pos};
use crate::yaml::{self, Node};

/// The settings file's name, in the flows directory.
pub const SETTINGS_FILE: &str = "switchboard.yaml";

/// How much of a flow's history is kept: runs older than `keep`, and runs past the
/// newest `keep_runs`, are pruned with their records. The keys of handled records stay
/// (the promise that nothing is sent twice needs them) unless `forget_handled`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct History {
    /// Keep runs this recent (`30d`, `12w`); older ones are pruned.
    #[serde(default, deserialize_with = "de_opt_duration")]
    #[schemars(with = "Option<String>")]
    pub keep: Option<Duration>,
    /// Keep at most this many runs (the newest).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub keep_runs: Option<usize>,
    /// Forget the keys of records handled by pruned runs too: a row still in the source
    /// would then be sent again. Off by default.
    #[serde(default)]
    pub forget_handled: bool,
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map(Some).map_err(|_| {
        serde::de::Error::custom(format!(
            "`{text}` is not a duration (like `30d`, `12w` or `720h`)"
        ))
    })
}

impl History {
    /// Whether it prunes anything at all.
    pub fn bounds(&self) -> bool {
        self.keep.is_some() || self.keep_runs.is_some()
    }
}

/// What `switchboard.yaml` says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// The history every flow keeps unless it says otherwise.
    pub history: Option<History>,
    /// Where every flow's alerts go unless it says otherwise.
    pub alerts: Option<crate::Alerts>,
}

/// The keys `switchboard.yaml` takes.
const KEYS: &[&str] = &["history", "alerts"];

/// Read `history:` (a flow's, or the settings'), checking its values.
pub fn parse_history(file: &Path, node: &Node) -> Result<History, Diagnostic> {
    let history: History = yaml::from_node(file, node, "history")?;
    if history.keep_runs == Some(0) {
        return Err(Diagnostic::new(
            file,
            crate::Cx { file }.at(node, "keep_runs"),
            "`history.keep_runs` is 0; it must be at least 1 (the last run is always kept)",
        ));
    }
    if history.keep.is_some_and(|d| d < Duration::from_secs(3600)) {
        return Err(Diagnostic::new(
            file,
            crate::Cx { file }.at(node, "keep"),
            "`history.keep` is under an hour",
        )
        .with_hint("history is for looking back: keep days or weeks, e.g. `keep: 30d`"));
    }
    Ok(history)
}

/// Read the settings file's text.
pub fn parse(file: &Path, text: &str) -> Result<Settings, Vec<Diagnostic>> {
    let root = yaml::load(file, text).map_err(|d| vec![d])?;
    if root.as_mapping().is_some_and(|m| m.is_empty())
        || root.as_scalar().is_some_and(|s| s.as_str().is_empty())
    {
        return Ok(Settings::default());
    }
    let Some(mapping) = root.as_mapping() else {
        return Err(vec![Diagnostic::new(
            file,
            Pos::of(root.span()),
            "expected a mapping",
        )
        .with_hint("for example `history: {keep: 90d}`")]);
    };
    let mut problems = Vec::new();
    for key in mapping.keys() {
        if !KEYS.contains(&key.as_str()) {
            problems.push(yaml::unknown_key(
                file,
                Pos::of(key.span()),
                key.as_str(),
                SETTINGS_FILE,
                KEYS,
            ));
        }
    }
    let alerts = match mapping
        .get_node("alerts")
        .map(|n| crate::alerts::parse(file, n))
    {
        None => None,
        Some(Ok(alerts)) => Some(alerts),
        Some(Err(problem)) => {
            problems.push(problem);
            None
        }
    };
    let history = match mapping.get_node("history").map(|n| parse_history(file, n)) {
        None => None,
        Some(Ok(history)) => Some(history),
        Some(Err(problem)) => {
            problems.push(problem);
            None
        }
    };
    if problems.is_empty() {
        Ok(Settings { history, alerts })
    } else {
        Err(problems)
    }
}
