//! One CINNOX account's Open API: `{base_url}/v1/api/apps/{app_id}/…` with the App Token
//! as bearer, paced by the account's rate limit (default: the documented 500 requests per
//! minute), and CINNOX's answers read the same way for every action — `{code: 0, …}` is
//! success, 6451010 is "too many requests" (retried), other codes fail the row.

use std::time::Duration;

use engine::{Delivered, Prepared, SendError};
use flows::{CinnoxAccount, RateLimit, Secret};
use serde_json::Value;

use crate::http::{self, limits, HttpClient};

/// CINNOX's documented limit: 500 requests per minute per service account.
pub const DEFAULT_RATE_LIMIT: RateLimit = RateLimit::Every {
    calls: 500,
    per: Duration::from_secs(60),
};

pub(crate) struct Api {
    http: HttpClient,
    limiter: Option<limits::Limiter>,
    apps: String,
    token: Secret,
}

impl Api {
    pub fn new(name: &str, account: &CinnoxAccount, timeout: Duration) -> Result<Api, String> {
        Ok(Api {
            http: HttpClient::new(timeout)?,
            limiter: limits::shared(name, account.rate_limit.unwrap_or(DEFAULT_RATE_LIMIT)),
            apps: format!(
                "{}/v1/api/apps/{}",
                account.base_url.trim_end_matches('/'),
                account.app_id
            ),
            token: account.app_token.clone(),
        })
    }

    /// The URL of `path` under the app (`message-push`, `management/…`).
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.apps, path.trim_start_matches('/'))
    }

    /// Send a prepared request and read CINNOX's answer.
    pub async fn send(&self, request: &Prepared) -> Result<Delivered, SendError> {
        let client = self.http.client();
        let call = match request.method.as_str() {
            "PUT" => client.put(&request.url),
            _ => client.post(&request.url),
        }
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
        self.call(self.http.client().get(url)).await
    }

    /// Make a call (paced, authenticated) and read the answer: its body on success.
    async fn call(&self, call: reqwest::RequestBuilder) -> Result<Value, SendError> {
        limits::wait(&self.limiter).await;
        let response = self
            .http
            .execute(call.bearer_auth(self.token.expose()))
            .await?;
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
