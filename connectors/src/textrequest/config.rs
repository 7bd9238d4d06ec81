//! What a flow and `accounts.yaml` say about Text Request.

use flows::yaml::Node;
use flows::{Backlog, Cx, Diagnostic, FieldKind, FieldSpec, OneOrMany, Pos, RateLimit, Secret};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::card::{Action, Call, Card, Part};
use crate::sections;

// The calls Text Request's code makes, each written once: the card lists them, the
// code fills them (`Call::path_with`). Actions run from their card alone
// (`crate::declared`) keep their call in the card only.

/// Registers a hook.
pub const HOOKS: Call = Call::new(engine::Method::Post, "/dashboards/{dashboard_id}/hooks");
/// Removes a hook.
pub const HOOK: Call = Call::new(
    engine::Method::Delete,
    "/dashboards/{dashboard_id}/hooks/{hook_id}",
);
/// A page of payments (`reads: payments`).
pub const PAYMENTS_PAGE: Call = Call::new(
    engine::Method::Get,
    "/dashboards/{dashboard_id}/payments?page={page}&page_size=100",
);
/// A page of contacts (`reads: contacts`).
pub const CONTACTS_PAGE: Call = Call::new(
    engine::Method::Get,
    "/dashboards/{dashboard_id}/contacts?page={page}&page_size=100",
);
/// Sends a text.
pub const MESSAGE: Call = Call::new(
    engine::Method::Post,
    "/dashboards/{dashboard_id}/contacts/{phone_number}/messages",
);
/// Creates or updates a contact.
pub const CONTACT: Call = Call::new(
    engine::Method::Post,
    "/dashboards/{dashboard_id}/contacts/{phone_number}",
);
/// The bulk update of contacts.
pub const CONTACTS: Call = Call::new(engine::Method::Post, "/dashboards/{dashboard_id}/contacts");
/// Reads a payment.
pub const GET_PAYMENT: Call = Call::new(
    engine::Method::Get,
    "/dashboards/{dashboard_id}/payments/{payment_id}",
);
/// Reads a contact group.
pub const GET_GROUP: Call = Call::new(
    engine::Method::Get,
    "/dashboards/{dashboard_id}/groups/{group_id}",
);
/// Reads a dashboard.
pub const GET_DASHBOARD: Call = Call::new(engine::Method::Get, "/dashboards/{dashboard}");
/// Lists tags.
pub const LIST_TAGS: Call = Call::new(
    engine::Method::Get,
    "/dashboards/{dashboard_id}/tags?page=0&page_size=100",
);
/// Lists custom fields.
pub const LIST_FIELDS: Call = Call::new(engine::Method::Get, "/dashboards/{dashboard_id}/fields");
/// Lists contact groups.
pub const LIST_GROUPS: Call = Call::new(
    engine::Method::Get,
    "/dashboards/{dashboard_id}/groups?page=0&page_size=100",
);
/// Lists conversations (with `search=` the query, unless it is `*`).
pub const LIST_CONVERSATIONS: Call = Call::new(
    engine::Method::Get,
    "/dashboards/{dashboard_id}/conversations?page=0&page_size=100",
);
/// Lists the account's dashboards.
pub const LIST_DASHBOARDS: Call =
    Call::new(engine::Method::Get, "/dashboards?page=0&page_size=100");
/// Reads a contact.
pub const GET_CONTACT: Call = Call::new(
    engine::Method::Get,
    "/dashboards/{dashboard_id}/contacts/{phone_number}",
);
/// Reads a conversation's latest page.
pub const GET_MESSAGES: Call = Call::new(
    engine::Method::Get,
    "/dashboards/{dashboard_id}/contacts/{phone_number}/messages?page=0&page_size=50",
);

