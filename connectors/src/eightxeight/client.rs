use std::time::Duration;

use super::config::Account as EightXEightAccount;
use async_trait::async_trait;
use engine::{Delivered, Prepared, Receiver, SendError};
use flows::RateLimit;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::http::{self, AccountClient};
use crate::sms;

/// The 8x8 SMS API for one sub-account.
pub struct EightXEight {
    client: AccountClient,
    timeout: Duration,
    messages_url: String,
    batch_url: String,
    batch: usize,
    max_parts: usize,
}

/// `clientMessageId` may be at most this long.
const CLIENT_MESSAGE_ID_MAX: usize = 350;

#[derive(Debug, Deserialize)]
struct SmsResponse {
    #[serde(default)]
    umid: Option<String>,
    #[serde(default)]
    status: Option<SmsStatus>,
}

#[derive(Debug, Deserialize)]
struct SmsStatus {
    #[serde(default)]
    code: String,
    #[serde(default)]
    description: String,
}

/// 8x8's documented limit: 1,800 requests per second per sub-account.
pub const DEFAULT_RATE_LIMIT: RateLimit = RateLimit::per_second(1800);

impl EightXEight {
    /// A client for `account`; `name` is the account's name in accounts.yaml, which
    /// keys the rate limit shared with every other flow using it.
    pub fn new(
        name: &str,
        account: &EightXEightAccount,
        timeout: Duration,
    ) -> Result<Self, String> {
        let client = account.client(name);
        Ok(EightXEight {
            messages_url: client.url(&account.path(super::config::MESSAGES, "")),
            batch_url: client.url(&account.path(super::config::BATCH, "")),
            client,
            timeout,
            batch: 1,
            max_parts: sms::DEFAULT_MAX_PARTS,
        })
    }
}

impl EightXEight {
    /// Use the batch endpoint for up to `size` records per request (1: never).
    pub fn with_batch(mut self, size: usize) -> Self {
        self.batch = size.clamp(1, 10_000);
        self
    }

    /// Refuse texts of more billed parts than this.
    pub fn with_max_parts(mut self, parts: usize) -> Self {
        self.max_parts = parts.max(1);
        self
    }
}

#[derive(Debug, Deserialize)]
struct BatchResponse {
    #[serde(default, rename = "rejectedCount")]
    rejected_count: u64,
    #[serde(default)]
    messages: Vec<BatchMessage>,
}

#[derive(Debug, Deserialize)]
struct BatchMessage {
    #[serde(default, rename = "clientMessageId")]
    client_message_id: Option<String>,
    #[serde(default)]
    umid: Option<String>,
    #[serde(default)]
    status: Option<SmsStatus>,
}

/// An accepted message, or 8x8's `REJECTED` with its description.
fn delivered_or_rejected(
    umid: Option<String>,
    status: Option<SmsStatus>,
) -> Result<Delivered, SendError> {
    match status {
        Some(status) if status.code.eq_ignore_ascii_case("REJECTED") => Err(SendError::Permanent {
            code: Some("REJECTED".into()),
            message: if status.description.is_empty() {
                "8x8 rejected the message".into()
            } else {
                status.description
            },
        }),
        _ => Ok(Delivered { remote_id: umid }),
    }
}

/// The destination as 8x8's spec wants it (`^\+?[1-9][0-9]{6,14}$`), with spaces,
/// dashes, dots and brackets removed; or why it is not a phone number.
pub(crate) fn destination(raw: &str) -> Result<String, String> {
    let cleaned: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{a0}'))
        .collect();
    let digits = cleaned.strip_prefix('+').unwrap_or(&cleaned);
    let ok = (7..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        Ok(cleaned)
    } else {
        Err(format!(
            "destination `{raw}` is not a phone number 8x8 accepts (7 to 15 digits, international format like +380501234567)"
        ))
    }
}

