//! One flow file: its serde types and the parser that turns a file into a [`Flow`],
//! collecting every problem in the file with its position.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono_tz::Tz;
use marked_yaml::Node;
use serde::{Deserialize, Deserializer};

use crate::diag::{Diagnostic, Pos};
use crate::fields::{FieldKind, FieldSpec};
use crate::schedule::{self, Schedule};
use crate::suggest;
use crate::yaml;

/// A parsed, individually valid flow.
#[derive(Debug, Clone)]
pub struct Flow {
    /// The flow's name: `name:` if given, else the file stem.
    pub name: String,
    /// The file it was read from.
    pub file: PathBuf,
    pub description: Option<String>,
    /// The auto-update slider: when false the flow never runs by itself.
    pub enabled: bool,
    /// The zone for system variables and daily schedule times.
    pub timezone: Tz,
    pub source: SourceConfig,
    pub receiver: ReceiverConfig,
    /// The field map, in file order.
    pub map: Vec<MapEntry>,
    /// Where `map:` stands (for errors about the map as a whole).
    pub map_pos: Pos,
    pub schedule: Option<Schedule>,
    pub delivery: Delivery,
    /// After a crash, resend the sends it interrupted (they may arrive twice; history
    /// marks them), or park them as uncertain for a person to replay.
    pub resend_uncertain: bool,
    /// A look-up whose result joins each record before the map (`{{contact.mobilePhone}}`).
    pub lookup: Option<LookupConfig>,
}

/// `lookup:` — find something for each record in a service and add it to the record
/// under `as`, so the map can use it. Today: CINNOX `get_contact` (an external contact
/// by full name, exact match) and `get_enquiry` (an enquiry by display case number).
#[derive(Debug, Clone)]
pub struct LookupConfig {
    pub connector: String,
    pub account: String,
    pub action: String,
    /// What to look for: a template rendered against the record.
    pub query: String,
    /// The name the result gets in the record.
    pub as_name: String,
    /// Whether a record with nothing found fails (default) or goes on without it.
    pub required: bool,
    /// Where the service answers, for look-ups whose path its docs do not give
    /// (`list_numbers`); `{query}` stands for the rendered query.
    pub path: Option<String>,
    pub pos: Pos,
}

/// Every look-up by connector.
pub const LOOKUPS: &[(&str, &[&str])] =
    &[("cinnox", &["get_contact", "get_enquiry", "list_numbers"])];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLookup {
    connector: String,
    account: String,
    action: String,
    query: String,
    #[serde(default, rename = "as")]
    as_name: Option<String>,
    #[serde(default = "enabled_by_default")]
    required: bool,
    #[serde(default)]
    path: Option<String>,
}

fn parse_lookup(file: &Path, node: &Node) -> Result<LookupConfig, Diagnostic> {
    let raw: RawLookup = yaml::from_node(file, node, "lookup")?;
    let pos = Pos::of(node.span());
    let Some((_, actions)) = LOOKUPS.iter().find(|(c, _)| *c == raw.connector) else {
        let connectors: Vec<&str> = LOOKUPS.iter().map(|(c, _)| *c).collect();
        return Err(
            Diagnostic::new(file, pos, format!("`{}` has no look-ups", raw.connector))
                .with_hint(suggest::hint(&raw.connector, &connectors)),
        );
    };
    if !actions.contains(&raw.action.as_str()) {
        return Err(Diagnostic::new(
            file,
            pos,
            format!("unknown `{}` look-up `{}`", raw.connector, raw.action),
        )
        .with_hint(suggest::hint(&raw.action, actions)));
    }
    let as_name = raw.as_name.unwrap_or_else(|| {
        let noun = raw.action.strip_prefix("get_").unwrap_or(&raw.action);
        noun.strip_prefix("list_").unwrap_or(noun).to_string()
    });
    Ok(LookupConfig {
        connector: raw.connector,
        account: raw.account,
        action: raw.action,
        query: raw.query,
        as_name,
        required: raw.required,
        path: raw.path,
        pos,
    })
}

/// Where records come from. A closed, tagged set: adding a source is one variant.
#[derive(Debug, Clone)]
pub enum SourceConfig {
    Csv(CsvSource),
    Xlsx(XlsxSource),
    GoogleSheets(SheetsSource),
    Webhook(WebhookSource),
    Cinnox(CinnoxSource),
    TextRequest(TextRequestSource),
}

/// `connector: textrequest` — texts sent or received on a Text Request dashboard, pushed
/// to the daemon at `/hooks/<flow>` once the URL is registered with the dashboard's hooks.
#[derive(Debug, Clone)]
pub struct TextRequestSource {
    /// A `textrequest` account.
    pub account: String,
    pub dashboard_id: u64,
    /// `msg_received`, `msg_sent`, or both.
    pub events: Vec<String>,
    /// The URL Text Request can reach for this flow's webhook; registered on start.
    pub public_url: Option<String>,
    pub pos: Pos,
}