/// `connector: textrequest`.
pub const CARD: Card = Card {
    name: "textrequest",
    about: "Text Request: texts and contacts of a dashboard (phone line)",
    source: Some(Part::of::<SourceOptions>("texts sent or received, pushed to the daemon once the hook is registered; or, with `reads: payments` / `contacts`, payments or contacts new or changed since the last run").calling(&[
            HOOKS,
            HOOK,
            PAYMENTS_PAGE,
            CONTACTS_PAGE,
        ])),
    actions: &[
        Action {
            name: "send_message",
            about: "send a text to a contact (created if new)",
            calls: &[MESSAGE],
            fields: MESSAGE_FIELDS,
            options: Some(<Dashboard as JsonSchema>::json_schema),
        },
        Action {
            name: "upsert_contact",
            about: "create or update a contact (runs of 20 or more through the bulk update with `batch`)",
            calls: &[
                CONTACT,
                CONTACTS,
            ],
            fields: CONTACT_FIELDS,
            options: Some(<ContactOptions as JsonSchema>::json_schema),
        },
        Action {
            name: "archive_conversation",
            about: "archive a conversation (it comes back when either side texts)",
            calls: &[Call::new(
                engine::Method::Put,
                "/dashboards/{dashboard_id}/contacts/{phone_number}/conversations/archive",
            )],
            fields: ARCHIVE_FIELDS,
            options: Some(<Dashboard as JsonSchema>::json_schema),
        },
        Action {
            name: "unarchive_conversation",
            about: "bring an archived conversation back",
            calls: &[Call::new(
                engine::Method::Put,
                "/dashboards/{dashboard_id}/contacts/{phone_number}/conversations/unarchive",
            )],
            fields: UNARCHIVE_FIELDS,
            options: Some(<Dashboard as JsonSchema>::json_schema),
        },
        Action {
            name: "create_payment",
            about: "request a payment: the contact gets a text with a payment link",
            calls: &[Call::new(engine::Method::Post, "/dashboards/{dashboard_id}/payments")],
            fields: CREATE_PAYMENT_FIELDS,
            options: Some(<Dashboard as JsonSchema>::json_schema),
        },
        Action {
            name: "mark_payment_paid",
            about: "mark a payment as paid (paid outside Text Request)",
            calls: &[Call::new(
                engine::Method::Post,
                "/dashboards/{dashboard_id}/payments/{payment_id}/mark_as_paid",
            )],
            fields: PAYMENT_FIELDS,
            options: Some(<Dashboard as JsonSchema>::json_schema),
        },
        Action {
            name: "send_payment_reminder",
            about: "text the contact a reminder of an unpaid payment",
            calls: &[Call::new(
                engine::Method::Post,
                "/dashboards/{dashboard_id}/payments/{payment_id}/resend",
            )],
            fields: PAYMENT_FIELDS,
            options: Some(<Dashboard as JsonSchema>::json_schema),
        },
        Action {
            name: "cancel_payment",
            about: "cancel a payment",
            calls: &[Call::new(
                engine::Method::Post,
                "/dashboards/{dashboard_id}/payments/{payment_id}/cancel",
            )],
            fields: PAYMENT_FIELDS,
            options: Some(<Dashboard as JsonSchema>::json_schema),
        },
        Action {
            name: "create_group",
            about: "create a contact group",
            calls: &[Call::new(engine::Method::Post, "/dashboards/{dashboard_id}/groups")],
            fields: CREATE_GROUP_FIELDS,
            options: Some(<Dashboard as JsonSchema>::json_schema),
        },
        Action {
            name: "update_group",
            about: "rename a contact group or change its notes",
            calls: &[Call::new(
                engine::Method::Put,
                "/dashboards/{dashboard_id}/groups/{group_id}",
            )],
            fields: UPDATE_GROUP_FIELDS,
            options: Some(<Dashboard as JsonSchema>::json_schema),
        },
        Action {
            name: "delete_group",
            about: "delete a contact group",
            calls: &[Call::new(
                engine::Method::Delete,
                "/dashboards/{dashboard_id}/groups/{group_id}",
            )],
            fields: GROUP_FIELDS,
            options: Some(<Dashboard as JsonSchema>::json_schema),
        },
        Action {
            name: "create_dashboard",
            about: "create a dashboard (a phone line) on the account",
            calls: &[Call::new(engine::Method::Post, "/dashboards")],
            fields: CREATE_DASHBOARD_FIELDS,
            options: None,
        },
        Action {
            name: "rename_dashboard",
            about: "rename one of the account's dashboards",
            calls: &[Call::new(engine::Method::Put, "/dashboards/{dashboard}")],
            fields: RENAME_DASHBOARD_FIELDS,
            options: None,
        },
        Action {
            name: "delete_dashboard",
            about: "delete one of the account's dashboards",
            calls: &[Call::new(engine::Method::Delete, "/dashboards/{dashboard}")],
            fields: DASHBOARD_FIELDS,
            options: None,
        },
        Action {
            name: "delete_contact",
            about: "delete a contact (Text Request refuses one with message history)",
            calls: &[Call::new(
                engine::Method::Delete,
                "/dashboards/{dashboard_id}/contacts/{phone_number}",
            )],
            fields: DELETE_FIELDS,
            options: Some(<Dashboard as JsonSchema>::json_schema),
        },
    ],
    lookups: &[
        Action {
            name: "get_payment",
            about: "the payment whose number is the query",
            calls: &[GET_PAYMENT],
            fields: &[],
            options: Some(<Dashboard as JsonSchema>::json_schema),
        },
        Action {
            name: "get_group",
            about: "the contact group whose number is the query",
            calls: &[GET_GROUP],
            fields: &[],
            options: Some(<Dashboard as JsonSchema>::json_schema),
        },
        Action {
            name: "get_dashboard",
            about: "the account's dashboard whose number is the query",
            calls: &[GET_DASHBOARD],
            fields: &[],
            options: None,
        },
        Action {
            name: "list_tags",
            about: "the dashboard's tags whose name holds the query (`*`: all)",
            calls: &[LIST_TAGS],
            fields: &[],
            options: Some(<Dashboard as JsonSchema>::json_schema),
        },
        Action {
            name: "list_custom_fields",
            about: "the dashboard's custom fields whose name holds the query (`*`: all): their ids for `custom_fields`",
            calls: &[LIST_FIELDS],
            fields: &[],
            options: Some(<Dashboard as JsonSchema>::json_schema),
        },
        Action {
            name: "list_groups",
            about: "the dashboard's contact groups whose name holds the query (`*`: all)",
            calls: &[LIST_GROUPS],
            fields: &[],
            options: Some(<Dashboard as JsonSchema>::json_schema),
        },
        Action {
            name: "list_conversations",
            about: "the dashboard's conversations Text Request finds for the query (its `search`; `*`: all)",
            calls: &[LIST_CONVERSATIONS],
            fields: &[],
            options: Some(<Dashboard as JsonSchema>::json_schema),
        },
        Action {
            name: "list_dashboards",
            about: "the account's dashboards whose name holds the query (`*`: all)",
            calls: &[LIST_DASHBOARDS],
            fields: &[],
            options: None,
        },
        Action {
            name: "get_contact",
            about: "the contact whose phone number is the query",
            calls: &[GET_CONTACT],
            fields: &[],
            options: Some(<Dashboard as JsonSchema>::json_schema),
        },
        Action {
            name: "get_messages",
            about:
                "the latest messages (up to 50) of the conversation with the query's phone number",
            calls: &[GET_MESSAGES],
            fields: &[],
            options: Some(<Dashboard as JsonSchema>::json_schema),
        },
    ],
    account: Some(
        Part::of::<Account>("an API key (header `x-api-key`)")
            .calling(&[LIST_DASHBOARDS.noted("`accounts check`")]),
    ),
};

