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

/// What marks a pushed event's key as made from its payload (no event id): the event's
/// digest follows it, at the end of the key.
const PAYLOAD: &str = "#payload:";

/// The key part of a pushed event that carries no id of its own: a digest of its
/// payload. Identical payloads are one event only within the flow's
/// `redelivery_window` ([`is_payload_keyed`]).
pub fn payload_key(digest_hex: &str) -> String {
    format!("{PAYLOAD}{digest_hex}")
}

/// Whether a pushed event's key was made from its payload ([`payload_key`]).
pub fn is_payload_keyed(key: &str) -> bool {
    key.rsplit_once(PAYLOAD)
        .is_some_and(|(_, hex)| !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A fingerprint of one chunk of a source's records as the source gave them: their keys
/// and fields, in order, and the field a look-up adds (`skip`, which decides what a row's
/// [`digest`] covers). A chunk found to hold nothing new is remembered by it, so an
/// unchanged chunk read again is not looked up key by key (`sort_chunk` of [`crate::FlowState`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkPrint([u8; 16]);

impl ChunkPrint {
    /// `filter` is the flow's filter spec ([`flows::Filter::spec`]): a chunk noted under
    /// one filter is not taken as settled under another, whose verdicts may differ.
    pub fn of(records: &[Record], skip: Option<&str>, filter: Option<&str>) -> ChunkPrint {
        use sha2::{Digest, Sha256};
        // Every part is preceded by its length (or its count), so no two different
        // chunks hash the same bytes. Parts are gathered and hashed 64 KiB at a time
        // (fewer, larger hash calls).
        fn part(bytes: &mut Vec<u8>, of: &[u8]) {
            bytes.extend_from_slice(&(of.len() as u64).to_le_bytes());
            bytes.extend_from_slice(of);
        }
        let mut hash = Sha256::new();
        let mut bytes = Vec::with_capacity(80 << 10);
        part(&mut bytes, skip.unwrap_or("").as_bytes());
        part(&mut bytes, &[u8::from(skip.is_some())]);
        if let Some(filter) = filter {
            part(&mut bytes, b"filter");
            part(&mut bytes, filter.as_bytes());
        }
        for record in records {
            part(&mut bytes, record.key.as_bytes());
            part(&mut bytes, &(record.fields.len() as u64).to_le_bytes());
            for (name, value) in &record.fields {
                part(&mut bytes, name.as_bytes());
                match value {
                    Value::String(text) => {
                        part(&mut bytes, b"s");
                        part(&mut bytes, text.as_bytes());
                    }
                    other => {
                        part(&mut bytes, b"j");
                        part(&mut bytes, other.to_string().as_bytes());
                    }
                }
            }
            if bytes.len() >= 64 << 10 {
                hash.update(&bytes);
                bytes.clear();
            }
        }
        hash.update(&bytes);
        let mut print = [0u8; 16];
        print.copy_from_slice(&hash.finalize()[..16]);
        ChunkPrint(print)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

/// What a record the flow's filter dropped is remembered with: its [`digest`] and the
/// filter's spec (none: the flow has no filter now), so that it is judged again once its
/// data changes, or the filter does.
pub fn filtered_digest(digest: &str, filter: Option<&str>) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(b"filtered\0");
    hash.update(digest.as_bytes());
    hash.update(b"\0");
    hash.update(filter.unwrap_or("").as_bytes());
    hash.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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
