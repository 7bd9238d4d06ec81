//! 8x8 SMS (`connector: 8x8`): `send_sms` through
//! `POST {base_url}/api/v1/subaccounts/{subaccount_id}/messages` with a bearer key.
//!
//! Before sending it checks what it can locally (the destination is an MSISDN as the
//! spec's pattern has it, the text is not empty; lengths come from the field specs) and
//! works out the SMS encoding and part count for previews. Responses are told apart:
//! 200 `QUEUED` is sent, 200 `REJECTED` and 4xx fail the row with 8x8's code and message,
//! 401 marks the account refused, 429/5xx/timeouts are transient. The `get_message`
//! look-up ([`lookup`]) reads a message's delivery status by its umid.

mod client;
pub mod config;
mod lookup;
pub mod standin;

pub use client::EightXEight;
pub use lookup::MessageLookup;

impl config::Receiver {
    /// The live receiver, with account `name`'s credentials.
    pub fn build(
        &self,
        name: &str,
        account: &config::Account,
        timeout: std::time::Duration,
    ) -> Result<std::sync::Arc<dyn engine::Receiver>, String> {
        match self {
            config::Receiver::SendSms(sms) => Ok(std::sync::Arc::new(
                EightXEight::new(name, account, timeout)?
                    .with_batch(sms.batch.unwrap_or(1))
                    .with_max_parts(sms.max_parts.unwrap_or(crate::sms::DEFAULT_MAX_PARTS)),
            )),
        }
    }
}

impl config::Lookup {
    /// The live look-up, with account `name`'s credentials.
    pub fn build(
        &self,
        name: &str,
        account: &config::Account,
        timeout: std::time::Duration,
    ) -> Result<std::sync::Arc<dyn engine::Lookup>, String> {
        match self {
            config::Lookup::Message => Ok(std::sync::Arc::new(MessageLookup::new(
                name, account, timeout,
            ))),
        }
    }
}

#[cfg(test)]
mod tests;