/// Every Text Request event a flow can take.
pub const EVENTS: &[&str] = &["msg_received", "msg_sent"];

/// Texts sent or received on a Text Request dashboard, pushed to the daemon at
/// `/hooks/<flow>` once the URL is registered with the dashboard's hooks.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceOptions {
    /// A `textrequest` account.
    pub account: String,
    /// The dashboard (phone line) whose texts the flow takes.
    pub dashboard_id: u64,
    /// `msg_received`, `msg_sent`, or both (texts pushed to the daemon).
    #[serde(default)]
    pub events: Option<OneOrMany>,
    /// The URL Text Request can reach for this flow's webhook; default: the daemon's own
    /// address.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Read instead of being pushed to: `payments` — the dashboard's payments that are new
    /// or whose status changed since the last run; `contacts` — its contacts that are new
    /// or changed.
    #[serde(default)]
    pub reads: Option<Reads>,
    /// With `reads`: Text Request's own list filters, as its query parameters (for
    /// contacts `tags`, `groups`, `is_archived`, `contact_created_after`, …; for payments
    /// `reference_number`, `phone_number`).
    #[serde(default)]
    pub filter: std::collections::BTreeMap<String, String>,
    /// With `reads`: only payments in this Text Request status (e.g. `paid`).
    #[serde(default)]
    pub status: Option<String>,
    /// With `reads`, the first run: send what is there already (`send`) or only remember
    /// it (`skip`).
    #[serde(default)]
    #[schemars(extend("default" = "skip"))]
    pub backlog: Backlog,
}

