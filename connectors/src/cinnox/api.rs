//! One CINNOX account's Open API (its app's calls, in the card) with the App Token
//! as bearer, paced by the account's rate limit (default: the documented 500 requests per
//! minute), and CINNOX's answers read the same way for every action — `{code: 0, …}` is
//! success, 6451010 is "too many requests" (retried), other codes fail the row.

use std::time::Duration;

use super::config::Account as CinnoxAccount;
use engine::{Delivered, Prepared, SendError};
use flows::RateLimit;
use serde_json::Value;

use crate::http::{self, AccountClient};

/// CINNOX's documented limit: 500 requests per minute per service account.
pub const DEFAULT_RATE_LIMIT: RateLimit = RateLimit::Every {
    calls: 500,
    per: Duration::from_secs(60),
};

pub(crate) struct Api {
    client: AccountClient,
    account: CinnoxAccount,
    timeout: Duration,
}

impl Api {
    pub fn new(name: &str, account: &CinnoxAccount, timeout: Duration) -> Result<Api, String> {
        Ok(Api {
            client: account.client(name),
            account: account.clone(),
            timeout,
        })
    }

    /// The URL of `call` in the account's app, its other placeholder filled by `value`
    /// ([`CinnoxAccount::path`]).
    pub fn url(&self, call: crate::card::Call, value: &str) -> String {
        self.client.url(&self.account.path(call, value))
    }

    /// Send a prepared request and read CINNOX's answer.
    pub async fn send(&self, request: &Prepared) -> Result<Delivered, SendError> {
        let method = crate::http::method(request.method)?;
        let call = self
            .client
            .request(method, &request.url, self.timeout)
            .json(&request.body);
        let body = self.call(call).await?;
        let id = body
            .get("id")
            .or_else(|| body.pointer("/result/id"))
            .or_else(|| body.get("transactionID"))
            .map(|v| {
                v.as_str()
                    .map(String::from)
                    .unwrap_or_else(|| v.to_string())
            });
        Ok(Delivered { remote_id: id })
    }

    /// `GET` a URL of the app and read CINNOX's answer.
    pub async fn get(&self, url: &str) -> Result<Value, SendError> {
        self.call(self.client.get(url, self.timeout)).await
    }

    /// Make a call (paced, authenticated) and read the answer: its body on success.
    async fn call(&self, call: http::account::Call<'_>) -> Result<Value, SendError> {
        let response = call.send().await?;
        let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        let code = body.get("code").and_then(Value::as_i64);
        if response.status.is_success() && code.is_none_or(|c| c == 0) {
            return Ok(body);
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
