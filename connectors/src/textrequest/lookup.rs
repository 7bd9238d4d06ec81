//! Text Request look-ups (`lookup:` in a flow), the query being a phone number:
//! `get_contact` reads the contact (`GET …/contacts/{phone_number}`; 404 or 204: not
//! found); `get_messages` reads the latest page of the conversation
//! (`GET …/contacts/{phone_number}/messages?page=0&page_size=50`) as a list.

use std::time::Duration;

use async_trait::async_trait;
use engine::{Lookup, SendError};
use serde_json::Value;

use super::config::{Account, Lookup as Find};
use crate::http::{self, AccountClient};

/// A Text Request look-up for one account and dashboard.
pub struct TextRequestLookup {
    client: AccountClient,
    timeout: Duration,
    find: Find,
}

impl TextRequestLookup {
    pub fn new(name: &str, account: &Account, find: Find, timeout: Duration) -> Self {
        TextRequestLookup {
            client: account.client(name),
            timeout,
            find,
        }
    }
}

#[async_trait]
impl Lookup for TextRequestLookup {
    async fn find(&self, query: &str) -> Result<Option<Value>, SendError> {
        let number = super::client::phone(query.trim()).map_err(SendError::permanent)?;
        let (dashboard, suffix) = match &self.find {
            Find::Contact(d) => (d.dashboard_id, ""),
            Find::Messages(d) => (d.dashboard_id, "/messages?page=0&page_size=50"),
        };
        let url = self.client.url(&format!(
            "dashboards/{dashboard}/contacts/{}{suffix}",
            http::encode_component(&number)
        ));
        let response = self.client.get(&url, self.timeout).send().await?;
        let status = response.status.as_u16();
        if status == 404 || status == 204 {
            return Ok(None);
        }
        if !response.status.is_success() {
            let (code, message) = http::error_body(&response.body);
            return Err(http::classify(&response, code, message));
        }
        let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        Ok(match body {
            Value::Null => None,
            Value::Array(items) if items.is_empty() => None,
            // A page of messages may come wrapped: its items are the answer.
            Value::Object(mut page) if page.get("items").is_some_and(Value::is_array) => {
                match page.remove("items") {
                    Some(Value::Array(items)) if !items.is_empty() => Some(Value::Array(items)),
                    _ => None,
                }
            }
            found => Some(found),
        })
    }
}