/// What a Text Request source reads on each run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reads {
    Payments,
    Contacts,
}

/// A Text Request source, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub account: String,
    pub dashboard_id: u64,
    pub events: Vec<String>,
    pub public_url: Option<String>,
    /// Read on each run instead of pushed ([`Reads`]), with its status filter.
    pub reads: Option<Reads>,
    pub status: Option<String>,
    pub filter: std::collections::BTreeMap<String, String>,
    pub backlog: Backlog,
    pub pos: Pos,
}

pub fn source(cx: &Cx<'_>, rest: &Node, pos: Pos) -> Result<Source, Diagnostic> {
    let raw: SourceOptions = sections::options(cx, rest, "source")?;
    let events = match (raw.reads, raw.events) {
        (Some(_), Some(_)) => {
            return Err(cx
                .problem(cx.at(rest, "events"), "`events` and `reads` do not go together")
                .with_hint("`events:` takes the texts Text Request pushes; `reads: payments` reads payments on each run"))
        }
        (Some(_), None) => {
            if raw.public_url.is_some() {
                return Err(cx.problem(
                    cx.at(rest, "public_url"),
                    "`public_url` is for pushed texts, not `reads`",
                ));
            }
            Vec::new()
        }
        (None, Some(events)) => {
            sections::events(cx, rest, events, EVENTS, "Text Request", "msg_received")?
        }
        (None, None) => {
            return Err(cx
                .problem(pos, "in `source`: missing field `events`")
                .with_hint("`events: [msg_received]` for texts pushed to the daemon, or `reads: payments`"))
        }
    };
    if raw.reads != Some(Reads::Payments) && raw.status.is_some() {
        return Err(cx.problem(
            cx.at(rest, "status"),
            "`status` goes with `reads: payments`",
        ));
    }
    if raw.reads.is_none() && !raw.filter.is_empty() {
        return Err(cx.problem(cx.at(rest, "filter"), "`filter` goes with `reads:`"));
    }
    sections::public_url(cx, rest, raw.public_url.as_deref())?;
    Ok(Source {
        account: raw.account,
        dashboard_id: raw.dashboard_id,
        events,
        public_url: raw.public_url,
        reads: raw.reads,
        status: raw.status,
        filter: raw.filter,
        backlog: raw.backlog,
        pos,
    })
}

/// The dashboard (phone line) an action works on.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dashboard {
    /// The dashboard's id (Text Request's dashboards list shows them).
    pub dashboard_id: u64,
}

/// The most contacts one bulk update may carry (Text Request documents no limit; this
/// keeps a request's size sane: 1,000 contacts are about 200 KB of JSON).
pub const MAX_BULK: usize = 1000;

/// `upsert_contact`'s options: the dashboard, and whether runs go through the bulk update.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactOptions {
    /// The dashboard's id (Text Request's dashboards list shows them).
    pub dashboard_id: u64,
    /// Send runs of 20 or more records through Text Request's bulk update
    /// (one call for this many contacts,
    /// 1 to 1000), keeping an outcome per record: far fewer of the 100 calls a minute.
    /// Off when absent.
    #[serde(default)]
    pub batch: Option<usize>,
}

/// A Text Request receiver, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Receiver {
    SendMessage(Dashboard),
    UpsertContact(ContactOptions),
    ArchiveConversation(Dashboard),
    UnarchiveConversation(Dashboard),
    DeleteContact(Dashboard),
    CreatePayment(Dashboard),
    MarkPaymentPaid(Dashboard),
    SendPaymentReminder(Dashboard),
    CancelPayment(Dashboard),
    CreateGroup(Dashboard),
    UpdateGroup(Dashboard),
    DeleteGroup(Dashboard),
    CreateDashboard,
    RenameDashboard,
    DeleteDashboard,
}

