use std::time::Duration;

use super::config::Account as TextRequestAccount;
use async_trait::async_trait;
use engine::{Delivered, Prepared, Receiver, SendError};
use flows::RateLimit;
use serde_json::{Map, Value};

use crate::http::{self, AccountClient};

/// Text Request's documented limit: 100 calls per connection per 60 seconds.
pub const DEFAULT_RATE_LIMIT: RateLimit = RateLimit::Every {
    calls: 100,
    per: Duration::from_secs(60),
};

/// What a Text Request receiver does with each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    SendMessage,
    UpsertContact,
    ArchiveConversation,
    UnarchiveConversation,
    DeleteContact,
}

/// The Text Request API for one account and dashboard.
pub struct TextRequest {
    client: AccountClient,
    timeout: Duration,
    contacts_url: String,
    action: Action,
    /// Contacts per bulk update (`upsert_contact` with `batch`); 1: none.
    batch: usize,
}

impl TextRequest {
    pub fn new(
        name: &str,
        account: &TextRequestAccount,
        dashboard_id: u64,
        action: Action,
        timeout: Duration,
    ) -> Result<Self, String> {
        let client = account.client(name);
        Ok(TextRequest {
            contacts_url: client.url(&format!("dashboards/{dashboard_id}/contacts")),
            client,
            timeout,
            action,
            batch: 1,
        })
    }

    /// Send runs of contacts through the bulk update, up to `size` per call (1: never).
    /// Only `upsert_contact` has a bulk call; other actions ignore it.
    pub fn with_batch(mut self, size: usize) -> Self {
        if self.action == Action::UpsertContact {
            self.batch = size.clamp(1, super::config::MAX_BULK);
        }
        self
    }
}

/// Digits only, for matching the numbers Text Request answers with (`321-654-7890`) to
/// the ones sent (`+13216547890`): the last ten digits, or all if fewer.
fn number_tail(text: &str) -> String {
    let digits: Vec<char> = text.chars().filter(char::is_ascii_digit).collect();
    digits[digits.len().saturating_sub(10)..].iter().collect()
}

/// Text that is a number (a payment's, a group's, a dashboard's), trimmed; `None` if not.
pub(super) fn digits(text: &str) -> Option<&str> {
    let text = text.trim();
    (!text.is_empty() && text.chars().all(|c| c.is_ascii_digit())).then_some(text)
}

/// The number in field `name` of a record, taken out of it: a JSON number, or text of
/// digits; else "`name` must be a `what`'s number".
pub(super) fn take_number(
    fields: &mut Map<String, Value>,
    name: &str,
    what: &str,
) -> Result<String, SendError> {
    match fields.remove(name) {
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::String(s)) if digits(&s).is_some() => Ok(s.trim().to_string()),
        _ => Err(SendError::permanent(format!(
            "{name} must be a {what}'s number"
        ))),
    }
}

/// The phone number with spaces, dashes, dots and brackets removed; or why it is not one.
pub(super) fn phone(raw: &str) -> Result<String, String> {
    let cleaned: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{a0}'))
        .collect();
    let digits = cleaned.strip_prefix('+').unwrap_or(&cleaned);
    if (7..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) {
        Ok(cleaned)
    } else {
        Err(format!("phone_number `{raw}` is not a phone number (7 to 15 digits, like 4239876543 or +14239876543)"))
    }
}