/// Every Text Request event a flow can take.
pub const TEXTREQUEST_EVENTS: &[&str] = &["msg_received", "msg_sent"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTextRequestSource {
    account: String,
    dashboard_id: u64,
    events: OneOrMany,
    #[serde(default)]
    public_url: Option<String>,
}

/// `connector: cinnox` — events CINNOX pushes to the daemon at `/hooks/<flow>`.
#[derive(Debug, Clone)]
pub struct CinnoxSource {
    /// A `cinnox` account (app id, app token, base URL).
    pub account: String,
    /// The events this flow takes (`enquiry.missed`, `contact.created`, …).
    pub events: Vec<String>,
    /// The URL CINNOX can reach for this flow's webhook; registered on start.
    pub public_url: Option<String>,
    pub pos: Pos,
}

/// Every CINNOX event a flow can take.
pub const CINNOX_EVENTS: &[&str] = &[
    "contact.created",
    "contact.edited",
    "contact.merged",
    "contact.transferred",
    "contact.deleted",
    "enquiry.opened",
    "enquiry.handling",
    "enquiry.closed",
    "enquiry.missed",
    "sms.status",
    "label.created",
    "label.updated",
    "label.deleted",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCinnoxSource {
    account: String,
    events: OneOrMany,
    #[serde(default)]
    public_url: Option<String>,
}

/// `connector: google_sheets` — "new spreadsheet rows" of a Google Sheets range.
#[derive(Debug, Clone)]
pub struct SheetsSource {
    /// A `google_sheets` account (API key, or a service-account key file).
    pub account: String,
    pub spreadsheet_id: String,
    /// A1 notation, e.g. `Sheet1!A1:Z` or `'My Sheet'!A:F`; its first row is the header.
    pub range: String,
    pub key: Vec<String>,
    pub backlog: Backlog,
    pub pos: Pos,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSheetsSource {
    account: String,
    spreadsheet_id: String,
    #[serde(default = "default_range")]
    range: String,
    #[serde(default)]
    key: Option<OneOrMany>,
    #[serde(default)]
    backlog: Backlog,
}

fn default_range() -> String {
    "A:ZZ".into()
}

/// `connector: xlsx` — rows of a sheet of an XLSX, XLS or ODS file, with a header row.
#[derive(Debug, Clone)]
pub struct XlsxSource {
    /// The file, resolved against the flow file's directory.
    pub path: PathBuf,
    /// The sheet by name (default: the first one).
    pub sheet: Option<String>,
    pub key: Vec<String>,
    pub backlog: Backlog,
    /// The most rows of the sheet a flow reads; data further down is an error.
    pub max_rows: u32,
    /// The most columns the header may span; a wider one is an error.
    pub max_columns: u32,
    pub pos: Pos,
}

/// A sheet's rows a flow reads unless it says otherwise (`max_rows`).
pub const XLSX_MAX_ROWS: u32 = 1_000_000;
/// A sheet's columns a flow reads unless it says otherwise (`max_columns`).
pub const XLSX_MAX_COLUMNS: u32 = 1_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawXlsxSource {
    path: String,
    #[serde(default)]
    sheet: Option<String>,
    #[serde(default)]
    key: Option<OneOrMany>,
    #[serde(default)]
    backlog: Backlog,
    #[serde(default)]
    max_rows: Option<u32>,
    #[serde(default)]
    max_columns: Option<u32>,
}

impl SourceConfig {
    pub fn connector(&self) -> &'static str {
        match self {
            SourceConfig::Csv(_) => "csv",
            SourceConfig::Xlsx(_) => "xlsx",
            SourceConfig::GoogleSheets(_) => "google_sheets",
            SourceConfig::Webhook(_) => "webhook",
            SourceConfig::Cinnox(_) => "cinnox",
            SourceConfig::TextRequest(_) => "textrequest",
        }
    }

    /// What the first run does with existing records (pushed events are always new).
    pub fn backlog(&self) -> Backlog {
        match self {
            SourceConfig::Csv(c) => c.backlog,
            SourceConfig::Xlsx(x) => x.backlog,
            SourceConfig::GoogleSheets(g) => g.backlog,
            SourceConfig::Webhook(_) | SourceConfig::Cinnox(_) | SourceConfig::TextRequest(_) => {
                Backlog::Send
            }
        }
    }

    /// Whether records are pushed to the daemon (and queued) rather than fetched.
    pub fn is_push(&self) -> bool {
        matches!(
            self,
            SourceConfig::Webhook(_) | SourceConfig::Cinnox(_) | SourceConfig::TextRequest(_)
        )
    }

    /// The account a source uses, if any.
    pub fn account(&self) -> Option<(&str, Pos)> {
        match self {
            SourceConfig::Csv(_) | SourceConfig::Xlsx(_) => None,
            SourceConfig::Webhook(w) => w.account.as_deref().map(|a| (a, w.pos)),
            SourceConfig::GoogleSheets(g) => Some((g.account.as_str(), g.pos)),
            SourceConfig::Cinnox(c) => Some((c.account.as_str(), c.pos)),
            SourceConfig::TextRequest(t) => Some((t.account.as_str(), t.pos)),
        }
    }
}

/// `connector: webhook` — any JSON POSTed to the daemon at `/hooks/<flow>` becomes a
/// record, written to the state before the sender gets its 200.
#[derive(Debug, Clone)]
pub struct WebhookSource {
    /// A `webhook` account holding the shared secret; without one anyone who can reach
    /// the daemon can post.
    pub account: Option<String>,
    /// Field(s) of the event identifying it (a resent event is not handled twice);
    /// default: a hash of the whole body.
    pub key: Vec<String>,
    /// The largest body accepted, in bytes.
    pub max_body: usize,
    pub pos: Pos,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhookSource {
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    key: Option<OneOrMany>,
    #[serde(default)]
    max_body: Option<usize>,
}

/// `connector: csv` — rows of a CSV file with a header line.
#[derive(Debug, Clone)]
pub struct CsvSource {
    /// The file, resolved against the flow file's directory.
    pub path: PathBuf,
    /// Column(s) identifying a row; empty means "a hash of the whole row".
    pub key: Vec<String>,
    pub backlog: Backlog,
    pub delimiter: u8,
    /// Where `source:` stands in the flow file.
    pub pos: Pos,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCsvSource {
    path: String,
    #[serde(default)]
    key: Option<OneOrMany>,
    #[serde(default)]
    backlog: Backlog,
    #[serde(default)]
    delimiter: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// What the first run does with the rows that are already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backlog {
    /// Remember existing rows without sending them (the default).
    #[default]
    Skip,
    /// Send existing rows.
    Send,
}

/// Where records go: an account of some service and one of its actions.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    pub account: String,
    pub account_pos: Pos,
    pub kind: ReceiverKind,
    pub pos: Pos,
}

/// The closed set of receiver actions. Adding one is one variant and its match arms.
#[derive(Debug, Clone)]
pub enum ReceiverKind {
    EightXEightSendSms(EightXEightSendSms),
    TextRequestSendMessage(TextRequestDashboard),
    TextRequestUpsertContact(TextRequestDashboard),
    ArandaCreateCase,
    ArandaUpdateCase,
    ArandaAddNote,
    HttpRequest,
    CinnoxImStaff,
    CinnoxImRoom,
    CinnoxSendSms(CinnoxSendSms),
    CinnoxCreateContact,
    CinnoxUpdateContact,
}

/// `connector: cinnox, action: send_sms`. CINNOX documents the SMS body (`senderNumber`,
/// `recipientNumber`, `text`, as its OTP SMS) but not the path: `path` (under
/// `/v1/api/apps/{app_id}/`) is configurable, default `send_sms`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CinnoxSendSms {
    #[serde(default = "default_cinnox_sms_path")]
    pub path: String,
    /// The most billed SMS parts a text may make (1 to 255; default 10).
    #[serde(default)]
    pub max_parts: Option<usize>,
}

fn default_cinnox_sms_path() -> String {
    "send_sms".into()
}

/// `connector: textrequest` — the dashboard (phone line) the action works on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextRequestDashboard {
    pub dashboard_id: u64,
}

/// `connector: 8x8, action: send_sms` — one SMS per record.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EightXEightSendSms {
    /// Send runs of many records through 8x8's batch endpoint, this many per request
    /// (at most 10,000), keeping an outcome per record. Off when absent.
    #[serde(default)]
    pub batch: Option<usize>,
    /// The most billed SMS parts a text may make (1 to 255; default 10).
    #[serde(default)]
    pub max_parts: Option<usize>,
}

