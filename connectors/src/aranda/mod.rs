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

/// `connector: aranda` in the registry.
pub struct ArandaConnector;

#[async_trait::async_trait]
impl crate::Connector for ArandaConnector {
    fn card(&self) -> &'static crate::card::Card {
        &config::CARD
    }

    fn standin(&self) -> Option<&'static crate::standin::Standin> {
        Some(&standin::STANDIN)
    }

    fn source(
        &self,
        cx: &flows::Cx<'_>,
        rest: &flows::yaml::Node,
        pos: flows::Pos,
    ) -> Result<flows::SourceSpec, flows::Diagnostic> {
        let source = config::source(cx, rest, pos)?;
        Ok(flows::SourceSpec {
            account: Some((source.account.clone(), source.pos)),
            backlog: source.backlog,
            push: false,
            keyed_by: None,
            section: flows::Section::new(source),
        })
    }

    fn receiver(
        &self,
        cx: &flows::Cx<'_>,
        action: &str,
        rest: &flows::yaml::Node,
        pos: flows::Pos,
    ) -> Result<flows::ReceiverSpec, flows::Diagnostic> {
        let receiver = config::receiver(cx, action, rest, pos)?;
        Ok(flows::ReceiverSpec {
            fields: receiver.fields(),
            section: flows::Section::new(receiver),
        })
    }

    fn lookup(
        &self,
        cx: &flows::Cx<'_>,
        action: &str,
        rest: &flows::yaml::Node,
        pos: flows::Pos,
    ) -> Result<flows::LookupSpec, flows::Diagnostic> {
        Ok(flows::LookupSpec {
            section: flows::Section::new(config::lookup(cx, action, rest, pos)?),
        })
    }

    fn account(
        &self,
        cx: &flows::Cx<'_>,
        name: &str,
        rest: &flows::yaml::Node,
        _pos: flows::Pos,
    ) -> Result<flows::AccountSpec, Vec<flows::Diagnostic>> {
        let account = config::account(cx, name, rest)?;
        Ok(flows::AccountSpec {
            secrets: account.secrets(),
            section: flows::Section::new(account),
        })
    }

    fn build_source(
        &self,
        flow: &flows::Flow,
        accounts: &flows::Accounts,
    ) -> Result<Option<Box<dyn engine::Source>>, String> {
        let config = crate::connector::source_of::<config::Source>(flow)?;
        let account = crate::connector::account_for::<config::Account>(
            accounts,
            &config.account,
            "source",
            config::CARD.name,
        )?;
        Ok(Some(Box::new(Cases::new(&config.account, account, config))))
    }

    fn build_receiver(
        &self,
        flow: &flows::Flow,
        accounts: &flows::Accounts,
    ) -> Result<std::sync::Arc<dyn engine::Receiver>, String> {
        let (receiver, name, account) =
            crate::connector::receiver_parts::<config::Receiver, config::Account>(flow, accounts)?;
        receiver.build(name, account, flow.delivery.timeout)
    }

    fn build_lookup(
        &self,
        flow: &flows::Flow,
        accounts: &flows::Accounts,
    ) -> Result<std::sync::Arc<dyn engine::Lookup>, String> {
        let (lookup, name, account) =
            crate::connector::lookup_parts::<config::Lookup, config::Account>(flow, accounts)?;
        lookup.build(name, account, flow.delivery.timeout)
    }

    async fn check_account(&self, account: &flows::Account) -> Result<String, String> {
        let (name, account) = (
            account.name.as_str(),
            crate::connector::section::<config::Account>(&account.section, "account")?,
        );
        let call = account
            .client(name)
            .get("connection", crate::check::TIMEOUT)
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
