//! E-mail (`connector: smtp`): `send_email` sends one plain-text message per record
//! through the account's SMTP server (lettre; STARTTLS required by default, or TLS from
//! the first byte, or — for a local server — none), logging in when the account has a
//! login. The server's answer classifies the outcome: 2xx is sent (its queue id kept),
//! 5xx fails the record, 4xx and connection trouble are transient, a refused login (535)
//! marks the account refused. The stand-in ([`standin`]) is a small SMTP server that
//! records what it is sent.

pub mod config;
pub mod standin;

use std::time::Duration;

use async_trait::async_trait;
use engine::{Delivered, Prepared, Receiver, SendError};
use lettre::message::{header::ContentType, Mailbox, Mailboxes};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::{json, Map, Value};

use config::{Account, Tls as TlsMode};

/// One SMTP server, one sender.
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    server: String,
    limiter: Option<crate::http::limits::Limiter>,
}

impl Smtp {
    pub fn new(name: &str, account: &Account, timeout: Duration) -> Result<Smtp, String> {
        let transport = transport(account, timeout)?;
        let from: Mailbox = account
            .from
            .parse()
            .map_err(|e| format!("account `{name}`: `from` is not an e-mail address: {e}"))?;
        Ok(Smtp {
            transport,
            from,
            server: format!("smtp://{}:{}", account.host, account.port()),
            limiter: crate::http::limits::shared(
                name,
                account.rate_limit.unwrap_or(flows::RateLimit::Off),
            ),
        })
    }
}

/// The account's transport: its server, protection and login.
pub fn transport(
    account: &Account,
    timeout: Duration,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let host = account.host.as_str();
    crate::confine::check(host, account.port())?;
    let tls = |host: &str| {
        TlsParameters::new(host.to_string()).map_err(|e| format!("TLS for `{host}`: {e}"))
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(account.port())
        .timeout(Some(timeout));
    builder = match account.tls {
        TlsMode::Starttls => builder.tls(Tls::Required(tls(host)?)),
        TlsMode::Tls => builder.tls(Tls::Wrapper(tls(host)?)),
        TlsMode::None => builder.tls(Tls::None),
    };
    if let (Some(user), Some(password)) = (&account.username, &account.password) {
        builder = builder.credentials(Credentials::new(
            user.clone(),
            password.expose().to_string(),
        ));
    }
    Ok(builder.build())
}

/// Addresses separated by commas, each checked.
fn mailboxes(field: &str, text: &str) -> Result<Mailboxes, SendError> {
    let mut boxes = Mailboxes::new();
    for address in text.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        let mailbox: Mailbox = address.parse().map_err(|e| {
            SendError::permanent(format!(
                "`{field}`: `{address}` is not an e-mail address ({e})"
            ))
        })?;
        boxes.push(mailbox);
    }
    if boxes.iter().next().is_none() {
        return Err(SendError::permanent(format!("`{field}` is empty")));
    }
    Ok(boxes)
}

fn text(fields: &Map<String, Value>, name: &str) -> String {
    match fields.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// A server's refusal as an outcome: 5xx permanent (535, a refused login: the account),
/// 4xx and connection trouble transient.
fn classify(error: lettre::transport::smtp::Error) -> SendError {
    let code = error.status().map(|c| c.to_string());
    let message = error.to_string();
    if code.as_deref() == Some("535") {
        return SendError::Unauthorized { code, message };
    }
    if error.is_permanent() {
        SendError::Permanent { code, message }
    } else {
        SendError::Transient {
            reason: message,
            retry_after: None,
        }
    }
}

#[async_trait]
impl Receiver for Smtp {
    fn prepare(&self, fields: Map<String, Value>, reference: &str) -> Result<Prepared, SendError> {
        let to = mailboxes("to", &text(&fields, "to"))?;
        if let Some(cc) = fields.get("cc").filter(|v| !text_of(v).trim().is_empty()) {
            mailboxes("cc", &text_of(cc))?;
        }
        let subject = text(&fields, "subject");
        if subject.trim().is_empty() {
            return Err(SendError::permanent("subject is empty"));
        }
        if subject.contains(['\r', '\n']) {
            return Err(SendError::permanent("subject holds a line break"));
        }
        let body = text(&fields, "body");
        if body.trim().is_empty() {
            return Err(SendError::permanent("body is empty"));
        }
        let mut notes = Map::new();
        notes.insert("recipients".into(), Value::from(to.iter().count()));
        Ok(Prepared {
            method: "SMTP".into(),
            url: self.server.clone(),
            body: json!({
                "from": self.from.to_string(),
                "to": text(&fields, "to"),
                "cc": fields.get("cc").map(text_of),
                "reply_to": fields.get("reply_to").map(text_of),
                "subject": subject,
                "body": body,
                "reference": reference,
            }),
            notes,
        })
    }

    async fn send(&self, request: &Prepared) -> Result<Delivered, SendError> {
        let b = &request.body;
        let field = |name: &str| b.get(name).map(text_of).unwrap_or_default();
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(field("subject"))
            .header(ContentType::TEXT_PLAIN);
        for to in mailboxes("to", &field("to"))?.into_iter() {
            message = message.to(to);
        }
        if !field("cc").trim().is_empty() {
            for cc in mailboxes("cc", &field("cc"))?.into_iter() {
                message = message.cc(cc);
            }
        }
        if !field("reply_to").trim().is_empty() {
            for reply in mailboxes("reply_to", &field("reply_to"))?.into_iter() {
                message = message.reply_to(reply);
            }
        }
        let message = message
            .body(field("body"))
            .map_err(|e| SendError::permanent(format!("the e-mail cannot be built: {e}")))?;
        crate::http::limits::wait(&self.limiter).await;
        let response = self.transport.send(message).await.map_err(classify)?;
        let queued = response.first_line().map(|line| line.trim().to_string());
        Ok(Delivered { remote_id: queued })
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// For `accounts check`: connect, say hello, log in.
pub async fn check(account: &Account) -> Result<String, String> {
    let transport = transport(account, Duration::from_secs(15))?;
    match transport.test_connection().await {
        Ok(true) => Ok(format!(
            "the server at {}:{} answered{}",
            account.host,
            account.port(),
            if account.username.is_some() {
                " and took the login"
            } else {
                ""
            }
        )),
        Ok(false) => Err(format!(
            "the server at {}:{} did not answer",
            account.host,
            account.port()
        )),
        Err(e) => Err(format!("{}:{}: {e}", account.host, account.port())),
    }
}

#[cfg(test)]
mod tests;
