//! Google Sheets "new rows" (`connector: google_sheets`): reads the range's values
//! (the calls are in the card, [`config::CARD`]; the range URL-encoded), the first
//! row giving field names. A run reads the range in pages of 10,000 rows, as far as the
//! sheet's grid goes (asked once per run), so a big sheet is never in memory whole. Rows are identified like CSV rows — by `key` column(s) when
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

/// Rows a run reads in one request: a page of ~1–2 MB of JSON, and few enough requests
/// for a big sheet to stay near the read quota (60 a minute per user).
const PAGE_ROWS: usize = 10_000;

/// How long one read of the source (a page, the grid's size) may take.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A Google Sheets range as a source.
#[derive(Clone)]
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

impl Sheet {
    /// `range` of the sheet, read.
    async fn read(&self, range: &str) -> Result<range::ValueRange, SourceError> {
        range::read(
            &self.client,
            &self.account,
            &self.config.spreadsheet_id,
            range,
            (auth::READ, READ_TIMEOUT, range::QUOTA_TRIES),
        )
        .await
        .map_err(|e| SourceError(e.to_string()))
    }

    /// The table the header row names (none: an empty header).
    fn table(&self, header: Option<&Vec<Value>>) -> Result<Table, SourceError> {
        let header: Vec<String> = header
            .map(|h| h.iter().map(|c| cell(c).trim().to_string()).collect())
            .unwrap_or_default();
        Table::new(
            header,
            &self.config.key,
            &format!("sheet range {}", self.config.range),
        )
        .map_err(SourceError)
    }

    /// The rows as records (or rejects), the first being row `first` of the sheet; short
    /// rows padded to the header.
    fn records<'a>(
        table: &Table,
        rows: impl Iterator<Item = &'a Vec<Value>>,
        first: usize,
    ) -> Fetched {
        let width = table.header().len();
        let mut fetched = Fetched::default();
        for (i, row) in rows.enumerate() {
            let mut values: Vec<String> = row.iter().map(cell).collect();
            values.resize(width.max(values.len()), String::new());
            match table.record(&values, || format!("row {}", first + i)) {
                Ok(Some(record)) => fetched.records.push(record),
                Ok(None) => {}
                Err(reject) => fetched.rejects.push(reject),
            }
        }
        fetched
    }

    /// Read the range page after page, as far as it goes (its last row, or the grid's),
    /// each page's records handed to `tx`; stops early when the run stops taking them.
    async fn pages(
        &self,
        tx: &tokio::sync::mpsc::Sender<Result<Fetched, SourceError>>,
    ) -> Result<(), SourceError> {
        let extent = range::extent(&self.config.range);
        let last = match extent.last_row {
            Some(row) => row,
            // A blank page is no end: the grid's size is.
            None => range::grid_rows(
                &self.client,
                &self.account,
                &self.config.spreadsheet_id,
                &self.config.range,
                auth::READ,
                READ_TIMEOUT,
            )
            .await
            .map_err(|e| SourceError(e.to_string()))?,
        };
        let mut table: Option<Table> = None;
        let mut first = extent.origin.row;
        while first <= last {
            let end = (first + PAGE_ROWS - 1).min(last);
            let read = self.read(&extent.rows(first, end)).await?;
            let mut rows = read.values.iter();
            let mut data_from = first;
            let table = match &mut table {
                Some(table) => table,
                // The first page begins with the header.
                None => {
                    data_from += 1;
                    table.insert(self.table(rows.next())?)
                }
            };
            if tx
                .send(Ok(Self::records(table, rows, data_from)))
                .await
                .is_err()
            {
                return Ok(());
            }
            first = end + 1;
        }
        Ok(())
    }
}

#[async_trait]
impl Source for Sheet {
    async fn fetch(&self) -> Result<Fetched, SourceError> {
        let read = self.read(&self.config.range).await?;
        let start = range::origin(&read.range).row;
        let mut rows = read.values.iter();
        let table = self.table(rows.next())?;
        Ok(Self::records(&table, rows, start + 1))
    }

    async fn stream(&self, _size: usize) -> engine::Chunks {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let sheet = self.clone();
        tokio::spawn(async move {
            if let Err(e) = sheet.pages(&tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        rx
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

/// `connector: google_sheets` in the registry.
pub struct GoogleSheetsConnector;

#[async_trait::async_trait]
impl crate::Connector for GoogleSheetsConnector {
    crate::described!(config::CARD, standin::STANDIN);

    crate::source_role!(config::source, |s: &config::Source| {
        crate::connector::SourceShape::read(Some((s.account.clone(), s.pos)), s.backlog)
            .keyed(&s.key)
    });

    crate::receiver_role!(config::receiver, config::Receiver, config::Account);
    crate::lookup_role!(
        config::lookup,
        config::Lookup,
        config::Account,
        |name, account, lookup, timeout| match lookup {
            config::Lookup::FindRow(keyed) =>
                Ok::<_, String>(FindRow::new(name, account, keyed, timeout)),
        }
    );
    crate::account_role!(config::account, pos);

    fn build_source(
        &self,
        flow: &flows::Flow,
        accounts: &flows::Accounts,
    ) -> Result<Option<Box<dyn engine::Source>>, crate::connector::BuildError> {
        let (config, name, account) =
            crate::connector::source_parts::<config::Source, config::Account>(flow, accounts)?;
        Ok(Some(Box::new(Sheet::new(name, account, config)?)))
    }

    async fn check_account(
        &self,
        account: &flows::Account,
    ) -> Result<String, crate::connector::BuildError> {
        let (name, account) = crate::connector::parsed_account::<config::Account>(account)?;
        Ok(check(name, account).await?)
    }
}

#[cfg(test)]
mod tests;
