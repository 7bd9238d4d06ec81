//! YAML with positions: loading files into `marked_yaml` nodes, typed deserialisation
//! whose errors carry `line:col`, and the literal-value rules of `map:`.

use std::path::Path;

pub use marked_yaml::types::MarkedMappingNode as Mapping;
pub use marked_yaml::Node;
use marked_yaml::{LoadError, LoaderOptions};
use serde::de::DeserializeOwned;

use crate::diag::{Diagnostic, Pos};
use crate::suggest;

/// The deepest nesting of mappings and lists a file may have. Nothing a flow or an
/// accounts file says needs more than a handful of levels; far deeper nesting would only
/// exhaust the stack of the parser and of everything that walks the tree.
pub const MAX_DEPTH: usize = 64;

/// The largest flow or accounts file read, in bytes.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Parse a YAML document whose top level must be a mapping.
pub fn load(file: &Path, text: &str) -> Result<Node, Diagnostic> {
    if let Some((line, depth)) = too_deep(text) {
        return Err(Diagnostic::new(
            file,
            Pos::new(line, 1),
            format!("the YAML nests {depth} levels deep here; at most {MAX_DEPTH} are allowed"),
        )
        .with_hint("a flow file needs only a few levels: check the indentation"));
    }
    let options = LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .prevent_coercion(true)
        .toplevel_mapping();
    marked_yaml::parse_yaml_with_options(0, text, options).map_err(|e| load_error(file, text, e))
}

/// Where a document nests deeper than [`MAX_DEPTH`] by indentation or by `- ` list
/// markers (flow collections — `[…]`, `{…}` — are bounded by the parser itself), as the
/// 1-based line and the depth there. Lines of block scalars (`|`, `>`) are text, not
/// nesting, and are skipped.
fn too_deep(text: &str) -> Option<(usize, usize)> {
    // The columns at which the open levels start, outermost first.
    let mut levels: Vec<usize> = Vec::new();
    let mut block_scalar: Option<usize> = None;
    for (number, line) in text.lines().enumerate() {
        let content = line.trim_start_matches(' ');
        if content.trim().is_empty() || content.starts_with('#') {
            continue;
        }
        let column = line.len() - content.len();
        if let Some(at) = block_scalar {
            if column > at {
                continue;
            }
            block_scalar = None;
        }
        while levels.last().is_some_and(|c| *c >= column) {
            levels.pop();
        }
        levels.push(column);
        // Each `- ` opens one more level, starting after it.
        let (mut at, mut rest) = (column, content);
        while rest == "-" || rest.starts_with("- ") {
            let after = rest[1..].trim_start_matches(' ');
            at += rest.len() - after.len();
            rest = after;
            levels.push(at);
        }
        if levels.len() > MAX_DEPTH {
            return Some((number + 1, levels.len()));
        }
        let value = rest.split(" #").next().unwrap_or(rest).trim_end();
        if ["|", ">", "|-", "|+", ">-", ">+"]
            .iter()
            .any(|m| value.ends_with(m))
        {
            block_scalar = Some(column);
        }
    }
    None
}

fn load_error(file: &Path, text: &str, error: LoadError) -> Diagnostic {
    let at = |m: &marked_yaml::Marker| Pos::new(m.line(), m.column());
    match error {
        LoadError::TopLevelMustBeMapping(m) => {
            // An empty file parses as "not a mapping": say so plainly.
            let message = if text.trim().is_empty() {
                "the file is empty"
            } else {
                "the top level must be a mapping of keys to values"
            };
            Diagnostic::new(file, at(&m), message)
                .with_hint("a flow file starts with keys such as `source:`, `receiver:` and `map:`")
        }
        LoadError::TopLevelMustBeSequence(m) => {
            Diagnostic::new(file, at(&m), "the top level must be a list")
        }
        LoadError::UnexpectedAnchor(m) => Diagnostic::new(
            file,
            at(&m),
            "YAML anchors and aliases are not supported in flow files",
        ),
        LoadError::MappingKeyMustBeScalar(m) => {
            Diagnostic::new(file, at(&m), "a key must be a plain string")
        }
        LoadError::UnexpectedTag(m) => Diagnostic::new(
            file,
            at(&m),
            "YAML tags (`!tag`) are not supported in flow files",
        ),
        LoadError::ScanError(m, e) => {
            Diagnostic::new(file, at(&m), format!("invalid YAML: {}", e.info()))
                .with_hint("check the indentation and quoting near this place")
        }
        LoadError::DuplicateKey(inner) => {
            let first = Pos::of(inner.prev_key.span());
            Diagnostic::new(
                file,
                Pos::of(inner.key.span()),
                format!(
                    "duplicate key `{}` (first given at line {})",
                    inner.key.as_str(),
                    first.line
                ),
            )
        }
    }
}

