//! Google Sheets as a receiver: `append_row` appends one row per record after the last
//! row of the flow's range ([`super::config::APPEND`], `valueInputOption=RAW`;
//! `USER_ENTERED` with `input: user_entered`: record data is never a live formula unless
//! the flow asks) with `{"values": [[cell, …]]}` and a service account's bearer token (write scope; an
//! API key can only read public sheets). The answer's `updates.updatedRange` is the row's
//! id in history.

use std::time::Duration;

use async_trait::async_trait;
use engine::{Delivered, Prepared, Receiver, SendError};
use serde_json::{json, Map, Value};

use super::config::{Account, Append};
use super::write::Writer;

/// One sheet rows are appended to.
pub struct AppendRow {
    writer: Writer,
    url: String,
}

impl AppendRow {
    pub fn new(
        name: &str,
        account: &Account,
        append: &Append,
        timeout: Duration,
    ) -> Result<Self, String> {
        let writer = Writer::new(name, account, timeout, "appending rows")?;
        let url = writer.client.url(&super::config::path(
            super::config::APPEND,
            &append.spreadsheet_id,
            &append.range,
            append.input.api(),
        ));
        Ok(AppendRow { writer, url })
    }
}

/// A cell as Sheets takes it: text, a number or a boolean; anything else as its JSON.
pub(super) fn cell(value: Value) -> Value {
    match value {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => value,
        Value::Null => Value::String(String::new()),
        other => Value::String(other.to_string()),
    }
}

#[async_trait]
impl Receiver for AppendRow {
    fn prepare(
        &self,
        mut fields: Map<String, Value>,
        _reference: &str,
    ) -> Result<Prepared, SendError> {
        let cells: Vec<Value> = match fields.remove("values") {
            Some(Value::Array(cells)) => cells.into_iter().map(cell).collect(),
            Some(Value::String(text)) if !text.trim().is_empty() => {
                vec![Value::String(text)]
            }
            _ => {
                return Err(SendError::permanent(
                    "values is empty: give the row's cells as a list, e.g. [\"{{name}}\", \"{{phone}}\"]",
                ))
            }
        };
        Ok(Prepared {
            method: engine::Method::Post,
            url: self.url.clone(),
            body: json!({"values": [cells]}),
            notes: Map::new(),
        })
    }

    async fn send(&self, request: &Prepared) -> Result<Delivered, SendError> {
        let body = self.writer.post(&request.url, &request.body).await?;
        Ok(Delivered {
            remote_id: body["updates"]["updatedRange"].as_str().map(String::from),
        })
    }
}