/// Every receiver connector and its actions, for validation and "did you mean".
const RECEIVERS: &[(&str, &[&str])] = &[
    ("8x8", &["send_sms"]),
    ("textrequest", &["send_message", "upsert_contact"]),
    ("aranda", &["create_case", "update_case", "add_note"]),
    ("http", &["request"]),
    (
        "cinnox",
        &[
            "send_im_staff",
            "send_im_room",
            "send_sms",
            "create_contact",
            "update_contact",
        ],
    ),
];

const CINNOX_IM_STAFF_FIELDS: &[FieldSpec] = &[
    FieldSpec::required(
        "roomID",
        FieldKind::Text,
        "the room of the conversation with the staff member",
    ),
    FieldSpec::required("receiverEID", FieldKind::Text, "the staff member's id"),
    FieldSpec::required("text", FieldKind::Text, "the message").max_chars(5000),
];

const CINNOX_IM_ROOM_FIELDS: &[FieldSpec] = &[
    FieldSpec::required("roomID", FieldKind::Text, "the room (group chat) id"),
    FieldSpec::required("text", FieldKind::Text, "the message").max_chars(5000),
];

const CINNOX_SMS_FIELDS: &[FieldSpec] = &[
    FieldSpec::required(
        "senderNumber",
        FieldKind::Text,
        "a sender number or alphanumeric sender ID of the CINNOX service",
    ),
    FieldSpec::required(
        "recipientNumber",
        FieldKind::Phone,
        "country code and number, e.g. +85294667788",
    ),
    FieldSpec::required(
        "text",
        FieldKind::Text,
        "the message: 160 GSM-7 or 70 other characters per SMS; each SMS is charged",
    ),
];

/// CINNOX's external contact, as flat fields (the receiver nests phones, emails,
/// addresses and social contacts the way the Open API wants them).
const CINNOX_CONTACT_FIELDS: &[FieldSpec] = &[
    FieldSpec::optional("firstName", FieldKind::Text, "first name").max_chars(50),
    FieldSpec::optional("lastName", FieldKind::Text, "last name").max_chars(50),
    FieldSpec::optional(
        "level",
        FieldKind::OneOf(&["Primary", "Secondary", "Tertiary"]),
        "default Primary",
    ),
    FieldSpec::optional(
        "type",
        FieldKind::OneOf(&["Lead", "Prospect", "Customer", "Others"]),
        "default Lead",
    ),
    FieldSpec::optional(
        "phoneType",
        FieldKind::OneOf(&["Mobile", "Work", "Home", "Other"]),
        "default Mobile",
    ),
    FieldSpec::optional("phone", FieldKind::Phone, "country code and number"),
    FieldSpec::optional(
        "emailType",
        FieldKind::OneOf(&["Work", "Personal", "Other"]),
        "default Work",
    ),
    FieldSpec::optional("email", FieldKind::Text, "email address"),
    FieldSpec::optional("company", FieldKind::Text, "company name").max_chars(100),
    FieldSpec::optional("jobTitle", FieldKind::Text, "job title").max_chars(100),
    FieldSpec::optional("team", FieldKind::Text, "team").max_chars(100),
    FieldSpec::optional("group", FieldKind::Text, "group").max_chars(100),
    FieldSpec::optional("language", FieldKind::Text, "ISO 639-1 code, e.g. en").max_chars(2),
    FieldSpec::optional("birthDate", FieldKind::Text, "DD/MM/YYYY").max_chars(10),
    FieldSpec::optional("street", FieldKind::Text, "street").max_chars(50),
    FieldSpec::optional("city", FieldKind::Text, "city").max_chars(50),
    FieldSpec::optional("state", FieldKind::Text, "state").max_chars(50),
    FieldSpec::optional("zipcode", FieldKind::Text, "zip code").max_chars(10),
    FieldSpec::optional("country", FieldKind::Text, "ISO 3166 two-letter code").max_chars(50),
    FieldSpec::optional("socialType", FieldKind::Text, "social media type"),
    FieldSpec::optional("socialId", FieldKind::Text, "the id on that social media"),
];

/// `update_contact`: the contact's id, then the same fields as `create_contact`.
static CINNOX_UPDATE_CONTACT_FIELDS: std::sync::LazyLock<Vec<FieldSpec>> =
    std::sync::LazyLock::new(|| {
        let mut fields = vec![FieldSpec::required(
            "contactID",
            FieldKind::Text,
            "the external contact to update",
        )];
        fields.extend_from_slice(CINNOX_CONTACT_FIELDS);
        fields
    });

