//! What a flow and `accounts.yaml` say about Aranda ASMS.

use flows::yaml::Node;
use flows::{Cx, Diagnostic, FieldKind, FieldSpec, Pos, RateLimit, Secret};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::catalogue::card::{Action, Call, Card, Part};
use crate::sections;

/// `connector: aranda`.
pub const CARD: Card = Card {
    name: "aranda",
    about: "Aranda Service Management Suite: cases (tickets) and their notes",
    source: None,
    actions: &[
        Action {
            name: "create_case",
            about: "open a case",
            calls: &[Call::new("POST", "/case")],
            fields: CREATE_FIELDS,
            options: None,
        },
        Action {
            name: "update_case",
            about: "change a case",
            calls: &[Call::new("PUT", "/case/{ticketId}")],
            fields: UPDATE_FIELDS,
            options: None,
        },
        Action {
            name: "add_note",
            about: "add a note to a case",
            calls: &[Call::new("POST", "/case/{ticketId}/note?message={message}")],
            fields: NOTE_FIELDS,
            options: None,
        },
    ],
    lookups: &[],
    account: Some(Part {
        about: "an integration token (header `TokenAsms`) and the ASMS host (`UrlAsms`)",
        options: <Account as JsonSchema>::json_schema,
        calls: &[],
    }),
};

/// An Aranda receiver, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receiver {
    CreateCase,
    UpdateCase,
    AddNote,
}

/// Aranda's optional ids, shared by create and update (integers in its swagger).
const IDS: [FieldSpec; 14] = [
    FieldSpec::optional("stateId", FieldKind::Integer, "status id"),
    FieldSpec::optional("reasonId", FieldKind::Integer, "reason id"),
    FieldSpec::optional("groupId", FieldKind::Integer, "group id"),
    FieldSpec::optional("responsibleId", FieldKind::Integer, "responsible id"),
    FieldSpec::optional("applicantId", FieldKind::Integer, "applicant id"),
    FieldSpec::optional("customerId", FieldKind::Integer, "client id"),
    FieldSpec::optional("companyId", FieldKind::Integer, "company id"),
    FieldSpec::optional("registryTypeId", FieldKind::Integer, "registry type id"),
    FieldSpec::optional("ciId", FieldKind::Integer, "CI id"),
    FieldSpec::optional("urgencyId", FieldKind::Integer, "urgency id"),
    FieldSpec::optional("impactId", FieldKind::Integer, "impact id"),
    FieldSpec::optional("providerId", FieldKind::Integer, "provider id"),
    FieldSpec::optional("unitId", FieldKind::Integer, "unit id"),
    FieldSpec::optional(
        "additionalFields",
        FieldKind::Json,
        "[{fieldId, values: [..]}]",
    ),
];

pub const CREATE_FIELDS: &[FieldSpec] = &sections::concat::<6, 14, 20>(
    [
        FieldSpec::required("itemType", FieldKind::Integer, "case type id"),
        FieldSpec::required("projectId", FieldKind::Integer, "project id"),
        FieldSpec::required("serviceId", FieldKind::Integer, "service id"),
        FieldSpec::required("categoryId", FieldKind::Integer, "category id"),
        FieldSpec::required("subject", FieldKind::Text, "subject"),
        FieldSpec::optional("description", FieldKind::Text, "detailed description"),
    ],
    IDS,
);

pub const UPDATE_FIELDS: &[FieldSpec] = &sections::concat::<6, 14, 20>(
    [
        FieldSpec::required(
            "ticketId",
            FieldKind::Text,
            "the case code (goes in the URL path)",
        ),
        FieldSpec::optional("serviceId", FieldKind::Integer, "service id"),
        FieldSpec::optional("categoryId", FieldKind::Integer, "category id"),
        FieldSpec::optional("subject", FieldKind::Text, "subject"),
        FieldSpec::optional("description", FieldKind::Text, "detailed description"),
        FieldSpec::optional("commentary", FieldKind::Text, "a comment on the change"),
    ],
    IDS,
);

pub const NOTE_FIELDS: &[FieldSpec] = &[
    FieldSpec::required(
        "ticketId",
        FieldKind::Text,
        "the case code (goes in the URL path)",
    ),
    FieldSpec::required("message", FieldKind::Text, "the note").max_chars(254),
];

impl Receiver {
    pub fn fields(&self) -> &'static [FieldSpec] {
        match self {
            Receiver::CreateCase => CREATE_FIELDS,
            Receiver::UpdateCase => UPDATE_FIELDS,
            Receiver::AddNote => NOTE_FIELDS,
        }
    }
}

pub fn receiver(cx: &Cx<'_>, action: &str, rest: &Node, pos: Pos) -> Result<Receiver, Diagnostic> {
    sections::no_options(cx, rest)?;
    match action {
        "create_case" => Ok(Receiver::CreateCase),
        "update_case" => Ok(Receiver::UpdateCase),
        "add_note" => Ok(Receiver::AddNote),
        other => Err(cx.problem(pos, format!("`aranda` has no action `{other}`"))),
    }
}

/// An Aranda ASMS integration: the token (header `TokenAsms`) and the customer's own
/// ASMS host (header `UrlAsms`).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The integration token (ASMS: the integration's settings).
    pub api_key: Secret,
    /// The customer's own ASMS address.
    pub instance_url: String,
    /// Aranda's adapter.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Calls per period shared by every flow using the account (default: off).
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

fn default_base_url() -> String {
    "https://automate.arandasoft.com/asmsadapter/api/asms".into()
}

pub fn account(cx: &Cx<'_>, name: &str, rest: &Node) -> Result<Account, Vec<Diagnostic>> {
    let account: Account = sections::options(cx, rest, name).map_err(|d| vec![d])?;
    sections::url(
        cx,
        rest,
        "instance_url",
        &account.instance_url,
        "the customer's ASMS address",
    )?;
    sections::url(
        cx,
        rest,
        "base_url",
        &account.base_url,
        "Aranda's adapter, by default https://automate.arandasoft.com/asmsadapter/api/asms",
    )?;
    Ok(account)
}

impl Account {
    pub fn secrets(&self) -> Vec<Secret> {
        vec![self.api_key.clone()]
    }

    /// The account's client: `TokenAsms` and `UrlAsms`, paced by its rate limit.
    pub fn client(&self, name: &str) -> crate::http::AccountClient {
        crate::http::AccountClient::new(
            name,
            &self.base_url,
            crate::http::Auth::Header("TokenAsms", self.api_key.clone()),
            self.rate_limit.unwrap_or(RateLimit::Off),
        )
        .with_header("UrlAsms", self.instance_url.clone())
    }
}
