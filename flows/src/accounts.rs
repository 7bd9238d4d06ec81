//! `accounts.yaml`: named credentials for services, with `${VAR}` (and `${VAR:-default}`)
//! read from the environment. A missing variable is an error naming it, never an empty key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use marked_yaml::types::MarkedScalarNode;
use marked_yaml::Node;
use serde::Deserialize;

use crate::diag::{Diagnostic, Pos};
use crate::secret::Secret;
use crate::suggest;
use crate::yaml;

/// Every account in the accounts file, by name.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    pub file: PathBuf,
    pub accounts: BTreeMap<String, Account>,
    /// Names of accounts that are present but invalid (their errors are diagnostics).
    pub invalid: BTreeMap<String, Vec<Diagnostic>>,
}

impl Accounts {
    pub fn get(&self, name: &str) -> Option<&Account> {
        self.accounts.get(name)
    }

    /// Every secret value the accounts file holds (keys, tokens, secret headers, with the
    /// credential part of `Bearer …`-style values on its own), for scrubbing what
    /// services echo.
    pub fn secret_values(&self) -> Vec<String> {
        let mut values = Vec::new();
        for account in self.accounts.values() {
            for secret in account.kind.secrets() {
                let text = secret.expose().trim();
                values.push(text.to_string());
                values.extend(
                    text.split_whitespace()
                        .filter(|part| part.len() >= 8 && *part != text)
                        .map(String::from),
                );
            }
        }
        values.sort();
        values.dedup();
        values
    }

    /// Every account name, valid or not (for "did you mean").
    pub fn names(&self) -> Vec<&str> {
        self.accounts
            .keys()
            .chain(self.invalid.keys())
            .map(String::as_str)
            .collect()
    }
}

/// One named account.
#[derive(Debug, Clone)]
pub struct Account {
    pub name: String,
    pub pos: Pos,
    pub kind: AccountKind,
}

/// The closed set of account types, one per connector.
#[derive(Debug, Clone)]
pub enum AccountKind {
    EightXEight(EightXEightAccount),
    TextRequest(TextRequestAccount),
    Aranda(ArandaAccount),
    Http(HttpAccount),
    GoogleSheets(GoogleAccount),
    Cinnox(CinnoxAccount),
    Webhook(WebhookAccount),
}

/// A CINNOX service account: App ID, App Token and Base URL as CINNOX generates them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CinnoxAccount {
    pub app_id: String,
    pub app_token: Secret,
    pub base_url: String,
    /// Default: the documented 500 requests per minute per service account.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

/// Google Sheets access: an API key (public sheets) or a service account's key file
/// (the sheet shared with its `client_email`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleAccount {
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// The service account's JSON key file, relative to the accounts file.
    #[serde(default)]
    pub service_account_file: Option<std::path::PathBuf>,
    #[serde(default = "default_google_token_url")]
    pub token_url: String,
    #[serde(default = "default_sheets_url")]
    pub base_url: String,
}

fn default_google_token_url() -> String {
    "https://oauth2.googleapis.com/token".into()
}

fn default_sheets_url() -> String {
    "https://sheets.googleapis.com".into()
}

/// For the generic HTTP receiver: an optional base URL and headers (secrets, usually)
/// sent with every request but never shown in previews or history.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpAccount {
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, Secret>,
}

/// An Aranda ASMS integration: the token (header `TokenAsms`) and the customer's own
/// ASMS host (header `UrlAsms`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArandaAccount {
    pub api_key: Secret,
    pub instance_url: String,
    #[serde(default = "default_aranda_url")]
    pub base_url: String,
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

fn default_aranda_url() -> String {
    "https://automate.arandasoft.com/asmsadapter/api/asms".into()
}

/// A Text Request account: its API key (header `x-api-key`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextRequestAccount {
    pub api_key: Secret,
    /// Includes `/api/v3`.
    #[serde(default = "default_textrequest_url")]
    pub base_url: String,
    /// Default: the documented 100 calls per 60 s per connection.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

fn default_textrequest_url() -> String {
    "https://api.textrequest.com/api/v3".into()
}

