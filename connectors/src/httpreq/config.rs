//! What a flow and `accounts.yaml` say about the generic HTTP receiver.

use std::collections::BTreeMap;

use flows::yaml::Node;
use flows::{Cx, Diagnostic, FieldKind, FieldSpec, Pos, RateLimit, Secret};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::card::{Action, Call, Card, Part};
use crate::sections;

/// `connector: http`.
pub const CARD: Card = Card {
    name: "http",
    about: "any HTTP API: method, URL, headers and JSON body from the map",
    source: None,
    actions: &[Action {
        name: "request",
        about: "one request per record",
        calls: &[Call::mapped("{url}")],
        fields: REQUEST_FIELDS,
        options: None,
    }],
    lookups: &[],
    account: Some(Part::of::<Account>(
        "a base URL and headers (secrets) sent with every request",
    )),
};

/// A generic HTTP receiver, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receiver {
    Request,
}

pub const REQUEST_FIELDS: &[FieldSpec] = &[
    FieldSpec::optional(
        "method",
        FieldKind::OneOf(&["GET", "POST", "PUT", "PATCH", "DELETE"]),
        "the HTTP method",
    )
    .default("POST"),
    FieldSpec::required(
        "url",
        FieldKind::Text,
        "absolute, or relative to the account's base_url",
    ),
    FieldSpec::optional(
        "headers",
        FieldKind::Json,
        "a mapping of header names to templates",
    ),
    FieldSpec::optional(
        "body",
        FieldKind::Json,
        "the JSON body: a mapping or list of templates",
    ),
];

impl Receiver {
    pub fn fields(&self) -> &'static [FieldSpec] {
        match self {
            Receiver::Request => REQUEST_FIELDS,
        }
    }
}

pub fn receiver(cx: &Cx<'_>, action: &str, rest: &Node, pos: Pos) -> Result<Receiver, Diagnostic> {
    sections::no_options(cx, rest)?;
    match action {
        "request" => Ok(Receiver::Request),
        other => Err(cx.problem(pos, format!("`http` has no action `{other}`"))),
    }
}

/// For the generic HTTP receiver: an optional base URL and headers (secrets, usually)
/// sent with every request but never shown in previews or history.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// What relative `url`s in the map resolve against.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Headers sent with every request, as secrets (`Authorization: "Bearer ${TOKEN}"`).
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Calls per period shared by every flow using the account (default: off).
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

pub fn account(cx: &Cx<'_>, name: &str, rest: &Node) -> Result<Account, Vec<Diagnostic>> {
    let account: Account = sections::options(cx, rest, name).map_err(|d| vec![d])?;
    if let Some(Err(e)) = account.base_url.as_deref().map(flows::check_url) {
        return Err(vec![cx.problem(
            cx.at(rest, "base_url"),
            format!("`base_url` is not usable: {e}"),
        )]);
    }
    Ok(account)
}

impl Account {
    pub fn secrets(&self) -> Vec<Secret> {
        self.headers.values().cloned().collect()
    }
}
