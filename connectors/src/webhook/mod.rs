//! The generic webhook source (`connector: webhook`): any JSON POSTed to the daemon's
//! `/hooks/<flow>` becomes records — one object or a list of them, each keyed by the
//! flow's `key` field(s) (several fields as a JSON list, so no two events share a key by
//! accident) or a hash of the whole event — after its sender proved it knows the
//! account's secret: a bearer token, or an HMAC-SHA256 signature of the body.

pub mod config;

use engine::Record;
use hmac::{Hmac, Mac};
use reqwest::header::HeaderMap;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use config::{Account, Signature, Source};

/// A webhook flow at the daemon's door.
pub struct WebhookPush {
    source: Source,
    /// The account holding the shared secret, when the flow names one.
    account: Option<Account>,
}

impl WebhookPush {
    /// A webhook flow's door; `account` is its account, when it names one (and it is a
    /// usable webhook account).
    pub fn new(source: &Source, account: Option<&Account>) -> Result<WebhookPush, String> {
        if source.account.is_some() && account.is_none() {
            return Err("the flow's webhook account is not usable".into());
        }
        Ok(WebhookPush {
            source: source.clone(),
            account: account.cloned(),
        })
    }
}

impl crate::push::Push for WebhookPush {
    fn max_body(&self) -> usize {
        self.source.max_body
    }

    fn verify_headers(&self, headers: &HeaderMap) -> Result<(), String> {
        match &self.account {
            Some(account) if account.signature == Signature::Token => verify(account, headers, &[]),
            _ => Ok(()),
        }
    }

    fn verify_body(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
        match &self.account {
            Some(account) if account.signature == Signature::Hmac => verify(account, headers, body),
            _ => Ok(()),
        }
    }

    fn read(
        &self,
        body: &[u8],
        _query: &std::collections::BTreeMap<String, String>,
    ) -> Result<Vec<crate::push::Pushed>, String> {
        Ok(events(&self.source, body)?
            .into_iter()
            .map(|record| crate::push::Pushed {
                event: String::new(),
                record,
            })
            .collect())
    }

    fn answer(&self, queued: &[String], _ignored: usize, _flows: &[String]) -> Value {
        serde_json::json!({"queued": queued.len(), "keys": queued})
    }
}

/// Check the shared secret: a bearer token (or `X-Switchboard-Token`), or an HMAC-SHA256
/// signature of the body in `X-Signature-256: sha256=<hex>`.
pub fn verify(account: &Account, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let secret = account.secret.expose().as_bytes();
    match account.signature {
        Signature::Token => {
            let given = header("authorization")
                .and_then(|v| v.strip_prefix("Bearer "))
                .or_else(|| header("x-switchboard-token"))
                .ok_or("missing token: send `Authorization: Bearer <secret>`")?;
            if bool::from(given.as_bytes().ct_eq(secret)) {
                Ok(())
            } else {
                Err("wrong token".into())
            }
        }
        Signature::Hmac => {
            let given = header("x-signature-256").ok_or(
                "missing signature: send `X-Signature-256: sha256=<hex HMAC-SHA256 of the body>`",
            )?;
            let hex_digest = given.strip_prefix("sha256=").unwrap_or(given);
            let digest = hex::decode(hex_digest.trim())
                .map_err(|_| "the signature is not hex".to_string())?;
            let mut mac = Hmac::<Sha256>::new_from_slice(secret)
                .map_err(|_| "unusable secret".to_string())?;
            mac.update(body);
            mac.verify_slice(&digest)
                .map_err(|_| "wrong signature".to_string())
        }
    }
}

/// The request body as events: one JSON object, or a list of them.
pub fn events(source: &Source, body: &[u8]) -> Result<Vec<Record>, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not valid JSON: {e}"))?;
    let objects: Vec<Map<String, Value>> = match value {
        Value::Object(object) => vec![object],
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(object) => Ok(object),
                _ => Err(format!("event {i} is not a JSON object")),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("expected a JSON object (or a list of objects)".into()),
    };
    if objects.is_empty() {
        return Err("the list holds no events".into());
    }
    objects
        .into_iter()
        .enumerate()
        .map(|(i, fields)| {
            let key = if source.key.is_empty() {
                let digest = Sha256::digest(serde_json::to_vec(&fields).unwrap_or_default());
                engine::payload_key(&hex::encode(&digest[..16]))
            } else {
                let parts = source
                    .key
                    .iter()
                    .map(|field| match fields.get(field) {
                        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                        Some(v @ Value::Number(_)) => Ok(v.to_string()),
                        _ => Err(format!("event {i} has no `{field}` (the flow's key)")),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                // One field is its value; several are encoded as a JSON list (as CSV
                // keys are), so `{a: "x/y", b: "z"}` and `{a: "x", b: "y/z"}` differ.
                match parts.as_slice() {
                    [one] => one.clone(),
                    many => serde_json::to_string(many).unwrap_or_default(),
                }
            };
            Ok(Record::new(key, fields))
        })
        .collect()
}

/// `connector: webhook` in the registry.
pub struct WebhookConnector;

#[async_trait::async_trait]
impl crate::Connector for WebhookConnector {
    crate::described!(config::CARD);

    crate::source_role!(config::source, |s: &Source| {
        crate::connector::SourceShape::pushed(s.account.clone().map(|a| (a, s.pos)))
    });

    crate::account_role!(config::account);

    fn pushes(&self) -> bool {
        true
    }

    fn build_push(
        &self,
        flow: &flows::Flow,
        accounts: &flows::Accounts,
    ) -> Result<Option<std::sync::Arc<dyn crate::push::Push>>, crate::connector::BuildError> {
        let config = crate::connector::source_of::<Source>(flow)?;
        // A secret's account that is missing or of another connector is said by
        // `validate`; the push then checks nothing it cannot.
        let account = config
            .account
            .as_deref()
            .and_then(|name| accounts.get(name))
            .and_then(|a| a.section.get::<Account>());
        Ok(Some(std::sync::Arc::new(WebhookPush::new(
            config, account,
        )?)))
    }

    async fn check_account(
        &self,
        _account: &flows::Account,
    ) -> Result<String, crate::connector::BuildError> {
        Ok("a local shared secret: nothing to try".into())
    }
}
