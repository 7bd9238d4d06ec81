//! Text Request (`connector: textrequest`): messages and contacts ([`client`]), look-ups
//! ([`lookup`], and the list reads of [`reads`]), payments ([`payments`]), contact groups
//! ([`groups`]) and the account's dashboards ([`dashboards`]). Each action and look-up, and
//! the call it makes, is declared once, in the card ([`config::CARD`]; `switchboard
//! connectors textrequest` shows it). The key travels in `x-api-key`. A phone number goes
//! in the path, URL-encoded (a leading `+` becomes `%2B`); the other mapped fields are the
//! JSON body. Paced by the account's rate limit (default: the documented 100 calls per
//! 60 s), shared by every flow using it.
//! As a trigger ([`trigger`]): texts sent or received, pushed to the daemon's webhook.

mod client;
pub mod config;
mod dashboards;
mod groups;
mod intake;
mod lookup;
mod payments;
mod reads;
pub mod standin;
pub mod trigger;

pub use client::{Action, TextRequest};
pub use dashboards::{DashboardAction, Dashboards};
pub use groups::{GroupAction, Groups};
pub use intake::TextRequestIntake;
pub use lookup::TextRequestLookup;
pub use payments::{PaymentAction, Payments};
pub use reads::ListSource;

impl config::Receiver {
    /// The live receiver, with account `name`'s credentials.
    pub fn build(
        &self,
        name: &str,
        account: &config::Account,
        timeout: std::time::Duration,
    ) -> Result<std::sync::Arc<dyn engine::Receiver>, String> {
        let payments = |action| -> Result<std::sync::Arc<dyn engine::Receiver>, String> {
            Ok(std::sync::Arc::new(Payments::new(
                name,
                account,
                self.dashboard_id(),
                action,
                timeout,
            )))
        };
        let groups = |action| -> Result<std::sync::Arc<dyn engine::Receiver>, String> {
            Ok(std::sync::Arc::new(Groups::new(
                name,
                account,
                self.dashboard_id(),
                action,
                timeout,
            )))
        };
        let dashboards = |action| -> Result<std::sync::Arc<dyn engine::Receiver>, String> {
            Ok(std::sync::Arc::new(Dashboards::new(
                name, account, action, timeout,
            )))
        };
        let action = match self {
            config::Receiver::CreatePayment(_) => return payments(PaymentAction::Create),
            config::Receiver::MarkPaymentPaid(_) => return payments(PaymentAction::MarkPaid),
            config::Receiver::SendPaymentReminder(_) => return payments(PaymentAction::Remind),
            config::Receiver::CancelPayment(_) => return payments(PaymentAction::Cancel),
            config::Receiver::CreateGroup(_) => return groups(GroupAction::Create),
            config::Receiver::UpdateGroup(_) => return groups(GroupAction::Update),
            config::Receiver::DeleteGroup(_) => return groups(GroupAction::Delete),
            config::Receiver::CreateDashboard => return dashboards(DashboardAction::Create),
            config::Receiver::RenameDashboard => return dashboards(DashboardAction::Rename),
            config::Receiver::DeleteDashboard => return dashboards(DashboardAction::Delete),
            config::Receiver::SendMessage(_) => Action::SendMessage,
            config::Receiver::UpsertContact(_) => Action::UpsertContact,
            config::Receiver::ArchiveConversation(_) => Action::ArchiveConversation,
            config::Receiver::UnarchiveConversation(_) => Action::UnarchiveConversation,
            config::Receiver::DeleteContact(_) => Action::DeleteContact,
        };
        let batch = match self {
            config::Receiver::UpsertContact(options) => options.batch.unwrap_or(1),
            _ => 1,
        };
        Ok(std::sync::Arc::new(
            TextRequest::new(name, account, self.dashboard_id(), action, timeout)?
                .with_batch(batch),
        ))
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
        Ok(std::sync::Arc::new(TextRequestLookup::new(
            name,
            account,
            self.clone(),
            timeout,
        )))
    }
}

/// `connector: textrequest` in the registry.
pub struct TextRequestConnector;

#[async_trait::async_trait]
impl crate::Connector for TextRequestConnector {
    fn card(&self) -> &'static crate::card::Card {
        &config::CARD
    }

    crate::source_role!(config::source, |s: &config::Source| {
        // A list read on a schedule, or the events Text Request pushes.
        let account = Some((s.account.clone(), s.pos));
        match s.reads {
            Some(_) => crate::connector::SourceShape::read(account, s.backlog),
            None => crate::connector::SourceShape::pushed(account),
        }
    });

    crate::receiver_role!(config::receiver, config::Receiver, config::Account);
    crate::lookup_role!(config::lookup, config::Lookup, config::Account);
    crate::account_role!(config::account);

    fn pushes(&self) -> bool {
        true
    }

    fn standin(&self) -> Option<&'static crate::standin::Standin> {
        Some(&standin::STANDIN)
    }

    fn build_source(
        &self,
        flow: &flows::Flow,
        accounts: &flows::Accounts,
    ) -> Result<Option<Box<dyn engine::Source>>, String> {
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
    ) -> Result<Option<std::sync::Arc<dyn crate::push::Push>>, String> {
        if !flow.source.push {
            return Ok(None);
        }
        let (config, name, account) =
            crate::connector::source_parts::<config::Source, config::Account>(flow, accounts)?;
        Ok(Some(std::sync::Arc::new(TextRequestIntake::new(
            name, account, config,
        ))))
    }

    async fn check_account(&self, account: &flows::Account) -> Result<String, String> {
        let (name, account) = crate::connector::parsed_account::<config::Account>(account)?;
        let call = account
            .client(name)
            .get("dashboards", crate::check::TIMEOUT)
            .send()
            .await;
        crate::check::judge(crate::check::Probe::new("the dashboard list"), call)
    }
}

#[cfg(test)]
mod tests;