const HTTP_REQUEST_FIELDS: &[FieldSpec] = &[
    FieldSpec::optional(
        "method",
        FieldKind::OneOf(&["GET", "POST", "PUT", "PATCH", "DELETE"]),
        "default POST",
    ),
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

/// Aranda's optional ids, shared by create and update (integers in its swagger).
const ARANDA_IDS: [FieldSpec; 14] = [
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

const ARANDA_CREATE_FIELDS: &[FieldSpec] = &concat::<6, 14, 20>(
    [
        FieldSpec::required("itemType", FieldKind::Integer, "case type id"),
        FieldSpec::required("projectId", FieldKind::Integer, "project id"),
        FieldSpec::required("serviceId", FieldKind::Integer, "service id"),
        FieldSpec::required("categoryId", FieldKind::Integer, "category id"),
        FieldSpec::required("subject", FieldKind::Text, "subject"),
        FieldSpec::optional("description", FieldKind::Text, "detailed description"),
    ],
    ARANDA_IDS,
);

const ARANDA_UPDATE_FIELDS: &[FieldSpec] = &concat::<6, 14, 20>(
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
    ARANDA_IDS,
);

const ARANDA_NOTE_FIELDS: &[FieldSpec] = &[
    FieldSpec::required(
        "ticketId",
        FieldKind::Text,
        "the case code (goes in the URL path)",
    ),
    FieldSpec::required("message", FieldKind::Text, "the note").max_chars(254),
];

/// Two field lists as one, in a constant.
const fn concat<const A: usize, const B: usize, const C: usize>(
    a: [FieldSpec; A],
    b: [FieldSpec; B],
) -> [FieldSpec; C] {
    let mut out = [a[0]; C];
    let mut i = 0;
    while i < C {
        out[i] = if i < A { a[i] } else { b[i - A] };
        i += 1;
    }
    out
}

const TEXTREQUEST_MESSAGE_FIELDS: &[FieldSpec] = &[
    FieldSpec::required(
        "phone_number",
        FieldKind::Phone,
        "the contact's number (goes in the URL path)",
    ),
    FieldSpec::required("body", FieldKind::Text, "the message"),
    FieldSpec::optional(
        "sender_name",
        FieldKind::Text,
        "shown in the Text Request web app",
    ),
    FieldSpec::optional(
        "status_callback",
        FieldKind::Url,
        "POSTed to when the status changes",
    ),
    FieldSpec::optional(
        "location_callback",
        FieldKind::Url,
        "POSTed to when a location is shared",
    ),
    FieldSpec::optional(
        "mms_media",
        FieldKind::TextList,
        "URLs from Text Request's /mms upload",
    ),
];

const TEXTREQUEST_CONTACT_FIELDS: &[FieldSpec] = &[
    FieldSpec::required(
        "phone_number",
        FieldKind::Phone,
        "the contact's number (goes in the URL path)",
    ),
    FieldSpec::optional("first_name", FieldKind::Text, "first name"),
    FieldSpec::optional("last_name", FieldKind::Text, "last name"),
    FieldSpec::optional("display_name", FieldKind::Text, "display name"),
    FieldSpec::optional("note", FieldKind::Text, "a note"),
    FieldSpec::optional("groups", FieldKind::IntegerList, "group ids"),
    FieldSpec::optional("contact_tags", FieldKind::TextList, "tags"),
    FieldSpec::optional("is_archived", FieldKind::Boolean, "archived"),
    FieldSpec::optional("is_blocked", FieldKind::Boolean, "blocked"),
    FieldSpec::optional("is_suppressed", FieldKind::Boolean, "suppressed"),
    FieldSpec::optional("suppressed_reason", FieldKind::Text, "why suppressed"),
    FieldSpec::optional("is_resolved", FieldKind::Boolean, "resolved"),
];
const SOURCES: &[&str] = &[
    "csv",
    "xlsx",
    "google_sheets",
    "webhook",
    "cinnox",
    "textrequest",
];

const EIGHTX8_SMS_FIELDS: &[FieldSpec] = &[
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

impl ReceiverKind {
    pub fn connector(&self) -> &'static str {
        match self {
            ReceiverKind::EightXEightSendSms(_) => "8x8",
            ReceiverKind::TextRequestSendMessage(_) | ReceiverKind::TextRequestUpsertContact(_) => {
                "textrequest"
            }
            ReceiverKind::ArandaCreateCase
            | ReceiverKind::ArandaUpdateCase
            | ReceiverKind::ArandaAddNote => "aranda",
            ReceiverKind::HttpRequest => "http",
            ReceiverKind::CinnoxImStaff
            | ReceiverKind::CinnoxImRoom
            | ReceiverKind::CinnoxSendSms(_)
            | ReceiverKind::CinnoxCreateContact
            | ReceiverKind::CinnoxUpdateContact => "cinnox",
        }
    }

    pub fn action(&self) -> &'static str {
        match self {
            ReceiverKind::EightXEightSendSms(_) => "send_sms",
            ReceiverKind::TextRequestSendMessage(_) => "send_message",
            ReceiverKind::TextRequestUpsertContact(_) => "upsert_contact",
            ReceiverKind::ArandaCreateCase => "create_case",
            ReceiverKind::ArandaUpdateCase => "update_case",
            ReceiverKind::ArandaAddNote => "add_note",
            ReceiverKind::HttpRequest => "request",
            ReceiverKind::CinnoxImStaff => "send_im_staff",
            ReceiverKind::CinnoxImRoom => "send_im_room",
            ReceiverKind::CinnoxSendSms(_) => "send_sms",
            ReceiverKind::CinnoxCreateContact => "create_contact",
            ReceiverKind::CinnoxUpdateContact => "update_contact",
        }
    }

    /// The fields this action accepts in `map:`.
    pub fn fields(&self) -> &'static [FieldSpec] {
        match self {
            ReceiverKind::EightXEightSendSms(_) => EIGHTX8_SMS_FIELDS,
            ReceiverKind::TextRequestSendMessage(_) => TEXTREQUEST_MESSAGE_FIELDS,
            ReceiverKind::TextRequestUpsertContact(_) => TEXTREQUEST_CONTACT_FIELDS,
            ReceiverKind::ArandaCreateCase => ARANDA_CREATE_FIELDS,
            ReceiverKind::ArandaUpdateCase => ARANDA_UPDATE_FIELDS,
            ReceiverKind::ArandaAddNote => ARANDA_NOTE_FIELDS,
            ReceiverKind::HttpRequest => HTTP_REQUEST_FIELDS,
            ReceiverKind::CinnoxImStaff => CINNOX_IM_STAFF_FIELDS,
            ReceiverKind::CinnoxImRoom => CINNOX_IM_ROOM_FIELDS,
            ReceiverKind::CinnoxSendSms(_) => CINNOX_SMS_FIELDS,
            ReceiverKind::CinnoxCreateContact => CINNOX_CONTACT_FIELDS,
            ReceiverKind::CinnoxUpdateContact => CINNOX_UPDATE_CONTACT_FIELDS.as_slice(),
        }
    }
}

/// A receiver that takes no options beyond connector, action and account.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoOptions {}

/// One `field: value` line of `map:`.
#[derive(Debug, Clone)]
pub struct MapEntry {
    pub field: String,
    pub value: MapValue,
    pub pos: Pos,
}

/// A value in `map:`: text is a Handlebars template; YAML literals (numbers, booleans)
/// pass through as they are; lists and mappings nest.
#[derive(Debug, Clone, PartialEq)]
pub enum MapValue {
    Template(String),
    Literal(serde_json::Value),
    List(Vec<MapValue>),
    Object(Vec<(String, MapValue)>),
}

impl MapValue {
    fn from_node(node: &Node) -> MapValue {
        match node {
            Node::Scalar(_) => match yaml::literal(node) {
                serde_json::Value::String(text) => MapValue::Template(text),
                other => MapValue::Literal(other),
            },
            Node::Sequence(items) => {
                MapValue::List(items.iter().map(MapValue::from_node).collect())
            }
            Node::Mapping(map) => MapValue::Object(
                map.iter()
                    .map(|(k, v)| (k.as_str().to_string(), MapValue::from_node(v)))
                    .collect(),
            ),
        }
    }
}

