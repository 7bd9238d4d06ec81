//! Google Sheets as a receiver: `append_row` appends one row per record after the last
//! row of the flow's range —
//! `POST {base_url}/v4/spreadsheets/{id}/values/{range}:append?valueInputOption=USER_ENTERED&insertDataOption=INSERT_ROWS`
//! with `{"values": [[cell, …]]}` and a service account's bearer token (write scope; an
//! API key can only read public sheets). The answer's `updates.updatedRange` is the row's
//! id in history.

use std::time::Duration;

use async_trait::async_trait;
use engine::{Delivered, Prepared, Receiver, SendError};
use serde_json::{json, Map, Value};

use super::auth;
use super::config::{Account, Append};
use crate::http::{self, AccountClient};

/// One sheet rows are appended to.
pub struct AppendRow {
    client: AccountClient,
    account: Account,
    url: String,
    timeout: Duration,
}

impl AppendRow {
    pub fn new(
        name: &str,
        account: &Account,
        append: &Append,
        timeout: Duration,
    ) -> Result<Self, String> {
        if account.service_account_file.is_none() {
            return Err(format!(
                "account `{name}` has an API key only: appending rows needs a service account (`service_account_file:`), with the sheet shared with its client_email"
            ));
        }
        let client = account.client(name);
        let url = client.url(&format!(
            "v4/spreadsheets/{}/values/{}:append?valueInputOption=USER_ENTERED&insertDataOption=INSERT_ROWS",
            http::encode_component(&append.spreadsheet_id),
            http::encode_component(&append.range)
        ));
        Ok(AppendRow {
            client,
            account: account.clone(),
            url,
            timeout,
        })
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
            method: "POST".into(),
            url: self.url.clone(),
            body: json!({"values": [cells]}),
            notes: Map::new(),
        })
    }

    async fn send(&self, request: &Prepared) -> Result<Delivered, SendError> {
        let Some(file) = &self.account.service_account_file else {
            return Err(SendError::permanent(
                "appending rows needs a service account",
            ));
        };
        let token = auth::token(&self.client, file, &self.account.token_url, auth::WRITE)
            .await
            .map_err(|e| SendError::Unauthorized {
                code: None,
                message: e,
            })?;
        let response = self
            .client
            .post(&request.url, self.timeout)
            .bearer(&token)
            .json(&request.body)
            .send()
            .await?;
        if response.status.is_success() {
            let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
            return Ok(Delivered {
                remote_id: body["updates"]["updatedRange"].as_str().map(String::from),
            });
        }
        let mut message = super::google_error(&response.body);
        if response.status.as_u16() == 403 {
            message.push_str(
                " (share the sheet, as an editor, with the service account's client_email)",
            );
        }
        Err(http::classify(&response, None, message))
    }
}