/// A Text Request look-up, checked: what it reads, on which dashboard.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    Contact(Dashboard),
    Messages(Dashboard),
    Payment(Dashboard),
    Group(Dashboard),
    Dashboard,
    /// A list of the dashboard's (or, with no dashboard, the account's) items whose name
    /// holds the query.
    List(List, Option<Dashboard>),
}

/// The lists a look-up reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    Tags,
    CustomFields,
    Groups,
    Conversations,
    Dashboards,
}

pub fn lookup(cx: &Cx<'_>, action: &str, rest: &Node, pos: Pos) -> Result<Lookup, Diagnostic> {
    match action {
        "get_contact" => Ok(Lookup::Contact(sections::options(cx, rest, "lookup")?)),
        "get_messages" => Ok(Lookup::Messages(sections::options(cx, rest, "lookup")?)),
        "get_payment" => Ok(Lookup::Payment(sections::options(cx, rest, "lookup")?)),
        "get_group" => Ok(Lookup::Group(sections::options(cx, rest, "lookup")?)),
        "get_dashboard" => {
            sections::no_options(cx, rest)?;
            Ok(Lookup::Dashboard)
        }
        "list_dashboards" => {
            sections::no_options(cx, rest)?;
            Ok(Lookup::List(List::Dashboards, None))
        }
        "list_tags" | "list_custom_fields" | "list_groups" | "list_conversations" => {
            let list = match action {
                "list_tags" => List::Tags,
                "list_custom_fields" => List::CustomFields,
                "list_groups" => List::Groups,
                _ => List::Conversations,
            };
            Ok(Lookup::List(
                list,
                Some(sections::options(cx, rest, "lookup")?),
            ))
        }
        other => Err(cx.problem(pos, format!("unknown `textrequest` look-up `{other}`"))),
    }
}