/// How a flow's sends are paced and retried.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Delivery {
    /// Sends in flight at once within one run.
    pub concurrency: usize,
    /// Tries per record for transient failures (timeouts, 429, 5xx), first try included.
    pub attempts: u32,
    /// The first retry's delay; each further retry doubles it (with jitter).
    #[serde(deserialize_with = "de_duration")]
    pub backoff: Duration,
    /// The longest single wait between tries (also caps `Retry-After`).
    #[serde(deserialize_with = "de_duration")]
    pub max_backoff: Duration,
    /// How long one request may take.
    #[serde(deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// How long one record may spend on retries in all before it fails for this run.
    #[serde(deserialize_with = "de_duration")]
    pub max_time: Duration,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            concurrency: 4,
            attempts: 4,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            max_time: Duration::from_secs(300),
        }
    }
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|_| {
        serde::de::Error::custom(format!(
            "`{text}` is not a duration; write a number and a unit, like `500ms`, `30s`, `5m`"
        ))
    })
}

const TOP_LEVEL_KEYS: &[&str] = &[
    "name",
    "description",
    "enabled",
    "timezone",
    "source",
    "receiver",
    "map",
    "schedule",
    "delivery",
    "resend_uncertain",
    "lookup",
];

#[derive(Debug, Deserialize)]
struct Head {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default = "enabled_by_default")]
    enabled: bool,
    #[serde(default = "enabled_by_default")]
    resend_uncertain: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// Whether a flow name is usable in URLs, state keys and file names.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.')
}

/// What the cross-file checks need to know about a parsed flow.
pub(crate) struct Parsed {
    pub flow: Flow,
    pub name_pos: Pos,
}

/// Parse one flow file. All problems in the file are returned together.
pub(crate) fn parse(file: &Path, text: &str) -> Result<Parsed, Vec<Diagnostic>> {
    let root = yaml::load(file, text).map_err(|d| vec![d])?;
    let Some(mapping) = root.as_mapping() else {
        return Err(vec![Diagnostic::new(
            file,
            Pos::of(root.span()),
            "expected a mapping",
        )]);
    };
    let mut errors = Vec::new();
    let top = Pos::of(root.span());
    if mapping.is_empty() {
        return Err(vec![Diagnostic::new(file, top, "the file is empty")
            .with_hint(
                "a flow file needs at least `source:`, `receiver:` and `map:`",
            )]);
    }

    for key in mapping.keys() {
        if !TOP_LEVEL_KEYS.contains(&key.as_str()) {
            errors.push(yaml::unknown_key(
                file,
                Pos::of(key.span()),
                key.as_str(),
                "",
                TOP_LEVEL_KEYS,
            ));
        }
    }

    let head_node = yaml::without_keys(
        &root,
        &[
            "timezone", "source", "receiver", "map", "schedule", "delivery", "lookup",
        ],
    );
    let head_node = retain_keys(
        &head_node,
        &["name", "description", "enabled", "resend_uncertain"],
    );
    let head: Option<Head> = collect(&mut errors, yaml::from_node(file, &head_node, "flow"));

    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name_pos = mapping
        .get_node("name")
        .map(|n| Pos::of(n.span()))
        .unwrap_or(Pos::new(1, 1));
    let name = head.as_ref().and_then(|h| h.name.clone()).unwrap_or(stem);
    if !valid_name(&name) {
        errors.push(
            Diagnostic::new(
                file,
                name_pos,
                format!("`{name}` is not a usable flow name"),
            )
            .with_hint("use letters, digits, `-`, `_` and `.` (it appears in URLs and logs)"),
        );
    }

    let timezone = match mapping.get_node("timezone") {
        None => Some(Tz::UTC),
        Some(node) => collect(&mut errors, parse_timezone(file, node)),
    };

    let source = match mapping.get_node("source") {
        None => {
            errors.push(
                Diagnostic::new(
                    file,
                    top,
                    "missing `source:`: where do the records come from?",
                )
                .with_hint("for a CSV file: `source: {connector: csv, path: orders.csv}`"),
            );
            None
        }
        Some(node) => collect(&mut errors, parse_source(file, node)),
    };

    let receiver = match mapping.get_node("receiver") {
        None => {
            errors.push(
                Diagnostic::new(file, top, "missing `receiver:`: where do the records go?")
                    .with_hint(
                    "for an SMS: `receiver: {connector: 8x8, action: send_sms, account: my-8x8}`",
                ),
            );
            None
        }
        Some(node) => collect(&mut errors, parse_receiver(file, node)),
    };

    let (map, map_pos) = match mapping.get_node("map") {
        None => (Vec::new(), top),
        Some(node) => (
            collect(&mut errors, parse_map(file, node)).unwrap_or_default(),
            Pos::of(node.span()),
        ),
    };
    if let Some(receiver) = &receiver {
        errors.extend(check_map_fields(
            file,
            &receiver.kind,
            &map,
            mapping
                .get_node("map")
                .map(|n| Pos::of(n.span()))
                .unwrap_or(top),
        ));
    }

    let schedule = match mapping.get_node("schedule") {
        None => None,
        Some(node) => collect(&mut errors, schedule::parse(file, node)),
    };

    let delivery = match mapping.get_node("delivery") {
        None => Some(Delivery::default()),
        Some(node) => collect(&mut errors, parse_delivery(file, node)),
    };

    let lookup = match mapping.get_node("lookup") {
        None => None,
        Some(node) => collect(&mut errors, parse_lookup(file, node)),
    };

    match (head, timezone, source, receiver, delivery) {
        (Some(head), Some(timezone), Some(source), Some(receiver), Some(delivery))
            if errors.is_empty() =>
        {
            Ok(Parsed {
                flow: Flow {
                    name,
                    file: file.to_path_buf(),
                    description: head.description,
                    enabled: head.enabled,
                    timezone,
                    source,
                    receiver,
                    map,
                    map_pos,
                    schedule: schedule.flatten(),
                    delivery,
                    resend_uncertain: head.resend_uncertain,
                    lookup,
                },
                name_pos,
            })
        }
        _ => Err(errors),
    }
}

fn collect<T>(errors: &mut Vec<Diagnostic>, result: Result<T, Diagnostic>) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            errors.push(e);
            None
        }
    }
}

fn retain_keys(node: &Node, keep: &[&str]) -> Node {
    let mut node = node.clone();
    if let Some(mapping) = node.as_mapping_mut() {
        mapping.retain(|k, _| keep.contains(&k.as_str()));
    }
    node
}

