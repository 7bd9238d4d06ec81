//! The stages a record goes through between its look-up and its send, one record at a
//! time: judged by the flow's `filter:`, mapped, prepared for the receiver. Written once
//! for the run and for `switchboard test`'s preview, so the preview says what the run
//! will do, in the same words.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::connector::{Prepared, Receiver};
use crate::mapper::Mapper;
use crate::record::Record;

/// What the flow's filter says of a record (after its look-up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judged {
    /// On to the map and the receiver.
    Pass,
    /// Dropped by the filter, with its reason (`filter: …`).
    Filtered(String),
    /// The filter cannot judge it, with the reason: the record fails.
    Failed(String),
}

/// Judge a record's fields by `filter` (none: everything passes).
pub fn judge(filter: Option<&flows::Filter>, fields: &Map<String, Value>) -> Judged {
    match filter.map(|f| f.check(fields)) {
        None | Some(flows::Verdict::Pass) => Judged::Pass,
        Some(flows::Verdict::Drop(why)) => Judged::Filtered(format!("filter: {why}")),
        Some(flows::Verdict::Error(why)) => Judged::Failed(format!("filter: {why}")),
    }
}

/// Why a record cannot be sent as it stands, as the run records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsendable {
    pub reason: String,
    /// The receiver's code for it, if it gave one.
    pub code: Option<String>,
}

/// A record's fields rendered by the flow's map at `now` (and the record back).
pub fn map(
    mapper: &Mapper,
    record: Record,
    now: DateTime<Utc>,
) -> (Record, Result<Map<String, Value>, Unsendable>) {
    let (record, rendered) = mapper.render_owned(record, now);
    let fields = rendered.map_err(|e| Unsendable {
        reason: format!("map: {e}"),
        code: None,
    });
    (record, fields)
}

/// The reference a record's request carries to the service (`flow:key`).
pub fn reference(flow: &str, key: &str) -> String {
    format!("{flow}:{key}")
}

/// The request the receiver makes of mapped fields, checked, without sending anything.
pub fn prepare(
    receiver: &dyn Receiver,
    flow: &str,
    key: &str,
    fields: Map<String, Value>,
) -> Result<Prepared, Unsendable> {
    receiver
        .prepare(fields, &reference(flow, key))
        .map_err(|e| Unsendable {
            reason: format!("invalid for the receiver: {e}"),
            code: e.code().map(String::from),
        })
}
