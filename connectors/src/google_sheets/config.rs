//! What a flow and `accounts.yaml` say about Google Sheets.

use std::path::PathBuf;

use flows::yaml::Node;
use flows::{Backlog, Cx, Diagnostic, FieldKind, FieldSpec, OneOrMany, Pos, RateLimit, Secret};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::card::{Action, Call, Card, Part};
use crate::sections;

// The calls Google Sheets' code makes, each written once: the card lists them, the code
// fills them (`Call::path_with`).

/// The sheet's grid size.
pub const GRID: Call = Call::new(
    engine::Method::Get,
    "/v4/spreadsheets/{spreadsheet_id}?ranges={range}&fields=sheets.properties.gridProperties.rowCount",
);
/// A range's values.
pub const VALUES: Call = Call::new(
    engine::Method::Get,
    "/v4/spreadsheets/{spreadsheet_id}/values/{range}?majorDimension=ROWS&valueRenderOption=FORMATTED_VALUE",
);
/// Appends rows after a range.
pub const APPEND: Call = Call::new(
    engine::Method::Post,
    "/v4/spreadsheets/{spreadsheet_id}/values/{range}:append?valueInputOption={input}&insertDataOption=INSERT_ROWS",
);
/// Changes cells.
pub const BATCH_UPDATE: Call = Call::new(
    engine::Method::Post,
    "/v4/spreadsheets/{spreadsheet_id}/values:batchUpdate",
);

/// The path of `call` for a spreadsheet and range (and an append's input option).
pub fn path(call: Call, spreadsheet_id: &str, range: &str, input: &str) -> String {
    call.path_with(|name| {
        Ok::<_, std::convert::Infallible>(match name {
            "spreadsheet_id" => spreadsheet_id.to_string(),
            "range" => range.to_string(),
            _ => input.to_string(),
        })
    })
    .unwrap_or_else(|never| match never {})
}

/// `connector: google_sheets`.
pub const CARD: Card = Card {
    name: "google_sheets",
    about: "Google Sheets: new rows of a range, rows appended, rows found and updated by a key column",
    source: Some(Part::of::<SourceOptions>("new rows of the range on each run (its first row is the header), read in pages of 10,000 rows").calling(&[
            GRID.noted("unless the range names its last row"),
            VALUES.noted("a page of its rows at a time"),
        ])),
    actions: &[Action {
        name: "append_row",
        about: "append one row per record after the range's last row (a service account: an API key cannot write)",
        calls: &[APPEND.noted("`valueInputOption=USER_ENTERED` with `input: user_entered`")],
        fields: APPEND_FIELDS,
        options: Some(<Append as JsonSchema>::json_schema),
    },
    Action {
        name: "update_row",
        about: "change the named cells of the row whose key column holds `find` (the first such row; a service account)",
        calls: &[VALUES, BATCH_UPDATE],
        fields: UPDATE_FIELDS,
        options: Some(<Keyed as JsonSchema>::json_schema),
    }],
    lookups: &[Action {
        name: "find_row",
        about: "the first row of the range whose key column holds the query, as its header names it (`_row`: its row number)",
        calls: &[VALUES],
        fields: &[],
        options: Some(<Keyed as JsonSchema>::json_schema),
    }],
    account: Some(Part::of::<Account>("an API key (public sheets) or a service account's key file").calling(&[Call::new(engine::Method::Post, "{token_url}")
            .noted("service accounts: a JWT for a bearer token")])),
};

/// `append_row`: the sheet rows are appended to.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Append {
    /// The long part of the sheet's URL: `/spreadsheets/d/<id>/edit`.
    pub spreadsheet_id: String,
    /// The table to append to, A1 notation (`Sheet1`, `'Contacts'!A:F`): the row goes
    /// after its last row.
    #[serde(default = "default_append_range")]
    pub range: String,
    /// How the sheet takes the cells written.
    #[serde(default)]
    pub input: Input,
}

/// How Sheets takes the cells a receiver writes: as they are (`raw`, the default — record
/// data such as `=HYPERLINK(…)` or `+380501234567` arrives as text, never as a live
/// formula), or as if typed into the sheet (`user_entered`: formulas run, numbers and
/// dates are parsed) for a flow that writes formulas on purpose.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    #[default]
    Raw,
    UserEntered,
}