impl AccountKind {
    /// The account's secret fields.
    pub fn secrets(&self) -> Vec<&Secret> {
        match self {
            AccountKind::EightXEight(a) => vec![&a.api_key],
            AccountKind::TextRequest(a) => vec![&a.api_key],
            AccountKind::Aranda(a) => vec![&a.api_key],
            AccountKind::Http(a) => a.headers.values().collect(),
            AccountKind::GoogleSheets(a) => a.api_key.iter().collect(),
            AccountKind::Cinnox(a) => vec![&a.app_token],
            AccountKind::Webhook(a) => vec![&a.secret],
        }
    }

    pub fn connector(&self) -> &'static str {
        match self {
            AccountKind::EightXEight(_) => "8x8",
            AccountKind::TextRequest(_) => "textrequest",
            AccountKind::Aranda(_) => "aranda",
            AccountKind::Http(_) => "http",
            AccountKind::GoogleSheets(_) => "google_sheets",
            AccountKind::Cinnox(_) => "cinnox",
            AccountKind::Webhook(_) => "webhook",
        }
    }
}

/// The shared secret guarding a webhook source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookAccount {
    pub secret: Secret,
    /// How senders prove they know it (default: `token`).
    #[serde(default)]
    pub signature: Signature,
}

/// `token`: `Authorization: Bearer <secret>` (or `X-Switchboard-Token: <secret>`);
/// `hmac`: `X-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signature {
    #[default]
    Token,
    Hmac,
}

/// An 8x8 SMS sub-account: what a user pastes as "subaccount ID" and "API key".
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EightXEightAccount {
    pub subaccount_id: String,
    pub api_key: Secret,
    #[serde(default = "default_8x8_url")]
    pub base_url: String,
    /// Calls allowed per period for this account, shared by every flow that uses it
    /// (default: 8x8's documented 1,800 per second per sub-account).
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

/// `rate_limit: 100/60s`, `1800/s`, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateLimit {
    Off,
    Every {
        calls: u32,
        per: std::time::Duration,
    },
}

impl RateLimit {
    pub const fn per_second(calls: u32) -> Self {
        RateLimit::Every {
            calls,
            per: std::time::Duration::from_secs(1),
        }
    }
}

