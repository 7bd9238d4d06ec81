//! `switchboard accounts check`: each account tried with a cheap authenticated call (its
//! connector's [`crate::Connector::check_account`]), so a regenerated or revoked key
//! shows up as "inactive" with the reason, not as endless retries in runs. What every
//! HTTP service's answer means for the credentials is judged once, here ([`judge`]).

use std::time::Duration;

use engine::SendError;
use serde::Serialize;

use crate::connector::BuildError;
use crate::http::{self, Response};

/// What the check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountStatus {
    pub account: String,
    pub connector: &'static str,
    pub active: bool,
    /// What was tried and what came back.
    pub detail: String,
}

/// How long one account's try may take.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// Try an account.
pub async fn check_account(account: &flows::Account) -> AccountStatus {
    let connector = account.connector;
    let tried = match crate::connector::connector(connector) {
        Some(c) => c.check_account(account).await,
        None => Err(BuildError::Missing(
            "the account was not made by this catalogue",
        )),
    };
    let (active, detail) = match tried {
        Ok(detail) => (true, detail),
        Err(why) => (false, why.to_string()),
    };
    AccountStatus {
        account: account.name.clone(),
        connector,
        active,
        detail,
    }
}

/// How a service's answer to a check is read, beyond what is the same for all.
#[derive(Clone, Copy)]
pub struct Probe {
    /// What was tried, as people say it ("the dashboard list").
    pub what: &'static str,
    /// Every answer but a success is a refusal (a service that answers a bad key with
    /// any error).
    pub refused_unless_success: bool,
    /// A status that shows the credentials were accepted although it is no success
    /// (a look-up of what cannot exist answered 404), and how that is said.
    pub accepted_also: Option<(u16, &'static str)>,
    /// The service's error body, read as (code, message).
    pub explain: fn(&[u8]) -> (Option<String>, String),
}

impl Probe {
    /// A check read the common way: 401/403 refuse, 2xx accept, JSON errors `{code, message}`.
    pub const fn new(what: &'static str) -> Probe {
        Probe {
            what,
            refused_unless_success: false,
            accepted_also: None,
            explain: http::error_body,
        }
    }
}

/// What a check's answer (or its failure to come) says of the credentials.
pub fn judge(probe: Probe, call: Result<Response, SendError>) -> Result<String, BuildError> {
    let what = probe.what;
    let response = call.map_err(|e| format!("{what} failed: {e}"))?;
    let status = response.status.as_u16();
    if matches!(status, 401 | 403)
        || (probe.refused_unless_success && !response.status.is_success())
    {
        let (code, message) = (probe.explain)(&response.body);
        let code = code.map(|c| format!("{c}: ")).unwrap_or_default();
        return Err(BuildError::Refused(format!(
            "{what} was refused (HTTP {status}): {code}{message}"
        )));
    }
    if response.status.is_server_error() {
        return Err(BuildError::Refused(format!(
            "{what} failed with HTTP {status}: the service may be down; try again"
        )));
    }
    if let Some((_, said)) = probe.accepted_also.filter(|(also, _)| *also == status) {
        return Ok(said.to_string());
    }
    // Any other refusal (405, 404, 400) does not say the credentials were accepted: the
    // call never got as far as them.
    if !response.status.is_success() {
        let (code, message) = (probe.explain)(&response.body);
        let code = code.map(|c| format!("{c}: ")).unwrap_or_default();
        return Err(BuildError::Refused(format!(
            "{what} answered HTTP {status} ({code}{message}), which does not show the credentials were accepted; check the account's base_url"
        )));
    }
    Ok(format!("the credentials were accepted ({what} answered)"))
}