pub const MESSAGE_FIELDS: &[FieldSpec] = &[
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

pub const CONTACT_FIELDS: &[FieldSpec] = &[
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
    FieldSpec::optional(
        "custom_fields",
        FieldKind::Json,
        "the dashboard's custom fields: [{id: <field guid>, value: <text>}]",
    ),
];

pub const ARCHIVE_FIELDS: &[FieldSpec] = &[FieldSpec::required(
    "phone_number",
    FieldKind::Phone,
    "the contact whose conversation is archived (goes in the URL path)",
)];

pub const UNARCHIVE_FIELDS: &[FieldSpec] = &[FieldSpec::required(
    "phone_number",
    FieldKind::Phone,
    "the contact whose conversation comes back (goes in the URL path)",
)];

pub const DELETE_FIELDS: &[FieldSpec] = &[FieldSpec::required(
    "phone_number",
    FieldKind::Phone,
    "the contact to delete (goes in the URL path)",
)];

pub const CREATE_PAYMENT_FIELDS: &[FieldSpec] = &[
    FieldSpec::required(
        "customer_phone",
        FieldKind::Phone,
        "the contact the payment request is texted to",
    ),
    FieldSpec::required(
        "amount_requested",
        FieldKind::Number,
        "the amount in dollars, e.g. 12.50",
    ),
    FieldSpec::optional(
        "message",
        FieldKind::Text,
        "the text sent with the payment link",
    ),
    FieldSpec::optional(
        "description",
        FieldKind::Text,
        "for your team only (the contact does not see it)",
    ),
    FieldSpec::optional(
        "reference_number",
        FieldKind::Text,
        "your id for the payment, to find it again",
    ),
];

pub const CREATE_DASHBOARD_FIELDS: &[FieldSpec] = &[
    FieldSpec::required("name", FieldKind::Text, "the dashboard's name"),
    FieldSpec::optional("phone", FieldKind::Phone, "the texting number of the line"),
];

pub const RENAME_DASHBOARD_FIELDS: &[FieldSpec] = &[
    FieldSpec::required(
        "dashboard",
        FieldKind::Integer,
        "the dashboard's number (goes in the URL path)",
    ),
    FieldSpec::required("name", FieldKind::Text, "its new name"),
];

pub const DASHBOARD_FIELDS: &[FieldSpec] = &[FieldSpec::required(
    "dashboard",
    FieldKind::Integer,
    "the dashboard's number (goes in the URL path)",
)];

pub const CREATE_GROUP_FIELDS: &[FieldSpec] = &[
    FieldSpec::required("name", FieldKind::Text, "the group's name"),
    FieldSpec::optional(
        "notes",
        FieldKind::Text,
        "a short phrase describing the group",
    ),
];

pub const UPDATE_GROUP_FIELDS: &[FieldSpec] = &[
    FieldSpec::required(
        "group_id",
        FieldKind::Integer,
        "the group's number (goes in the URL path)",
    ),
    FieldSpec::optional("name", FieldKind::Text, "the group's new name"),
    FieldSpec::optional(
        "notes",
        FieldKind::Text,
        "a short phrase describing the group",
    ),
];

pub const GROUP_FIELDS: &[FieldSpec] = &[FieldSpec::required(
    "group_id",
    FieldKind::Integer,
    "the group's number (goes in the URL path)",
)];

pub const PAYMENT_FIELDS: &[FieldSpec] = &[FieldSpec::required(
    "payment_id",
    FieldKind::Integer,
    "the payment's number (goes in the URL path)",
)];

impl Receiver {
    /// Its action's name on the card.
    pub fn action(&self) -> &'static str {
        match self {
            Receiver::SendMessage(_) => "send_message",
            Receiver::UpsertContact(_) => "upsert_contact",
            Receiver::ArchiveConversation(_) => "archive_conversation",
            Receiver::UnarchiveConversation(_) => "unarchive_conversation",
            Receiver::DeleteContact(_) => "delete_contact",
            Receiver::CreatePayment(_) => "create_payment",
            Receiver::MarkPaymentPaid(_) => "mark_payment_paid",
            Receiver::SendPaymentReminder(_) => "send_payment_reminder",
            Receiver::CancelPayment(_) => "cancel_payment",
            Receiver::CreateGroup(_) => "create_group",
            Receiver::UpdateGroup(_) => "update_group",
            Receiver::DeleteGroup(_) => "delete_group",
            Receiver::CreateDashboard => "create_dashboard",
            Receiver::RenameDashboard => "rename_dashboard",
            Receiver::DeleteDashboard => "delete_dashboard",
        }
    }

    pub fn fields(&self) -> &'static [FieldSpec] {
        match self {
            Receiver::SendMessage(_) => MESSAGE_FIELDS,
            Receiver::UpsertContact(_) => CONTACT_FIELDS,
            Receiver::ArchiveConversation(_) => ARCHIVE_FIELDS,
            Receiver::UnarchiveConversation(_) => UNARCHIVE_FIELDS,
            Receiver::DeleteContact(_) => DELETE_FIELDS,
            Receiver::CreatePayment(_) => CREATE_PAYMENT_FIELDS,
            Receiver::MarkPaymentPaid(_)
            | Receiver::SendPaymentReminder(_)
            | Receiver::CancelPayment(_) => PAYMENT_FIELDS,
            Receiver::CreateGroup(_) => CREATE_GROUP_FIELDS,
            Receiver::UpdateGroup(_) => UPDATE_GROUP_FIELDS,
            Receiver::DeleteGroup(_) => GROUP_FIELDS,
            Receiver::CreateDashboard => CREATE_DASHBOARD_FIELDS,
            Receiver::RenameDashboard => RENAME_DASHBOARD_FIELDS,
            Receiver::DeleteDashboard => DASHBOARD_FIELDS,
        }
    }

    pub fn dashboard_id(&self) -> u64 {
        match self {
            Receiver::UpsertContact(c) => c.dashboard_id,
            Receiver::SendMessage(d)
            | Receiver::ArchiveConversation(d)
            | Receiver::UnarchiveConversation(d)
            | Receiver::DeleteContact(d)
            | Receiver::CreatePayment(d)
            | Receiver::MarkPaymentPaid(d)
            | Receiver::SendPaymentReminder(d)
            | Receiver::CancelPayment(d)
            | Receiver::CreateGroup(d)
            | Receiver::UpdateGroup(d)
            | Receiver::DeleteGroup(d) => d.dashboard_id,
            // These act on the account's dashboards: the record names the one.
            Receiver::CreateDashboard | Receiver::RenameDashboard | Receiver::DeleteDashboard => 0,
        }
    }
}

