//! Text Request look-ups (`lookup:` in a flow; the card lists them with their calls):
//! `get_payment`, `get_group` and `get_dashboard` read one by its number; `get_contact`
//! and `get_messages` take a phone number (404 or 204: not found; messages as a list);
//! the `list_*` look-ups read a list and keep the items whose name holds the query.

use std::time::Duration;

use async_trait::async_trait;
use engine::{Lookup, SendError};
use serde_json::Value;

use super::config::{
    Account, List, Lookup as Find, GET_CONTACT, GET_DASHBOARD, GET_GROUP, GET_MESSAGES,
    GET_PAYMENT, LIST_CONVERSATIONS, LIST_DASHBOARDS, LIST_FIELDS, LIST_GROUPS, LIST_TAGS,
};
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
                .map(String::from)
                .ok_or_else(|| SendError::permanent(format!("`{query}` is not a {what}'s number")))
        };
        let dashboard = |d: &super::config::Dashboard| Ok(d.dashboard_id.to_string());
        let path = match &self.find {
            Find::List(list, dashboard) => {
                return self.list(*list, dashboard.as_ref(), query).await;
            }
            Find::Dashboard => GET_DASHBOARD.path_with(|_| number("dashboard"))?,
            Find::Payment(d) => GET_PAYMENT.path_with(|name| match name {
                "payment_id" => number("payment"),
                _ => dashboard(d),
            })?,
            Find::Group(d) => GET_GROUP.path_with(|name| match name {
                "group_id" => number("group"),
                _ => dashboard(d),
            })?,
            Find::Contact(d) | Find::Messages(d) => {
                let call = match &self.find {
                    Find::Messages(_) => GET_MESSAGES,
                    _ => GET_CONTACT,
                };
                call.path_with(|name| match name {
                    "phone_number" => super::client::phone(query).map_err(SendError::permanent),
                    _ => dashboard(d),
                })?
            }
        };
        let response = self.client.get(&path, self.timeout).send().await?;
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
        let everything = query.is_empty() || query == "*";
        let call = match list {
            List::Tags => LIST_TAGS,
            List::CustomFields => LIST_FIELDS,
            List::Groups => LIST_GROUPS,
            List::Conversations => LIST_CONVERSATIONS,
            List::Dashboards => LIST_DASHBOARDS,
        };
        let path = call.path_with(|_| {
            dashboard
                .map(|d| d.dashboard_id.to_string())
                .ok_or_else(|| SendError::permanent("this list needs a `dashboard_id`"))
        })?;
        let mut get = self.client.get(&path, self.timeout);
        // Text Request searches conversations itself.
        if list == List::Conversations && !everything {
            get = get.query(&[("search", query)]);
        }
        let response = get.send().await?;
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
