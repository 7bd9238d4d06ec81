//! What push sources (CINNOX, Text Request) share: reading a webhook body into events,
//! and picking a flow's events out of them.

use engine::Record;
use serde_json::{Map, Value};

/// One pushed event: what happened, and the record it becomes.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub event: String,
    pub record: Record,
}

/// A pushed webhook body — one event, or a list of them — read item by item with `read`
/// (event name, key, fields). One event that cannot be read fails the whole body.
pub fn read_events(
    body: &Value,
    mut read: impl FnMut(&Value) -> Result<(String, String, Map<String, Value>), String>,
) -> Result<Vec<Pushed>, String> {
    let items: Vec<&Value> = match body {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    items
        .into_iter()
        .map(|item| {
            let (event, key, fields) = read(item)?;
            Ok(Pushed {
                event,
                record: Record::new(key, fields),
            })
        })
        .collect()
}

/// The events named in `wanted`, as records, and how many others there were.
pub fn select(events: &[Pushed], wanted: &[String]) -> (Vec<Record>, usize) {
    let records: Vec<Record> = events
        .iter()
        .filter(|e| wanted.contains(&e.event))
        .map(|e| e.record.clone())
        .collect();
    let ignored = events.len() - records.len();
    (records, ignored)
}
