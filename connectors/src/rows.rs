//! Row identity for tabular sources (CSV and spreadsheet files): a row is identified by
//! its `key` column(s) — so inserts, sorts and deletions neither resend nor lose rows — or,
//! without a key, by a hash of the whole row. Blank rows are skipped, not an end of data.

use engine::{Record, Reject};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// How rows are told apart, in the flow file's words: the key column(s), or the whole
/// row when `key:` names none.
pub fn keyed_by(key: &[String]) -> String {
    match key {
        [] => "the whole row (no `key:`)".to_string(),
        [one] => format!("`key: {one}`"),
        many => format!("`key: [{}]`", many.join(", ")),
    }
}

/// A header and the key columns, ready to turn rows into records.
pub struct Table {
    header: Vec<String>,
    key: Vec<String>,
    key_index: Vec<usize>,
}

impl Table {
    /// An error message when a key column is not in the header, or a name is repeated.
    pub fn new(header: Vec<String>, key: &[String], source: &str) -> Result<Table, String> {
        if let Some(problem) = header_problem(&header, key, source) {
            return Err(problem);
        }
        let key_index = key
            .iter()
            .filter_map(|k| header.iter().position(|h| h == k))
            .collect();
        Ok(Table {
            header,
            key: key.to_vec(),
            key_index,
        })
    }

    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// One row as a record; `Ok(None)` for a blank row; a reject when its key is empty.
    /// `at` says where the row is (`line 7`, `row 7`).
    pub fn record(
        &self,
        values: &[String],
        at: impl FnOnce() -> String,
    ) -> Result<Option<Record>, Reject> {
        if values.iter().all(|v| v.trim().is_empty()) {
            return Ok(None);
        }
        let key = if self.key_index.is_empty() {
            whole_row_key(values)
        } else {
            let parts: Vec<&str> = self
                .key_index
                .iter()
                .map(|&i| values.get(i).map(|v| v.trim()).unwrap_or(""))
                .collect();
            if parts.iter().any(|p| p.is_empty()) {
                return Err(Reject {
                    key: at(),
                    reason: format!("key column `{}` is empty", self.key.join("`, `")),
                });
            }
            match parts.as_slice() {
                [one] => one.to_string(),
                many => serde_json::to_string(many).unwrap_or_default(),
            }
        };
        let fields: Map<String, Value> = self
            .header
            .iter()
            .enumerate()
            .map(|(i, h)| {
                (
                    h.clone(),
                    Value::String(values.get(i).cloned().unwrap_or_default()),
                )
            })
            .collect();
        Ok(Some(Record::new(key, fields)))
    }
}

/// What is wrong with a header: a column name given twice (its values would be lost to
/// the other column's), or key columns it lacks.
pub fn header_problem(header: &[String], key: &[String], source: &str) -> Option<String> {
    for (i, name) in header.iter().enumerate() {
        if name.is_empty() {
            continue;
        }
        if let Some(j) = header[i + 1..].iter().position(|other| other == name) {
            return Some(format!(
                "column `{name}` appears twice in the header of `{source}` (columns {} and {}); rename one, so no value is lost",
                i + 1,
                i + j + 2
            ));
        }
    }
    missing_key_columns(header, key, source)
}

/// Key columns missing from a header, as an error message.
pub fn missing_key_columns(header: &[String], key: &[String], source: &str) -> Option<String> {
    let missing: Vec<&str> = key
        .iter()
        .filter(|k| !header.contains(k))
        .map(String::as_str)
        .collect();
    (!missing.is_empty()).then(|| {
        if header.is_empty() {
            return format!(
                "key column{} `{}` not in the header of `{source}`: the file is empty (no header row)",
                if missing.len() > 1 { "s" } else { "" },
                missing.join("`, `")
            );
        }
        format!(
            "key column{} `{}` not in the header of `{source}` (columns: {})",
            if missing.len() > 1 { "s" } else { "" },
            missing.join("`, `"),
            header.join(", ")
        )
    })
}

/// A stable identity for a row without a key column: a hash of all its fields.
fn whole_row_key(values: &[String]) -> String {
    let mut hasher = Sha256::new();
    for value in values {
        hasher.update(value.as_bytes());
        hasher.update([0x1f]);
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("row:{hex}")
}
