//! 8x8 SMS (`connector: 8x8`): `send_sms` with a bearer key, through the calls its card
//! declares ([`config::CARD`]).
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

/// `connector: eightxeight` in the registry.
pub struct EightXEightConnector;

#[async_trait::async_trait]
impl crate::Connector for EightXEightConnector {
    crate::described!(config::CARD, standin::STANDIN);

    crate::receiver_role!(config::receiver, config::Receiver, config::Account);
    crate::lookup_role!(
        config::lookup,
        config::Lookup,
        config::Account,
        |name, account, _lookup, timeout| Ok::<_, String>(MessageLookup::new(
            name, account, timeout
        ))
    );
    crate::account_role!(config::account);

    async fn check_account(
        &self,
        account: &flows::Account,
    ) -> Result<String, crate::connector::BuildError> {
        let (name, account) = (
            account.name.as_str(),
            crate::connector::section::<config::Account>(&account.section, "account")?,
        );
        // Looking up a message id that does not exist: 404 with a good key, 401 without.
        let path = account.path(config::MESSAGE, "00000000-0000-0000-0000-000000000000");
        let call = account
            .client(name)
            .get(&path, crate::check::TIMEOUT)
            .send()
            .await;
        let probe = crate::check::Probe {
            accepted_also: Some((
                404,
                "the key was accepted (8x8 answered a look-up of a message that does not exist with 404, as it should)",
            )),
            ..crate::check::Probe::new("a message look-up")
        };
        crate::check::judge(probe, call)
    }
}

#[cfg(test)]
mod tests;
