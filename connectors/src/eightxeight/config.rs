//! What a flow and `accounts.yaml` say about 8x8 SMS.

use flows::yaml::Node;
use flows::{Cx, Diagnostic, FieldKind, FieldSpec, Pos, RateLimit, Secret};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::card::{Action, Call, Card, Part};
use crate::sections;

// The calls 8x8's code makes, each written once: the card lists them, the code fills
// them (`Call::path_with`).

/// Sends one SMS.
pub const MESSAGES: Call = Call::new(
    engine::Method::Post,
    "/api/v1/subaccounts/{subaccount_id}/messages",
);
/// Sends a batch of SMS.
pub const BATCH: Call = Call::new(
    engine::Method::Post,
    "/api/v1/subaccounts/{subaccount_id}/messages/batch",
);
/// Reads a message and its delivery status.
pub const MESSAGE: Call = Call::new(
    engine::Method::Get,
    "/api/v1/subaccounts/{subaccount_id}/messages/{umid}",
);

impl Account {
    /// The path of `call` for this sub-account (and message `umid`).
    pub fn path(&self, call: Call, umid: &str) -> String {
        call.path_with(|name| {
            Ok::<_, std::convert::Infallible>(match name {
                "umid" => umid.to_string(),
                _ => self.subaccount_id.clone(),
            })
        })
        .unwrap_or_else(|never| match never {})
    }
}

/// `connector: 8x8`.
pub const CARD: Card = Card {
    name: "8x8",
    about: "8x8 SMS: one SMS per record, and a message's delivery status",
    source: None,
    actions: &[Action {
        name: "send_sms",
        about: "send one SMS (runs of 20 or more through the batch endpoint with `batch`)",
        calls: &[
            MESSAGES,
            BATCH,
        ],
        fields: SMS_FIELDS,
        options: Some(<SendSms as JsonSchema>::json_schema),
    }],
    lookups: &[Action {
        name: "get_message",
        about: "the message whose umid is the query, with its delivery status (8x8 allows 1 such call a second per sub-account)",
        calls: &[MESSAGE],
        fields: &[],
        options: None,
    }],
    account: Some(Part::of::<Account>("an SMS sub-account and its API key (bearer)")),
};

/// `send_sms`: one SMS per record.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendSms {
    /// Send runs of 20 or more records through 8x8's batch endpoint, this many per
    /// request (1 to 10000), keeping an outcome per record. Off when absent.
    #[serde(default)]
    #[schemars(range(min = 1, max = 10000))]
    pub batch: Option<usize>,
    /// The most billed SMS parts a text may make (1 to 255; default 10).
    #[serde(default)]
    #[schemars(extend("default" = 10), range(min = 1, max = 255))]
    pub max_parts: Option<usize>,
}

/// An 8x8 receiver, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Receiver {
    SendSms(SendSms),
}

pub const SMS_FIELDS: &[FieldSpec] = &[
    FieldSpec::required(
        "destination",
        FieldKind::Phone,
        "the phone number, E.164 preferred",
    ),
    FieldSpec::required("text", FieldKind::Text, "the message"),
    FieldSpec::optional("source", FieldKind::Text, "sender ID").max_chars(16),
    FieldSpec::optional(
        "country",
        FieldKind::Text,
        "ISO 3166-1 alpha-2 of a national number",
    )
    .max_chars(2),
    FieldSpec::optional(
        "clientMessageId",
        FieldKind::Text,
        "your reference (default: flow and row)",
    )
    .max_chars(350),
    FieldSpec::optional(
        "encoding",
        FieldKind::OneOf(&["AUTO", "GSM7", "UCS2"]),
        "text encoding",
    ),
    FieldSpec::optional("scheduled", FieldKind::DateTime, "when to deliver"),
    FieldSpec::optional("expiry", FieldKind::DateTime, "do not deliver after"),
    FieldSpec::optional("dlrCallbackUrl", FieldKind::Url, "delivery-receipt webhook"),
    FieldSpec::optional(
        "track",
        FieldKind::OneOf(&["None", "Outcome"]),
        "conversion tracking",
    ),
];

