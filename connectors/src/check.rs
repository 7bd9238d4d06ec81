//! `switchboard accounts check`: each account tried with a cheap authenticated call, so a
//! regenerated or revoked key shows up as "inactive" with the reason, not as endless
//! retries in runs.

use std::time::Duration;

use flows::{Account, AccountKind};
use serde::Serialize;

use crate::aranda;
use crate::http::{self, HttpClient};

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
pub async fn check_account(account: &Account) -> AccountStatus {
    let connector = account.kind.connector();
    let (active, detail) = match try_account(&account.kind).await {
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

async fn try_account(kind: &AccountKind) -> Result<String, String> {
    let client = HttpClient::new(TIMEOUT)?;
    let (what, call) = match kind {
        AccountKind::EightXEight(a) => {
            // Looking up a message id that does not exist: 404 with a good key, 401 without.
            let url = format!(
                "{}/api/v1/subaccounts/{}/messages/00000000-0000-0000-0000-000000000000",
                a.base_url.trim_end_matches('/'),
                a.subaccount_id
            );
            (
                "a message look-up",
                client.client().get(url).bearer_auth(a.api_key.expose()),
            )
        }
        AccountKind::TextRequest(a) => {
            let url = format!("{}/dashboards", a.base_url.trim_end_matches('/'));
            (
                "the dashboard list",
                client
                    .client()
                    .get(url)
                    .header("x-api-key", a.api_key.expose()),
            )
        }
        AccountKind::Aranda(a) => {
            let url = format!("{}/connection", a.base_url.trim_end_matches('/'));
            let call = client
                .client()
                .get(url)
                .header("TokenAsms", a.api_key.expose())
                .header("UrlAsms", &a.instance_url);
            ("TestConnection", call)
        }
        AccountKind::Http(_) => {
            return Ok("generic HTTP: nothing to try without a request; runs will tell".into())
        }
        AccountKind::GoogleSheets(a) => return crate::google_sheets::check(a).await,
        AccountKind::Cinnox(a) => {
            let url = format!(
                "{}/v1/api/apps/{}/inquiry-event-sub",
                a.base_url.trim_end_matches('/'),
                a.app_id
            );
            (
                "the enquiry event subscription",
                client.client().get(url).bearer_auth(a.app_token.expose()),
            )
        }
        AccountKind::Webhook(_) => return Ok("a local shared secret: nothing to try".into()),
    };
    let response = client
        .execute(call)
        .await
        .map_err(|e| format!("{what} failed: {e}"))?;
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
    Ok(format!("{what} answered HTTP {status}"))
}
