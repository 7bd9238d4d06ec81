//! What push sources (CINNOX, Text Request) share: picking a flow's events out of a
//! webhook body.

use serde_json::{Map, Value};

/// A pushed webhook body — one event, or a list of them — read with `read` (event name,
/// key, fields): the events named in `wanted` as records, and how many others there
/// were. One event that cannot be read fails the whole body.
pub fn select_events(
    body: &Value,
    wanted: &[String],
    mut read: impl FnMut(&Value) -> Result<(String, String, Map<String, Value>), String>,
) -> Result<(Vec<engine::Record>, usize), String> {
    let items: Vec<&Value> = match body {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let mut records = Vec::new();
    let mut ignored = 0;
    for item in items {
        let (event, key, fields) = read(item)?;
        if wanted.contains(&event) {
            records.push(engine::Record::new(key, fields));
        } else {
            ignored += 1;
        }
    }
    Ok((records, ignored))
}
