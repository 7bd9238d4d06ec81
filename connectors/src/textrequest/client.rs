use std::time::Duration;

use super::config::Account as TextRequestAccount;
use async_trait::async_trait;
use engine::{Delivered, Prepared, Receiver, SendError};
use flows::RateLimit;
use serde_json::{Map, Value};

use super::config::CONTACTS;
use crate::declared::Declared;
use crate::http::{self, AccountClient};

/// Text Request's documented limit: 100 calls per connection per 60 seconds.
pub const DEFAULT_RATE_LIMIT: RateLimit = RateLimit::Every {
    calls: 100,
    per: Duration::from_secs(60),
};

/// What a Text Request receiver of texts and contacts does with each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    SendMessage,
    UpsertContact,
    ArchiveConversation,
    UnarchiveConversation,
    DeleteContact,
}

impl Action {
    /// Its name on the card.
    pub fn name(self) -> &'static str {
        match self {
            Action::SendMessage => "send_message",
            Action::UpsertContact => "upsert_contact",
            Action::ArchiveConversation => "archive_conversation",
            Action::UnarchiveConversation => "unarchive_conversation",
            Action::DeleteContact => "delete_contact",
        }
    }
}

/// A Text Request action on a contact, run from its declared call with the contact's
/// number cleaned; `upsert_contact` with a batch sends runs through the bulk update.
pub struct TextRequest {
    single: Declared,
    client: AccountClient,
    timeout: Duration,
    dashboard_id: u64,
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
            single: declared(&client, action.name(), timeout)?
                .given("dashboard_id", dashboard_id)
                .shaped(contact_number),
            client,
            timeout,
            dashboard_id,
            batch: 1,
        })
    }

    /// Send runs of contacts through the bulk update, up to `size` per call (1: never).
    /// Only `upsert_contact` has a bulk call; other actions ignore it.
    pub fn with_batch(mut self, size: usize) -> Self {
        if self.single.name() == Action::UpsertContact.name() {
            self.batch = size.clamp(1, super::config::MAX_BULK);
        }
        self
    }
}

/// Text Request's action `name` from its card, through `client`, its answers judged by
/// [`answer`].
pub(super) fn declared(
    client: &AccountClient,
    name: &str,
    timeout: Duration,
) -> Result<Declared, String> {
    Ok(Declared::new(&super::config::CARD, name, client.clone(), timeout)?.answered(answer))
}

/// The contact's `phone_number` cleaned (it goes in the path), and kept in the notes for
/// the bulk update.
fn contact_number(
    fields: &mut Map<String, Value>,
    notes: &mut Map<String, Value>,
) -> Result<(), SendError> {
    let raw = match fields.get("phone_number") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let number = phone(&raw).map_err(SendError::permanent)?;
    fields.insert("phone_number".into(), Value::String(number.clone()));
    notes.insert("phone_number".into(), Value::String(number));
    Ok(())
}

/// A payment request's `customer_phone` cleaned, and its amount more than nothing.
pub(super) fn payment_request(
    fields: &mut Map<String, Value>,
    _notes: &mut Map<String, Value>,
) -> Result<(), SendError> {
    let phone = match fields.get("customer_phone") {
        Some(Value::String(p)) => phone(p).map_err(SendError::permanent)?,
        _ => return Err(SendError::permanent("customer_phone is empty")),
    };
    fields.insert("customer_phone".into(), Value::String(phone));
    if !fields
        .get("amount_requested")
        .and_then(Value::as_f64)
        .is_some_and(|a| a > 0.0)
    {
        return Err(SendError::permanent("amount_requested must be more than 0"));
    }
    Ok(())
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
    fn prepare(&self, fields: Map<String, Value>, reference: &str) -> Result<Prepared, SendError> {
        self.single.prepare(fields, reference)
    }

    async fn send(&self, request: &Prepared) -> Result<Delivered, SendError> {
        self.single.send(request).await
    }

    fn batch_size(&self) -> usize {
        self.batch
    }

    /// Text Request's bulk update ([`CONTACTS`]) with the contacts as a
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
        let dashboard_id = self.dashboard_id.to_string();
        let Ok(path) = CONTACTS.path_with(|_| Ok::<_, SendError>(dashboard_id.clone())) else {
            return Vec::new();
        };
        let call = self
            .client
            .post(&path, self.timeout)
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

/// Text Request's answer to a call as an outcome (every Text Request action is judged
/// this way).
pub(super) fn answer(response: &http::Response) -> Result<Delivered, SendError> {
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
    Err(http::classify(response, code, message))
}