fn parse_timezone(file: &Path, node: &Node) -> Result<Tz, Diagnostic> {
    let text = yaml::scalar(file, node, "timezone")?;
    Tz::from_str(text).map_err(|_| {
        let names = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
        let hint = match suggest::did_you_mean(text, names) {
            Some(best) => format!("did you mean `{best}`?"),
            None => {
                "use an IANA zone name such as `Europe/Kyiv`, `America/New_York` or `UTC`".into()
            }
        };
        Diagnostic::new(
            file,
            Pos::of(node.span()),
            format!("unknown timezone `{text}`"),
        )
        .with_hint(hint)
    })
}

/// The `connector:` of a source or receiver mapping, with its position.
fn connector<'n>(
    file: &Path,
    node: &'n Node,
    section: &str,
    example: &str,
) -> Result<(&'n str, Pos), Diagnostic> {
    let Some(mapping) = node.as_mapping() else {
        return Err(Diagnostic::new(
            file,
            Pos::of(node.span()),
            format!("`{section}` must be a mapping"),
        )
        .with_hint(format!("for example `{section}: {example}`")));
    };
    let Some(connector) = mapping.get_node("connector") else {
        return Err(Diagnostic::new(
            file,
            Pos::of(node.span()),
            format!("missing `connector` in `{section}`"),
        )
        .with_hint(format!("for example `{section}: {example}`")));
    };
    Ok((
        yaml::scalar(file, connector, "connector")?,
        Pos::of(connector.span()),
    ))
}

fn parse_source(file: &Path, node: &Node) -> Result<SourceConfig, Diagnostic> {
    let (name, pos) = connector(file, node, "source", "{connector: csv, path: orders.csv}")?;
    match name {
        "csv" => {
            let raw: RawCsvSource =
                yaml::from_node(file, &yaml::without_keys(node, &["connector"]), "source")?;
            parse_csv(file, node, raw)
        }
        "xlsx" => {
            let raw: RawXlsxSource =
                yaml::from_node(file, &yaml::without_keys(node, &["connector"]), "source")?;
            if raw.path.trim().is_empty() {
                return Err(
                    Diagnostic::new(file, Pos::of(node.span()), "`path` is empty")
                        .with_hint("name the spreadsheet file, relative to this flow file"),
                );
            }
            let at = |key: &str| {
                node.as_mapping()
                    .and_then(|m| m.get_node(key))
                    .map(|n| Pos::of(n.span()))
                    .unwrap_or(Pos::of(node.span()))
            };
            for (key, value, most) in [
                ("max_rows", raw.max_rows, 1_048_576),
                ("max_columns", raw.max_columns, 16_384),
            ] {
                if value.is_some_and(|v| v == 0 || v > most) {
                    return Err(Diagnostic::new(
                        file,
                        at(key),
                        format!("`{key}` must be between 1 and {most} (a sheet's own limit)"),
                    ));
                }
            }
            let base = file.parent().unwrap_or(Path::new("."));
            Ok(SourceConfig::Xlsx(XlsxSource {
                path: base.join(raw.path),
                sheet: raw.sheet,
                key: raw.key.map(OneOrMany::into_vec).unwrap_or_default(),
                backlog: raw.backlog,
                max_rows: raw.max_rows.unwrap_or(XLSX_MAX_ROWS),
                max_columns: raw.max_columns.unwrap_or(XLSX_MAX_COLUMNS),
                pos: Pos::of(node.span()),
            }))
        }
        "google_sheets" => {
            let raw: RawSheetsSource =
                yaml::from_node(file, &yaml::without_keys(node, &["connector"]), "source")?;
            if raw.spreadsheet_id.trim().is_empty() || raw.range.trim().is_empty() {
                return Err(Diagnostic::new(
                    file,
                    Pos::of(node.span()),
                    "`spreadsheet_id` and `range` must not be empty",
                )
                .with_hint(
                    "the id is the long part of the sheet's URL: /spreadsheets/d/<id>/edit",
                ));
            }
            Ok(SourceConfig::GoogleSheets(SheetsSource {
                account: raw.account,
                spreadsheet_id: raw.spreadsheet_id,
                range: raw.range,
                key: raw.key.map(OneOrMany::into_vec).unwrap_or_default(),
                backlog: raw.backlog,
                pos: Pos::of(node.span()),
            }))
        }
        "cinnox" => {
            let raw: RawCinnoxSource =
                yaml::from_node(file, &yaml::without_keys(node, &["connector"]), "source")?;
            let events = push_events(
                file,
                node,
                raw.events,
                CINNOX_EVENTS,
                "CINNOX",
                "enquiry.missed",
            )?;
            check_public_url(file, node, raw.public_url.as_deref())?;
            Ok(SourceConfig::Cinnox(CinnoxSource {
                account: raw.account,
                events,
                public_url: raw.public_url,
                pos: Pos::of(node.span()),
            }))
        }
        "textrequest" => {
            let raw: RawTextRequestSource =
                yaml::from_node(file, &yaml::without_keys(node, &["connector"]), "source")?;
            let events = push_events(
                file,
                node,
                raw.events,
                TEXTREQUEST_EVENTS,
                "Text Request",
                "msg_received",
            )?;
            check_public_url(file, node, raw.public_url.as_deref())?;
            Ok(SourceConfig::TextRequest(TextRequestSource {
                account: raw.account,
                dashboard_id: raw.dashboard_id,
                events,
                public_url: raw.public_url,
                pos: Pos::of(node.span()),
            }))
        }
        "webhook" => {
            let raw: RawWebhookSource =
                yaml::from_node(file, &yaml::without_keys(node, &["connector"]), "source")?;
            let max_body = raw.max_body.unwrap_or(1024 * 1024);
            if max_body == 0 || max_body > 64 * 1024 * 1024 {
                return Err(Diagnostic::new(
                    file,
                    Pos::of(node.span()),
                    "`max_body` must be between 1 and 67108864 bytes",
                ));
            }
            Ok(SourceConfig::Webhook(WebhookSource {
                account: raw.account,
                key: raw.key.map(OneOrMany::into_vec).unwrap_or_default(),
                max_body,
                pos: Pos::of(node.span()),
            }))
        }
        other if RECEIVERS.iter().any(|(c, _)| *c == other) => {
            Err(
                Diagnostic::new(file, pos, format!("`{other}` is a receiver, not a source"))
                    .with_hint(format!("sources are: {}", suggest::backticked(SOURCES))),
            )
        }
        other => Err(
            Diagnostic::new(file, pos, format!("unknown source connector `{other}`"))
                .with_hint(suggest::hint(other, SOURCES)),
        ),
    }
}

