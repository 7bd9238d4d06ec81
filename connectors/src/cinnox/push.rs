//! CINNOX as a receiver: instant messages through the Open API's message push
//! ([`super::config::MESSAGE_PUSH`]), to a staff member
//! (`{roomID, receiverEID, messages: [{type: "text", text}]}`) or to a room. Texts over
//! CINNOX's 5,000 characters fail the row before sending (the field specs).

use std::time::Duration;

use super::config::Account as CinnoxAccount;
use async_trait::async_trait;
use engine::{Delivered, Prepared, Receiver, SendError};
use serde_json::{json, Map, Value};

use super::api::Api;

/// Instant messages for one CINNOX account.
pub struct MessagePush {
    api: Api,
}

impl MessagePush {
    pub fn new(name: &str, account: &CinnoxAccount, timeout: Duration) -> Result<Self, String> {
        Ok(MessagePush {
            api: Api::new(name, account, timeout)?,
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
            method: engine::Method::Post,
            url: self.api.url(super::config::MESSAGE_PUSH, ""),
            body: Value::Object(body),
            notes: Map::new(),
        })
    }

    async fn send(&self, request: &Prepared) -> Result<Delivered, SendError> {
        self.api.send(request).await
    }
}
