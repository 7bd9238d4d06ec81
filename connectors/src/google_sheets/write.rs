//! What every Google Sheets write shares: a service account (an API key can only read
//! public sheets, so an account with one is refused when the receiver is built), its
//! write-scoped bearer token per request, and the answer read one way — 2xx is the body,
//! anything else Google's error, with how to share the sheet on a 403.

use std::time::Duration;

use engine::SendError;
use serde_json::Value;

use super::auth;
use super::config::Account;
use crate::http::{self, AccountClient};

/// A service account's writes to sheets.
pub(super) struct Writer {
    pub client: AccountClient,
    pub account: Account,
    pub timeout: Duration,
}

impl Writer {
    /// Writes as account `name`; `what` says what needs them (`appending rows`).
    pub fn new(
        name: &str,
        account: &Account,
        timeout: Duration,
        what: &str,
    ) -> Result<Writer, String> {
        if account.service_account_file.is_none() {
            return Err(format!(
                "account `{name}` has an API key only: {what} needs a service account (`service_account_file:`), with the sheet shared with its client_email"
            ));
        }
        Ok(Writer {
            client: account.client(name),
            account: account.clone(),
            timeout,
        })
    }

    /// POST `body` to `url` with a write-scoped token; the answer's body.
    pub async fn post(&self, url: &str, body: &Value) -> Result<Value, SendError> {
        let Some(file) = &self.account.service_account_file else {
            return Err(SendError::permanent(
                "writing to a sheet needs a service account",
            ));
        };
        let token = auth::token(&self.client, file, &self.account.token_url, auth::WRITE)
            .await
            .map_err(|message| SendError::Unauthorized {
                code: None,
                message,
            })?;
        let response = self
            .client
            .post(url, self.timeout)
            .bearer(&token)
            .json(body)
            .send()
            .await?;
        if response.status.is_success() {
            return Ok(serde_json::from_slice(&response.body).unwrap_or(Value::Null));
        }
        let mut message = super::google_error(&response.body);
        if response.status.as_u16() == 403 {
            message.push_str(
                " (share the sheet, as an editor, with the service account's client_email)",
            );
        }
        Err(http::classify(&response, None, message))
    }
}
