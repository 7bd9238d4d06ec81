//! What a flow and `accounts.yaml` say about Aranda ASMS.

use flows::yaml::Node;
use flows::{Backlog, Cx, Diagnostic, FieldKind, FieldSpec, Pos, RateLimit, Secret};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::card::{Action, Call, Card, Part};
use crate::sections;

// The calls Aranda's code makes, each written once: the card lists them, the code fills
// them (`Call::path_with`).

/// Searches cases.
pub const CASE_LIST: Call = Call::new(engine::Method::Post, "/case/list");
/// Opens a case.
pub const NEW_CASE: Call = Call::new(engine::Method::Post, "/case");
/// Changes a case.
pub const UPDATE_CASE: Call = Call::new(engine::Method::Put, "/case/{ticketId}");
/// Adds a note to a case.
pub const NOTE: Call = Call::new(
    engine::Method::Post,
    "/case/{ticketId}/note?message={message}",
);
/// Attaches a file (the case in the `ticketId` header).
pub const ATTACHMENT: Call = Call::new(engine::Method::Post, "/attachment/file");
/// Tries the account (`accounts check`).
pub const TEST_CONNECTION: Call = Call::new(engine::Method::Get, "/connection");
/// Reads a case.
pub const GET_CASE: Call = Call::new(engine::Method::Get, "/case/{ticketId}");

/// The path of `call` for case `ticket` (and a note's `message`).
pub fn path(call: Call, ticket: &str, message: &str) -> String {
    call.path_with(|name| {
        Ok::<_, std::convert::Infallible>(match name {
            "message" => message.to_string(),
            _ => ticket.to_string(),
        })
    })
    .unwrap_or_else(|never| match never {})
}

/// `connector: aranda`.
pub const CARD: Card = Card {
    name: "aranda",
    about: "Aranda Service Management Suite: cases (tickets), their notes and attachments",
    source: Some(
        Part::of::<SourceOptions>(
            "cases matching a search that are new or changed since the last run",
        )
        .calling(&[CASE_LIST]),
    ),
    actions: &[
        Action {
            name: "create_case",
            about: "open a case",
            calls: &[NEW_CASE],
            fields: CREATE_FIELDS,
            options: None,
        },
        Action {
            name: "update_case",
            about: "change a case",
            calls: &[UPDATE_CASE],
            fields: UPDATE_FIELDS,
            options: None,
        },
        Action {
            name: "add_note",
            about: "add a note to a case",
            calls: &[NOTE],
            fields: NOTE_FIELDS,
            options: None,
        },
        Action {
            name: "attach_file",
            about:
                "attach a file to a case (from a path the record gives, or its content in base64)",
            calls: &[ATTACHMENT],
            fields: ATTACH_FIELDS,
            options: None,
        },
    ],
    lookups: &[
        Action {
            name: "get_case",
            about: "the case whose code is the query",
            calls: &[GET_CASE],
            fields: &[],
            options: None,
        },
        Action {
            name: "search_cases",
            about: "the cases whose `field` matches the query (ASMS returns the first 20)",
            calls: &[CASE_LIST],
            fields: &[],
            options: Some(<LookupOptions as JsonSchema>::json_schema),
        },
    ],
    account: Some(
        Part::of::<Account>(
            "an integration token (header `TokenAsms`) and the ASMS host (`UrlAsms`)",
        )
        .calling(&[TEST_CONNECTION.noted("`accounts check`")]),
    ),
};

/// An Aranda receiver, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receiver {
    CreateCase,
    UpdateCase,
    AddNote,
    AttachFile,
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

pub const ATTACH_FIELDS: &[FieldSpec] = &[
    FieldSpec::required(
        "ticketId",
        FieldKind::Text,
        "the case code (goes in the `ticketId` header)",
    ),
    FieldSpec::required(
        "fileName",
        FieldKind::Text,
        "the file's name as the case shows it, e.g. Vacation_Approval_Form.docx",
    ),
    FieldSpec::optional(
        "path",
        FieldKind::Text,
        "a file to read and attach (give `path` or `content`)",
    ),
    FieldSpec::optional(
        "content",
        FieldKind::Text,
        "the file's bytes in base64 (give `path` or `content`)",
    ),
];

impl Receiver {
    pub fn fields(&self) -> &'static [FieldSpec] {
        match self {
            Receiver::CreateCase => CREATE_FIELDS,
            Receiver::UpdateCase => UPDATE_FIELDS,
            Receiver::AddNote => NOTE_FIELDS,
            Receiver::AttachFile => ATTACH_FIELDS,
        }
    }
}

