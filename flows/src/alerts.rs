//! `alerts:` — being told when a flow breaks. A flow (or every flow, from
//! `switchboard.yaml`) names the *alert flows* its alerts go to: flows whose source is
//! `connector: alerts`, so an alert reaches people through any receiver the project has
//! (a Slack/Teams/Telegram webhook through `http`, an SMS through 8x8 or Text Request)
//! with its templates, retries and history. Alerts of one kind for one flow are sent at
//! most once per `every`; the next one says how many were held back.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::diag::{Diagnostic, Pos};
use crate::yaml::{self, Node};

/// What is alerted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// A run failed as a whole (its source could not be read, its account was refused).
    RunFailed,
    /// Records of a run failed.
    RecordsFailed,
    /// The service refused the account's credentials (it turned inactive).
    AccountInactive,
    /// The flow was paused by its failing runs (`auto_pause`).
    Paused,
    /// A scheduled flow has not run for twice its interval (the watchdog).
    Overdue,
}

impl Condition {
    pub const ALL: [Condition; 5] = [
        Condition::RunFailed,
        Condition::RecordsFailed,
        Condition::AccountInactive,
        Condition::Paused,
        Condition::Overdue,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Condition::RunFailed => "run_failed",
            Condition::RecordsFailed => "records_failed",
            Condition::AccountInactive => "account_inactive",
            Condition::Paused => "paused",
            Condition::Overdue => "overdue",
        }
    }
}

/// A flow's (or the directory's) `alerts:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alerts {
    /// The alert flows, each with where it is named.
    pub to: Vec<(String, Pos)>,
    /// What is alerted (default: everything).
    pub on: Vec<Condition>,
    /// At most one alert of a kind per flow this often (default 1h).
    pub every: Duration,
    pub pos: Pos,
}

/// `alerts:` as written.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAlerts {
    /// The alert flow(s) — flows with `source: {connector: alerts}` — that carry them.
    #[allow(dead_code)]
    to: crate::OneOrMany,
    /// What to alert on: `run_failed`, `records_failed`, `account_inactive`, `paused`,
    /// `overdue` (default: all).
    #[serde(default)]
    on: Option<Vec<Condition>>,
    /// At most one alert of a kind per flow this often; the next says how many were held
    /// back (default `1h`).
    #[serde(default, deserialize_with = "de_opt_duration")]
    #[schemars(with = "Option<String>")]
    every: Option<Duration>,
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text)
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("`{text}` is not a duration (like `1h`)")))
}

/// Read `alerts:`.
pub fn parse(file: &Path, node: &Node) -> Result<Alerts, Diagnostic> {
    let raw: RawAlerts = yaml::from_node(file, node, "alerts")?;
    let to_node = node.as_mapping().and_then(|m| m.get_node("to"));
    let to: Vec<(String, Pos)> = match to_node {
        Some(n) if n.as_sequence().is_some() => n
            .as_sequence()
            .map(|list| list.iter().collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|item| {
                item.as_scalar()
                    .map(|s| (s.as_str().to_string(), Pos::of(item.span())))
            })
            .collect(),
        Some(n) => n
            .as_scalar()
            .map(|s| vec![(s.as_str().to_string(), Pos::of(n.span()))])
            .unwrap_or_default(),
        None => Vec::new(),
    };
    if to.is_empty() {
        return Err(Diagnostic::new(
            file,
            Pos::of(node.span()),
            "`alerts.to` names no alert flow",
        )
        .with_hint(
            "name a flow whose source is `{connector: alerts}`, e.g. `to: alerts-to-slack`",
        ));
    }
    let every = raw.every.unwrap_or(Duration::from_secs(3600));
    if every < Duration::from_secs(60) {
        return Err(Diagnostic::new(
            file,
            crate::Cx { file }.at(node, "every"),
            "`alerts.every` is under a minute",
        )
        .with_hint("one alert of a kind per flow at most this often, e.g. `every: 1h`"));
    }
    let mut on = raw.on.unwrap_or_else(|| Condition::ALL.to_vec());
    on.sort();
    on.dedup();
    Ok(Alerts {
        to,
        on,
        every,
        pos: Pos::of(node.span()),
    })
}