#[async_trait]
impl Receiver for EightXEight {
    fn prepare(
        &self,
        mut fields: Map<String, Value>,
        reference: &str,
    ) -> Result<Prepared, SendError> {
        let raw = fields
            .get("destination")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let dest = destination(&raw).map_err(|m| SendError::Permanent {
            code: None,
            message: format!("{m}; hint: normalise it in the map with {{{{e164 phone \"UA\"}}}}"),
        })?;
        fields.insert("destination".into(), Value::String(dest));
        let text = fields
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if text.trim().is_empty() {
            return Err(SendError::permanent("text is empty"));
        }
        if !fields.contains_key("clientMessageId") {
            let id: String = reference.chars().take(CLIENT_MESSAGE_ID_MAX).collect();
            fields.insert("clientMessageId".into(), Value::String(id));
        }
        let info = sms::within(&text, self.max_parts).map_err(SendError::permanent)?;
        let mut notes = Map::new();
        notes.insert("encoding".into(), Value::String(info.encoding.to_string()));
        notes.insert("characters".into(), Value::from(text.chars().count()));
        notes.insert("parts".into(), Value::from(info.parts));
        Ok(Prepared {
            method: engine::Method::Post,
            url: self.messages_url.clone(),
            body: Value::Object(fields),
            notes,
        })
    }

    async fn send(&self, request: &Prepared) -> Result<Delivered, SendError> {
        let response = self
            .client
            .post(&self.messages_url, self.timeout)
            .json(&request.body)
            .send()
            .await?;
        if response.status.is_success() {
            // A 2xx means 8x8 took the message: never treat it as retryable, or the
            // customer could get it twice. An unreadable body just loses the umid.
            let parsed: SmsResponse = match serde_json::from_slice(&response.body) {
                Ok(parsed) => parsed,
                Err(e) => {
                    tracing::warn!(error = %e, "8x8 accepted the message but its answer is not an SMS response");
                    return Ok(Delivered { remote_id: None });
                }
            };
            return match parsed.status {
                Some(status) if status.code.eq_ignore_ascii_case("REJECTED") => {
                    Err(SendError::Permanent {
                        code: Some("REJECTED".into()),
                        message: if status.description.is_empty() {
                            "8x8 rejected the message".into()
                        } else {
                            status.description
                        },
                    })
                }
                _ => Ok(Delivered {
                    remote_id: parsed.umid,
                }),
            };
        }
        let (code, message) = http::error_body(&response.body);
        Err(http::classify(&response, code, message))
    }

    fn batch_size(&self) -> usize {
        self.batch
    }

    async fn send_batch(&self, requests: &[Prepared]) -> Vec<Result<Delivered, SendError>> {
        let all = |error: SendError| requests.iter().map(|_| Err(error.clone())).collect();
        let messages: Vec<&Value> = requests.iter().map(|r| &r.body).collect();
        let body = serde_json::json!({"messages": messages, "includeMessagesInResponse": true});
        let call = self.client.post(&self.batch_url, self.timeout).json(&body);
        let response = match call.send_ok().await {
            Ok(response) => response,
            Err(e) => return all(e),
        };
        // 2xx: 8x8 took the batch. Never resend it; read each message's fate if told.
        let parsed: BatchResponse =
            serde_json::from_slice(&response.body).unwrap_or(BatchResponse {
                rejected_count: 0,
                messages: Vec::new(),
            });
        let mut by_id: std::collections::HashMap<String, BatchMessage> = parsed
            .messages
            .into_iter()
            .filter_map(|m| m.client_message_id.clone().map(|id| (id, m)))
            .collect();
        requests
            .iter()
            .map(|request| {
                let id = request.body.get("clientMessageId").and_then(Value::as_str).unwrap_or_default();
                match by_id.remove(id) {
                    Some(m) => delivered_or_rejected(m.umid, m.status),
                    None if parsed.rejected_count == 0 => Ok(Delivered { remote_id: None }),
                    None => Err(SendError::Permanent {
                        code: None,
                        message: format!(
                            "8x8 accepted the batch but rejected {} message(s) without saying which; check this one in 8x8's logs",
                            parsed.rejected_count
                        ),
                    }),
                }
            })
            .collect()
    }
}
