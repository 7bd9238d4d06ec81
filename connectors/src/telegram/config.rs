//! What a flow and `accounts.yaml` say about Telegram.

use flows::yaml::Node;
use flows::{Cx, Diagnostic, FieldKind, FieldSpec, Pos, RateLimit, Secret};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::card::{Action, Call, Card, Part};
use crate::sections;

/// `connector: telegram`.
pub const CARD: Card = Card {
    name: "telegram",
    about: "Telegram through a bot (Bot API): a message per record to a chat, group or channel",
    source: None,
    actions: &[Action {
        name: "send_message",
        about: "one text message to a chat the bot may write to",
        calls: &[SEND_MESSAGE],
        fields: MESSAGE_FIELDS,
        options: None,
    }],
    lookups: &[],
    account: Some(Part::of::<Account>("a bot: its token from @BotFather").calling(&[GET_ME])),
};

/// The Bot API's send (the token is the path's first segment, `bot<token>`).
pub const SEND_MESSAGE: Call = Call::new(engine::Method::Post, "/bot{token}/sendMessage");

/// Who the bot is: what `accounts check` asks.
pub const GET_ME: Call = Call::new(engine::Method::Get, "/bot{token}/getMe (accounts check)");

/// The longest text `sendMessage` takes, in characters.
pub const MAX_TEXT: usize = 4096;

/// `send_message`'s map.
pub const MESSAGE_FIELDS: &[FieldSpec] = &[
    FieldSpec::required(
        "chat_id",
        FieldKind::Text,
        "the chat: its number (`123456789`, a group's `-100…`) or a channel's `@username`",
    ),
    FieldSpec::required("text", FieldKind::Text, "the message, 1 to 4096 characters")
        .max_chars(MAX_TEXT),
    FieldSpec::optional(
        "parse_mode",
        FieldKind::OneOf(&["HTML", "MarkdownV2", "Markdown"]),
        "how Telegram reads formatting in `text` (default: plain text)",
    ),
    FieldSpec::optional(
        "disable_notification",
        FieldKind::Boolean,
        "send silently (no sound on the recipient's device)",
    ),
];

/// A Telegram receiver, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Receiver {
    SendMessage,
}

impl Receiver {
    pub fn fields(&self) -> &'static [FieldSpec] {
        MESSAGE_FIELDS
    }
}

pub fn receiver(cx: &Cx<'_>, action: &str, rest: &Node, pos: Pos) -> Result<Receiver, Diagnostic> {
    match action {
        "send_message" => {
            sections::no_options(cx, rest)?;
            Ok(Receiver::SendMessage)
        }
        other => Err(cx.problem(pos, format!("`telegram` has no action `{other}`"))),
    }
}

/// A Telegram bot.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The bot's token, as @BotFather gives it (`123456:ABC-DEF…`).
    pub bot_token: Secret,
    /// The Bot API server (default `https://api.telegram.org`; a local Bot API server
    /// or the sandbox otherwise).
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Messages per period shared by every flow using the bot (default: Telegram's
    /// 30 per second).
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

fn default_base_url() -> String {
    "https://api.telegram.org".into()
}

/// Telegram's documented pace for a bot: about 30 messages a second.
pub const DEFAULT_RATE_LIMIT: RateLimit = RateLimit::Every {
    calls: 30,
    per: std::time::Duration::from_secs(1),
};

pub fn account(cx: &Cx<'_>, name: &str, rest: &Node) -> Result<Account, Vec<Diagnostic>> {
    let account: Account = sections::options(cx, rest, name).map_err(|d| vec![d])?;
    let token = account.bot_token.expose().trim();
    // `<bot id>:<secret>`: a token pasted without its id would be refused on every send.
    let shaped = token.split_once(':').is_some_and(|(id, secret)| {
        !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()) && !secret.is_empty()
    });
    // The stand-ins' tokens (`${TELEGRAM_BOT_TOKEN}` unset in the sandbox) are words.
    if token.is_empty() || (token.contains(':') && !shaped) || token.contains(['/', ' ']) {
        return Err(vec![cx
            .problem(cx.at(rest, "bot_token"), "`bot_token` is not a bot token")
            .with_hint(
                "the token @BotFather gave, `123456789:AA…` (digits, a colon, then the secret)",
            )]);
    }
    sections::url(
        cx,
        rest,
        "base_url",
        &account.base_url,
        "for example `https://api.telegram.org`",
    )?;
    Ok(account)
}

impl Account {
    pub fn secrets(&self) -> Vec<Secret> {
        vec![self.bot_token.clone()]
    }

    /// The bot's client: the token in each request's path, paced by its rate limit.
    pub fn client(&self, name: &str) -> crate::http::AccountClient {
        crate::http::AccountClient::new(
            name,
            &self.base_url,
            crate::http::Auth::PathPrefix("bot", self.bot_token.clone()),
            self.rate_limit.unwrap_or(DEFAULT_RATE_LIMIT),
        )
    }
}
