//! The 8x8 look-up (`lookup:` in a flow): `get_message` reads the message whose umid is
//! the query (8x8's "Retrieve SMS details", [`super::config::MESSAGE`]) with its delivery status (`status.state`: `delivered`,
//! `undelivered`, …). 404 is "not found". 8x8 allows this call once a second per
//! sub-account, so it is paced on its own limit, shared by every flow of the account,
//! apart from sending's.

use std::time::Duration;

use async_trait::async_trait;
use engine::{Lookup, SendError};
use flows::RateLimit;
use serde_json::Value;

use super::config::Account;
use crate::http::{self, AccountClient, Auth};

/// 8x8's limit for reading messages: 1 request a second per sub-account.
const REPORTING_RATE_LIMIT: RateLimit = RateLimit::per_second(1);

/// Messages of one sub-account, read by umid.
pub struct MessageLookup {
    client: AccountClient,
    account: Account,
    timeout: Duration,
}

impl MessageLookup {
    pub fn new(name: &str, account: &Account, timeout: Duration) -> MessageLookup {
        // Its own pace (a name of its own keys the limiter), not sending's 1,800/s.
        let client = AccountClient::new(
            &format!("{name} (reporting)"),
            &account.base_url,
            Auth::Bearer(account.api_key.clone()),
            REPORTING_RATE_LIMIT,
        );
        MessageLookup {
            account: account.clone(),
            client,
            timeout,
        }
    }
}

#[async_trait]
impl Lookup for MessageLookup {
    async fn find(&self, query: &str) -> Result<Option<Value>, SendError> {
        let umid = query.trim();
        if umid.is_empty() {
            return Err(SendError::permanent(
                "the look-up's query (a umid) is empty",
            ));
        }
        let path = self.account.path(super::config::MESSAGE, umid);
        let response = self.client.get(&path, self.timeout).send().await?;
        if response.status.as_u16() == 404 {
            return Ok(None);
        }
        if !response.status.is_success() {
            let (code, message) = http::error_body(&response.body);
            return Err(http::classify(&response, code, message));
        }
        Ok(serde_json::from_slice(&response.body).ok())
    }
}