impl Input {
    /// Google's name for it (`valueInputOption`).
    pub fn api(self) -> &'static str {
        match self {
            Input::Raw => "RAW",
            Input::UserEntered => "USER_ENTERED",
        }
    }
}

fn default_append_range() -> String {
    "Sheet1".into()
}

/// `append_row`'s map: the row's cells, in column order.
pub const APPEND_FIELDS: &[FieldSpec] = &[FieldSpec::required(
    "values",
    FieldKind::Json,
    "the row's cells in column order, each a template: [\"{{name}}\", \"{{phone}}\"]",
)];

/// `update_row` and `find_row`: a table whose rows are found by a key column.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Keyed {
    /// The long part of the sheet's URL: `/spreadsheets/d/<id>/edit`.
    pub spreadsheet_id: String,
    /// The table, A1 notation (`Sheet1`, `'Contacts'!A1:F`); its first row is the header.
    #[serde(default = "default_append_range")]
    pub range: String,
    /// The header of the column whose value finds the row (`order_id`).
    pub key: String,
    /// `update_row`: how the sheet takes the cells written ([`Input`]).
    #[serde(default)]
    pub input: Option<Input>,
}

/// `update_row`'s map: which row, and the cells to change.
pub const UPDATE_FIELDS: &[FieldSpec] = &[
    FieldSpec::required(
        "find",
        FieldKind::Text,
        "the key column's value of the row to change: \"{{order_id}}\"",
    ),
    FieldSpec::required(
        "values",
        FieldKind::Json,
        "the cells to change, by their column's header: {status: paid, paid_at: \"{{date}}\"}; the others are kept",
    ),
];

/// A Google Sheets receiver, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Receiver {
    AppendRow(Append),
    UpdateRow(Keyed),
}

impl Receiver {
    pub fn fields(&self) -> &'static [FieldSpec] {
        match self {
            Receiver::AppendRow(_) => APPEND_FIELDS,
            Receiver::UpdateRow(_) => UPDATE_FIELDS,
        }
    }
}

pub fn receiver(cx: &Cx<'_>, action: &str, rest: &Node, pos: Pos) -> Result<Receiver, Diagnostic> {
    match action {
        "append_row" => Ok(Receiver::AppendRow(sections::options(
            cx, rest, "receiver",
        )?)),
        "update_row" => Ok(Receiver::UpdateRow(keyed(cx, rest, "receiver")?)),
        other => Err(cx.problem(pos, format!("`google_sheets` has no action `{other}`"))),
    }
}

/// A Google Sheets look-up, checked: the row whose key column holds the query.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    FindRow(Keyed),
}

pub fn lookup(cx: &Cx<'_>, action: &str, rest: &Node, pos: Pos) -> Result<Lookup, Diagnostic> {
    match action {
        "find_row" => {
            let keyed = keyed(cx, rest, "lookup")?;
            if keyed.input.is_some() {
                return Err(cx
                    .problem(
                        cx.at(rest, "input"),
                        "`input` is for writing; a look-up reads",
                    )
                    .with_hint("remove it"));
            }
            Ok(Lookup::FindRow(keyed))
        }
        other => Err(cx.problem(pos, format!("unknown `google_sheets` look-up `{other}`"))),
    }
}

fn keyed(cx: &Cx<'_>, rest: &Node, section: &str) -> Result<Keyed, Diagnostic> {
    let keyed: Keyed = sections::options(cx, rest, section)?;
    if keyed.key.trim().is_empty() {
        return Err(cx
            .problem(cx.at(rest, "key"), "`key` is empty")
            .with_hint("the header of the column that finds the row, e.g. `key: order_id`"));
    }
    Ok(keyed)
}