impl<'de> Deserialize<'de> for RateLimit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_rate_limit(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{text}` is not a rate limit; write calls per period like `100/60s` or `1800/s` (1 to 1000000 calls, a period of 1ms to 1d), or `off`"
            ))
        })
    }
}

fn parse_rate_limit(text: &str) -> Option<RateLimit> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Some(RateLimit::Off);
    }
    let (calls, per) = text.split_once('/')?;
    let calls: u32 = calls
        .trim()
        .parse()
        .ok()
        .filter(|n| (1..=1_000_000).contains(n))?;
    let per = per.trim();
    let per = if per.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        humantime::parse_duration(per).ok()?
    } else {
        humantime::parse_duration(&format!("1{per}")).ok()?
    };
    // A period of a millisecond to a day, at least a nanosecond per call.
    let usable = per >= std::time::Duration::from_millis(1)
        && per <= std::time::Duration::from_secs(86_400)
        && per.as_nanos() >= u128::from(calls);
    usable.then_some(RateLimit::Every { calls, per })
}

fn default_8x8_url() -> String {
    "https://sms.8x8.com".into()
}

const CONNECTORS: &[&str] = &[
    "8x8",
    "textrequest",
    "aranda",
    "http",
    "google_sheets",
    "cinnox",
    "webhook",
];

/// Load the accounts file. `env` looks up a variable (the process environment,
/// possibly overlaid). Problems go to `errors`.
pub(crate) fn load(
    file: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<Diagnostic>,
) -> Accounts {
    let mut accounts = Accounts {
        file: file.to_path_buf(),
        ..Accounts::default()
    };
    let root = match yaml::load(file, text) {
        Ok(root) => root,
        Err(e) => {
            errors.push(e);
            return accounts;
        }
    };
    let Some(mapping) = root.as_mapping() else {
        return accounts;
    };
    for (name, node) in mapping.iter() {
        let name_str = name.as_str().to_string();
        match parse_account(file, &name_str, Pos::of(name.span()), node, env) {
            Ok(account) => {
                accounts.accounts.insert(name_str, account);
            }
            Err(problems) => {
                errors.extend(problems.iter().cloned());
                accounts.invalid.insert(name_str, problems);
            }
        }
    }
    accounts
}

fn parse_account(
    file: &Path,
    name: &str,
    pos: Pos,
    node: &Node,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Account, Vec<Diagnostic>> {
    let Some(mapping) = node.as_mapping() else {
        return Err(vec![Diagnostic::new(
            file,
            Pos::of(node.span()),
            format!("account `{name}` must be a mapping"),
        )
        .with_hint(
            "for example `{connector: 8x8, subaccount_id: shop_main, api_key: ${EIGHTX8_API_KEY}}`",
        )]);
    };
    let Some(connector_node) = mapping.get_node("connector") else {
        return Err(vec![Diagnostic::new(
            file,
            pos,
            format!("account `{name}` has no `connector`"),
        )
        .with_hint(format!(
            "connectors with accounts: {}",
            suggest::backticked(CONNECTORS)
        ))]);
    };
    let connector = yaml::scalar(file, connector_node, "connector").map_err(|d| vec![d])?;
    let mut problems = Vec::new();
    let expanded = expand_node(file, node, env, &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    let rest = yaml::without_keys(&expanded, &["connector"]);
    let section = name.to_string();
    // A URL field that must be usable, or the error pointing at it.
    let url_ok = |key: &str, url: &str, hint: &str| -> Result<(), Vec<Diagnostic>> {
        check_url(url).map_err(|e| {
            let at = mapping
                .get_node(key)
                .map(|n| Pos::of(n.span()))
                .unwrap_or(pos);
            vec![
                Diagnostic::new(file, at, format!("`{key}` `{url}` is not usable: {e}"))
                    .with_hint(hint),
            ]
        })
    };
    let kind = match connector {
        "8x8" => {
            let account: EightXEightAccount =
                yaml::from_node(file, &rest, &section).map_err(|d| vec![d])?;
            check_8x8(file, mapping, &account)?;
            AccountKind::EightXEight(account)
        }
        "textrequest" => {
            let account: TextRequestAccount =
                yaml::from_node(file, &rest, &section).map_err(|d| vec![d])?;
            if account.api_key.expose().trim().is_empty() {
                let at = mapping
                    .get_node("api_key")
                    .map(|n| Pos::of(n.span()))
                    .unwrap_or(pos);
                return Err(vec![Diagnostic::new(file, at, "`api_key` is empty")]);
            }
            url_ok(
                "base_url",
                &account.base_url,
                "for example `https://api.textrequest.com/api/v3` (the path includes /api/v3)",
            )?;
            AccountKind::TextRequest(account)
        }
        "aranda" => {
            let account: ArandaAccount =
                yaml::from_node(file, &rest, &section).map_err(|d| vec![d])?;
            url_ok(
                "instance_url",
                &account.instance_url,
                "the customer's ASMS address",
            )?;
            url_ok(
                "base_url",
                &account.base_url,
                "Aranda's adapter, by default https://automate.arandasoft.com/asmsadapter/api/asms",
            )?;
            AccountKind::Aranda(account)
        }
        "http" => {
            let account: HttpAccount =
                yaml::from_node(file, &rest, &section).map_err(|d| vec![d])?;
            if let Some(Err(e)) = account.base_url.as_deref().map(check_url) {
                let at = mapping
                    .get_node("base_url")
                    .map(|n| Pos::of(n.span()))
                    .unwrap_or(pos);
                return Err(vec![Diagnostic::new(
                    file,
                    at,
                    format!("`base_url` is not usable: {e}"),
                )]);
            }
            AccountKind::Http(account)
        }
        "google_sheets" => {
            let mut account: GoogleAccount =
                yaml::from_node(file, &rest, &section).map_err(|d| vec![d])?;
            if account.api_key.is_some() == account.service_account_file.is_some() {
                return Err(vec![Diagnostic::new(file, pos, format!("account `{name}` needs exactly one of `api_key` and `service_account_file`"))
                    .with_hint("an API key reads public sheets; a service account reads sheets shared with its client_email")]);
            }
            if let Some(key_file) = &account.service_account_file {
                let resolved = file.parent().unwrap_or(Path::new(".")).join(key_file);
                if !resolved.is_file() {
                    let at = mapping
                        .get_node("service_account_file")
                        .map(|n| Pos::of(n.span()))
                        .unwrap_or(pos);
                    return Err(vec![Diagnostic::new(
                        file,
                        at,
                        format!(
                            "service account key file `{}` not found",
                            resolved.display()
                        ),
                    )]);
                }
                account.service_account_file = Some(resolved);
            }
            AccountKind::GoogleSheets(account)
        }
        "cinnox" => {
            let account: CinnoxAccount =
                yaml::from_node(file, &rest, &section).map_err(|d| vec![d])?;
            url_ok(
                "base_url",
                &account.base_url,
                "copy the Base URL from CINNOX: Administration > Service Integration > API",
            )?;
            AccountKind::Cinnox(account)
        }
        "webhook" => {
            let account: WebhookAccount =
                yaml::from_node(file, &rest, &section).map_err(|d| vec![d])?;
            if account.secret.expose().len() < 16 {
                let at = mapping
                    .get_node("secret")
                    .map(|n| Pos::of(n.span()))
                    .unwrap_or(pos);
                return Err(vec![Diagnostic::new(
                    file,
                    at,
                    "a webhook `secret` needs at least 16 characters",
                )
                .with_hint(
                    "generate one, e.g. `openssl rand -hex 24`, and keep it in the environment",
                )]);
            }
            AccountKind::Webhook(account)
        }
        other => {
            return Err(vec![Diagnostic::new(
                file,
                Pos::of(connector_node.span()),
                format!("unknown account connector `{other}`"),
            )
            .with_hint(suggest::hint(other, CONNECTORS))])
        }
    };
    // Secrets travel in headers (and URLs): a line break or other control character
    // would be refused by every request, forever, as if the service were down.
    for secret in kind.secrets() {
        if secret.expose().chars().any(char::is_control) {
            let key = expanded
                .as_mapping()
                .and_then(|m| m.iter().find(|(_, v)| contains_control(v)))
                .map(|(k, _)| k);
            let (at, key) = match key {
                Some(k) => (Pos::of(k.span()), k.as_str().to_string()),
                None => (pos, "a secret".to_string()),
            };
            return Err(vec![Diagnostic::new(
                file,
                at,
                format!("`{key}` contains a line break or another control character"),
            )
            .with_hint(
                "secrets are sent in HTTP headers, which cannot hold them; check the variable's value (a trailing newline from a file?)",
            )]);
        }
    }
    Ok(Account {
        name: name.to_string(),
        pos,
        kind,
    })
}

