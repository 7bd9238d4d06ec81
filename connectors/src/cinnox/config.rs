//! What a flow and `accounts.yaml` say about CINNOX.

use flows::yaml::Node;
use flows::{Cx, Diagnostic, FieldKind, FieldSpec, OneOrMany, Pos, RateLimit, Secret};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::card::{Action, Call, Card, Part};
use crate::sections;

// The calls CINNOX's code makes, each written once: the card lists them, the code
// fills them (`Account::path`).

/// Switches an event family's webhook on or off.
pub const EVENT_SUB: Call = Call::new(
    engine::Method::Patch,
    "/v1/api/apps/{app_id}/{family}-event-sub",
);
/// Sends an IM to staff or a room.
pub const MESSAGE_PUSH: Call =
    Call::new(engine::Method::Post, "/v1/api/apps/{app_id}/message-push");
/// Sends an SMS (the path the flow gives).
pub const APP_PATH_POST: Call = Call::new(engine::Method::Post, "/v1/api/apps/{app_id}/{path}");
/// Creates an external contact.
pub const CREATE_CONTACT: Call = Call::new(
    engine::Method::Post,
    "/v1/api/apps/{app_id}/management/create_externalcontact",
);
/// Updates an external contact.
pub const UPDATE_CONTACT: Call = Call::new(
    engine::Method::Put,
    "/v1/api/apps/{app_id}/management/update_externalcontact/{contactID}",
);
/// Lists external contacts.
pub const CONTACT_LIST: Call = Call::new(
    engine::Method::Get,
    "/v1/api/apps/{app_id}/contacts/extcontact-list",
);
/// Reads an enquiry.
pub const ENQUIRY: Call = Call::new(
    engine::Method::Get,
    "/v1/api/apps/{app_id}/data/enquiry-detail",
);
/// Lists numbers (the path the flow gives).
pub const APP_PATH_GET: Call = Call::new(engine::Method::Get, "/v1/api/apps/{app_id}/{path}");

/// `connector: cinnox`.
pub const CARD: Card = Card {
    name: "cinnox",
    about: "CINNOX: events it pushes, messages, SMS, contacts and look-ups",
    source: Some(
        Part::of::<SourceOptions>(
            "events CINNOX pushes to the daemon once the event subscription is set",
        )
        .calling(&[EVENT_SUB]),
    ),
    actions: &[
        Action {
            name: "send_im_staff",
            about: "an instant message to a staff member",
            calls: &[MESSAGE_PUSH],
            fields: IM_STAFF_FIELDS,
            options: None,
        },
        Action {
            name: "send_im_room",
            about: "an instant message to a room (group chat)",
            calls: &[MESSAGE_PUSH],
            fields: IM_ROOM_FIELDS,
            options: None,
        },
        Action {
            name: "send_sms",
            about: "an SMS from a number of the CINNOX service",
            calls: &[APP_PATH_POST],
            fields: SMS_FIELDS,
            options: Some(<SendSms as JsonSchema>::json_schema),
        },
        Action {
            name: "create_contact",
            about: "create an external contact",
            calls: &[CREATE_CONTACT],
            fields: CONTACT_FIELDS,
            options: None,
        },
        Action {
            name: "update_contact",
            about: "update an external contact",
            calls: &[UPDATE_CONTACT],
            fields: UPDATE_CONTACT_FIELDS,
            options: None,
        },
    ],
    lookups: &[
        Action {
            name: "get_contact",
            about: "the external contact whose full name is the query (case and spacing ignored)",
            calls: &[CONTACT_LIST],
            fields: &[],
            options: None,
        },
        Action {
            name: "get_enquiry",
            about: "the enquiry whose display case number is the query",
            calls: &[ENQUIRY],
            fields: &[],
            options: None,
        },
        Action {
            name: "list_numbers",
            about: "the service's numbers of the type the query names (`cli`, `sms-numbers`, …)",
            calls: &[APP_PATH_GET],
            fields: &[],
            options: Some(<LookupOptions as JsonSchema>::json_schema),
        },
    ],
    account: Some(Part::of::<Account>(
        "a service account: App ID, App Token (bearer) and Base URL",
    )),
};

