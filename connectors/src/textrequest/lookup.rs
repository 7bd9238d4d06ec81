//! Text Request look-ups (`lookup:` in a flow): `get_payment` and `get_group` read a
//! payment or a contact group by its number (`GET …/payments/{payment_id}`,
//! `…/groups/{group_id}`); the others take a phone number:
//! `get_contact` reads the contact (`GET …/contacts/{phone_number}`; 404 or 204: not
//! found); `get_messages` reads the latest page of the conversation
//! (`GET …/contacts/{phone_number}/messages?page=0&page_size=50`) as a list.

use std::time::Duration;

use async_trait::async_trait;
use engine::{Lookup, SendError};
use serde_json::Value;

use super::config::{Account, List, Lookup as Find};
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
        let query = query.trim();
        let number = |what: &str| {
            super::client::digits(query)
                .ok_or_else(|| SendError::permanent(format!("`{query}` is not a {what}'s number")))
        };
        let path = match &self.find {
            Find::List(list, dashboard) => {
                return self.list(*list, dashboard.as_ref(), query).await;
            }
            Find::Dashboard => format!("dashboards/{}", number("dashboard")?),
            Find::Payment(d) => format!(
                "dashboards/{}/payments/{}",
                d.dashboard_id,
                number("payment")?
            ),
            Find::Group(d) => format!("dashboards/{}/groups/{}", d.dashboard_id, number("group")?),
            Find::Contact(d) | Find::Messages(d) => {
                let number = super::client::phone(query).map_err(SendError::permanent)?;
                let suffix = match &self.find {
                    Find::Messages(_) => "/messages?page=0&page_size=50",
                    _ => "",
                };
                format!(
                    "dashboards/{}/contacts/{}{suffix}",
                    d.dashboard_id,
                    http::encode_component(&number)
                )
            }
        };
        let url = self.client.url(&path);
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

impl TextRequestLookup {
    /// A list, its items whose name holds `query` (`*` or empty: all of them).
    async fn list(
        &self,
        list: List,
        dashboard: Option<&super::config::Dashboard>,
        query: &str,
    ) -> Result<Option<Value>, SendError> {
        let within = dashboard
            .map(|d| format!("dashboards/{}/", d.dashboard_id))
            .unwrap_or_default();
        let everything = query.is_empty() || query == "*";
        let path = match list {
            List::Tags => format!("{within}tags?page=0&page_size=100"),
            List::CustomFields => format!("{within}fields"),
            List::Groups => format!("{within}groups?page=0&page_size=100"),
            // Text Request searches conversations itself.
            List::Conversations if everything => {
                format!("{within}conversations?page=0&page_size=100")
            }
            List::Conversations => format!(
                "{within}conversations?search={}&page=0&page_size=100",
                http::encode_component(query)
            ),
            List::Dashboards => "dashboards?page=0&page_size=100".to_string(),
        };
        let response = self
            .client
            .get(&self.client.url(&path), self.timeout)
            .send()
            .await?;
        if !response.status.is_success() {
            let (code, message) = http::error_body(&response.body);
            return Err(http::classify(&response, code, message));
        }
        let items = match serde_json::from_slice::<Value>(&response.body).unwrap_or(Value::Null) {
            Value::Array(items) => items,
            Value::Object(mut page) => match page.remove("items") {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        let wanted = query.to_lowercase();
        let named = |item: &Value| {
            ["name", "tag", "label"].iter().any(|k| {
                item.get(*k)
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.to_lowercase().contains(&wanted))
            })
        };
        let found: Vec<Value> = items
            .into_iter()
            .filter(|item| everything || list == List::Conversations || named(item))
            .collect();
        Ok((!found.is_empty()).then_some(Value::Array(found)))
    }
}
