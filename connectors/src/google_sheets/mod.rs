//! Google Sheets "new rows" (`connector: google_sheets`): reads
//! `GET {base_url}/v4/spreadsheets/{id}/values/{range}` (the range URL-encoded), the first
//! row giving field names. Rows are identified like CSV rows — by `key` column(s) when
//! given, so inserts, sorts and deletions neither resend nor lose rows — the header is never
//! data, a blank row in the middle is skipped, and short rows (Sheets omits trailing empty
//! cells) are padded. Auth: an API key, or a service account (JWT → bearer token, cached
//! per account in the process; the token URL is configurable for tests). A 429 from the
//! quota backs off and tries again. As a receiver ([`AppendRow`]): one row appended per
//! record.

mod append;
mod auth;
pub mod config;
pub mod standin;

pub use append::AppendRow;

use std::time::Duration;

use async_trait::async_trait;
use config::{Account as GoogleAccount, Source as SheetsSource};
use engine::{Fetched, Source, SourceError};
use serde::Deserialize;
use serde_json::Value;

use crate::http::{self, AccountClient};
use crate::rows::Table;

/// Tries for one read when the quota answers 429.
const QUOTA_TRIES: u32 = 4;

/// A Google Sheets range as a source.
pub struct Sheet {
    client: AccountClient,
    account: GoogleAccount,
    config: SheetsSource,
}

#[derive(Debug, Deserialize)]
struct ValueRange {
    #[serde(default)]
    range: String,
    #[serde(default)]
    values: Vec<Vec<Value>>,
}

impl Sheet {
    /// A sheet read with account `name`.
    pub fn new(name: &str, account: &GoogleAccount, config: &SheetsSource) -> Result<Self, String> {
        Ok(Sheet {
            client: account.client(name),
            account: account.clone(),
            config: config.clone(),
        })
    }

    fn path(&self) -> String {
        format!(
            "v4/spreadsheets/{}/values/{}",
            http::encode_component(&self.config.spreadsheet_id),
            http::encode_component(&self.config.range)
        )
    }

    async fn read(&self) -> Result<ValueRange, SourceError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let mut call = self
                .client
                .get(&self.path(), Duration::from_secs(30))
                .query(&[
                    ("majorDimension", "ROWS"),
                    ("valueRenderOption", "FORMATTED_VALUE"),
                ]);
            if let (None, Some(file)) = (&self.account.api_key, &self.account.service_account_file)
            {
                let token = auth::token(&self.client, file, &self.account.token_url, auth::READ)
                    .await
                    .map_err(SourceError)?;
                call = call.bearer(&token);
            }
            let response = call
                .send()
                .await
                .map_err(|e| SourceError(format!("Google Sheets: {e}")))?;
            let status = response.status.as_u16();
            if response.status.is_success() {
                return serde_json::from_slice(&response.body).map_err(|e| {
                    SourceError(format!(
                        "Google Sheets answered with something that is not a value range: {e}"
                    ))
                });
            }
            if status == 429 && tries < QUOTA_TRIES {
                let wait = http::retry_after(&response.headers, chrono::Utc::now())
                    .unwrap_or(Duration::from_secs(1 << tries));
                tracing::warn!(?wait, "Google Sheets quota exceeded (429); backing off");
                tokio::time::sleep(wait.min(Duration::from_secs(60))).await;
                continue;
            }
            let detail = google_error(&response.body);
            let hint = match status {
                403 => " (share the sheet with the service account's client_email, or make it public for an API key)",
                404 => " (check spreadsheet_id and the sheet name in range)",
                _ => "",
            };
            return Err(SourceError(format!(
                "Google Sheets answered HTTP {status}: {detail}{hint}"
            )));
        }
    }
}

/// For `accounts check`: a service account gets a token (which proves its key); an API
/// key can only be tried against a sheet, which the account does not name.
pub async fn check(name: &str, account: &GoogleAccount) -> Result<String, String> {
    match &account.service_account_file {
        Some(file) => {
            let client = account.client(name);
            auth::token(&client, file, &account.token_url, auth::READ)
                .await
                .map(|_| "the service account got a token".to_string())
        }
        None => Ok("an API key: it is tried when a flow reads a sheet".into()),
    }
}

/// `{"error": {"code", "message", "status"}}` as `STATUS: message`.
pub(crate) fn google_error(body: &[u8]) -> String {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error = &json["error"];
    match (error["status"].as_str(), error["message"].as_str()) {
        (Some(status), Some(message)) => format!("{status}: {message}"),
        (None, Some(message)) => message.to_string(),
        _ => http::snippet(body),
    }
}

/// The first row number of an A1 range (`Sheet1!B3:F` → 3), 1 when it names none.
fn first_row(range: &str) -> usize {
    let cells = range.rsplit('!').next().unwrap_or(range);
    let start = cells.split(':').next().unwrap_or(cells);
    start
        .trim_start_matches(|c: char| c.is_ascii_alphabetic() || c == '$')
        .parse()
        .unwrap_or(1)
}

fn cell(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[async_trait]
impl Source for Sheet {
    async fn fetch(&self) -> Result<Fetched, SourceError> {
        let range = self.read().await?;
        let start = first_row(&range.range);
        let mut rows = range.values.iter();
        let header: Vec<String> = rows
            .next()
            .map(|h| h.iter().map(|c| cell(c).trim().to_string()).collect())
            .unwrap_or_default();
        let width = header.len();
        let table = Table::new(
            header,
            &self.config.key,
            &format!("sheet range {}", self.config.range),
        )
        .map_err(SourceError)?;
        let mut fetched = Fetched::default();
        for (i, row) in rows.enumerate() {
            let mut values: Vec<String> = row.iter().map(cell).collect();
            values.resize(width.max(values.len()), String::new());
            match table.record(&values, || format!("row {}", start + 1 + i)) {
                Ok(Some(record)) => fetched.records.push(record),
                Ok(None) => {}
                Err(reject) => fetched.rejects.push(reject),
            }
        }
        Ok(fetched)
    }
}

impl config::Receiver {
    /// The live receiver, with account `name`'s credentials.
    pub fn build(
        &self,
        name: &str,
        account: &GoogleAccount,
        timeout: Duration,
    ) -> Result<std::sync::Arc<dyn engine::Receiver>, String> {
        match self {
            config::Receiver::AppendRow(append) => Ok(std::sync::Arc::new(AppendRow::new(
                name, account, append, timeout,
            )?)),
        }
    }
}

#[cfg(test)]
mod tests;