/// Every CINNOX event a flow can take.
pub const EVENTS: &[&str] = &[
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

/// Events CINNOX pushes to the daemon at `/hooks/<flow>`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceOptions {
    /// A `cinnox` account (App ID, App Token, Base URL).
    pub account: String,
    /// The events this flow takes (`enquiry.missed`, `contact.created`, …).
    pub events: OneOrMany,
    /// The URL CINNOX can reach for this flow's webhook; default: the daemon's own address.
    #[serde(default)]
    pub public_url: Option<String>,
}

/// A CINNOX source, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub account: String,
    pub events: Vec<String>,
    pub public_url: Option<String>,
    pub pos: Pos,
}

pub fn source(cx: &Cx<'_>, rest: &Node, pos: Pos) -> Result<Source, Diagnostic> {
    let raw: SourceOptions = sections::options(cx, rest, "source")?;
    let events = sections::events(cx, rest, raw.events, EVENTS, "CINNOX", "enquiry.missed")?;
    sections::public_url(cx, rest, raw.public_url.as_deref())?;
    Ok(Source {
        account: raw.account,
        events,
        public_url: raw.public_url,
        pos,
    })
}

/// `send_sms`: CINNOX documents the SMS body (`senderNumber`, `recipientNumber`, `text`,
/// as its OTP SMS) but not the path.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendSms {
    /// The path under `/v1/api/apps/{app_id}/` (CINNOX does not document it).
    #[serde(default = "default_sms_path")]
    pub path: String,
    /// The most billed SMS parts a text may make (1 to 255; default 10).
    #[serde(default)]
    #[schemars(extend("default" = 10), range(min = 1, max = 255))]
    pub max_parts: Option<usize>,
}

fn default_sms_path() -> String {
    "send_sms".into()
}

/// A CINNOX receiver, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Receiver {
    ImStaff,
    ImRoom,
    SendSms(SendSms),
    CreateContact,
    UpdateContact,
}

pub const IM_STAFF_FIELDS: &[FieldSpec] = &[
    FieldSpec::optional(
        "roomID",
        FieldKind::Text,
        "the room of a conversation with the staff member (the guide asks only for the staff id and the text)",
    ),
    FieldSpec::required("receiverEID", FieldKind::Text, "the staff member's id"),
    FieldSpec::required("text", FieldKind::Text, "the message").max_chars(5000),
];

pub const IM_ROOM_FIELDS: &[FieldSpec] = &[
    FieldSpec::required("roomID", FieldKind::Text, "the room (group chat) id"),
    FieldSpec::required("text", FieldKind::Text, "the message").max_chars(5000),
];

pub const SMS_FIELDS: &[FieldSpec] = &[
    FieldSpec::optional(
        "numberType",
        FieldKind::OneOf(&["access-numbers", "cli", "sms-numbers"]),
        "the kind of the sender number, as `list_numbers` names them",
    ),
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
pub const CONTACT_FIELDS: &[FieldSpec] = &CONTACT;

const CONTACT: [FieldSpec; 21] = [
    FieldSpec::optional("firstName", FieldKind::Text, "first name").max_chars(50),
    FieldSpec::optional("lastName", FieldKind::Text, "last name").max_chars(50),
    FieldSpec::optional(
        "level",
        FieldKind::OneOf(&["Primary", "Secondary", "Tertiary"]),
        "contact level",
    )
    .default("Primary"),
    FieldSpec::optional(
        "type",
        FieldKind::OneOf(&["Lead", "Prospect", "Customer", "Others"]),
        "contact type",
    )
    .default("Lead"),
    FieldSpec::optional(
        "phoneType",
        FieldKind::OneOf(&["Mobile", "Work", "Home", "Other"]),
        "type of `phone`",
    )
    .default("Mobile"),
    FieldSpec::optional("phone", FieldKind::Phone, "country code and number"),
    FieldSpec::optional(
        "emailType",
        FieldKind::OneOf(&["Work", "Personal", "Other"]),
        "type of `email`",
    )
    .default("Work"),
    FieldSpec::optional("email", FieldKind::Text, "email address"),
    FieldSpec::optional("company", FieldKind::Text, "company name").max_chars(100),
    FieldSpec::optional("jobTitle", FieldKind::Text, "job title").max_chars(100),
    FieldSpec::optional("team", FieldKind::Text, "team").max_chars(100),
    FieldSpec::optional("group", FieldKind::Text, "group").max_chars(100),
    FieldSpec::optional(
        "language",
        FieldKind::Text,
        "language code: ISO 639-1 (`en`) or with a script or region (`zh-hans`, `zh-hant`)",
    )
    .max_chars(16),
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
pub const UPDATE_CONTACT_FIELDS: &[FieldSpec] = &sections::concat::<1, 21, 22>(
    [FieldSpec::required(
        "contactID",
        FieldKind::Text,
        "the external contact to update",
    )],
    CONTACT,
);

impl Receiver {
    pub fn fields(&self) -> &'static [FieldSpec] {
        match self {
            Receiver::ImStaff => IM_STAFF_FIELDS,
            Receiver::ImRoom => IM_ROOM_FIELDS,
            Receiver::SendSms(_) => SMS_FIELDS,
            Receiver::CreateContact => CONTACT_FIELDS,
            Receiver::UpdateContact => UPDATE_CONTACT_FIELDS,
        }
    }
}

pub fn receiver(cx: &Cx<'_>, action: &str, rest: &Node, pos: Pos) -> Result<Receiver, Diagnostic> {
    if action == "send_sms" {
        let sms: SendSms = sections::options(cx, rest, "receiver")?;
        sections::max_parts(cx, rest, pos, sms.max_parts)?;
        return Ok(Receiver::SendSms(sms));
    }
    sections::no_options(cx, rest)?;
    match action {
        "send_im_staff" => Ok(Receiver::ImStaff),
        "send_im_room" => Ok(Receiver::ImRoom),
        "create_contact" => Ok(Receiver::CreateContact),
        "update_contact" => Ok(Receiver::UpdateContact),
        other => Err(cx.problem(pos, format!("`cinnox` has no action `{other}`"))),
    }
}

/// A look-up's options.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupOptions {
    /// `list_numbers`: the path of the number list (CINNOX documents the list but not its
    /// path); `{query}` stands for the rendered query. Default `numbers?type={query}`.
    #[serde(default)]
    pub path: Option<String>,
}