/// Cases matching a search, new or changed since the last run: each case is a record
/// whose key is its id and a digest of what it holds, so a case that changes (its state,
/// its responsible, …) is new again.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceOptions {
    /// An `aranda` account.
    pub account: String,
    /// The search: every filter must hold (`logic: And`) or one of them (`Or`).
    pub filters: Vec<Filter>,
    #[serde(default)]
    pub logic: Logic,
    /// First run: send the cases already matching (`send`) or only remember them (`skip`).
    #[serde(default)]
    #[schemars(extend("default" = "skip"))]
    pub backlog: Backlog,
}

/// One search criterion.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub field: SearchField,
    #[serde(default)]
    pub operator: SearchOperator,
    pub value: String,
}

/// How filters combine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
pub enum Logic {
    #[default]
    And,
    Or,
}

/// An Aranda source, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub account: String,
    pub filters: Vec<Filter>,
    pub logic: Logic,
    pub backlog: Backlog,
    pub pos: Pos,
}

pub fn source(cx: &Cx<'_>, rest: &Node, pos: Pos) -> Result<Source, Diagnostic> {
    let raw: SourceOptions = sections::options(cx, rest, "source")?;
    if raw.filters.is_empty() {
        return Err(cx
            .problem(pos, "`filters` is empty: ASMS searches need at least one")
            .with_hint("for example `filters: [{field: StateName, value: Solved}]`"));
    }
    Ok(Source {
        account: raw.account,
        filters: raw.filters,
        logic: raw.logic,
        backlog: raw.backlog,
        pos,
    })
}

/// `search_cases`' options: which case field the query is compared with, and how.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupOptions {
    /// The case field compared with the query, as ASMS names it (`StateName`,
    /// `ApplicantName`, `Subject`, `CustomerId`, `OpenedDate`, …).
    pub field: SearchField,
    /// How it is compared (default `EqualTo`).
    #[serde(default)]
    pub operator: SearchOperator,
}

/// The case fields ASMS searches by (its swagger's list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
pub enum SearchField {
    Commentary,
    Description,
    Subject,
    ApplicantName,
    AuthorName,
    CategoryName,
    CiName,
    CompanyName,
    CustomerName,
    GroupName,
    ImpactName,
    ItemTypeName,
    ModelName,
    ModifierName,
    OlaName,
    PriorityName,
    ProjectName,
    ProviderName,
    ReasonName,
    RegistryTypeName,
    ResponsibleName,
    ServiceName,
    SlaName,
    StateName,
    UcName,
    UnitName,
    UrgencyName,
    ApplicantId,
    AuthorId,
    CategoryId,
    CiId,
    CompanyId,
    ConsoleType,
    CustomerId,
    GroupId,
    ImpactId,
    InterfaceId,
    ModelId,
    ModifierId,
    OlaId,
    PriorityId,
    ProjectId,
    ProviderId,
    ReasonId,
    RegistryTypeId,
    ResponsibleId,
    ServiceId,
    SlaId,
    StateId,
    UcId,
    UnitId,
    UrgencyId,
    OpenedDate,
}

/// ASMS's search operators.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
pub enum SearchOperator {
    #[default]
    EqualTo,
    NotEqualTo,
    GreaterThan,
    GreaterThanOrEqualTo,
    LessThan,
    LessThanOrEqualTo,
    Like,
}

/// An Aranda look-up, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    Case,
    Search(LookupOptions),
}

pub fn lookup(cx: &Cx<'_>, action: &str, rest: &Node, pos: Pos) -> Result<Lookup, Diagnostic> {
    match action {
        "get_case" => {
            sections::no_options(cx, rest)?;
            Ok(Lookup::Case)
        }
        "search_cases" => Ok(Lookup::Search(sections::options(cx, rest, "lookup")?)),
        other => Err(cx.problem(pos, format!("unknown `aranda` look-up `{other}`"))),
    }
}

pub fn receiver(cx: &Cx<'_>, action: &str, rest: &Node, pos: Pos) -> Result<Receiver, Diagnostic> {
    sections::no_options(cx, rest)?;
    match action {
        "create_case" => Ok(Receiver::CreateCase),
        "update_case" => Ok(Receiver::UpdateCase),
        "add_note" => Ok(Receiver::AddNote),
        "attach_file" => Ok(Receiver::AttachFile),
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