impl Receiver {
    pub fn fields(&self) -> &'static [FieldSpec] {
        match self {
            Receiver::SendSms(_) => SMS_FIELDS,
        }
    }
}

pub fn receiver(cx: &Cx<'_>, action: &str, rest: &Node, pos: Pos) -> Result<Receiver, Diagnostic> {
    match action {
        "send_sms" => {
            let sms: SendSms = sections::options(cx, rest, "receiver")?;
            if sms.batch.is_some_and(|n| !(1..=10_000).contains(&n)) {
                let at = rest
                    .as_mapping()
                    .and_then(|m| m.get_node("batch"))
                    .map(|n| Pos::of(n.span()))
                    .unwrap_or(pos);
                return Err(cx.problem(
                    at,
                    "`batch` must be between 1 and 10000 (8x8's limit per batch request)",
                ));
            }
            sections::max_parts(cx, rest, pos, sms.max_parts)?;
            Ok(Receiver::SendSms(sms))
        }
        other => Err(cx.problem(pos, format!("`8x8` has no action `{other}`"))),
    }
}

/// An 8x8 look-up, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// `GET …/messages/{umid}`: a message's details and delivery status.
    Message,
}

pub fn lookup(cx: &Cx<'_>, action: &str, rest: &Node, pos: Pos) -> Result<Lookup, Diagnostic> {
    match action {
        "get_message" => {
            sections::no_options(cx, rest)?;
            Ok(Lookup::Message)
        }
        other => Err(cx.problem(pos, format!("unknown `8x8` look-up `{other}`"))),
    }
}

/// An 8x8 SMS sub-account: what a user pastes as "subaccount ID" and "API key".
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The sub-account's ID, as 8x8 Connect shows it (3 to 50 letters, digits, `-._&`).
    pub subaccount_id: String,
    /// The API key (8x8 Connect: API keys).
    pub api_key: Secret,
    /// 8x8's SMS API; regional: `https://sms.8x8.uk`, `https://sms.us.8x8.com`,
    /// `https://sms.8x8.id`.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Calls allowed per period, shared by every flow that uses the account (default:
    /// 8x8's documented 1,800 per second per sub-account).
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

fn default_base_url() -> String {
    "https://sms.8x8.com".into()
}

pub fn account(cx: &Cx<'_>, name: &str, rest: &Node) -> Result<Account, Vec<Diagnostic>> {
    let account: Account = sections::options(cx, rest, name).map_err(|d| vec![d])?;
    let mut problems = Vec::new();
    let id = &account.subaccount_id;
    let id_ok = (3..=50).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '&'));
    if !id_ok {
        problems.push(
            cx.problem(
                cx.at(rest, "subaccount_id"),
                format!("`{id}` is not an 8x8 subaccount ID"),
            )
            .with_hint("3 to 50 letters, digits, `-`, `.`, `_` or `&`, as shown in 8x8 Connect"),
        );
    }
    if account.api_key.expose().trim().is_empty() {
        problems.push(cx.problem(cx.at(rest, "api_key"), "`api_key` is empty"));
    }
    if let Err(e) = flows::check_url(&account.base_url) {
        problems.push(
            cx.problem(
                cx.at(rest, "base_url"),
                format!("`base_url` `{}` is not usable: {e}", account.base_url),
            )
            .with_hint("for example `https://sms.8x8.com` (or `https://sms.8x8.uk`, `https://sms.us.8x8.com`)"),
        );
    }
    if problems.is_empty() {
        Ok(account)
    } else {
        Err(problems)
    }
}

impl Account {
    pub fn secrets(&self) -> Vec<Secret> {
        vec![self.api_key.clone()]
    }

    /// The account's client: the API key as bearer, paced by its rate limit.
    pub fn client(&self, name: &str) -> crate::http::AccountClient {
        crate::http::AccountClient::new(
            name,
            &self.base_url,
            crate::http::Auth::Bearer(self.api_key.clone()),
            self.rate_limit.unwrap_or(super::client::DEFAULT_RATE_LIMIT),
        )
    }
}
