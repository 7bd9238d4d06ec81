//! `source: {connector: csv, …}` — what a flow says about a CSV file.

use std::path::PathBuf;

use flows::yaml::Node;
use flows::{Backlog, Cx, Diagnostic, OneOrMany, Pos};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::card::{Card, Part};
use crate::sections;

/// `connector: csv`.
pub const CARD: Card = Card {
    name: "csv",
    about: "rows of a CSV file with a header line",
    source: Some(Part::of::<SourceOptions>(
        "new rows of the file on each run",
    )),
    ..Card::NOTHING
};

/// Rows of a CSV file with a header line.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceOptions {
    /// The file, relative to the flow file.
    pub path: String,
    /// Column(s) identifying a row (inserts, sorts and deletions neither resend nor lose
    /// rows); default: a hash of the whole row.
    #[serde(default)]
    pub key: Option<OneOrMany>,
    /// First run: send the rows already there (`send`) or only remember them (`skip`).
    #[serde(default)]
    #[schemars(extend("default" = "skip"))]
    pub backlog: Backlog,
    /// One character (`,` `;` `|`), or `tab`; default `,`.
    #[serde(default)]
    #[schemars(extend("default" = ","))]
    pub delimiter: Option<String>,
}

/// A CSV source, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// The file, resolved against the flow file's directory.
    pub path: PathBuf,
    /// Column(s) identifying a row; empty means "a hash of the whole row".
    pub key: Vec<String>,
    pub backlog: Backlog,
    pub delimiter: u8,
    /// Where `source:` stands in the flow file.
    pub pos: Pos,
}

pub fn source(cx: &Cx<'_>, rest: &Node, pos: Pos) -> Result<Source, Diagnostic> {
    let raw: SourceOptions = sections::options(cx, rest, "source")?;
    let path = sections::file(cx, rest, &raw.path, "CSV file")?;
    let key = sections::key(cx, rest, raw.key)?;
    let delimiter = match raw.delimiter.as_deref() {
        None => b',',
        Some("\\t") | Some("\t") | Some("tab") => b'\t',
        Some(d) if d.len() == 1 => d.as_bytes()[0],
        Some(d) => {
            return Err(cx
                .problem(
                    cx.at(rest, "delimiter"),
                    format!("`{d}` is not a one-character delimiter"),
                )
                .with_hint("use `,`, `;`, `|` or `tab`"))
        }
    };
    Ok(Source {
        path,
        key,
        backlog: raw.backlog,
        delimiter,
        pos,
    })
}
