//! Text Request (`connector: textrequest`): `send_message` through
//! `POST {base_url}/dashboards/{dashboard_id}/contacts/{phone_number}/messages` and
//! `upsert_contact` through `POST {base_url}/dashboards/{dashboard_id}/contacts/{phone_number}`,
//! `archive_conversation` through `PUT …/contacts/{phone_number}/conversations/archive`,
//! with the key in `x-api-key`. The phone number goes in the path, URL-encoded (a leading
//! `+` becomes `%2B`); the other mapped fields are the JSON body. Paced by the account's
//! rate limit (default: the documented 100 calls per 60 s), shared by every flow using it.
//! As a trigger ([`trigger`]): texts sent or received, pushed to the daemon's webhook.

mod client;
pub mod config;
mod intake;
pub mod standin;
pub mod trigger;

pub use client::{Action, TextRequest};
pub use intake::TextRequestIntake;

impl config::Receiver {
    /// The live receiver, with account `name`'s credentials.
    pub fn build(
        &self,
        name: &str,
        account: &config::Account,
        timeout: std::time::Duration,
    ) -> Result<std::sync::Arc<dyn engine::Receiver>, String> {
        let action = match self {
            config::Receiver::SendMessage(_) => Action::SendMessage,
            config::Receiver::UpsertContact(_) => Action::UpsertContact,
            config::Receiver::ArchiveConversation(_) => Action::ArchiveConversation,
        };
        Ok(std::sync::Arc::new(TextRequest::new(
            name,
            account,
            self.dashboard_id(),
            action,
            timeout,
        )?))
    }
}

#[cfg(test)]
mod tests;