/// A push source's `events:`, each one the service sends.
fn push_events(
    file: &Path,
    node: &Node,
    events: OneOrMany,
    known: &[&str],
    service: &str,
    example: &str,
) -> Result<Vec<String>, Diagnostic> {
    let events = events.into_vec();
    let at = node
        .as_mapping()
        .and_then(|m| m.get_node("events"))
        .map(|n| Pos::of(n.span()))
        .unwrap_or(Pos::of(node.span()));
    if events.is_empty() {
        return Err(Diagnostic::new(file, at, "`events` lists no events")
            .with_hint(format!("for example `events: [{example}]`")));
    }
    for event in &events {
        if !known.contains(&event.as_str()) {
            return Err(
                Diagnostic::new(file, at, format!("unknown {service} event `{event}`"))
                    .with_hint(suggest::hint(event, known)),
            );
        }
    }
    Ok(events)
}

/// A push source's `public_url:` is an http(s) URL.
fn check_public_url(file: &Path, node: &Node, url: Option<&str>) -> Result<(), Diagnostic> {
    match url {
        Some(url) if !(url.starts_with("https://") || url.starts_with("http://")) => {
            Err(Diagnostic::new(
                file,
                Pos::of(node.span()),
                format!("`public_url` `{url}` must start with https://"),
            ))
        }
        _ => Ok(()),
    }
}

fn parse_csv(file: &Path, node: &Node, raw: RawCsvSource) -> Result<SourceConfig, Diagnostic> {
    let at = |key: &str| {
        node.as_mapping()
            .and_then(|m| m.get_node(key))
            .map(|n| Pos::of(n.span()))
            .unwrap_or(Pos::of(node.span()))
    };
    if raw.path.trim().is_empty() {
        return Err(Diagnostic::new(file, at("path"), "`path` is empty")
            .with_hint("name the CSV file, relative to this flow file"));
    }
    let key = raw.key.map(OneOrMany::into_vec).unwrap_or_default();
    if key.iter().any(|k| k.trim().is_empty()) {
        return Err(Diagnostic::new(
            file,
            at("key"),
            "`key` names an empty column",
        ));
    }
    let delimiter = match raw.delimiter.as_deref() {
        None => b',',
        Some("\\t") | Some("\t") | Some("tab") => b'\t',
        Some(d) if d.len() == 1 => d.as_bytes()[0],
        Some(d) => {
            return Err(Diagnostic::new(
                file,
                at("delimiter"),
                format!("`{d}` is not a one-character delimiter"),
            )
            .with_hint("use `,`, `;`, `|` or `tab`"))
        }
    };
    let base = file.parent().unwrap_or(Path::new("."));
    Ok(SourceConfig::Csv(CsvSource {
        path: base.join(raw.path),
        key,
        backlog: raw.backlog,
        delimiter,
        pos: Pos::of(node.span()),
    }))
}

fn parse_receiver(file: &Path, node: &Node) -> Result<ReceiverConfig, Diagnostic> {
    let (name, pos) = connector(
        file,
        node,
        "receiver",
        "{connector: 8x8, action: send_sms, account: my-8x8}",
    )?;
    let Some((connector, actions)) = RECEIVERS.iter().find(|(c, _)| *c == name) else {
        if SOURCES.contains(&name) {
            return Err(Diagnostic::new(
                file,
                pos,
                format!("`{name}` is a source, not a receiver"),
            ));
        }
        let names: Vec<&str> = RECEIVERS.iter().map(|(c, _)| *c).collect();
        return Err(
            Diagnostic::new(file, pos, format!("unknown receiver connector `{name}`"))
                .with_hint(suggest::hint(name, &names)),
        );
    };
    let mapping = node.as_mapping();
    let action_node = mapping.and_then(|m| m.get_node("action"));
    let Some(action_node) = action_node else {
        return Err(Diagnostic::new(
            file,
            Pos::of(node.span()),
            format!("missing `action` in `receiver` ({connector})"),
        )
        .with_hint(format!(
            "{connector} actions: {}",
            suggest::backticked(actions)
        )));
    };
    let action = yaml::scalar(file, action_node, "action")?;
    if !actions.contains(&action) {
        return Err(Diagnostic::new(
            file,
            Pos::of(action_node.span()),
            format!("`{connector}` has no action `{action}`"),
        )
        .with_hint(suggest::hint(action, actions)));
    }
    let Some(account_node) = mapping.and_then(|m| m.get_node("account")) else {
        return Err(Diagnostic::new(
            file,
            Pos::of(node.span()),
            "missing `account` in `receiver`",
        )
        .with_hint(format!(
            "name an account from accounts.yaml whose connector is `{connector}`"
        )));
    };
    let account = yaml::scalar(file, account_node, "account")?.to_string();
    let rest = yaml::without_keys(node, &["connector", "action", "account"]);
    let kind = match (*connector, action) {
        ("8x8", "send_sms") => {
            let sms: EightXEightSendSms = yaml::from_node(file, &rest, "receiver")?;
            if sms.batch.is_some_and(|n| !(1..=10_000).contains(&n)) {
                let pos = rest
                    .as_mapping()
                    .and_then(|m| m.get_node("batch"))
                    .map(|n| Pos::of(n.span()))
                    .unwrap_or(Pos::of(node.span()));
                return Err(Diagnostic::new(
                    file,
                    pos,
                    "`batch` must be between 1 and 10000 (8x8's limit per batch request)",
                ));
            }
            check_max_parts(file, &rest, node, sms.max_parts)?;
            ReceiverKind::EightXEightSendSms(sms)
        }
        ("textrequest", "send_message") => {
            ReceiverKind::TextRequestSendMessage(yaml::from_node(file, &rest, "receiver")?)
        }
        ("textrequest", "upsert_contact") => {
            ReceiverKind::TextRequestUpsertContact(yaml::from_node(file, &rest, "receiver")?)
        }
        ("aranda", action) => {
            let NoOptions {} = yaml::from_node(file, &rest, "receiver")?;
            match action {
                "create_case" => ReceiverKind::ArandaCreateCase,
                "update_case" => ReceiverKind::ArandaUpdateCase,
                _ => ReceiverKind::ArandaAddNote,
            }
        }
        ("cinnox", "send_sms") => {
            let sms: CinnoxSendSms = yaml::from_node(file, &rest, "receiver")?;
            check_max_parts(file, &rest, node, sms.max_parts)?;
            ReceiverKind::CinnoxSendSms(sms)
        }
        ("cinnox", action) => {
            let NoOptions {} = yaml::from_node(file, &rest, "receiver")?;
            match action {
                "send_im_staff" => ReceiverKind::CinnoxImStaff,
                "create_contact" => ReceiverKind::CinnoxCreateContact,
                "update_contact" => ReceiverKind::CinnoxUpdateContact,
                _ => ReceiverKind::CinnoxImRoom,
            }
        }
        ("http", _) => {
            let NoOptions {} = yaml::from_node(file, &rest, "receiver")?;
            ReceiverKind::HttpRequest
        }
        _ => unreachable!("RECEIVERS lists only implemented actions"),
    };
    Ok(ReceiverConfig {
        account,
        account_pos: Pos::of(account_node.span()),
        kind,
        pos: Pos::of(node.span()),
    })
}

