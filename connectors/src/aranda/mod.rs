//! Aranda Service Management Suite (`connector: aranda`): `create_case`
//! (`POST /case`), `update_case` (`PUT /case/{ticketId}`) and `add_note`
//! (`POST /case/{ticketId}/note?message=…`), with the integration token in `TokenAsms`
//! and the customer's ASMS host in `UrlAsms`. Aranda's error code names come back with
//! the remedy from its connector documentation in the row's error.

mod client;

pub use client::{explain, Action, Aranda};

pub mod config;
pub mod standin;

impl config::Receiver {
    /// The live receiver, with account `name`'s credentials.
    pub fn build(
        &self,
        name: &str,
        account: &config::Account,
        timeout: std::time::Duration,
    ) -> Result<std::sync::Arc<dyn engine::Receiver>, String> {
        let action = match self {
            config::Receiver::CreateCase => Action::CreateCase,
            config::Receiver::UpdateCase => Action::UpdateCase,
            config::Receiver::AddNote => Action::AddNote,
        };
        Ok(std::sync::Arc::new(Aranda::new(
            name, account, action, timeout,
        )?))
    }
}

#[cfg(test)]
mod tests;
