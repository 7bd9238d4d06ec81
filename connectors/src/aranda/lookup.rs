//! Aranda look-ups (`lookup:` in a flow): `get_case` reads the case whose code is the
//! query (404 or 204: not found); `search_cases` finds the cases whose `field` compares
//! with the query by `operator` (`{logicOperator: "And", filters: [{field, operator, value}]}`) — ASMS answers with at
//! most the first 20 — and gives them as a list.

use std::time::Duration;

use async_trait::async_trait;
use engine::{Lookup, SendError};
use serde_json::{json, Value};

use super::config::{self, Account, Lookup as Find};
use crate::http::{self, AccountClient};

/// An Aranda look-up for one integration.
pub struct ArandaLookup {
    client: AccountClient,
    base: String,
    timeout: Duration,
    find: Find,
}

impl ArandaLookup {
    pub fn new(name: &str, account: &Account, find: Find, timeout: Duration) -> ArandaLookup {
        ArandaLookup {
            client: account.client(name),
            base: account.base_url.trim_end_matches('/').to_string(),
            timeout,
            find,
        }
    }
}

#[async_trait]
impl Lookup for ArandaLookup {
    async fn find(&self, query: &str) -> Result<Option<Value>, SendError> {
        let query = query.trim();
        if query.is_empty() {
            return Err(SendError::permanent("the look-up's query is empty"));
        }
        let response = match &self.find {
            Find::Case => {
                let url = format!("{}{}", self.base, config::path(config::GET_CASE, query, ""));
                self.client.get(&url, self.timeout).send().await?
            }
            Find::Search(options) => {
                let body = json!({
                    "logicOperator": "And",
                    "filters": [{"field": options.field, "operator": options.operator, "value": query}]
                });
                let url = format!("{}{}", self.base, config::path(config::CASE_LIST, "", ""));
                self.client
                    .post(&url, self.timeout)
                    .json(&body)
                    .send()
                    .await?
            }
        };
        let status = response.status.as_u16();
        if status == 404 || status == 204 {
            return Ok(None);
        }
        if !response.status.is_success() {
            let (code, message) = super::explain(&response.body);
            return Err(http::classify(&response, code, message));
        }
        let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        Ok(match body {
            Value::Array(cases) if cases.is_empty() => None,
            Value::Null => None,
            found => Some(found),
        })
    }
}
