//! Generic HTTP (`connector: http, action: request`): the escape hatch for any API
//! without its own connector. Method, URL, headers and JSON body all come from the map's
//! templates; the account adds a base URL and secret headers, which are attached only
//! when sending (previews and history never show them).

use std::time::Duration;

use async_trait::async_trait;
use config::Account as HttpAccount;
use engine::{Delivered, Method, Prepared, Receiver, SendError};

pub mod config;
use serde_json::{Map, Value};

use crate::http::{self, AccountClient, Auth};

/// A generic HTTP receiver for one account.
pub struct HttpRequest {
    client: AccountClient,
    account: HttpAccount,
    timeout: Duration,
}

impl HttpRequest {
    /// A receiver for account `name` (whose rate limit, if any, it shares).
    pub fn new(name: &str, account: &HttpAccount, timeout: Duration) -> Result<Self, String> {
        let headers = account
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(HttpRequest {
            client: AccountClient::new(
                name,
                account.base_url.as_deref().unwrap_or_default(),
                Auth::Headers(headers),
                account.rate_limit.unwrap_or(flows::RateLimit::Off),
            ),
            account: account.clone(),
            timeout,
        })
    }

    fn absolute(&self, url: &str) -> Result<String, String> {
        if url.starts_with("http://") || url.starts_with("https://") {
            return Ok(url.to_string());
        }
        match &self.account.base_url {
            Some(base) => Ok(format!(
                "{}/{}",
                base.trim_end_matches('/'),
                url.trim_start_matches('/')
            )),
            None => Err(format!(
                "url `{url}` is relative and the account has no base_url"
            )),
        }
    }
}

#[async_trait]
impl Receiver for HttpRequest {
    fn prepare(
        &self,
        mut fields: Map<String, Value>,
        _reference: &str,
    ) -> Result<Prepared, SendError> {
        let method = match fields.remove("method") {
            None | Some(Value::Null) => Method::Post,
            Some(Value::String(name)) if name.trim().is_empty() => Method::Post,
            Some(given) => {
                let name = given
                    .as_str()
                    .map_or_else(|| given.to_string(), String::from);
                Method::http(&name).ok_or_else(|| {
                    SendError::permanent(format!(
                        "`{name}` is not an HTTP method (GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS)"
                    ))
                })?
            }
        };
        let url = fields
            .remove("url")
            .and_then(|u| u.as_str().map(String::from))
            .unwrap_or_default();
        let url = self.absolute(url.trim()).map_err(SendError::permanent)?;
        url::Url::parse(&url)
            .map_err(|e| SendError::permanent(format!("url `{url}` is not a URL: {e}")))?;
        let mut notes = Map::new();
        match fields.remove("headers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(headers)) => {
                notes.insert("headers".into(), Value::Object(headers));
            }
            Some(_) => {
                return Err(SendError::permanent(
                    "headers must be a mapping of names to values",
                ))
            }
        }
        let body = fields.remove("body").unwrap_or(Value::Null);
        Ok(Prepared {
            method,
            url,
            body,
            notes,
        })
    }

    async fn send(&self, request: &Prepared) -> Result<Delivered, SendError> {
        let method = http::method(request.method)?;
        let mut call = self.client.request(method, &request.url, self.timeout);
        if let Some(Value::Object(headers)) = request.notes.get("headers") {
            for (name, value) in headers {
                call = call.header(name.as_str(), &http_text(value));
            }
        }
        if !request.body.is_null() {
            call = call.json(&request.body);
        }
        let response = call.send().await?;
        if response.status.is_success() {
            let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
            let id = body.get("id").map(http_text);
            return Ok(Delivered { remote_id: id });
        }
        let (code, message) = http::error_body(&response.body);
        Err(http::classify(&response, code, message))
    }
}

fn http_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl config::Receiver {
    /// The live receiver, with account `name`'s base URL and headers.
    pub fn build(
        &self,
        name: &str,
        account: &HttpAccount,
        timeout: Duration,
    ) -> Result<std::sync::Arc<dyn Receiver>, String> {
        match self {
            config::Receiver::Request => Ok(std::sync::Arc::new(HttpRequest::new(
                name, account, timeout,
            )?)),
        }
    }
}

/// `connector: httpreq` in the registry.
pub struct HttpConnector;

#[async_trait::async_trait]
impl crate::Connector for HttpConnector {
    crate::described!(config::CARD);

    crate::receiver_role!(config::receiver, config::Receiver, config::Account);
    crate::account_role!(config::account);

    async fn check_account(
        &self,
        _account: &flows::Account,
    ) -> Result<String, crate::connector::BuildError> {
        Ok("generic HTTP: nothing to try without a request; runs will tell".into())
    }
}

#[cfg(test)]
mod tests;