#[async_trait]
impl Receiver for TextRequest {
    fn prepare(
        &self,
        mut fields: Map<String, Value>,
        _reference: &str,
    ) -> Result<Prepared, SendError> {
        let raw = fields.remove("phone_number").map(|v| match v {
            Value::String(s) => s,
            other => other.to_string(),
        });
        let number = phone(raw.as_deref().unwrap_or_default()).map_err(SendError::permanent)?;
        let contact = format!("{}/{}", self.contacts_url, http::encode_component(&number));
        let (method, url) = match self.action {
            Action::SendMessage => {
                let body = fields
                    .get("body")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if body.trim().is_empty() {
                    return Err(SendError::permanent("body is empty"));
                }
                (engine::Method::Post, format!("{contact}/messages"))
            }
            Action::UpsertContact => (engine::Method::Post, contact),
            // The phone number is all these take: no body.
            Action::ArchiveConversation => {
                fields.clear();
                (
                    engine::Method::Put,
                    format!("{contact}/conversations/archive"),
                )
            }
            Action::UnarchiveConversation => {
                fields.clear();
                (
                    engine::Method::Put,
                    format!("{contact}/conversations/unarchive"),
                )
            }
            Action::DeleteContact => {
                fields.clear();
                (engine::Method::Delete, contact)
            }
        };
        let mut notes = Map::new();
        notes.insert("phone_number".into(), Value::String(number));
        Ok(Prepared {
            method,
            url,
            body: match self.action {
                Action::ArchiveConversation
                | Action::UnarchiveConversation
                | Action::DeleteContact => Value::Null,
                Action::SendMessage | Action::UpsertContact => Value::Object(fields),
            },
            notes,
        })
    }

    async fn send(&self, request: &Prepared) -> Result<Delivered, SendError> {
        send(&self.client, request, self.timeout).await
    }

    fn batch_size(&self) -> usize {
        self.batch
    }

    /// Text Request's bulk update: `POST /dashboards/{id}/contacts` with the contacts as a
    /// list, each with its `phone_number`. A 2xx means Text Request took the call: never
    /// resent; a contact its answer lists carries its number as the service's id.
    async fn send_batch(&self, requests: &[Prepared]) -> Vec<Result<Delivered, SendError>> {
        let all = |error: SendError| requests.iter().map(|_| Err(error.clone())).collect();
        let contacts: Vec<Value> = requests
            .iter()
            .map(|request| {
                let mut contact = Map::new();
                if let Some(number) = request.notes.get("phone_number") {
                    contact.insert("phone_number".into(), number.clone());
                }
                if let Value::Object(fields) = &request.body {
                    contact.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                Value::Object(contact)
            })
            .collect();
        let call = self
            .client
            .post(&self.contacts_url, self.timeout)
            .json(&Value::Array(contacts));
        let response = match call.send_ok().await {
            Ok(response) => response,
            Err(e) => return all(e),
        };
        let answered: Vec<Value> = serde_json::from_slice(&response.body).unwrap_or_default();
        let listed: std::collections::HashSet<String> = answered
            .iter()
            .filter_map(|c| c.get("phone_number").and_then(Value::as_str))
            .map(number_tail)
            .collect();
        requests
            .iter()
            .map(|request| {
                let number = request.notes.get("phone_number").and_then(Value::as_str);
                Ok(Delivered {
                    remote_id: number
                        .filter(|n| listed.contains(&number_tail(n)))
                        .map(String::from),
                })
            })
            .collect()
    }
}

/// Send a prepared Text Request call; its answer as an outcome (every Text Request
/// receiver sends this way).
pub(super) async fn send(
    client: &AccountClient,
    request: &Prepared,
    timeout: Duration,
) -> Result<Delivered, SendError> {
    let response = client.prepared(request, timeout)?.send().await?;
    if response.status.is_success() {
        // A 2xx means Text Request took it: never retry it.
        let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        if body.get("delivery_status").and_then(Value::as_str) == Some("error") {
            let why = body
                .get("delivery_error")
                .and_then(Value::as_str)
                .unwrap_or("Text Request reports a delivery error");
            return Err(SendError::Permanent {
                code: Some("delivery_error".into()),
                message: why.to_string(),
            });
        }
        return Ok(Delivered {
            remote_id: http::id_in(&body, &["message_id", "id"]),
        });
    }
    // Text Request's 400 has no documented body: its text is the message.
    let (code, message) = http::error_body(&response.body);
    Err(http::classify(&response, code, message))
}
