//! `accounts.yaml`: named credentials for services, with `${VAR}` (and `${VAR:-default}`)
//! read from the environment. A missing variable is an error naming it, never an empty
//! key. Each account's own fields are parsed by the [`Catalogue`]; this module reads the
//! file, its `connector:` and the variables, and checks what every secret must be.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use marked_yaml::types::MarkedScalarNode;
use marked_yaml::Node;
use serde::Deserialize;

use crate::diag::{Diagnostic, Pos};
use crate::secret::Secret;
use crate::section::{Catalogue, Cx, Role, Section};
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
            for secret in &account.secrets {
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
    pub connector: &'static str,
    /// Its secret values.
    pub secrets: Vec<Secret>,
    /// The connector's own fields.
    pub section: Section,
    /// Identifies the account's fields, variables expanded: an account whose fingerprint
    /// is unchanged is the same account (its key included).
    pub fingerprint: u64,
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

impl schemars::JsonSchema for RateLimit {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RateLimit".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^(off|[0-9]+/[0-9]*[a-z]+)$",
            "description": "Calls per period, shared by every flow using the account: `100/60s`, `1800/s`, or `off`"
        })
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

/// Load the accounts file. `env` looks up a variable (the process environment,
/// possibly overlaid). Problems go to `errors`.
pub(crate) fn load(
    file: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    catalogue: &dyn Catalogue,
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
        match parse_account(file, &name_str, Pos::of(name.span()), node, env, catalogue) {
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
    catalogue: &dyn Catalogue,
) -> Result<Account, Vec<Diagnostic>> {
    let known = catalogue.connectors(Role::Account);
    let Some(mapping) = node.as_mapping() else {
        return Err(vec![Diagnostic::new(
            file,
            Pos::of(node.span()),
            format!("account `{name}` must be a mapping"),
        )
        .with_hint(format!(
            "for example `{}`",
            catalogue.example(Role::Account)
        ))]);
    };
    let Some(connector_node) = mapping.get_node("connector") else {
        return Err(vec![Diagnostic::new(
            file,
            pos,
            format!("account `{name}` has no `connector`"),
        )
        .with_hint(format!(
            "connectors with accounts: {}",
            suggest::backticked(&known)
        ))]);
    };
    let written = yaml::scalar(file, connector_node, "connector").map_err(|d| vec![d])?;
    let Some(connector) = known.iter().find(|c| **c == written).copied() else {
        return Err(vec![Diagnostic::new(
            file,
            Pos::of(connector_node.span()),
            format!("unknown account connector `{written}`"),
        )
        .with_hint(suggest::hint(written, &known))]);
    };
    let mut problems = yaml::fill_ins(file, node, None);
    let expanded = expand_node(file, node, env, &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    let rest = yaml::without_keys(&expanded, &["connector"]);
    let cx = Cx { file };
    let spec = catalogue.account(&cx, connector, name, &rest, pos)?;
    // Secrets travel in headers (and URLs): a line break or other control character
    // would be refused by every request, forever, as if the service were down.
    for secret in &spec.secrets {
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
    let mut text = String::new();
    node_text(&expanded, &mut text);
    Ok(Account {
        name: name.to_string(),
        pos,
        connector,
        secrets: spec.secrets,
        section: spec.section,
        fingerprint: crate::flow::fingerprint(&text),
    })
}

/// A node's keys and values as one text, in order (for a fingerprint).
fn node_text(node: &Node, out: &mut String) {
    match node {
        Node::Scalar(s) => {
            out.push_str(s.as_str());
            out.push('\u{1f}');
        }
        Node::Sequence(items) => {
            out.push('[');
            items.iter().for_each(|item| node_text(item, out));
            out.push(']');
        }
        Node::Mapping(map) => {
            out.push('{');
            for (key, value) in map.iter() {
                out.push_str(key.as_str());
                out.push('=');
                node_text(value, out);
            }
            out.push('}');
        }
    }
}

/// Whether a node's text holds a control character.
fn contains_control(node: &Node) -> bool {
    match node {
        Node::Scalar(s) => s.as_str().chars().any(char::is_control),
        Node::Sequence(items) => items.iter().any(contains_control),
        Node::Mapping(map) => map.values().any(contains_control),
    }
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
