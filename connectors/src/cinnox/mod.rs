//! CINNOX (`connector: cinnox`) as a trigger source. CINNOX pushes events to the daemon
//! at `/hooks/<flow>` once the URL is registered with the event subscription of its family
//! ([`config::EVENT_SUB`], `{enabled, url}`). Before
//! sending events CINNOX POSTs `{"challenge": …}`, answered with
//! `{"code": 0, "result": {"challenge": …}}`. Payloads arrive in either documented shape
//! (Zapier's flat fields, or the Open API's nested ones) and are normalised to the flat
//! field names of the seed table, with `event` naming what happened. As a receiver it
//! sends instant messages ([`MessagePush`]), SMS and creates or updates external
//! contacts ([`CinnoxAction`]), all through one Open API client (`api.rs`).

mod actions;
mod api;
pub mod config;
mod intake;
mod lookup;
mod normalise;
mod push;
pub mod standin;

pub use actions::{Action, CinnoxAction};
pub use api::DEFAULT_RATE_LIMIT;
pub use intake::CinnoxIntake;
pub use lookup::{CinnoxLookup, Find, DEFAULT_NUMBERS_PATH};
pub use normalise::{challenge, events_of, family_of, normalise, records_for, Event};
pub use push::MessagePush;

use std::time::Duration;

use config::Account as CinnoxAccount;
use serde_json::json;

use crate::http;

/// Register (or, with `enabled: false`, switch off) a webhook URL for an event family of
/// account `name`.
pub async fn subscribe(
    name: &str,
    account: &CinnoxAccount,
    family: &str,
    url: &str,
    enabled: bool,
) -> Result<(), String> {
    let response = account
        .client(name)
        .request(
            reqwest::Method::PATCH,
            &account.path(config::EVENT_SUB, family.trim_end_matches("-event-sub")),
            Duration::from_secs(15),
        )
        .json(&json!({"enabled": enabled, "url": url}))
        .send()
        .await
        .map_err(|e| format!("CINNOX {family}: {e}"))?;
    if response.status.is_success() {
        return Ok(());
    }
    let (code, message) = http::error_body(&response.body);
    let hint = if matches!(response.status.as_u16(), 401 | 403) {
        " (was the App Token regenerated? paste the new one into accounts.yaml)"
    } else {
        ""
    };
    Err(format!(
        "CINNOX {family} answered HTTP {}: {}{message}{hint}",
        response.status.as_u16(),
        code.map(|c| format!("{c}: ")).unwrap_or_default()
    ))
}

impl config::Receiver {
    /// The live receiver, with account `name`'s credentials.
    pub fn build(
        &self,
        name: &str,
        account: &CinnoxAccount,
        timeout: Duration,
    ) -> Result<std::sync::Arc<dyn engine::Receiver>, String> {
        let action = |action| CinnoxAction::new(name, account, action, timeout);
        Ok(match self {
            config::Receiver::ImStaff | config::Receiver::ImRoom => {
                std::sync::Arc::new(MessagePush::new(name, account, timeout)?)
            }
            config::Receiver::SendSms(sms) => std::sync::Arc::new(
                action(Action::SendSms {
                    path: sms.path.clone(),
                })?
                .with_max_parts(sms.max_parts.unwrap_or(crate::sms::DEFAULT_MAX_PARTS)),
            ),
            config::Receiver::CreateContact => std::sync::Arc::new(action(Action::CreateContact)?),
            config::Receiver::UpdateContact => std::sync::Arc::new(action(Action::UpdateContact)?),
        })
    }
}

/// `connector: cinnox` in the registry.
pub struct CinnoxConnector;

#[async_trait::async_trait]
impl crate::Connector for CinnoxConnector {
    crate::described!(config::CARD, standin::STANDIN);

    crate::source_role!(config::source, |s: &config::Source| {
        crate::connector::SourceShape::pushed(Some((s.account.clone(), s.pos)))
    });

    crate::receiver_role!(config::receiver, config::Receiver, config::Account);
    crate::lookup_role!(
        config::lookup,
        config::Lookup,
        config::Account,
        |name, account, lookup, timeout| CinnoxLookup::new(name, account, lookup.clone(), timeout)
    );
    crate::account_role!(config::account);

    fn pushes(&self) -> bool {
        true
    }

    fn build_push(
        &self,
        flow: &flows::Flow,
        accounts: &flows::Accounts,
    ) -> Result<Option<std::sync::Arc<dyn crate::push::Push>>, crate::connector::BuildError> {
        let (config, name, account) =
            crate::connector::source_parts::<config::Source, config::Account>(flow, accounts)?;
        Ok(Some(std::sync::Arc::new(CinnoxIntake::new(
            name, account, config,
        ))))
    }

    async fn check_account(
        &self,
        account: &flows::Account,
    ) -> Result<String, crate::connector::BuildError> {
        let (name, account) = crate::connector::parsed_account::<config::Account>(account)?;
        // The contact list's first entry: a read every token may make (the event
        // subscriptions take only PATCH: a GET of them is 405 whatever the token).
        let call = account
            .client(name)
            .get(
                &account.path(config::CONTACT_LIST, ""),
                crate::check::TIMEOUT,
            )
            .query(&[("offset", "0"), ("limit", "1")])
            .send()
            .await;
        crate::check::judge(crate::check::Probe::new("the external contact list"), call)
    }
}

#[cfg(test)]
mod tests;
