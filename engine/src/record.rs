//! A record: one row or event, with the key that identifies it across runs.

use serde_json::{Map, Value};

/// One row or event from a source.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Identifies the record across runs (a key column, or a hash of the whole row).
    pub key: String,
    /// The record's fields, as template variables.
    pub fields: Map<String, Value>,
}

impl Record {
    pub fn new(key: impl Into<String>, fields: Map<String, Value>) -> Self {
        Record {
            key: key.into(),
            fields,
        }
    }
}

/// A digest of a record's fields as its source gave them (`skip` names the field a
/// look-up adds), stable across versions: a failed row is remembered with it, so the row
/// is taken again once its data is fixed — and not before.
pub fn digest(fields: &Map<String, Value>, skip: Option<&str>) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for (name, value) in fields {
        if Some(name.as_str()) == skip {
            continue;
        }
        hash.update((name.len() as u64).to_be_bytes());
        hash.update(name.as_bytes());
        let value = value.to_string();
        hash.update((value.len() as u64).to_be_bytes());
        hash.update(value.as_bytes());
    }
    hash.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
