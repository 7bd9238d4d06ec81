//! CINNOX actions beyond instant messages:
//!
//! - `create_contact`: `POST …/management/create_externalcontact` → `{code, id}`.
//! - `update_contact`: `PUT …/management/update_externalcontact/{contactID}`.
//! - `send_sms`: CINNOX documents the body of its SMS (`senderNumber`, `recipientNumber`,
//!   `text`, as for its OTP SMS at `…/send_otp`) but not the path of a plain SMS; the
//!   path is the receiver's `path:` option, default `send_sms`. Previews show the SMS
//!   parts CINNOX bills (160 GSM-7 / 70 other characters per SMS).
//!
//! A map's flat contact fields (`phoneType`, `phone`, `emailType`, `email`, `street`, …,
//! `socialType`, `socialId`) are nested the way the Open API wants them (`phones`,
//! `emails`, `addresses`, `socialContacts`); documented length limits are checked by the
//! field specs before anything is sent.

use std::time::Duration;

use super::config::Account as CinnoxAccount;
use async_trait::async_trait;
use engine::{Delivered, Prepared, Receiver, SendError};
use serde_json::{json, Map, Value};

use super::api::Api;

/// What a [`CinnoxAction`] does.
#[derive(Debug, Clone)]
pub enum Action {
    CreateContact,
    UpdateContact,
    SendSms { path: String },
}

/// One CINNOX action for one account.
pub struct CinnoxAction {
    api: Api,
    action: Action,
    max_parts: usize,
}

impl CinnoxAction {
    pub fn new(
        name: &str,
        account: &CinnoxAccount,
        action: Action,
        timeout: Duration,
    ) -> Result<Self, String> {
        Ok(CinnoxAction {
            api: Api::new(name, account, timeout)?,
            action,
            max_parts: crate::sms::DEFAULT_MAX_PARTS,
        })
    }

    /// `send_sms`: refuse texts of more billed parts than this.
    pub fn with_max_parts(mut self, parts: usize) -> Self {
        self.max_parts = parts.max(1);
        self
    }
}

/// Flat contact fields as the Open API's contact body.
fn contact_body(mut fields: Map<String, Value>) -> Map<String, Value> {
    let mut take = |name: &str| fields.remove(name);
    let phone = take("phone");
    let phone_type = take("phoneType");
    let email = take("email");
    let email_type = take("emailType");
    let social_id = take("socialId");
    let social_type = take("socialType");
    let address: Map<String, Value> = ["street", "city", "state", "zipcode", "country"]
        .into_iter()
        .filter_map(|k| take(k).map(|v| (k.to_string(), v)))
        .collect();
    let mut body = fields;
    if let Some(phone) = phone {
        body.insert(
            "phones".into(),
            json!([{"type": phone_type.unwrap_or_else(|| json!("Mobile")), "number": phone}]),
        );
    }
    if let Some(email) = email {
        body.insert(
            "emails".into(),
            json!([{"type": email_type.unwrap_or_else(|| json!("Work")), "address": email}]),
        );
    }
    if !address.is_empty() {
        body.insert("addresses".into(), json!([address]));
    }
    if let (Some(key), Some(value)) = (social_type, social_id) {
        body.insert(
            "socialContacts".into(),
            json!([{"key": key, "value": value}]),
        );
    }
    body
}

#[async_trait]
impl Receiver for CinnoxAction {
    fn prepare(
        &self,
        mut fields: Map<String, Value>,
        _reference: &str,
    ) -> Result<Prepared, SendError> {
        let (method, url, body, notes) = match &self.action {
            Action::CreateContact => {
                if !fields.contains_key("firstName") && !fields.contains_key("lastName") {
                    return Err(SendError::permanent(
                        "a contact needs a firstName or a lastName",
                    ));
                }
                (
                    engine::Method::Post,
                    self.api.url(super::config::CREATE_CONTACT, ""),
                    contact_body(fields),
                    Map::new(),
                )
            }
            Action::UpdateContact => {
                let id = match fields.remove("contactID") {
                    Some(Value::String(id)) if !id.trim().is_empty() => id,
                    _ => return Err(SendError::permanent("contactID is empty")),
                };
                (
                    engine::Method::Put,
                    self.api.url(super::config::UPDATE_CONTACT, &id),
                    contact_body(fields),
                    Map::new(),
                )
            }
            Action::SendSms { path } => {
                let text = fields
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if text.trim().is_empty() {
                    return Err(SendError::permanent("text is empty"));
                }
                let info =
                    crate::sms::within(text, self.max_parts).map_err(SendError::permanent)?;
                let mut notes = Map::new();
                notes.insert("encoding".into(), json!(info.encoding.to_string()));
                notes.insert("parts".into(), json!(info.parts));
                (
                    engine::Method::Post,
                    self.api.url(super::config::APP_PATH_POST, path),
                    fields,
                    notes,
                )
            }
        };
        Ok(Prepared {
            method,
            url,
            body: Value::Object(body),
            notes,
        })
    }

    async fn send(&self, request: &Prepared) -> Result<Delivered, SendError> {
        self.api.send(request).await
    }
}
