//! Aranda Service Management Suite (`connector: aranda`): `create_case`
//! (`POST /case`), `update_case` (`PUT /case/{ticketId}`), `add_note`
//! (`POST /case/{ticketId}/note?message=…`) and `attach_file` (`POST /attachment/file`,
//! the case in the `ticketId` header); look-ups `get_case` (`GET /case/{ticketId}`) and
//! `search_cases` (`POST /case/list`); as a source, the cases of a search that are new or
//! changed since the last run ([`Cases`]) — with the integration token in `TokenAsms` and
//! the customer's ASMS host in `UrlAsms`. Aranda's error code names come back with the
//! remedy from its connector documentation in the row's error.

mod cases;
mod client;
mod lookup;

pub use cases::Cases;

/// The record key of a case (its id and a digest of its content), for tests.
#[cfg(test)]
fn cases_key_of(case: serde_json::Value) -> Option<String> {
    cases::record(case).map(|r| r.key)
}
pub use client::{explain, Action, Aranda};
pub use lookup::ArandaLookup;

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
            config::Receiver::AttachFile => Action::AttachFile,
        };
        Ok(std::sync::Arc::new(Aranda::new(
            name, account, action, timeout,
        )?))
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
        Ok(std::sync::Arc::new(ArandaLookup::new(
            name,
            account,
            self.clone(),
            timeout,
        )))
    }
}

#[cfg(test)]
mod tests;