/// A CINNOX look-up, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    Contact,
    Enquiry,
    Numbers { path: String },
}

pub fn lookup(cx: &Cx<'_>, action: &str, rest: &Node, pos: Pos) -> Result<Lookup, Diagnostic> {
    let options: LookupOptions = sections::options(cx, rest, "lookup")?;
    match action {
        "get_contact" => Ok(Lookup::Contact),
        "get_enquiry" => Ok(Lookup::Enquiry),
        "list_numbers" => Ok(Lookup::Numbers {
            path: options
                .path
                .unwrap_or_else(|| super::DEFAULT_NUMBERS_PATH.into()),
        }),
        other => Err(cx.problem(pos, format!("unknown `cinnox` look-up `{other}`"))),
    }
}

/// A CINNOX service account: App ID, App Token and Base URL as CINNOX generates them
/// (Administration > Service Integration > API).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The App ID.
    pub app_id: String,
    /// The App Token.
    pub app_token: Secret,
    /// The Base URL CINNOX shows with them.
    pub base_url: String,
    /// Calls per period shared by every flow using the account (default: the documented
    /// 500 requests per minute per service account).
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

pub fn account(cx: &Cx<'_>, name: &str, rest: &Node) -> Result<Account, Vec<Diagnostic>> {
    let account: Account = sections::options(cx, rest, name).map_err(|d| vec![d])?;
    sections::url(
        cx,
        rest,
        "base_url",
        &account.base_url,
        "copy the Base URL from CINNOX: Administration > Service Integration > API",
    )?;
    Ok(account)
}

impl Account {
    /// The path of `call` in this account's app, its other placeholder (a contact's id,
    /// an event family, a path the flow gives) filled by `value`.
    pub fn path(&self, call: Call, value: &str) -> String {
        call.path_with(|name| {
            Ok::<_, std::convert::Infallible>(match name {
                "app_id" => self.app_id.to_string(),
                _ => value.to_string(),
            })
        })
        .unwrap_or_else(|never| match never {})
    }

    pub fn secrets(&self) -> Vec<Secret> {
        vec![self.app_token.clone()]
    }

    /// The account's client for its app's Open API (paths from [`Account::path`]): the
    /// App Token as bearer, paced by its rate limit.
    pub fn client(&self, name: &str) -> crate::http::AccountClient {
        crate::http::AccountClient::new(
            name,
            self.base_url.trim_end_matches('/'),
            crate::http::Auth::Bearer(self.app_token.clone()),
            self.rate_limit.unwrap_or(super::DEFAULT_RATE_LIMIT),
        )
    }
}