/// Whether a node's text holds a control character.
fn contains_control(node: &Node) -> bool {
    match node {
        Node::Scalar(s) => s.as_str().chars().any(char::is_control),
        Node::Sequence(items) => items.iter().any(contains_control),
        Node::Mapping(map) => map.values().any(contains_control),
    }
}

fn check_8x8(
    file: &Path,
    mapping: &marked_yaml::types::MarkedMappingNode,
    account: &EightXEightAccount,
) -> Result<(), Vec<Diagnostic>> {
    let at = |key: &str| {
        mapping
            .get_node(key)
            .map(|n| Pos::of(n.span()))
            .unwrap_or_default()
    };
    let mut problems = Vec::new();
    let id = &account.subaccount_id;
    let id_ok = (3..=50).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '&'));
    if !id_ok {
        problems.push(
            Diagnostic::new(
                file,
                at("subaccount_id"),
                format!("`{id}` is not an 8x8 subaccount ID"),
            )
            .with_hint("3 to 50 letters, digits, `-`, `.`, `_` or `&`, as shown in 8x8 Connect"),
        );
    }
    if account.api_key.expose().trim().is_empty() {
        problems.push(Diagnostic::new(file, at("api_key"), "`api_key` is empty"));
    }
    if let Err(e) = check_url(&account.base_url) {
        problems.push(Diagnostic::new(file, at("base_url"), format!("`base_url` `{}` is not usable: {e}", account.base_url))
            .with_hint("for example `https://sms.8x8.com` (or `https://sms.8x8.uk`, `https://sms.us.8x8.com`)"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn check_url(text: &str) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("it must start with http:// or https://".into());
    }
    Ok(())
}

/// A copy of `node` with `${VAR}` expanded in every scalar.
fn expand_node(
    file: &Path,
    node: &Node,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Diagnostic>,
) -> Node {
    match node {
        Node::Scalar(s) => {
            match expand(s.as_str(), env) {
                Ok(text) => Node::Scalar(MarkedScalarNode::new(*s.span(), text)),
                Err(var) if var.starts_with("${") => {
                    problems.push(
                    Diagnostic::new(
                        file,
                        Pos::of(s.span()),
                        format!("`{var}` has no closing `}}`"),
                    )
                    .with_hint("write `${NAME}` (or `${NAME:-default}`); a literal `${` cannot be used"),
                );
                    node.clone()
                }
                Err(var) => {
                    problems.push(
                        Diagnostic::new(
                            file,
                            Pos::of(s.span()),
                            format!("environment variable `{var}` is not set"),
                        )
                        .with_hint(format!(
                            "export {var}=… before running, or write `${{{var}:-default}}`"
                        )),
                    );
                    node.clone()
                }
            }
        }
        Node::Sequence(seq) => {
            let mut out = seq.clone();
            for item in out.iter_mut() {
                *item = expand_node(file, item, env, problems);
            }
            Node::Sequence(out)
        }
        Node::Mapping(map) => {
            let mut out = map.clone();
            for (_, value) in out.iter_mut() {
                *value = expand_node(file, value, env, problems);
            }
            Node::Mapping(out)
        }
    }
}

/// Expand `${NAME}` and `${NAME:-default}`. An unset or empty variable without a
/// default is an error carrying the variable's name; a `${` without its `}` is an error
/// carrying the text from `${` on (it would otherwise be sent, literally, as a key).
pub(crate) fn expand(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(rest[start..].chars().take(40).collect());
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        match (env(name).filter(|v| !v.is_empty()), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(d)) => out.push_str(d),
            (None, None) => return Err(name.to_string()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "KEY" => Some("k-123".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_variables_and_defaults() {
        assert_eq!(expand("${KEY}", &env), Ok("k-123".into()));
        assert_eq!(expand("a-${KEY}-b", &env), Ok("a-k-123-b".into()));
        assert_eq!(expand("${NOPE:-http://x}", &env), Ok("http://x".into()));
        assert_eq!(expand("plain", &env), Ok("plain".into()));
    }

    #[test]
    fn rate_limits_read_as_calls_per_period() {
        use std::time::Duration;
        assert_eq!(
            parse_rate_limit("100/60s"),
            Some(RateLimit::Every {
                calls: 100,
                per: Duration::from_secs(60)
            })
        );
        assert_eq!(
            parse_rate_limit("1800/s"),
            Some(RateLimit::per_second(1800))
        );
        assert_eq!(
            parse_rate_limit("500/min"),
            Some(RateLimit::Every {
                calls: 500,
                per: Duration::from_secs(60)
            })
        );
        assert_eq!(parse_rate_limit("off"), Some(RateLimit::Off));
        assert_eq!(parse_rate_limit("0/s"), None);
        assert_eq!(parse_rate_limit("fast"), None);
    }

    #[test]
    fn a_missing_or_empty_variable_is_an_error_naming_it() {
        assert_eq!(expand("${NOPE}", &env), Err("NOPE".into()));
        assert_eq!(expand("${EMPTY}", &env), Err("EMPTY".into()));
        assert_eq!(expand("k-${SB_X", &env), Err("${SB_X".into()));
    }
}
