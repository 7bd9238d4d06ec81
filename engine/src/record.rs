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