/// An SMS receiver's `max_parts` is between 1 and 255 (the most parts one SMS can be
/// split into).
fn check_max_parts(
    file: &Path,
    rest: &Node,
    node: &Node,
    max_parts: Option<usize>,
) -> Result<(), Diagnostic> {
    match max_parts {
        Some(n) if !(1..=255).contains(&n) => {
            let pos = rest
                .as_mapping()
                .and_then(|m| m.get_node("max_parts"))
                .map(|n| Pos::of(n.span()))
                .unwrap_or(Pos::of(node.span()));
            Err(Diagnostic::new(
                file,
                pos,
                format!("`max_parts` is {n}; it must be between 1 and 255"),
            )
            .with_hint("the most billed SMS parts one text may make; default 10"))
        }
        _ => Ok(()),
    }
}

fn parse_map(file: &Path, node: &Node) -> Result<Vec<MapEntry>, Diagnostic> {
    let Some(mapping) = node.as_mapping() else {
        return Err(Diagnostic::new(
            file,
            Pos::of(node.span()),
            "`map` must be a mapping of receiver fields to templates",
        )
        .with_hint("for example `map: {destination: \"{{phone}}\", text: \"Hi {{name}}\"}`"));
    };
    Ok(mapping
        .iter()
        .map(|(key, value)| MapEntry {
            field: key.as_str().to_string(),
            value: MapValue::from_node(value),
            pos: Pos::of(key.span()),
        })
        .collect())
}

/// Every map field must be one the receiver knows, and every required one must be there.
fn check_map_fields(
    file: &Path,
    kind: &ReceiverKind,
    map: &[MapEntry],
    map_pos: Pos,
) -> Vec<Diagnostic> {
    let specs = kind.fields();
    let names: Vec<&str> = specs.iter().map(|f| f.name).collect();
    let what = format!("{} {}", kind.connector(), kind.action());
    let mut errors = Vec::new();
    for entry in map {
        if !names.contains(&entry.field.as_str()) {
            errors.push(
                Diagnostic::new(
                    file,
                    entry.pos,
                    format!("`{what}` has no field `{}`", entry.field),
                )
                .with_hint(suggest::hint(&entry.field, &names)),
            );
        }
    }
    for spec in specs.iter().filter(|s| s.required) {
        if !map.iter().any(|e| e.field == spec.name) {
            errors.push(
                Diagnostic::new(
                    file,
                    map_pos,
                    format!(
                        "missing required field `{}` for `{what}` in `map`",
                        spec.name
                    ),
                )
                .with_hint(format!(
                    "add `{}: \"{{{{…}}}}\"` under `map:` ({})",
                    spec.name, spec.doc
                )),
            );
        }
    }
    errors
}

fn parse_delivery(file: &Path, node: &Node) -> Result<Delivery, Diagnostic> {
    let delivery: Delivery = yaml::from_node(file, node, "delivery")?;
    let at = |key: &str| {
        node.as_mapping()
            .and_then(|m| m.get_node(key))
            .map(|n| Pos::of(n.span()))
            .unwrap_or(Pos::of(node.span()))
    };
    let shown = |d: Duration| humantime::format_duration(d).to_string();
    if delivery.concurrency == 0 || delivery.concurrency > 1024 {
        return Err(Diagnostic::new(
            file,
            at("concurrency"),
            format!(
                "`delivery.concurrency` is {}; it must be between 1 and 1024",
                delivery.concurrency
            ),
        )
        .with_hint(
            "sends in flight at once; 4 is the default, the account's rate limit paces them anyway",
        ));
    }
    if delivery.attempts == 0 || delivery.attempts > 100 {
        return Err(Diagnostic::new(
            file,
            at("attempts"),
            format!(
                "`delivery.attempts` is {}; it must be between 1 and 100",
                delivery.attempts
            ),
        )
        .with_hint("tries per record for timeouts, 429 and 5xx, the first included; default 4"));
    }
    // Every duration is bounded, so no sum of them can pass the end of the calendar.
    let written = |key: &str, value: Duration| {
        node.as_mapping()
            .and_then(|m| m.get_node(key))
            .and_then(|n| n.as_scalar())
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| shown(value))
    };
    let bounds: [(&str, Duration, Duration, Duration, &str); 4] = [
        (
            "timeout",
            delivery.timeout,
            Duration::from_millis(1),
            Duration::from_secs(3600),
            "1ms and 1h",
        ),
        (
            "backoff",
            delivery.backoff,
            Duration::ZERO,
            Duration::from_secs(3600),
            "0s and 1h",
        ),
        (
            "max_backoff",
            delivery.max_backoff,
            Duration::ZERO,
            Duration::from_secs(3600),
            "0s and 1h",
        ),
        (
            "max_time",
            delivery.max_time,
            Duration::from_millis(1),
            Duration::from_secs(7 * 86_400),
            "1ms and 7d",
        ),
    ];
    for (key, value, least, most, range) in bounds {
        if value < least || value > most {
            return Err(Diagnostic::new(
                file,
                at(key),
                format!(
                    "`delivery.{key}` is {}; it must be between {range}",
                    written(key, value)
                ),
            ));
        }
    }
    if delivery.max_backoff < delivery.backoff {
        return Err(Diagnostic::new(
            file,
            at("max_backoff"),
            format!(
                "`delivery.max_backoff` ({}) is shorter than `delivery.backoff` ({})",
                written("max_backoff", delivery.max_backoff),
                written("backoff", delivery.backoff)
            ),
        )
        .with_hint(
            "`backoff` is the first wait and `max_backoff` the longest; raise `max_backoff`",
        ));
    }
    Ok(delivery)
}