/// Deserialise a node into `T`, turning serde's complaint into a positioned diagnostic.
/// `section` names where the node sits (`source`, `schedule`, …) for the message.
pub fn from_node<T: DeserializeOwned>(
    file: &Path,
    node: &Node,
    section: &str,
) -> Result<T, Diagnostic> {
    marked_yaml::from_node::<T>(node).map_err(|e| {
        // Prefer the node the serde path leads to: the mark serde reports for a value
        // inside a buffered or renamed structure can be its parent's.
        let by_path = e
            .path()
            .and_then(|p| lookup(node, p))
            .map(|n| Pos::of(n.span()));
        let error = e.into_inner();
        let pos = by_path
            .or_else(|| error.start_mark().map(|m| Pos::new(m.line(), m.column())))
            .unwrap_or_else(|| Pos::of(node.span()));
        match error {
            marked_yaml::Error::UnknownFieldError(field, expected, _) => {
                // Point at the key itself, not at the mapping that holds it.
                let pos = node
                    .as_mapping()
                    .and_then(|m| m.keys().find(|k| k.as_str() == field))
                    .map(|k| Pos::of(k.span()))
                    .unwrap_or(pos);
                unknown_key(file, pos, &field, section, expected)
            }
            marked_yaml::Error::NotBoolean(_) => Diagnostic::new(
                file,
                pos,
                format!("in `{section}`: expected `true` or `false`"),
            ),
            other => Diagnostic::new(
                file,
                pos,
                format!("in `{section}`: {}", tidy(&other.to_string())),
            ),
        }
    })
}

/// The node at a serde path such as `backlog` or `on[1]` below `node`.
fn lookup<'n>(node: &'n Node, path: &str) -> Option<&'n Node> {
    let mut current = node;
    for segment in path.split('.').filter(|s| !s.is_empty() && *s != "?") {
        let (key, index) = match segment.split_once('[') {
            Some((key, rest)) => (key, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (segment, None),
        };
        if !key.is_empty() {
            current = current.as_mapping()?.get_node(key)?;
        }
        if let Some(i) = index {
            current = current.as_sequence()?.get_node(i)?;
        }
    }
    Some(current)
}

/// The error for a key that is not allowed where it stands.
pub fn unknown_key(
    file: &Path,
    pos: Pos,
    key: &str,
    section: &str,
    allowed: &[&str],
) -> Diagnostic {
    let place = if section.is_empty() {
        String::new()
    } else {
        format!(" in `{section}`")
    };
    Diagnostic::new(file, pos, format!("unknown key `{key}`{place}"))
        .with_hint(suggest::hint(key, allowed))
}

/// Serde's messages are written for programmers; make the common ones read for people.
fn tidy(message: &str) -> String {
    message
        .replace(
            "invalid type: string",
            "expected a different kind of value, found text",
        )
        .replace("unknown variant", "unknown value")
        .replace("variant", "value")
}

/// A mapping node without some of its keys (so the rest can be deserialised strictly).
pub fn without_keys(node: &Node, keys: &[&str]) -> Node {
    let mut node = node.clone();
    if let Some(mapping) = node.as_mapping_mut() {
        for key in keys {
            mapping.remove(*key);
        }
    }
    node
}

/// The text of a scalar node, or a diagnostic saying a plain value was expected.
pub fn scalar<'n>(file: &Path, node: &'n Node, what: &str) -> Result<&'n str, Diagnostic> {
    node.as_scalar().map(|s| s.as_str()).ok_or_else(|| {
        Diagnostic::new(
            file,
            Pos::of(node.span()),
            format!("`{what}` must be a single value, not a list or mapping"),
        )
    })
}

/// A YAML literal as JSON: unquoted `42`, `true`, `null` keep their type, quoted values
/// stay text, lists and mappings are converted element by element.
pub fn literal(node: &Node) -> serde_json::Value {
    use serde_json::Value;
    match node {
        Node::Scalar(s) => {
            let text = s.as_str();
            if !s.may_coerce() {
                return Value::String(text.to_string());
            }
            match text {
                "true" | "True" | "TRUE" => Value::Bool(true),
                "false" | "False" | "FALSE" => Value::Bool(false),
                "~" | "null" | "Null" | "NULL" => Value::Null,
                _ => {
                    if let Ok(i) = text.parse::<i64>() {
                        Value::from(i)
                    } else if let Some(f) = text
                        .parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite())
                        .and_then(serde_json::Number::from_f64)
                    {
                        Value::Number(f)
                    } else {
                        Value::String(text.to_string())
                    }
                }
            }
        }
        Node::Sequence(items) => Value::Array(items.iter().map(literal).collect()),
        Node::Mapping(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.as_str().to_string(), literal(v)))
                .collect(),
        ),
    }
}

/// What `switchboard new` writes where a person must fill something in.
pub const FILL_IN: &str = "CHANGE-ME";

/// Every value of `node` that still holds [`FILL_IN`], as a problem at its place: a
/// flow or account with one is not ready to run (a `{{CHANGE-ME}}` template, an ID of
/// `CHANGE-ME`, would otherwise pass as a real value).
pub fn fill_ins(file: &Path, node: &Node, key: Option<&str>) -> Vec<Diagnostic> {
    match node {
        Node::Scalar(s) if s.as_str().contains(FILL_IN) => {
            let what = key.map(|k| format!("`{k}` ")).unwrap_or_default();
            vec![Diagnostic::new(
                file,
                Pos::of(s.span()),
                format!(
                    "{what}is still `{}`, as `switchboard new` left it",
                    s.as_str()
                ),
            )
            .with_hint("replace it with the real value (the comment above it says what it is)")]
        }
        Node::Scalar(_) => Vec::new(),
        Node::Sequence(items) => items.iter().flat_map(|n| fill_ins(file, n, key)).collect(),
        Node::Mapping(map) => map
            .iter()
            .flat_map(|(k, v)| fill_ins(file, v, Some(k.as_str())))
            .collect(),
    }
}
