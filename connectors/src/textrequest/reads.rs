//! Text Request read on each run, page by page, with the flow's `filter:` as query
//! parameters ([`super::config::PAYMENTS_PAGE`], [`super::config::CONTACTS_PAGE`]):
//! `reads: payments` — the dashboard's payments, each a
//! record keyed by its number and its status, so a payment that is new or whose status
//! changed (paid, past due, cancelled) is new again, and `status:` keeps one status only
//! ("payments newly paid"); `reads: contacts` — its contacts, each keyed by its phone
//! number and a digest of its fields, so a contact that is new or changed is new again.

use std::time::Duration;

use async_trait::async_trait;
use engine::{Fetched, Record, Source, SourceError};
use serde_json::{Map, Value};

use super::config::{Account, Reads, Source as Config};
use crate::http::{self, AccountClient};

/// Payments per page read.
const PAGE: usize = 100;
/// Pages read at most in one run (10,000 payments).
const MAX_PAGES: usize = 100;

/// A dashboard's payments or contacts as a source.
pub struct ListSource {
    client: AccountClient,
    dashboard_id: u64,
    reads: Reads,
    status: Option<String>,
    filter: Vec<(String, String)>,
}

impl ListSource {
    pub fn new(name: &str, account: &Account, config: &Config) -> Self {
        ListSource {
            client: account.client(name),
            dashboard_id: config.dashboard_id,
            reads: config.reads.unwrap_or(Reads::Payments),
            status: config.status.clone(),
            filter: config
                .filter
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
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

/// A contact as a record: its plain fields, keyed by its phone number and their digest.
fn contact(contact: Value) -> Option<Record> {
    let Value::Object(contact) = contact else {
        return None;
    };
    let phone = contact
        .get("phone_number")
        .and_then(Value::as_str)?
        .to_string();
    let fields: Map<String, Value> = contact
        .into_iter()
        .filter(|(_, v)| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)))
        .collect();
    let digest = engine::digest(&fields, None);
    Some(Record::new(format!("{phone}#{}", &digest[..12]), fields))
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
impl Source for ListSource {
    async fn fetch(&self) -> Result<Fetched, SourceError> {
        let mut fetched = Fetched::default();
        for page in 0..MAX_PAGES {
            let (what, call) = match self.reads {
                Reads::Payments => ("payments", super::config::PAYMENTS_PAGE),
                Reads::Contacts => ("contacts", super::config::CONTACTS_PAGE),
            };
            let url = call.path_with(|name| {
                Ok::<_, SourceError>(match name {
                    "page" => page.to_string(),
                    _ => self.dashboard_id.to_string(),
                })
            })?;
            let filter: Vec<(&str, &str)> = self
                .filter
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let response = self
                .client
                .get(&url, Duration::from_secs(30))
                .query(&filter)
                .send()
                .await
                .map_err(|e| SourceError(format!("Text Request: {e}")))?;
            if !response.status.is_success() {
                let (_, message) = http::error_body(&response.body);
                return Err(SourceError(format!(
                    "Text Request's {what} answered HTTP {}: {message}",
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
            let read = match self.reads {
                Reads::Payments => record,
                Reads::Contacts => contact,
            };
            for record in items.into_iter().filter_map(read) {
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
            "Text Request: more than {} items; the rest are read next run",
            PAGE * MAX_PAGES
        );
        Ok(fetched)
    }
}
