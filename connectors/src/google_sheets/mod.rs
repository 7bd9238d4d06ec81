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
mod lookup;
mod range;
pub mod standin;
mod update;
mod write;

pub use append::AppendRow;
pub use lookup::FindRow;
pub use update::UpdateRow;

use std::time::Duration;

use async_trait::async_trait;
use config::{Account as GoogleAccount, Source as SheetsSource};
use engine::{Fetched, Source, SourceError};
use serde_json::Value;

use crate::http::{self, AccountClient};
use crate::rows::Table;
use range::cell;

/// A Google Sheets range as a source.
pub struct Sheet {
    client: AccountClient,
    account: GoogleAccount,
    config: SheetsSource,
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

#[async_trait]
impl Source for Sheet {
    async fn fetch(&self) -> Result<Fetched, SourceError> {
        let read = range::read(
            &self.client,
            &self.account,
            &self.config.spreadsheet_id,
            &self.config.range,
            auth::READ,
            Duration::from_secs(30),
        )
        .await
        .map_err(|e| SourceError(e.to_string()))?;
        let start = range::origin(&read.range).row;
        let mut rows = read.values.iter();
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
            config::Receiver::UpdateRow(keyed) => Ok(std::sync::Arc::new(UpdateRow::new(
                name, account, keyed, timeout,
            )?)),
        }
    }
}

impl config::Lookup {
    /// The live look-up, with account `name`'s credentials.
    pub fn build(
        &self,
        name: &str,
        account: &GoogleAccount,
        timeout: Duration,
    ) -> Result<std::sync::Arc<dyn engine::Lookup>, String> {
        match self {
            config::Lookup::FindRow(keyed) => Ok(std::sync::Arc::new(FindRow::new(
                name, account, keyed, timeout,
            ))),
        }
    }
}

#[cfg(test)]
mod tests;
