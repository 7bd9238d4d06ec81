//! Telegram (`connector: telegram`): `send_message` sends one text message per record to
//! a chat, group or channel through a bot — the Bot API's `POST /bot<token>/sendMessage`
//! with `chat_id`, `text` and optional `parse_mode` / `disable_notification` as JSON.
//! The token lives only in the request on the wire ([`crate::http::Auth::PathPrefix`]):
//! previews, history and errors show `/sendMessage`. Telegram answers
//! `{"ok": true, "result": {"message_id": …}}` (the id kept as the record's service id) or
//! `{"ok": false, "error_code": …, "description": …, "parameters": {"retry_after": …}}`:
//! 401 refuses the account, 429 waits as long as `retry_after` says, 5xx is tried again,
//! and any other refusal (a chat not found, a bot blocked by the user) fails the record.

pub mod config;
pub mod standin;

use std::time::Duration;

use async_trait::async_trait;
use engine::{Delivered, Prepared, Receiver, SendError};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::http::{self, AccountClient, Response};

/// A bot sending messages.
pub struct Telegram {
    client: AccountClient,
    timeout: Duration,
}

impl Telegram {
    pub fn new(name: &str, account: &config::Account, timeout: Duration) -> Telegram {
        Telegram {
            client: account.client(name),
            timeout,
        }
    }
}

/// The Bot API method a card's call names (`/bot{token}/sendMessage` → `sendMessage`):
/// the token's segment is the client's to add ([`crate::http::Auth::PathPrefix`]).
fn bot_method(call: &crate::card::Call) -> &'static str {
    let path = call.path.split_whitespace().next().unwrap_or(call.path);
    path.trim_start_matches("/bot{token}/")
}

/// What the Bot API answers, success or not.
#[derive(Debug, Deserialize)]
struct Answer {
    ok: bool,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error_code: Option<i64>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Parameters>,
}

#[derive(Debug, Deserialize)]
struct Parameters {
    #[serde(default)]
    retry_after: Option<u64>,
}

/// The Bot API's error body, read as (code, message).
pub fn explain(body: &[u8]) -> (Option<String>, String) {
    match serde_json::from_slice::<Answer>(body) {
        Ok(Answer {
            error_code,
            description: Some(description),
            ..
        }) => (error_code.map(|c| c.to_string()), description),
        _ => http::error_body(body),
    }
}

/// A refusal classified, with the wait the Bot API asks for when it gives one in its
/// body rather than in `Retry-After`. The Bot API answers a token it does not know with
/// 404 (no such bot): that refuses the account, not one record.
fn refused(response: &Response) -> SendError {
    let (code, message) = explain(&response.body);
    if response.status.as_u16() == 404 {
        let said = if message.trim().is_empty() {
            String::new()
        } else {
            format!("{message} ")
        };
        return SendError::Unauthorized {
            code,
            message: format!(
                "{said}(HTTP 404): no bot with this token answers there; check the account's bot_token (and base_url)"
            ),
        };
    }
    let error = http::classify(response, code, message);
    let asked = serde_json::from_slice::<Answer>(&response.body)
        .ok()
        .and_then(|a| a.parameters)
        .and_then(|p| p.retry_after)
        .map(Duration::from_secs);
    match error {
        SendError::Transient {
            reason,
            retry_after: None,
        } if asked.is_some() => SendError::Transient {
            reason,
            retry_after: asked,
        },
        other => other,
    }
}

#[async_trait]
impl Receiver for Telegram {
    fn prepare(&self, fields: Map<String, Value>, _reference: &str) -> Result<Prepared, SendError> {
        let chat = match fields.get("chat_id") {
            Some(Value::String(s)) => s.trim().to_string(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        // A number (a group's is negative) or a channel's `@username`.
        let numeric = chat
            .strip_prefix('-')
            .unwrap_or(&chat)
            .chars()
            .all(|c| c.is_ascii_digit());
        let username = chat.strip_prefix('@').is_some_and(|u| {
            (5..=32).contains(&u.len()) && u.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        if chat.is_empty() || !(numeric || username) {
            return Err(SendError::permanent(format!(
                "`{chat}` is not a Telegram chat: a chat's number (`123456789`, a group's `-100…`) or a channel's `@username`"
            )));
        }
        let text = fields
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let characters = text.chars().count();
        if text.trim().is_empty() {
            return Err(SendError::permanent("text is empty"));
        }
        if characters > config::MAX_TEXT {
            return Err(SendError::permanent(format!(
                "text is {characters} characters; Telegram takes at most {}",
                config::MAX_TEXT
            )));
        }
        let mut body = Map::new();
        body.insert(
            "chat_id".into(),
            match chat.parse::<i64>() {
                Ok(id) => Value::from(id),
                Err(_) => Value::String(chat),
            },
        );
        body.insert("text".into(), Value::String(text.to_string()));
        for optional in ["parse_mode", "disable_notification"] {
            if let Some(value) = fields.get(optional).filter(|v| !v.is_null()) {
                body.insert(optional.into(), value.clone());
            }
        }
        let mut notes = Map::new();
        notes.insert("characters".into(), Value::from(characters));
        Ok(Prepared {
            method: engine::Method::Post,
            url: self.client.url(bot_method(&config::SEND_MESSAGE)),
            body: Value::Object(body),
            notes,
        })
    }

    async fn send(&self, request: &Prepared) -> Result<Delivered, SendError> {
        let response = self.client.prepared(request, self.timeout)?.send().await?;
        if !response.status.is_success() {
            return Err(refused(&response));
        }
        // A 2xx means Telegram took the message: never retried, or the chat gets it twice.
        // An unreadable answer only loses the message id.
        let answer = serde_json::from_slice::<Answer>(&response.body).ok();
        match answer {
            Some(Answer { ok: false, .. }) => Err(refused(&response)),
            Some(answer) => Ok(Delivered {
                remote_id: answer
                    .result
                    .as_ref()
                    .and_then(|r| http::id_in(r, &["message_id"])),
            }),
            None => {
                tracing::warn!("Telegram took the message but its answer is not a Bot API answer");
                Ok(Delivered { remote_id: None })
            }
        }
    }
}

impl config::Receiver {
    /// The live receiver, with account `name`'s credentials.
    pub fn build(
        &self,
        name: &str,
        account: &config::Account,
        timeout: Duration,
    ) -> Result<std::sync::Arc<dyn Receiver>, String> {
        Ok(std::sync::Arc::new(Telegram::new(name, account, timeout)))
    }
}

/// `connector: telegram` in the registry.
pub struct TelegramConnector;

#[async_trait::async_trait]
impl crate::Connector for TelegramConnector {
    crate::described!(config::CARD, standin::STANDIN);

    crate::receiver_role!(config::receiver, config::Receiver, config::Account);
    crate::account_role!(config::account);

    async fn check_account(
        &self,
        account: &flows::Account,
    ) -> Result<String, crate::connector::BuildError> {
        let (name, account) = crate::connector::parsed_account::<config::Account>(account)?;
        let call = account
            .client(name)
            .get(bot_method(&config::GET_ME), crate::check::TIMEOUT)
            .send()
            .await;
        // getMe answers any token it does not take with an error (401, or 404 for a
        // token of no bot).
        let probe = crate::check::Probe {
            refused_unless_success: true,
            explain,
            ..crate::check::Probe::new("the bot's getMe")
        };
        crate::check::judge(probe, call)
    }
}

#[cfg(test)]
mod tests;
