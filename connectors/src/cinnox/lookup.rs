//! CINNOX look-ups (`lookup:` in a flow):
//!
//! - `get_contact`: an external contact by full name (`First Last`, exact match, case
//!   and spacing ignored), read page by page from
//!   `GET …/contacts/extcontact-list?offset=&limit=` (CINNOX documents the list, not a
//!   search). The contact comes back as CINNOX sends it: `{{contact.mobilePhone}}`,
//!   `{{contact.email}}`, `{{contact.companyName}}`, `{{contact.address.city}}`, … .
//! - `get_enquiry`: an enquiry by display case number from
//!   `GET …/data/enquiry-detail?displayCaseNumber=` (the path is documented, its query
//!   only partly: the parameter is named as the seed's trigger field is).
//! - `list_numbers`: the service's numbers of one type (`access-numbers`, `cli`,
//!   `sms-numbers`) as a list under `as` (default `numbers`). CINNOX documents this
//!   list (≤ 500 per request) but not its path: the look-up's `path:` sets it, with
//!   `{query}` for the type; default `numbers?type={query}`.

use std::time::Duration;

use super::config::Account as CinnoxAccount;
use async_trait::async_trait;
use engine::{Lookup, SendError};
use serde_json::Value;

use super::api::Api;

/// Contacts per page when searching the list.
const PAGE: usize = 100;
/// Pages read at most for one name (10,000 contacts).
const MAX_PAGES: usize = 100;

/// What a look-up finds (the flow's `lookup:` section, parsed).
pub use super::config::Lookup as Find;

/// Where CINNOX's number list is looked for when the flow does not say.
pub const DEFAULT_NUMBERS_PATH: &str = "numbers?type={query}";

/// A CINNOX look-up for one account.
pub struct CinnoxLookup {
    api: Api,
    find: Find,
}

impl CinnoxLookup {
    pub fn new(
        name: &str,
        account: &CinnoxAccount,
        find: Find,
        timeout: Duration,
    ) -> Result<Self, String> {
        Ok(CinnoxLookup {
            api: Api::new(name, account, timeout)?,
            find,
        })
    }
}

/// The items of a list answer: a bare array, or one under `result` / `data` / `list`.
fn items(body: Value) -> Vec<Value> {
    match body {
        Value::Array(items) => items,
        Value::Object(mut map) => ["result", "data", "list", "contacts"]
            .iter()
            .find_map(|k| match map.remove(*k) {
                Some(Value::Array(items)) => Some(items),
                Some(Value::Object(mut inner)) => {
                    ["list", "data", "contacts"]
                        .iter()
                        .find_map(|k| match inner.remove(*k) {
                            Some(Value::Array(items)) => Some(items),
                            _ => None,
                        })
                }
                _ => None,
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn words(s: &str) -> String {
    s.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

fn full_name(contact: &Value) -> String {
    let part = |k: &str| contact.get(k).and_then(Value::as_str).unwrap_or_default();
    words(&format!("{} {}", part("firstName"), part("lastName")))
}

#[async_trait]
impl Lookup for CinnoxLookup {
    async fn find(&self, query: &str) -> Result<Option<Value>, SendError> {
        match &self.find {
            Find::Contact => {
                let wanted = words(query);
                if wanted.is_empty() {
                    return Err(SendError::permanent("the contact's name is empty"));
                }
                for page in 0..MAX_PAGES {
                    let url = format!(
                        "{}?offset={}&limit={PAGE}",
                        self.api.url(super::config::CONTACT_LIST, ""),
                        page * PAGE
                    );
                    let contacts = items(self.api.get(&url).await?);
                    let count = contacts.len();
                    if let Some(found) = contacts.into_iter().find(|c| full_name(c) == wanted) {
                        return Ok(Some(found));
                    }
                    if count < PAGE {
                        break;
                    }
                }
                Ok(None)
            }
            Find::Numbers { path } => {
                let kind = query.trim();
                if !["access-numbers", "cli", "sms-numbers"].contains(&kind) {
                    return Err(SendError::permanent(format!(
                        "`{kind}` is not a CINNOX number type (access-numbers, cli or sms-numbers)"
                    )));
                }
                let url = self
                    .api
                    .url(super::config::APP_PATH_GET, &path.replace("{query}", kind));
                let numbers = items(self.api.get(&url).await?);
                Ok((!numbers.is_empty()).then_some(Value::Array(numbers)))
            }
            Find::Enquiry => {
                if query.trim().is_empty() {
                    return Err(SendError::permanent("the display case number is empty"));
                }
                let url = format!(
                    "{}?displayCaseNumber={}",
                    self.api.url(super::config::ENQUIRY, ""),
                    crate::http::encode_component(query.trim())
                );
                let body = self.api.get(&url).await?;
                let enquiry = match body {
                    Value::Object(mut map) => match map.remove("result") {
                        Some(Value::Array(mut list)) => list.drain(..).next(),
                        Some(result @ Value::Object(_)) => Some(result),
                        Some(_) | None if map.contains_key("code") => None,
                        _ => Some(Value::Object(map)),
                    },
                    Value::Array(mut list) => list.drain(..).next(),
                    _ => None,
                };
                Ok(enquiry.filter(|e| !e.is_null()))
            }
        }
    }
}
