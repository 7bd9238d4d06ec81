//! Aranda Service Management Suite (`connector: aranda`): `create_case`, `update_case`,
//! `add_note` and `attach_file` (the case in the `ticketId` header); look-ups `get_case`
//! and `search_cases`; each with its call in the card ([`config::CARD`]); as a source, the cases of a search that are new or
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

/// `connector: aranda` in the registry.
pub struct ArandaConnector;

#[async_trait::async_trait]
impl crate::Connector for ArandaConnector {
    crate::described!(config::CARD, standin::STANDIN);

    crate::source_role!(config::source, |s: &config::Source| {
        crate::connector::SourceShape::read(Some((s.account.clone(), s.pos)), s.backlog)
    });

    crate::receiver_role!(config::receiver, config::Receiver, config::Account);
    crate::lookup_role!(
        config::lookup,
        config::Lookup,
        config::Account,
        |name, account, lookup, timeout| Ok::<_, String>(ArandaLookup::new(
            name,
            account,
            lookup.clone(),
            timeout
        ))
    );
    crate::account_role!(config::account);

    fn build_source(
        &self,
        flow: &flows::Flow,
        accounts: &flows::Accounts,
    ) -> Result<Option<Box<dyn engine::Source>>, crate::connector::BuildError> {
        let (config, name, account) =
            crate::connector::source_parts::<config::Source, config::Account>(flow, accounts)?;
        Ok(Some(Box::new(Cases::new(name, account, config))))
    }

    async fn check_account(
        &self,
        account: &flows::Account,
    ) -> Result<String, crate::connector::BuildError> {
        let (name, account) = crate::connector::parsed_account::<config::Account>(account)?;
        let call = account
            .client(name)
            .get(config::TEST_CONNECTION.path, crate::check::TIMEOUT)
            .send()
            .await;
        // ASMS answers a bad key with any error, in its own shape.
        let probe = crate::check::Probe {
            refused_unless_success: true,
            explain,
            ..crate::check::Probe::new("TestConnection")
        };
        crate::check::judge(probe, call)
    }
}

#[cfg(test)]
mod tests;