pub fn receiver(cx: &Cx<'_>, action: &str, rest: &Node, pos: Pos) -> Result<Receiver, Diagnostic> {
    match action {
        "send_message" => Ok(Receiver::SendMessage(sections::options(
            cx, rest, "receiver",
        )?)),
        "upsert_contact" => {
            let options: ContactOptions = sections::options(cx, rest, "receiver")?;
            if options.batch.is_some_and(|n| !(1..=MAX_BULK).contains(&n)) {
                return Err(cx
                    .problem(
                        cx.at(rest, "batch"),
                        format!("`batch` must be between 1 and {MAX_BULK}"),
                    )
                    .with_hint("the contacts one bulk update carries; 100 is plenty for most"));
            }
            Ok(Receiver::UpsertContact(options))
        }
        "archive_conversation" => Ok(Receiver::ArchiveConversation(sections::options(
            cx, rest, "receiver",
        )?)),
        "unarchive_conversation" => Ok(Receiver::UnarchiveConversation(sections::options(
            cx, rest, "receiver",
        )?)),
        "delete_contact" => Ok(Receiver::DeleteContact(sections::options(
            cx, rest, "receiver",
        )?)),
        "create_payment" => Ok(Receiver::CreatePayment(sections::options(
            cx, rest, "receiver",
        )?)),
        "mark_payment_paid" => Ok(Receiver::MarkPaymentPaid(sections::options(
            cx, rest, "receiver",
        )?)),
        "send_payment_reminder" => Ok(Receiver::SendPaymentReminder(sections::options(
            cx, rest, "receiver",
        )?)),
        "cancel_payment" => Ok(Receiver::CancelPayment(sections::options(
            cx, rest, "receiver",
        )?)),
        "create_group" => Ok(Receiver::CreateGroup(sections::options(
            cx, rest, "receiver",
        )?)),
        "update_group" => Ok(Receiver::UpdateGroup(sections::options(
            cx, rest, "receiver",
        )?)),
        "delete_group" => Ok(Receiver::DeleteGroup(sections::options(
            cx, rest, "receiver",
        )?)),
        "create_dashboard" | "rename_dashboard" | "delete_dashboard" => {
            sections::no_options(cx, rest)?;
            Ok(match action {
                "create_dashboard" => Receiver::CreateDashboard,
                "rename_dashboard" => Receiver::RenameDashboard,
                _ => Receiver::DeleteDashboard,
            })
        }
        other => Err(cx.problem(pos, format!("`textrequest` has no action `{other}`"))),
    }
}

/// A Text Request account: its API key (header `x-api-key`).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The API key (Text Request: Settings, API).
    pub api_key: Secret,
    /// The API, `/api/v3` included.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Calls per period shared by every flow using the account (default: the documented
    /// 100 calls per 60 s per connection).
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

fn default_base_url() -> String {
    "https://api.textrequest.com/api/v3".into()
}

pub fn account(cx: &Cx<'_>, name: &str, rest: &Node) -> Result<Account, Vec<Diagnostic>> {
    let account: Account = sections::options(cx, rest, name).map_err(|d| vec![d])?;
    sections::not_empty(cx, rest, "api_key", account.api_key.expose())?;
    sections::url(
        cx,
        rest,
        "base_url",
        &account.base_url,
        "for example `https://api.textrequest.com/api/v3` (the path includes /api/v3)",
    )?;
    Ok(account)
}

impl Account {
    pub fn secrets(&self) -> Vec<Secret> {
        vec![self.api_key.clone()]
    }

    /// The account's client: `x-api-key`, paced by its rate limit.
    pub fn client(&self, name: &str) -> crate::http::AccountClient {
        crate::http::AccountClient::new(
            name,
            &self.base_url,
            crate::http::Auth::Header("x-api-key", self.api_key.clone()),
            self.rate_limit.unwrap_or(super::client::DEFAULT_RATE_LIMIT),
        )
    }
}
