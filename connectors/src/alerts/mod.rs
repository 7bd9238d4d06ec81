//! Alerts as a source (`connector: alerts`): the alerts the daemon raises for the flows
//! whose `alerts.to` names this flow — a run failed, records failed, the flow was paused,
//! a scheduled flow is overdue — each a record queued in this flow's state and sent at
//! once through its receiver (a Slack/Teams/Telegram webhook through `http`, an SMS, …).
//! Fields: `flow`, `condition`, `message`, `run`, `failed`, `held_back` (alerts of that
//! kind folded into this one since the last), `at`. Nothing reaches it over HTTP.

use flows::yaml::Node;
use flows::{Cx, Diagnostic, Pos};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::card::{Card, Part};
use crate::sections;

/// `connector: alerts`.
pub const CARD: Card = Card {
    name: "alerts",
    about: "the alerts the daemon raises for flows whose `alerts.to` names this flow",
    source: Some(Part::of::<SourceOptions>("each alert (run failed, records failed, paused, overdue) is a record: flow, condition, message, run, failed, held_back, at")),
    ..Card::NOTHING
};

/// The alerts of the flows that name this flow in `alerts.to`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceOptions {}

/// An alerts source, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub pos: Pos,
}

pub fn source(cx: &Cx<'_>, rest: &Node, pos: Pos) -> Result<Source, Diagnostic> {
    let _: SourceOptions = sections::options(cx, rest, "source")?;
    Ok(Source { pos })
}

/// The fields of one alert, as its record carries them.
pub fn record(
    flow: &str,
    condition: &str,
    message: &str,
    run: Option<u64>,
    failed: u64,
    held_back: u64,
    at: &str,
) -> engine::Record {
    let mut fields = serde_json::Map::new();
    fields.insert("flow".into(), flow.into());
    fields.insert("condition".into(), condition.into());
    fields.insert("message".into(), message.into());
    fields.insert(
        "run".into(),
        run.map_or(serde_json::Value::Null, Into::into),
    );
    fields.insert("failed".into(), failed.into());
    fields.insert("held_back".into(), held_back.into());
    fields.insert("at".into(), at.into());
    engine::Record::new(format!("{flow}/{condition}/{at}"), fields)
}

/// `connector: alerts` in the registry.
pub struct AlertsConnector;

#[async_trait::async_trait]
impl crate::Connector for AlertsConnector {
    crate::described!(CARD);

    crate::source_role!(source, |_: &Source| crate::connector::SourceShape::pushed(
        None
    ));

    fn pushes(&self) -> bool {
        true
    }
}
