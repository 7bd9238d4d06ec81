//! `switchboard accounts check`: each account tried with a cheap authenticated call, so a
//! regenerated or revoked key shows up as "inactive" with the reason, not as endless
//! retries in runs.

use std::time::Duration;

use crate::catalogue::{account_of, Account as AccountKind};
use serde::Serialize;

use crate::aranda;
use crate::http;

/// What the check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountStatus {
    pub account: String,
    pub connector: &'static str,
    pub active: bool,
    /// What was tried and what came back.
    pub detail: String,
}

const TIMEOUT: Duration = Duration::from_secs(15);

/// Try an account.
pub async fn check_account(account: &flows::Account) -> AccountStatus {
    let connector = account.connector;
    let Some(kind) = account_of(account) else {
        return AccountStatus {
            account: account.name.clone(),
            connector,
            active: false,
            detail: "the account was not made by this catalogue".into(),
        };
    };
    let (active, detail) = match try_account(&account.name, kind).await {
        Ok(detail) => (true, detail),
        Err(detail) => (false, detail),
    };
    AccountStatus {
        account: account.name.clone(),
        connector,
        active,
        detail,
    }
}

async fn try_account(name: &str, kind: &AccountKind) -> Result<String, String> {
    let (what, call) = match kind {
        AccountKind::EightXEight(a) => {
            // Looking up a message id that does not exist: 404 with a good key, 401 without.
            let client = a.client(name);
            let path = format!(
                "api/v1/subaccounts/{}/messages/00000000-0000-0000-0000-000000000000",
                a.subaccount_id
            );
            ("a message look-up", client.get(&path, TIMEOUT).send().await)
        }
        AccountKind::TextRequest(a) => (
            "the dashboard list",
            a.client(name).get("dashboards", TIMEOUT).send().await,
        ),
        AccountKind::Aranda(a) => (
            "TestConnection",
            a.client(name).get("connection", TIMEOUT).send().await,
        ),
        AccountKind::Http(_) => {
            return Ok("generic HTTP: nothing to try without a request; runs will tell".into())
        }
        AccountKind::GoogleSheets(a) => return crate::google_sheets::check(name, a).await,
        // The contact list's first entry: a read every token may make (the event
        // subscriptions take only PATCH: a GET of them is 405 whatever the token).
        AccountKind::Cinnox(a) => (
            "the external contact list",
            a.client(name)
                .get("contacts/extcontact-list", TIMEOUT)
                .query(&[("offset", "0"), ("limit", "1")])
                .send()
                .await,
        ),
        AccountKind::Webhook(_) => return Ok("a local shared secret: nothing to try".into()),
        AccountKind::Smtp(a) => return crate::smtp::check(a).await,
    };
    let response = call.map_err(|e| format!("{what} failed: {e}"))?;
    let status = response.status.as_u16();
    let refused = matches!(status, 401 | 403)
        || (matches!(kind, AccountKind::Aranda(_)) && !response.status.is_success());
    if refused {
        let (code, message) = match kind {
            AccountKind::Aranda(_) => aranda::explain(&response.body),
            _ => http::error_body(&response.body),
        };
        let code = code.map(|c| format!("{c}: ")).unwrap_or_default();
        return Err(format!(
            "{what} was refused (HTTP {status}): {code}{message}"
        ));
    }
    if response.status.is_server_error() {
        return Err(format!(
            "{what} failed with HTTP {status}: the service may be down; try again"
        ));
    }
    // Any other refusal (405, 404, 400) does not say the credentials were accepted: the
    // call never got as far as them.
    let confirmed = response.status.is_success()
        || (matches!(kind, AccountKind::EightXEight(_)) && status == 404);
    if !confirmed {
        let (code, message) = http::error_body(&response.body);
        let code = code.map(|c| format!("{c}: ")).unwrap_or_default();
        return Err(format!(
            "{what} answered HTTP {status} ({code}{message}), which does not show the credentials were accepted; check the account's base_url"
        ));
    }
    Ok(accepted(kind, what, status))
}

/// What an answer that did not refuse the credentials says, in words: 8x8's check looks
/// up a message that cannot exist, so its 404 is the good answer.
fn accepted(kind: &AccountKind, what: &str, status: u16) -> String {
    match (kind, status) {
        (AccountKind::EightXEight(_), 404) => {
            "the key was accepted (8x8 answered a look-up of a message that does not exist with 404, as it should)".into()
        }
        (_, 200..=299) => format!("the credentials were accepted ({what} answered)"),
        _ => format!("the credentials were accepted ({what} answered HTTP {status})"),
    }
}
