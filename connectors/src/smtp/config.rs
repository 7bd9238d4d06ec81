//! What a flow and `accounts.yaml` say about e-mail through SMTP.

use flows::yaml::Node;
use flows::{Cx, Diagnostic, FieldKind, FieldSpec, Pos, RateLimit, Secret};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::card::{Action, Call, Card, Part};
use crate::sections;

/// `connector: smtp`.
pub const CARD: Card = Card {
    name: "smtp",
    about: "e-mail through an SMTP server (an alert channel, or a message per record)",
    source: None,
    actions: &[Action {
        name: "send_email",
        about: "one plain-text e-mail per record",
        calls: &[Call::new(
            engine::Method::Smtp,
            "MAIL FROM / RCPT TO / DATA on {host}:{port}",
        )],
        fields: EMAIL_FIELDS,
        options: None,
    }],
    lookups: &[],
    account: Some(
        Part::of::<Account>("an SMTP server, its login and the sender address").calling(&[
            Call::new(
                engine::Method::Smtp,
                "EHLO / AUTH on {host}:{port} (accounts check)",
            ),
        ]),
    ),
};

/// `send_email`'s map.
pub const EMAIL_FIELDS: &[FieldSpec] = &[
    FieldSpec::required(
        "to",
        FieldKind::Text,
        "the recipient(s): `ops@example.com`, or several separated by commas",
    ),
    FieldSpec::required("subject", FieldKind::Text, "the subject line").max_chars(998),
    FieldSpec::required("body", FieldKind::Text, "the message, plain text"),
    FieldSpec::optional("cc", FieldKind::Text, "copies, separated by commas"),
    FieldSpec::optional("reply_to", FieldKind::Text, "where replies go"),
];

/// An SMTP receiver, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Receiver {
    SendEmail,
}

impl Receiver {
    pub fn fields(&self) -> &'static [FieldSpec] {
        EMAIL_FIELDS
    }
}

pub fn receiver(cx: &Cx<'_>, action: &str, rest: &Node, pos: Pos) -> Result<Receiver, Diagnostic> {
    match action {
        "send_email" => {
            sections::no_options(cx, rest)?;
            Ok(Receiver::SendEmail)
        }
        other => Err(cx.problem(pos, format!("`smtp` has no action `{other}`"))),
    }
}

/// How the connection to the server is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    /// Upgrade a plain connection with STARTTLS, refusing to go on without it (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a server on the same machine or network (the stand-in).
    None,
}

/// An SMTP server and its login.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The server's host name (its certificate must name it).
    pub host: String,
    /// Default: 587 with `starttls`, 465 with `tls`, 25 with `none`.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: Tls,
    /// The login, if the server asks for one.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    /// The sender: `alerts@example.com` or `Switchboard <alerts@example.com>`.
    pub from: String,
    /// E-mails per period shared by every flow using the account (default: off).
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

impl Account {
    /// The password, and the `AUTH PLAIN` credentials made of it (base64 of
    /// `\0user\0password`, which a server may quote in its refusal): the scrubber knows
    /// both (and the password's own base64, `AUTH LOGIN`'s).
    pub fn secrets(&self) -> Vec<Secret> {
        use base64::Engine as _;
        let mut secrets: Vec<Secret> = self.password.iter().cloned().collect();
        if let (Some(user), Some(password)) = (&self.username, &self.password) {
            let plain = format!("\0{user}\0{}", password.expose());
            secrets.push(Secret::new(
                base64::engine::general_purpose::STANDARD.encode(plain),
            ));
        }
        secrets
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            Tls::Starttls => 587,
            Tls::Tls => 465,
            Tls::None => 25,
        })
    }
}

pub fn account(cx: &Cx<'_>, name: &str, rest: &Node) -> Result<Account, Vec<Diagnostic>> {
    let account: Account = sections::options(cx, rest, name).map_err(|d| vec![d])?;
    let mut problems = Vec::new();
    if account.host.trim().is_empty() || account.host.contains(['/', ' ', ':']) {
        problems.push(
            cx.problem(
                cx.at(rest, "host"),
                format!("`{}` is not a host name", account.host),
            )
            .with_hint(
                "the server's name alone, e.g. `smtp.example.com` (the port goes in `port`)",
            ),
        );
    }
    if account.from.parse::<lettre::message::Mailbox>().is_err() {
        problems.push(
            cx.problem(
                cx.at(rest, "from"),
                format!("`from` `{}` is not an e-mail address", account.from),
            )
            .with_hint("`alerts@example.com`, or `Switchboard <alerts@example.com>`"),
        );
    }
    if account.username.is_some() != account.password.is_some() {
        problems.push(cx.problem(
            cx.at(
                rest,
                if account.username.is_some() {
                    "username"
                } else {
                    "password"
                },
            ),
            "`username` and `password` go together",
        ));
    }
    if problems.is_empty() {
        Ok(account)
    } else {
        Err(problems)
    }
}
