//! Text Request (`connector: textrequest`): every action and look-up, and the call it
//! makes, is declared once, in the card ([`config::CARD`]; `switchboard connectors
//! textrequest` shows it). Payments, contact groups and dashboards run from their
//! declared call alone ([`crate::declared`]); texts and contacts ([`client`]) clean the
//! phone number first, and `upsert_contact` with `batch` uses the bulk update. Look-ups:
//! [`lookup`]; list reads on a schedule: [`reads`]. The key travels in `x-api-key`. A
//! phone number goes in the path, URL-encoded (a leading `+` becomes `%2B`); the other
//! mapped fields are the JSON body. Paced by the account's rate limit (default: the
//! documented 100 calls per 60 s), shared by every flow using it.
//! As a trigger ([`trigger`]): texts sent or received, pushed to the daemon's webhook.

mod client;
pub mod config;
mod intake;
mod lookup;
mod reads;
pub mod standin;
pub mod trigger;

pub use client::{Action, TextRequest};
pub use intake::TextRequestIntake;
pub use lookup::TextRequestLookup;
pub use reads::ListSource;

use config::Receiver as R;

impl config::Receiver {
    /// The live receiver, with account `name`'s credentials.
    pub fn build(
        &self,
        name: &str,
        account: &config::Account,
        timeout: std::time::Duration,
    ) -> Result<std::sync::Arc<dyn engine::Receiver>, String> {
        let contact =
            |action| TextRequest::new(name, account, self.dashboard_id(), action, timeout);
        let receiver = match self {
            R::SendMessage(_) => contact(Action::SendMessage)?,
            R::UpsertContact(options) => {
                contact(Action::UpsertContact)?.with_batch(options.batch.unwrap_or(1))
            }
            R::ArchiveConversation(_) => contact(Action::ArchiveConversation)?,
            R::UnarchiveConversation(_) => contact(Action::UnarchiveConversation)?,
            R::DeleteContact(_) => contact(Action::DeleteContact)?,
            // The rest is its declared call; dashboards' own actions name theirs in the record.
            _ => {
                let declared = client::declared(&account.client(name), self.action(), timeout)?;
                let declared = match self {
                    R::CreateDashboard | R::RenameDashboard | R::DeleteDashboard => declared,
                    R::CreatePayment(_) => declared
                        .given("dashboard_id", self.dashboard_id())
                        .shaped(client::payment_request),
                    _ => declared.given("dashboard_id", self.dashboard_id()),
                };
                return Ok(std::sync::Arc::new(declared));
            }
        };
        Ok(std::sync::Arc::new(receiver))
    }
}

/// `connector: textrequest` in the registry.
pub struct TextRequestConnector;

#[async_trait::async_trait]
impl crate::Connector for TextRequestConnector {
    crate::described!(config::CARD, standin::STANDIN);

    crate::source_role!(config::source, |s: &config::Source| {
        // A list read on a schedule, or the events Text Request pushes.
        let account = Some((s.account.clone(), s.pos));
        match s.reads {
            Some(_) => crate::connector::SourceShape::read(account, s.backlog),
            None => crate::connector::SourceShape::pushed(account),
        }
    });

    crate::receiver_role!(config::receiver, config::Receiver, config::Account);
    crate::lookup_role!(
        config::lookup,
        config::Lookup,
        config::Account,
        |name, account, lookup, timeout| Ok::<_, String>(TextRequestLookup::new(
            name,
            account,
            lookup.clone(),
            timeout
        ))
    );
    crate::account_role!(config::account);

    fn pushes(&self) -> bool {
        true
    }

    fn build_source(
        &self,
        flow: &flows::Flow,
        accounts: &flows::Accounts,
    ) -> Result<Option<Box<dyn engine::Source>>, crate::connector::BuildError> {
        // Only a list read on a schedule is fetched; pushed events come from the queue.
        if flow.source.push {
            return Ok(None);
        }
        let (config, name, account) =
            crate::connector::source_parts::<config::Source, config::Account>(flow, accounts)?;
        Ok(Some(Box::new(ListSource::new(name, account, config))))
    }

    fn build_push(
        &self,
        flow: &flows::Flow,
        accounts: &flows::Accounts,
    ) -> Result<Option<std::sync::Arc<dyn crate::push::Push>>, crate::connector::BuildError> {
        if !flow.source.push {
            return Ok(None);
        }
        let (config, name, account) =
            crate::connector::source_parts::<config::Source, config::Account>(flow, accounts)?;
        Ok(Some(std::sync::Arc::new(TextRequestIntake::new(
            name, account, config,
        ))))
    }

    async fn check_account(
        &self,
        account: &flows::Account,
    ) -> Result<String, crate::connector::BuildError> {
        let (name, account) = crate::connector::parsed_account::<config::Account>(account)?;
        let call = account
            .client(name)
            .get(config::LIST_DASHBOARDS.path, crate::check::TIMEOUT)
            .send()
            .await;
        crate::check::judge(crate::check::Probe::new("the dashboard list"), call)
    }
}

#[cfg(test)]
mod tests;
