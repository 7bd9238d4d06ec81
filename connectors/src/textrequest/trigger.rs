//! Text Request as a trigger: "a text was sent or received" on a dashboard.
//!
//! The daemon registers its URL per event ([`super::config::HOOKS`])
//! `{target_url, event, httpVerb: "POST"}`
//! (→ `{id, target_url, event}`); the event is also in the URL (`?event=msg_received`),
//! so a delivery says which hook it came from. A removed flow's hooks are deleted with
//! [`super::config::HOOK`] — not in Text Request's swagger, but what its clients use.
//! Payloads (`{messageUniqueIdentifier, account, yourPhoneNumber, conversation}`) become
//! flat records: `messageId`, `phone` (the consumer's number), `name`, `message`,
//! `direction`, `date`, `status`, `numSegments`, `claimedBy`, `conversationId`,
//! `yourPhoneNumber`, `yourPhoneNumberId`, `yourPhoneDescription`, `accountId`, `event`.

use std::time::Duration;

use super::config::Account as TextRequestAccount;
use serde_json::{json, Map, Value};

use crate::http;

/// A hook registered with Text Request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hook {
    pub dashboard_id: u64,
    pub event: String,
    pub url: String,
    pub id: u64,
    /// The API it was registered with (the account's `base_url`); empty for hooks
    /// remembered before this was kept.
    #[serde(default)]
    pub base_url: String,
}

fn scalar(v: Option<&Value>) -> Option<Value> {
    match v? {
        s @ (Value::String(_) | Value::Number(_) | Value::Bool(_)) => Some(s.clone()),
        _ => None,
    }
}

/// The event a payload reports: the hook's (`?event=`) when known, else read from the
/// message direction.
fn event_of(conversation: &Map<String, Value>, hinted: Option<&str>) -> Result<String, String> {
    if let Some(event) = hinted {
        return Ok(event.to_string());
    }
    let direction = conversation
        .get("messageDirection")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_lowercase();
    if direction.starts_with("in") || direction.contains("receiv") {
        Ok("msg_received".into())
    } else if direction.starts_with("out")
        || direction.contains("sent")
        || direction.contains("send")
    {
        Ok("msg_sent".into())
    } else {
        Err(format!(
            "cannot tell whether the text was sent or received (messageDirection `{direction}`)"
        ))
    }
}

/// A Text Request webhook body as a record's key and fields.
pub fn normalise(
    body: &Value,
    hinted: Option<&str>,
) -> Result<(String, Map<String, Value>), String> {
    let Value::Object(top) = body else {
        return Err("a Text Request event is a JSON object".into());
    };
    let Some(Value::Object(conversation)) = top.get("conversation") else {
        return Err("a Text Request event has a `conversation` object".into());
    };
    let mut fields = Map::new();
    let mut put = |name: &str, value: Option<Value>| {
        if let Some(value) = value {
            fields.insert(name.to_string(), value);
        }
    };
    put("messageId", scalar(top.get("messageUniqueIdentifier")));
    put("accountId", scalar(body.pointer("/account/id")));
    put(
        "yourPhoneNumber",
        scalar(body.pointer("/yourPhoneNumber/phoneNumber")),
    );
    put(
        "yourPhoneNumberId",
        scalar(body.pointer("/yourPhoneNumber/id")),
    );
    put(
        "yourPhoneDescription",
        scalar(body.pointer("/yourPhoneNumber/description")),
    );
    put("conversationId", scalar(conversation.get("id")));
    put("date", scalar(conversation.get("date")));
    put("phone", scalar(conversation.get("consumerPhoneNumber")));
    put("name", scalar(conversation.get("consumerFriendlyName")));
    put("direction", scalar(conversation.get("messageDirection")));
    put("message", scalar(conversation.get("message")));
    put("numSegments", scalar(conversation.get("numSegments")));
    put("status", scalar(conversation.get("status")));
    put("claimedBy", scalar(conversation.get("claimedBy")));
    let event = event_of(conversation, hinted)?;
    let id = match fields.get("messageId") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        _ => format!(
            "{}/{}",
            fields
                .get("conversationId")
                .map(Value::to_string)
                .unwrap_or_default(),
            fields
                .get("date")
                .and_then(Value::as_str)
                .unwrap_or_default()
        ),
    };
    fields.insert("event".into(), Value::String(event.clone()));
    Ok((format!("{event}:{id}"), fields))
}

