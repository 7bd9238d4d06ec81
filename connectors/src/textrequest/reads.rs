//! Text Request read on each run (`reads: payments`): the dashboard's payments, page by
//! page (`GET …/dashboards/{dashboard_id}/payments?page=&page_size=100`), each a record
//! keyed by its number and its status — so a payment that is new, or whose status changed
//! (paid, past due, cancelled), is new again; `status:` keeps those in one status only
//! ("payments newly paid").

use std::time::Duration;

use async_trait::async_trait;
use engine::{Fetched, Record, Source, SourceError};
use serde_json::{Map, Value};

use super::config::{Account, Source as Config};
use crate::http::{self, AccountClient};

/// Payments per page read.
const PAGE: usize = 100;
/// Pages read at most in one run (10,000 payments).
const MAX_PAGES: usize = 100;

/// A dashboard's payments as a source.
pub struct PaymentsSource {
    client: AccountClient,
    dashboard_id: u64,
    status: Option<String>,
}

impl PaymentsSource {
    pub fn new(name: &str, account: &Account, config: &Config) -> Self {
        PaymentsSource {
            client: account.client(name),
            dashboard_id: config.dashboard_id,
            status: config.status.clone(),
        }
    }
}

/// A payment's status: Text Request's own, else the transaction's.
fn status_of(payment: &Map<String, Value>) -> String {
    ["textrequest_payment_status", "transaction_status", "status"]
        .iter()
        .find_map(|k| payment.get(*k).and_then(Value::as_str))
        .unwrap_or_default()
        .to_string()
}

/// A payment as a record: its plain fields, keyed by its number and status.
fn record(payment: Value) -> Option<Record> {
    let Value::Object(payment) = payment else {
        return None;
    };
    let id = payment
        .get("payment_id")
        .or_else(|| payment.get("id"))
        .and_then(|v| {
            v.as_u64()
                .map(|n| n.to_string())
                .or_else(|| v.as_str().map(String::from))
        })?;
    let status = status_of(&payment);
    let fields: Map<String, Value> = payment
        .into_iter()
        .filter(|(_, v)| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)))
        .collect();
    Some(Record::new(format!("{id}#{status}"), fields))
}

#[async_trait]
impl Source for PaymentsSource {
    async fn fetch(&self) -> Result<Fetched, SourceError> {
        let mut fetched = Fetched::default();
        for page in 0..MAX_PAGES {
            let url = self.client.url(&format!(
                "dashboards/{}/payments?page={page}&page_size={PAGE}",
                self.dashboard_id
            ));
            let response = self
                .client
                .get(&url, Duration::from_secs(30))
                .send()
                .await
                .map_err(|e| SourceError(format!("Text Request: {e}")))?;
            if !response.status.is_success() {
                let (_, message) = http::error_body(&response.body);
                return Err(SourceError(format!(
                    "Text Request's payments answered HTTP {}: {message}",
                    response.status.as_u16()
                )));
            }
            let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
            let items = match body {
                Value::Object(mut map) => match map.remove("items") {
                    Some(Value::Array(items)) => items,
                    _ => Vec::new(),
                },
                Value::Array(items) => items,
                _ => Vec::new(),
            };
            let count = items.len();
            for record in items.into_iter().filter_map(record) {
                let wanted = self
                    .status
                    .as_deref()
                    .is_none_or(|want| status_of(&record.fields).eq_ignore_ascii_case(want));
                if wanted {
                    fetched.records.push(record);
                }
            }
            if count < PAGE {
                return Ok(fetched);
            }
        }
        tracing::warn!(
            "Text Request: more than {} payments; the rest are read next run",
            PAGE * MAX_PAGES
        );
        Ok(fetched)
    }
}
