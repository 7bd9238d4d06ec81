//! `source: {connector: xlsx, …}` — what a flow says about a spreadsheet file.

use std::path::PathBuf;

use flows::yaml::Node;
use flows::{Backlog, Cx, Diagnostic, OneOrMany, Pos};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::card::{Card, Part};
use crate::sections;

/// `connector: xlsx`.
pub const CARD: Card = Card {
    name: "xlsx",
    about: "rows of one sheet of an XLSX, XLSB, XLS or ODS file",
    source: Some(Part::of::<SourceOptions>(
        "new rows of the sheet on each run",
    )),
    ..Card::NOTHING
};

/// A sheet's rows a flow reads unless it says otherwise (`max_rows`).
pub const MAX_ROWS: u32 = 1_000_000;
/// A sheet's columns a flow reads unless it says otherwise (`max_columns`).
pub const MAX_COLUMNS: u32 = 1_000;

/// Rows of one sheet of an XLSX, XLSB, XLS or ODS file; the first row holding a value is
/// the header.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceOptions {
    /// The file, relative to the flow file.
    pub path: String,
    /// The sheet by name; default: the first one.
    #[serde(default)]
    pub sheet: Option<String>,
    /// Column(s) identifying a row; default: a hash of the whole row.
    #[serde(default)]
    pub key: Option<OneOrMany>,
    /// First run: send the rows already there (`send`) or only remember them (`skip`).
    #[serde(default)]
    #[schemars(extend("default" = "skip"))]
    pub backlog: Backlog,
    /// The most rows below the header a flow reads (1 to 1048576; default 1000000); data
    /// further down is an error.
    #[serde(default)]
    #[schemars(extend("default" = 1000000), range(min = 1, max = 1048576))]
    pub max_rows: Option<u32>,
    /// The most columns the header may span (1 to 16384; default 1000).
    #[serde(default)]
    #[schemars(extend("default" = 1000), range(min = 1, max = 16384))]
    pub max_columns: Option<u32>,
}

/// A spreadsheet source, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
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

pub fn source(cx: &Cx<'_>, rest: &Node, pos: Pos) -> Result<Source, Diagnostic> {
    let raw: SourceOptions = sections::options(cx, rest, "source")?;
    let path = sections::file(cx, rest, &raw.path, "spreadsheet file")?;
    let key = sections::key(cx, rest, raw.key)?;
    for (key, value, most) in [
        ("max_rows", raw.max_rows, 1_048_576),
        ("max_columns", raw.max_columns, 16_384),
    ] {
        if value.is_some_and(|v| v == 0 || v > most) {
            return Err(cx.problem(
                cx.at(rest, key),
                format!("`{key}` must be between 1 and {most} (a sheet's own limit)"),
            ));
        }
    }
    Ok(Source {
        path,
        sheet: raw.sheet,
        key,
        backlog: raw.backlog,
        max_rows: raw.max_rows.unwrap_or(MAX_ROWS),
        max_columns: raw.max_columns.unwrap_or(MAX_COLUMNS),
        pos,
    })
}