/// The texts of a body (one or a list); one that cannot be read fails the whole body.
pub fn events_of(body: &Value, hinted: Option<&str>) -> Result<Vec<crate::push::Pushed>, String> {
    crate::push::read_events(body, |item| {
        let (key, fields) = normalise(item, hinted)?;
        let event = fields
            .get("event")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Ok((event, key, fields))
    })
}

/// The texts of a body that a flow takes, as records, and how many others were ignored.
pub fn records_for(
    body: &Value,
    wanted: &[String],
    hinted: Option<&str>,
) -> Result<(Vec<engine::Record>, usize), String> {
    Ok(crate::push::select(&events_of(body, hinted)?, wanted))
}

/// A hook call's path for a dashboard (and a hook).
fn hooks_path(call: crate::card::Call, dashboard_id: u64, hook_id: u64) -> String {
    call.path_with(|name| {
        Ok::<_, std::convert::Infallible>(match name {
            "hook_id" => hook_id.to_string(),
            _ => dashboard_id.to_string(),
        })
    })
    .unwrap_or_else(|never| match never {})
}

fn failure(what: &str, response: &http::Response) -> String {
    let (code, message) = http::error_body(&response.body);
    let hint = if response.status.as_u16() == 401 {
        " (check the account's api_key)"
    } else {
        ""
    };
    format!(
        "Text Request {what} answered HTTP {}: {}{message}{hint}",
        response.status.as_u16(),
        code.map(|c| format!("{c}: ")).unwrap_or_default()
    )
}

/// How long a hook call may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// Register `url` for `event` on a dashboard of account `name`; the hook's id comes back.
pub async fn subscribe(
    name: &str,
    account: &TextRequestAccount,
    dashboard_id: u64,
    event: &str,
    url: &str,
) -> Result<Hook, String> {
    let response = account
        .client(name)
        .post(&hooks_path(super::config::HOOKS, dashboard_id, 0), TIMEOUT)
        .json(&json!({"target_url": url, "event": event, "httpVerb": "POST"}))
        .send()
        .await
        .map_err(|e| format!("Text Request hooks: {e}"))?;
    if !response.status.is_success() {
        return Err(failure("hooks", &response));
    }
    let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let id = body.get("id").and_then(Value::as_u64).ok_or_else(|| {
        format!(
            "Text Request registered the hook but sent no id: {}",
            http::snippet(&response.body)
        )
    })?;
    Ok(Hook {
        dashboard_id,
        event: event.to_string(),
        url: url.to_string(),
        id,
        base_url: account.base_url.clone(),
    })
}

/// Delete a hook of account `name` (a 404 counts as deleted).
pub async fn unsubscribe(
    name: &str,
    account: &TextRequestAccount,
    hook: &Hook,
) -> Result<(), String> {
    let response = account
        .client(name)
        .request(
            reqwest::Method::DELETE,
            &hooks_path(super::config::HOOK, hook.dashboard_id, hook.id),
            TIMEOUT,
        )
        .send()
        .await
        .map_err(|e| format!("Text Request hooks: {e}"))?;
    if response.status.is_success() || response.status.as_u16() == 404 {
        return Ok(());
    }
    Err(failure("hook removal", &response))
}

/// The URL a hook for `event` posts to: the flow's webhook with the event in the query.
pub fn target_url(flow_url: &str, event: &str) -> String {
    let separator = if flow_url.contains('?') { '&' } else { '?' };
    format!("{flow_url}{separator}event={event}")
}