/// "New spreadsheet rows" of a Google Sheets range; its first row is the header.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceOptions {
    /// A `google_sheets` account (an API key, or a service account's key file).
    pub account: String,
    /// The long part of the sheet's URL: `/spreadsheets/d/<id>/edit`.
    pub spreadsheet_id: String,
    /// A1 notation, e.g. `Sheet1!A1:Z` or `'My Sheet'!A:F`; its first row is the header.
    #[serde(default = "default_range")]
    pub range: String,
    /// Column(s) identifying a row; default: a hash of the whole row.
    #[serde(default)]
    pub key: Option<OneOrMany>,
    /// First run: send the rows already there (`send`) or only remember them (`skip`).
    #[serde(default)]
    #[schemars(extend("default" = "skip"))]
    pub backlog: Backlog,
}

fn default_range() -> String {
    "A:ZZ".into()
}

/// A Google Sheets source, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// A `google_sheets` account (API key, or a service-account key file).
    pub account: String,
    pub spreadsheet_id: String,
    /// A1 notation, e.g. `Sheet1!A1:Z` or `'My Sheet'!A:F`; its first row is the header.
    pub range: String,
    pub key: Vec<String>,
    pub backlog: Backlog,
    pub pos: Pos,
}

pub fn source(cx: &Cx<'_>, rest: &Node, pos: Pos) -> Result<Source, Diagnostic> {
    let raw: SourceOptions = sections::options(cx, rest, "source")?;
    if raw.spreadsheet_id.trim().is_empty() || raw.range.trim().is_empty() {
        return Err(cx
            .problem(pos, "`spreadsheet_id` and `range` must not be empty")
            .with_hint("the id is the long part of the sheet's URL: /spreadsheets/d/<id>/edit"));
    }
    Ok(Source {
        account: raw.account,
        spreadsheet_id: raw.spreadsheet_id,
        range: raw.range,
        key: sections::key(cx, rest, raw.key)?,
        backlog: raw.backlog,
        pos,
    })
}

/// Google Sheets access: an API key (public sheets) or a service account's key file
/// (the sheet shared with its `client_email`).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// An API key: reads public sheets.
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// A service account's JSON key file, relative to the accounts file: reads sheets
    /// shared with its `client_email`.
    #[serde(default)]
    pub service_account_file: Option<PathBuf>,
    /// Where service-account tokens come from.
    #[serde(default = "default_token_url")]
    pub token_url: String,
    /// The Sheets API.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Calls per period shared by every flow using the account (default: Google's 60
    /// reads per minute per user).
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

/// Google's documented read quota: 60 requests per minute per user.
pub const DEFAULT_RATE_LIMIT: RateLimit = RateLimit::Every {
    calls: 60,
    per: std::time::Duration::from_secs(60),
};

fn default_token_url() -> String {
    "https://oauth2.googleapis.com/token".into()
}

fn default_base_url() -> String {
    "https://sheets.googleapis.com".into()
}

pub fn account(cx: &Cx<'_>, name: &str, rest: &Node, pos: Pos) -> Result<Account, Vec<Diagnostic>> {
    let mut account: Account = sections::options(cx, rest, name).map_err(|d| vec![d])?;
    if account.api_key.is_some() == account.service_account_file.is_some() {
        return Err(vec![cx
            .problem(
                pos,
                format!("account `{name}` needs exactly one of `api_key` and `service_account_file`"),
            )
            .with_hint("an API key reads public sheets; a service account reads sheets shared with its client_email")]);
    }
    if let Some(key_file) = &account.service_account_file {
        let resolved = cx.dir().join(key_file);
        if !resolved.is_file() {
            return Err(vec![cx.problem(
                cx.at(rest, "service_account_file"),
                format!(
                    "service account key file `{}` not found",
                    resolved.display()
                ),
            )]);
        }
        account.service_account_file = Some(resolved);
    }
    Ok(account)
}

impl Account {
    pub fn secrets(&self) -> Vec<Secret> {
        self.api_key.iter().cloned().collect()
    }

    /// The account's client: an API key in the query, or nothing (a service account's
    /// token is added per call), paced by its rate limit.
    pub fn client(&self, name: &str) -> crate::http::AccountClient {
        let auth = match &self.api_key {
            Some(key) => crate::http::Auth::Query("key", key.clone()),
            None => crate::http::Auth::None,
        };
        crate::http::AccountClient::new(
            name,
            &self.base_url,
            auth,
            self.rate_limit.unwrap_or(DEFAULT_RATE_LIMIT),
        )
    }
}
