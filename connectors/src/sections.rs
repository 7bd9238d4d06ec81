//! What the connectors' sections share when they are parsed: typed deserialisation with
//! positions (through `flows::yaml`), and the options several connectors take — the key
//! columns of a source, the events of a push source and the URL a service pushes to.

use std::path::PathBuf;

use flows::yaml::{self, Node};
use flows::{Cx, Diagnostic, FieldSpec, OneOrMany};
use serde::de::DeserializeOwned;

/// Deserialise a section's options (unknown keys are errors, at their place).
pub fn options<T: DeserializeOwned>(
    cx: &Cx<'_>,
    rest: &Node,
    section: &str,
) -> Result<T, Diagnostic> {
    yaml::from_node(cx.file, rest, section)
}

/// A source's `path:`: a file, resolved against the flow file's directory; `what` names
/// the kind of file for the hint when it is empty.
pub fn file(cx: &Cx<'_>, rest: &Node, path: &str, what: &str) -> Result<PathBuf, Diagnostic> {
    if path.trim().is_empty() {
        return Err(cx
            .problem(cx.at(rest, "path"), "`path` is empty")
            .with_hint(format!("name the {what}, relative to this flow file")));
    }
    Ok(cx.dir().join(path))
}

/// A source's `key:` — column(s) or field(s) identifying a record — none of them empty.
pub fn key(cx: &Cx<'_>, rest: &Node, key: Option<OneOrMany>) -> Result<Vec<String>, Diagnostic> {
    let key = key.map(OneOrMany::into_vec).unwrap_or_default();
    if key.iter().any(|k| k.trim().is_empty()) {
        return Err(cx.problem(cx.at(rest, "key"), "`key` names an empty column"));
    }
    Ok(key)
}

/// A push source's `events:`, each one the service sends.
pub fn events(
    cx: &Cx<'_>,
    rest: &Node,
    events: OneOrMany,
    known: &[&str],
    service: &str,
    example: &str,
) -> Result<Vec<String>, Diagnostic> {
    let events = events.into_vec();
    let at = cx.at(rest, "events");
    if events.is_empty() {
        return Err(cx
            .problem(at, "`events` lists no events")
            .with_hint(format!("for example `events: [{example}]`")));
    }
    for event in &events {
        if !known.contains(&event.as_str()) {
            return Err(cx
                .problem(at, format!("unknown {service} event `{event}`"))
                .with_hint(flows::hint(event, known)));
        }
    }
    Ok(events)
}

/// A push source's `public_url:`: an http(s) URL the service can reach.
pub fn public_url(cx: &Cx<'_>, rest: &Node, url: Option<&str>) -> Result<(), Diagnostic> {
    match url {
        Some(url) if flows::check_url(url).is_err() => Err(cx
            .problem(
                cx.at(rest, "public_url"),
                format!("`public_url` `{url}` must start with https:// (or http://) and be a URL"),
            )
            .with_hint("the address the service can reach the daemon's /hooks/<flow> at")),
        _ => Ok(()),
    }
}

/// A URL field of an account is usable, or the error pointing at it.
pub fn url(
    cx: &Cx<'_>,
    rest: &Node,
    key: &str,
    url: &str,
    hint: &str,
) -> Result<(), Vec<Diagnostic>> {
    flows::check_url(url).map_err(|e| {
        vec![cx
            .problem(
                cx.at(rest, key),
                format!("`{key}` `{url}` is not usable: {e}"),
            )
            .with_hint(hint)]
    })
}

/// A required text field of an account is not empty.
pub fn not_empty(cx: &Cx<'_>, rest: &Node, key: &str, value: &str) -> Result<(), Vec<Diagnostic>> {
    if value.trim().is_empty() {
        return Err(vec![
            cx.problem(cx.at(rest, key), format!("`{key}` is empty"))
        ]);
    }
    Ok(())
}

/// An SMS receiver's `max_parts` is between 1 and 255 (the most parts one SMS can be
/// split into).
pub fn max_parts(
    cx: &Cx<'_>,
    rest: &Node,
    pos: flows::Pos,
    max_parts: Option<usize>,
) -> Result<(), Diagnostic> {
    match max_parts {
        Some(n) if !(1..=255).contains(&n) => {
            let at = rest
                .as_mapping()
                .and_then(|m| m.get_node("max_parts"))
                .map(|n| flows::Pos::of(n.span()))
                .unwrap_or(pos);
            Err(cx
                .problem(
                    at,
                    format!("`max_parts` is {n}; it must be between 1 and 255"),
                )
                .with_hint("the most billed SMS parts one text may make; default 10"))
        }
        _ => Ok(()),
    }
}

/// A receiver action that takes no options beyond connector, action and account.
pub fn no_options(cx: &Cx<'_>, rest: &Node) -> Result<(), Diagnostic> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NoOptions {}
    let NoOptions {} = options(cx, rest, "receiver")?;
    Ok(())
}

/// Two field lists as one, in a constant (`C` = `A + B`).
pub const fn concat<const A: usize, const B: usize, const C: usize>(
    a: [FieldSpec; A],
    b: [FieldSpec; B],
) -> [FieldSpec; C] {
    assert!(A + B == C && A > 0);
    let mut out = [a[0]; C];
    let mut i = 0;
    while i < C {
        out[i] = if i < A { a[i] } else { b[i - A] };
        i += 1;
    }
    out
}
