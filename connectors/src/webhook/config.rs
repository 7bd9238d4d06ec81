//! What a flow and `accounts.yaml` say about a generic webhook source.

use flows::yaml::Node;
use flows::{Cx, Diagnostic, OneOrMany, Pos, Secret};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::card::{Card, Part};
use crate::sections;

/// `connector: webhook`.
pub const CARD: Card = Card {
    name: "webhook",
    about: "any JSON POSTed to the daemon at /hooks/<flow>",
    source: Some(Part::of::<SourceOptions>(
        "each event POSTed becomes a record, stored before the sender gets its 200",
    )),
    actions: &[],
    lookups: &[],
    account: Some(Part::of::<Account>(
        "the shared secret senders prove they know",
    )),
};

/// The largest body a webhook may accept at all (`max_body`'s ceiling).
pub const MAX_BODY_CEILING: usize = 64 * 1024 * 1024;

/// Any JSON POSTed to the daemon at `/hooks/<flow>` becomes a record, written to the
/// state before the sender gets its 200.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceOptions {
    /// A `webhook` account holding the shared secret; without one anyone who can reach
    /// the daemon can post.
    #[serde(default)]
    pub account: Option<String>,
    /// Field(s) of an event identifying it (a resent event is not handled twice);
    /// default: a hash of the whole event.
    #[serde(default)]
    pub key: Option<OneOrMany>,
    /// The largest body accepted, in bytes (1 to 67108864; default 1048576).
    #[serde(default)]
    #[schemars(extend("default" = 1048576), range(min = 1, max = 67108864))]
    pub max_body: Option<usize>,
}

/// A webhook source, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub account: Option<String>,
    pub key: Vec<String>,
    pub max_body: usize,
    pub pos: Pos,
}

pub fn source(cx: &Cx<'_>, rest: &Node, pos: Pos) -> Result<Source, Diagnostic> {
    let raw: SourceOptions = sections::options(cx, rest, "source")?;
    let max_body = raw.max_body.unwrap_or(1024 * 1024);
    if max_body == 0 || max_body > MAX_BODY_CEILING {
        return Err(cx.problem(pos, "`max_body` must be between 1 and 67108864 bytes"));
    }
    Ok(Source {
        account: raw.account,
        key: sections::key(cx, rest, raw.key)?,
        max_body,
        pos,
    })
}

/// The shared secret guarding a webhook source.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// At least 16 characters, e.g. `openssl rand -hex 24`.
    pub secret: Secret,
    /// How senders prove they know it.
    #[serde(default)]
    #[schemars(extend("default" = "token"))]
    pub signature: Signature,
}

/// `token`: `Authorization: Bearer <secret>` (or `X-Switchboard-Token: <secret>`);
/// `hmac`: `X-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Signature {
    #[default]
    Token,
    Hmac,
}

pub fn account(cx: &Cx<'_>, name: &str, rest: &Node) -> Result<Account, Vec<Diagnostic>> {
    let account: Account = sections::options(cx, rest, name).map_err(|d| vec![d])?;
    if account.secret.expose().len() < 16 {
        return Err(vec![cx
            .problem(
                cx.at(rest, "secret"),
                "a webhook `secret` needs at least 16 characters",
            )
            .with_hint(
                "generate one, e.g. `openssl rand -hex 24`, and keep it in the environment",
            )]);
    }
    Ok(account)
}

impl Account {
    pub fn secrets(&self) -> Vec<Secret> {
        vec![self.secret.clone()]
    }
}
