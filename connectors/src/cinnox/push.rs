//! CINNOX as a receiver: instant messages through the Open API's message push
//! (`POST {base_url}/v1/api/apps/{app_id}/message-push`), to a staff member
//! (`{roomID, receiverEID, messages: [{type: "text", text}]}`) or to a room. Texts over
//! CINNOX's 5,000 characters fail the row before sending (the field specs). Paced by the
//! account's rate limit (default: the documented 500 requests per minute).

use std::time::Duration;

use async_trait::async_trait;
use engine::{Delivered, Prepared, Receiver, SendError};
use flows::{CinnoxAccount, RateLimit, Secret};
use serde_json::{json, Map, Value};

use crate::http::{self, limits, HttpClient};

/// CINNOX's documented limit: 500 requests per minute per service account.
pub const DEFAULT_RATE_LIMIT: RateLimit = RateLimit::Every {
    calls: 500,
    per: Duration::from_secs(60),
};

/// Instant messages for one CINNOX account.
pub struct MessagePush {
    http: HttpClient,
    limiter: Option<limits::Limiter>,
    url: String,
    token: Secret,
}

impl MessagePush {
    pub fn new(name: &str, account: &CinnoxAccount, timeout: Duration) -> Result<Self, String> {
        Ok(MessagePush {
            http: HttpClient::new(timeout)?,
            limiter: limits::shared(name, account.rate_limit.unwrap_or(DEFAULT_RATE_LIMIT)),
            url: format!(
                "{}/v1/api/apps/{}/message-push",
                account.base_url.trim_end_matches('/'),
                account.app_id
            ),
            token: account.app_token.clone(),
        })
    }
}

#[async_trait]
impl Receiver for MessagePush {
    fn prepare(
        &self,
        mut fields: Map<String, Value>,
        _reference: &str,
    ) -> Result<Prepared, SendError> {
        let text = fields.remove("text").unwrap_or(Value::Null);
        if text.as_str().is_none_or(|t| t.trim().is_empty()) {
            return Err(SendError::permanent("text is empty"));
        }
        let mut body = fields;
        body.insert("messages".into(), json!([{"type": "text", "text": text}]));
        Ok(Prepared {
            method: "POST".into(),
            url: self.url.clone(),
            body: Value::Object(body),
            notes: Map::new(),
        })
    }

    async fn send(&self, request: &Prepared) -> Result<Delivered, SendError> {
        limits::wait(&self.limiter).await;
        let call = self
            .http
            .client()
            .post(&request.url)
            .bearer_auth(self.token.expose())
            .json(&request.body);
        let response = self.http.execute(call).await?;
        let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        // CINNOX answers {code, …}: code 0 is success; 6451010 is its "too many requests".
        let code = body.get("code").and_then(Value::as_i64);
        if response.status.is_success() && code.is_none_or(|c| c == 0) {
            let id = body
                .get("id")
                .or_else(|| body.pointer("/result/id"))
                .map(|v| {
                    v.as_str()
                        .map(String::from)
                        .unwrap_or_else(|| v.to_string())
                });
            return Ok(Delivered { remote_id: id });
        }
        let (code_text, message) = http::error_body(&response.body);
        if code == Some(6_451_010) {
            return Err(SendError::Transient {
                reason: format!("6451010: {message} (too many requests)"),
                retry_after: None,
            });
        }
        if response.status.is_success() {
            return Err(SendError::Permanent {
                code: code_text,
                message,
            });
        }
        Err(http::classify(&response, code_text, message))
    }
}
