//! E-mail (`connector: smtp`): `send_email` sends one plain-text message per record
//! through the account's SMTP server (lettre; STARTTLS required by default, or TLS from
//! the first byte, or — for a local server — none), logging in when the account has a
//! login. The conversation runs in phases, each within `delivery.timeout`: up to `DATA`
//! nothing is sent, so a failure there is transient (tried again); once the message is
//! on the wire, a connection that drops or a server that goes silent before its answer
//! leaves the e-mail's fate unknown — an uncertain send, parked, never sent twice
//! unmarked. The server's answer classifies the rest: 2xx is sent (its queue id kept),
//! 5xx fails the record, 4xx is transient, a refused login (535) marks the account
//! refused. Line endings are CRLF only: a bare CR in a field never reaches the message
//! data (SMTP smuggling). The stand-in ([`standin`]) is a small SMTP server that records
//! what it is sent.

pub mod config;
pub mod standin;

use std::time::Duration;

use async_trait::async_trait;
use engine::{Delivered, Prepared, Receiver, SendError};
use lettre::message::{header::ContentType, Mailbox, Mailboxes};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Tls, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::{AsyncSmtpTransport, Message, Tokio1Executor};
use serde_json::{json, Map, Value};

use config::{Account, Tls as TlsMode};

/// One SMTP server, one sender.
pub struct Smtp {
    account: Account,
    timeout: Duration,
    from: Mailbox,
    server: String,
    limiter: Option<crate::http::limits::Limiter>,
}

impl Smtp {
    pub fn new(name: &str, account: &Account, timeout: Duration) -> Result<Smtp, String> {
        // What a connection needs is checked now, not per record.
        transport(account, timeout)?;
        let from: Mailbox = account
            .from
            .parse()
            .map_err(|e| format!("account `{name}`: `from` is not an e-mail address: {e}"))?;
        Ok(Smtp {
            account: account.clone(),
            timeout,
            from,
            server: format!("smtp://{}:{}", account.host, account.port()),
            limiter: crate::http::limits::shared(
                name,
                account.rate_limit.unwrap_or(flows::RateLimit::Off),
            ),
        })
    }

    /// Connected, protected and logged in: nothing of the message sent yet.
    async fn connect(&self) -> Result<AsyncSmtpConnection, lettre::transport::smtp::Error> {
        let account = &self.account;
        let host = account.host.as_str();
        let tls = |host: &str| TlsParameters::new(host.to_string());
        let hello = ClientId::default();
        let wrapper = match account.tls {
            TlsMode::Tls => Some(tls(host)?),
            TlsMode::Starttls | TlsMode::None => None,
        };
        let mut connection = AsyncSmtpConnection::connect_tokio1(
            (host, account.port()),
            Some(self.timeout),
            &hello,
            wrapper,
            None,
        )
        .await?;
        if account.tls == TlsMode::Starttls {
            connection.starttls(tls(host)?, &hello).await?;
        }
        if let (Some(user), Some(password)) = (&account.username, &account.password) {
            let credentials = Credentials::new(user.clone(), password.expose().to_string());
            connection
                .auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
                .await?;
        }
        Ok(connection)
    }
}

/// The account's transport: its server, protection and login (for `accounts check`).
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

/// End a conversation that went wrong: QUIT if the server still answers in a moment,
/// else just close (a silent server would keep `abort`'s QUIT waiting).
async fn hang_up(mut connection: AsyncSmtpConnection) {
    let _ = tokio::time::timeout(Duration::from_secs(1), connection.abort()).await;
}

/// A field's text with CRLF line endings only: a bare CR (or a CR before text) becomes a
/// line break, so nothing but a whole line reaches the message data.
fn lines(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
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
            method: engine::Method::Smtp,
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
            .subject(lines(&field("subject")))
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
            .body(lines(&field("body")))
            .map_err(|e| SendError::permanent(format!("the e-mail cannot be built: {e}")))?;
        crate::http::limits::wait(&self.limiter).await;
        self.deliver(&message).await
    }
}

impl Smtp {
    /// The SMTP conversation, phase by phase, each within the delivery timeout.
    async fn deliver(&self, message: &Message) -> Result<Delivered, SendError> {
        let timeout = self.timeout;
        let waited = |what: &str| SendError::Transient {
            reason: format!("the SMTP server did not answer {what} within {timeout:?}"),
            retry_after: None,
        };
        let mut connection = tokio::time::timeout(timeout, self.connect())
            .await
            .map_err(|_| waited("the connection and login"))?
            .map_err(classify)?;
        let envelope = message.envelope();
        let body = message.formatted();
        // Up to DATA nothing of the message is sent: any failure is worth trying again.
        let before_data = async {
            let mut options = Vec::new();
            let non_ascii = envelope
                .to()
                .iter()
                .chain(envelope.from())
                .any(|address| !AsRef::<str>::as_ref(address).is_ascii());
            if non_ascii {
                options.push(MailParameter::SmtpUtfEight);
            }
            if !body.is_ascii()
                && connection
                    .server_info()
                    .supports_feature(Extension::EightBitMime)
            {
                options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
            }
            connection
                .command(Mail::new(envelope.from().cloned(), options))
                .await?;
            for to in envelope.to() {
                connection.command(Rcpt::new(to.clone(), vec![])).await?;
            }
            connection.command(Data).await
        };
        match tokio::time::timeout(timeout, before_data).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                hang_up(connection).await;
                return Err(classify(e));
            }
            Err(_) => {
                hang_up(connection).await;
                return Err(waited("before the message"));
            }
        }
        // The message goes out: from here a lost answer leaves its fate unknown.
        let answer = tokio::time::timeout(timeout, connection.message(&body)).await;
        let response = match answer {
            Ok(Ok(response)) => response,
            // The server answered, and refused: its answer decides.
            Ok(Err(e)) if e.status().is_some() => {
                hang_up(connection).await;
                return Err(classify(e));
            }
            Ok(Err(e)) => {
                hang_up(connection).await;
                return Err(SendError::Uncertain {
                    reason: format!(
                        "the connection to {} ended after the message was sent, before the server answered ({e})",
                        self.server
                    ),
                });
            }
            Err(_) => {
                hang_up(connection).await;
                return Err(SendError::Uncertain {
                    reason: format!(
                        "{} took the message and did not answer within {timeout:?}",
                        self.server
                    ),
                });
            }
        };
        let _ = tokio::time::timeout(timeout, connection.quit()).await;
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

impl config::Receiver {
    /// The live receiver, with account `name`'s credentials.
    pub fn build(
        &self,
        name: &str,
        account: &config::Account,
        timeout: Duration,
    ) -> Result<std::sync::Arc<dyn Receiver>, String> {
        Ok(std::sync::Arc::new(Smtp::new(name, account, timeout)?))
    }
}

/// `connector: smtp` in the registry.
pub struct SmtpConnector;

#[async_trait::async_trait]
impl crate::Connector for SmtpConnector {
    crate::described!(config::CARD, standin::STANDIN);

    crate::receiver_role!(config::receiver, config::Receiver, config::Account);
    crate::account_role!(config::account);

    async fn check_account(
        &self,
        account: &flows::Account,
    ) -> Result<String, crate::connector::BuildError> {
        let account = crate::connector::section::<config::Account>(&account.section, "account")?;
        Ok(check(account).await?)
    }
}

#[cfg(test)]
mod tests;
