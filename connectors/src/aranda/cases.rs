//! Aranda as a source: the cases matching the flow's search
//! (`{logicOperator, filters}`, [`super::config::CASE_LIST`]), each a record keyed by its id and a
//! digest of what it holds — so a case that is new, or has changed since the last run
//! (its state, its responsible, its solution), is new again, and an unchanged one is not.
//! ASMS answers a search with its first 20 cases: when it answers 20, the run says that
//! the search should be narrowed, since a change past those 20 would not be seen.

use std::time::Duration;

use async_trait::async_trait;
use engine::{Fetched, Record, Source, SourceError};
use serde_json::{json, Map, Value};

use super::config::{Account, Source as CasesSource};
use crate::http::AccountClient;

/// The most cases ASMS returns for one search.
pub const PAGE: usize = 20;

/// The cases of one search.
pub struct Cases {
    client: AccountClient,
    url: String,
    body: Value,
}

impl Cases {
    pub fn new(name: &str, account: &Account, config: &CasesSource) -> Self {
        Cases {
            client: account.client(name),
            url: format!(
                "{}{}",
                account.base_url.trim_end_matches('/'),
                super::config::path(super::config::CASE_LIST, "", "")
            ),
            body: json!({"logicOperator": config.logic, "filters": config.filters}),
        }
    }
}

/// A case as a record: its plain fields (text, numbers, booleans) under their names.
pub(super) fn record(case: Value) -> Option<Record> {
    let Value::Object(case) = case else {
        return None;
    };
    let id = match case.get("id") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return None,
    };
    let fields: Map<String, Value> = case
        .into_iter()
        .filter(|(_, v)| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)))
        .collect();
    let digest = engine::digest(&fields, None);
    Some(Record::new(format!("{id}#{}", &digest[..12]), fields))
}

#[async_trait]
impl Source for Cases {
    async fn fetch(&self) -> Result<Fetched, SourceError> {
        let response = self
            .client
            .post(&self.url, Duration::from_secs(30))
            .json(&self.body)
            .send()
            .await
            .map_err(|e| SourceError(format!("Aranda: {e}")))?;
        if !response.status.is_success() {
            let (code, message) = super::explain(&response.body);
            let code = code.map(|c| format!(" ({c})")).unwrap_or_default();
            return Err(SourceError(format!(
                "Aranda's case search answered HTTP {}{code}: {message}",
                response.status.as_u16()
            )));
        }
        let cases = match serde_json::from_slice::<Value>(&response.body) {
            Ok(Value::Array(cases)) => cases,
            Ok(Value::Null) | Err(_) if response.body.is_empty() => Vec::new(),
            Ok(other) => {
                return Err(SourceError(format!(
                    "Aranda's case search answered with something that is not a list: {}",
                    crate::http::snippet(other.to_string().as_bytes())
                )))
            }
            Err(e) => return Err(SourceError(format!("Aranda's case search: {e}"))),
        };
        if cases.len() >= PAGE {
            tracing::warn!(
                "Aranda answered the search with {PAGE} cases, as many as it returns: narrow the filters, or a change past those may go unseen"
            );
        }
        Ok(Fetched {
            records: cases.into_iter().filter_map(record).collect(),
            rejects: Vec::new(),
        })
    }
}
