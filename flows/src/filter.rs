//! `filter:` — which records a flow sends ("only send if"). Conditions over a record's
//! fields (after its look-up), combined with `all` / `any` / `not`:
//!
//! ```yaml
//! filter: {all: [{field: status, equals: paid}, {field: amount, gt: 100}]}
//! ```
//!
//! Operators: `equals`, `not_equals`, `in`, `contains`, `starts_with`, `matches` (a
//! regex), `gt` / `gte` / `lt` / `lte` (numbers, or dates such as `2026-11-28`), `empty` /
//! `not_empty`. Everything is checked when the file is read (an unknown operator, a regex
//! that does not compile, a comparison with neither a number nor a date), so `validate`
//! points at it. A record the filter drops gets the reason; a record the filter cannot
//! judge (a number comparison on `abc`) is an error, never silently dropped.

use std::cmp::Ordering;
use std::path::Path;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::diag::{Diagnostic, Pos};
use crate::yaml::{self, Node};

/// A flow's `filter:`.
#[derive(Debug, Clone)]
pub struct Filter {
    pub root: Condition,
    /// Where `filter:` stands.
    pub pos: Pos,
}

/// One condition: a test of a field, or conditions combined.
#[derive(Debug, Clone)]
pub enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    Test(Test),
}

/// `{field: status, equals: paid}`.
#[derive(Debug, Clone)]
pub struct Test {
    /// The field, dotted into nested values (`contact.type`, `items.0.sku`).
    pub field: String,
    pub op: Op,
    /// Where the field's name stands.
    pub pos: Pos,
}

/// What a test asks of its field.
#[derive(Debug, Clone)]
pub enum Op {
    Equals(Value),
    NotEquals(Value),
    In(Vec<Value>),
    Contains(String),
    StartsWith(String),
    Matches(regex::Regex),
    Compare(Cmp, Bound),
    /// `empty: true` (or `not_empty: false`): missing, null, blank text or an empty list.
    Empty(bool),
}

/// `gt`, `gte`, `lt`, `lte`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Gt,
    Gte,
    Lt,
    Lte,
}

/// What a comparison compares with: a number, or a date (a day, or a moment).
#[derive(Debug, Clone, PartialEq)]
pub enum Bound {
    Number(Decimal),
    Date(NaiveDateTime),
}

/// A number read from text, exactly: its sign and decimal digits, so that long ids
/// (`12345678901234567890`) compare digit by digit instead of as the nearest floating
/// point value, while `100` and `100.0` stay equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal {
    negative: bool,
    /// The integer part without leading zeros (empty for zero).
    whole: String,
    /// The fraction without trailing zeros.
    fraction: String,
}

impl Decimal {
    /// `12`, `-0.50`, `+3.`, `.5`; or, in exponent form (`1e3`), the value as a finite
    /// floating point number has it.
    pub fn parse(text: &str) -> Option<Decimal> {
        let text = text.trim();
        Decimal::plain(text).or_else(|| {
            let float = text.parse::<f64>().ok().filter(|n| n.is_finite())?;
            Decimal::plain(&float.to_string())
        })
    }

    fn plain(text: &str) -> Option<Decimal> {
        let (negative, digits) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction)
        {
            return None;
        }
        let whole = whole.trim_start_matches('0').to_string();
        let fraction = fraction.trim_end_matches('0').to_string();
        let zero = whole.is_empty() && fraction.is_empty();
        Some(Decimal {
            negative: negative && !zero,
            whole,
            fraction,
        })
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Decimal) -> Ordering {
        let magnitude = self
            .whole
            .len()
            .cmp(&other.whole.len())
            .then_with(|| self.whole.cmp(&other.whole))
            .then_with(|| self.fraction.cmp(&other.fraction));
        match (self.negative, other.negative) {
            (false, false) => magnitude,
            (true, true) => magnitude.reverse(),
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Decimal) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for Decimal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.negative { "-" } else { "" };
        let whole = if self.whole.is_empty() {
            "0"
        } else {
            &self.whole
        };
        match self.fraction.as_str() {
            "" => write!(f, "{sign}{whole}"),
            fraction => write!(f, "{sign}{whole}.{fraction}"),
        }
    }
}

/// Every operator a test may use.
pub const OPERATORS: &[&str] = &[
    "equals",
    "not_equals",
    "in",
    "contains",
    "starts_with",
    "matches",
    "gt",
    "gte",
    "lt",
    "lte",
    "empty",
    "not_empty",
];

/// `filtered:` — whether a record the filter drops is remembered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Filtered {
    /// Remembered with its data: judged again only once its data changes (a row whose
    /// `status` moves from `pending` to `paid` is then sent). The default.
    #[default]
    Remember,
    /// Not remembered: judged again on every run (for filters on look-up results, which
    /// change without the record changing). Pushed events are always remembered.
    Retry,
}

/// What a filter says of a record.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Pass,
    /// Dropped, and why (`` `status` is `pending`, not `paid` ``).
    Drop(String),
    /// The record cannot be judged (`` `amount` is `abc`, not a number ``): an error.
    Error(String),
}

impl Filter {
    /// Judge a record's fields.
    pub fn check(&self, fields: &Map<String, Value>) -> Verdict {
        match self.root.judge(fields) {
            Ok(None) => Verdict::Pass,
            Ok(Some(why)) => Verdict::Drop(why),
            Err(e) => Verdict::Error(e),
        }
    }

    /// What the filter asks, as text that is the same for the same conditions wherever
    /// they stand in the file (and different for any other): a record the filter dropped
    /// is remembered with it, so that a changed filter judges the record again.
    pub fn spec(&self) -> String {
        let mut out = String::new();
        self.root.spec(&mut out);
        out
    }

    /// Every field the filter tests, with where it is named (for `validate`).
    pub fn fields(&self) -> Vec<(&str, Pos)> {
        let mut out = Vec::new();
        self.root.fields(&mut out);
        out
    }
}

impl Condition {
    /// `Ok(None)`: it holds; `Ok(Some(why))`: it does not; `Err`: it cannot be judged.
    fn judge(&self, fields: &Map<String, Value>) -> Result<Option<String>, String> {
        match self {
            Condition::All(all) => {
                for c in all {
                    if let Some(why) = c.judge(fields)? {
                        return Ok(Some(why));
                    }
                }
                Ok(None)
            }
            Condition::Any(any) => {
                let mut whys = Vec::new();
                for c in any {
                    match c.judge(fields)? {
                        None => return Ok(None),
                        Some(why) => whys.push(why),
                    }
                }
                Ok(Some(format!("none of: {}", whys.join("; "))))
            }
            Condition::Not(inner) => Ok(match inner.judge(fields)? {
                Some(_) => None,
                None => Some(format!("not ({})", inner.describe())),
            }),
            Condition::Test(test) => test.judge(fields),
        }
    }

    fn describe(&self) -> String {
        match self {
            Condition::All(all) => all
                .iter()
                .map(Condition::describe)
                .collect::<Vec<_>>()
                .join(" and "),
            Condition::Any(any) => any
                .iter()
                .map(Condition::describe)
                .collect::<Vec<_>>()
                .join(" or "),
            Condition::Not(inner) => format!("not ({})", inner.describe()),
            Condition::Test(test) => test.describe(),
        }
    }

    fn spec(&self, out: &mut String) {
        let list = |name: &str, conditions: &[Condition], out: &mut String| {
            out.push_str(name);
            out.push('[');
            for (i, c) in conditions.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                c.spec(out);
            }
            out.push(']');
        };
        match self {
            Condition::All(all) => list("all", all, out),
            Condition::Any(any) => list("any", any, out),
            Condition::Not(inner) => list("not", std::slice::from_ref(inner), out),
            Condition::Test(test) => {
                let (name, value) = match &test.op {
                    Op::Equals(v) => ("equals", v.clone()),
                    Op::NotEquals(v) => ("not_equals", v.clone()),
                    Op::In(list) => ("in", Value::Array(list.clone())),
                    Op::Contains(part) => ("contains", Value::from(part.as_str())),
                    Op::StartsWith(prefix) => ("starts_with", Value::from(prefix.as_str())),
                    Op::Matches(regex) => ("matches", Value::from(regex.as_str())),
                    Op::Compare(cmp, bound) => {
                        let name = match cmp {
                            Cmp::Gt => "gt",
                            Cmp::Gte => "gte",
                            Cmp::Lt => "lt",
                            Cmp::Lte => "lte",
                        };
                        let bound = match bound {
                            Bound::Number(n) => n.to_string(),
                            Bound::Date(d) => d.format("%Y-%m-%dT%H:%M:%S%.f").to_string(),
                        };
                        (name, Value::from(bound))
                    }
                    Op::Empty(want) => ("empty", Value::from(*want)),
                };
                out.push_str(
                    &Value::from(vec![
                        Value::from(test.field.as_str()),
                        Value::from(name),
                        value,
                    ])
                    .to_string(),
                );
            }
        }
    }

    fn fields<'a>(&'a self, out: &mut Vec<(&'a str, Pos)>) {
        match self {
            Condition::All(cs) | Condition::Any(cs) => cs.iter().for_each(|c| c.fields(out)),
            Condition::Not(c) => c.fields(out),
            Condition::Test(t) => out.push((t.field.as_str(), t.pos)),
        }
    }
}

/// A field's value by a dotted path: `contact.type`, `items.0.sku`.
pub fn lookup<'v>(fields: &'v Map<String, Value>, path: &str) -> Option<&'v Value> {
    if let Some(value) = fields.get(path) {
        return Some(value);
    }
    let mut parts = path.split('.');
    let mut value = fields.get(parts.next()?)?;
    for part in parts {
        value = match value {
            Value::Object(map) => map.get(part)?,
            Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

/// A value as text for comparing (`null` as empty).
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn number(text: &str) -> Option<Decimal> {
    Decimal::parse(text)
}

/// A day (`2026-11-28`, as midnight) or a moment (RFC 3339, or `2026-11-28 14:30[:00]`).
fn date(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return day.and_hms_opt(0, 0, 0);
    }
    if let Ok(moment) = DateTime::parse_from_rfc3339(text) {
        return Some(moment.naive_utc());
    }
    ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
}

/// Whether two values are equal as a person means it: numbers by value (`100` = `100.0`),
/// anything else by its text.
fn same(have: &Value, want: &Value) -> bool {
    let (have, want) = (text(have), text(want));
    match (number(&have), number(&want)) {
        (Some(a), Some(b)) => a == b,
        _ => have == want,
    }
}

fn is_empty(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(Value::Array(items)) => items.is_empty(),
        Some(Value::Object(map)) => map.is_empty(),
        Some(_) => false,
    }
}

impl Test {
    fn judge(&self, fields: &Map<String, Value>) -> Result<Option<String>, String> {
        let field = &self.field;
        let value = lookup(fields, field);
        if let Op::Empty(want_empty) = self.op {
            let empty = is_empty(value);
            return Ok((empty != want_empty).then(|| {
                if empty {
                    format!("`{field}` is empty")
                } else {
                    format!("`{field}` is not empty")
                }
            }));
        }
        let Some(value) = value else {
            return Ok(Some(format!("the record has no `{field}`")));
        };
        let have = text(value);
        let holds = match &self.op {
            Op::Equals(want) => same(value, want),
            Op::NotEquals(want) => !same(value, want),
            Op::In(list) => list.iter().any(|want| same(value, want)),
            Op::Contains(part) => match value {
                // A list contains an item; text contains text.
                Value::Array(items) => items.iter().any(|i| text(i) == *part),
                _ => have.contains(part.as_str()),
            },
            Op::StartsWith(prefix) => have.starts_with(prefix.as_str()),
            Op::Matches(regex) => regex.is_match(&have),
            Op::Compare(cmp, bound) => {
                let order = match bound {
                    Bound::Number(n) => number(&have)
                        .ok_or_else(|| format!("`{field}` is `{have}`, not a number"))?
                        .partial_cmp(n),
                    Bound::Date(d) => date(&have)
                        .ok_or_else(|| {
                            format!("`{field}` is `{have}`, not a date (like 2026-11-28)")
                        })?
                        .partial_cmp(d),
                };
                matches!(
                    (cmp, order),
                    (Cmp::Gt, Some(Ordering::Greater))
                        | (Cmp::Gte, Some(Ordering::Greater | Ordering::Equal))
                        | (Cmp::Lt, Some(Ordering::Less))
                        | (Cmp::Lte, Some(Ordering::Less | Ordering::Equal))
                )
            }
            Op::Empty(_) => unreachable!("handled above"),
        };
        Ok((!holds).then(|| {
            format!(
                "`{field}` is `{have}`, and the filter wants {}",
                self.wants()
            )
        }))
    }

    /// What the test wants, in words (`` `paid` ``, `more than 100`).
    fn wants(&self) -> String {
        match &self.op {
            Op::Equals(v) => format!("`{}`", text(v)),
            Op::NotEquals(v) => format!("anything but `{}`", text(v)),
            Op::In(list) => format!(
                "one of {}",
                list.iter()
                    .map(|v| format!("`{}`", text(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Op::Contains(part) => format!("it to contain `{part}`"),
            Op::StartsWith(prefix) => format!("it to start with `{prefix}`"),
            Op::Matches(regex) => format!("it to match `{}`", regex.as_str()),
            Op::Compare(cmp, bound) => {
                let bound = match bound {
                    Bound::Number(n) => n.to_string(),
                    Bound::Date(d) => d.format("%Y-%m-%d %H:%M").to_string(),
                };
                let words = match cmp {
                    Cmp::Gt => "more than",
                    Cmp::Gte => "at least",
                    Cmp::Lt => "less than",
                    Cmp::Lte => "at most",
                };
                format!("{words} {bound}")
            }
            Op::Empty(true) => "it empty".into(),
            Op::Empty(false) => "a value".into(),
        }
    }

    fn describe(&self) -> String {
        format!("`{}`: {}", self.field, self.wants())
    }
}

/// Read `filter:`, checking everything that can be checked before a record arrives;
/// every problem in it at once.
pub fn parse(file: &Path, node: &Node) -> Result<Filter, Vec<Diagnostic>> {
    Ok(Filter {
        root: condition(file, node)?,
        pos: Pos::of(node.span()),
    })
}

const COMBINERS: &[&str] = &["all", "any", "not"];

fn condition(file: &Path, node: &Node) -> Result<Condition, Vec<Diagnostic>> {
    test_or_combined(file, node).map_err(|e| match e {
        Problems::One(d) => vec![d],
        Problems::Many(ds) => ds,
    })
}

/// A condition's problems: its own, or those of the conditions it combines.
enum Problems {
    One(Diagnostic),
    Many(Vec<Diagnostic>),
}

impl From<Diagnostic> for Problems {
    fn from(d: Diagnostic) -> Self {
        Problems::One(d)
    }
}

fn test_or_combined(file: &Path, node: &Node) -> Result<Condition, Problems> {
    let pos = Pos::of(node.span());
    let Some(mapping) = node.as_mapping() else {
        return Err(Diagnostic::new(file, pos, "a filter condition must be a mapping")
            .with_hint("for example `{field: status, equals: paid}`, or `{all: [...]}` / `{any: [...]}` / `{not: {...}}`").into());
    };
    let keys: Vec<&str> = mapping.keys().map(|k| k.as_str()).collect();
    if let Some(combiner) = keys.iter().find(|k| COMBINERS.contains(k)) {
        if keys.len() > 1 {
            return Err(Diagnostic::new(
                file,
                pos,
                format!("`{combiner}` stands alone in its condition"),
            )
            .with_hint(format!(
                "put the other conditions in its list: `{{{combiner}: [{{field: …, equals: …}}, …]}}`"
            )).into());
        }
        let inner = mapping.get_node(combiner).unwrap_or(node);
        return match *combiner {
            "not" => Ok(Condition::Not(Box::new(
                condition(file, inner).map_err(Problems::Many)?,
            ))),
            _ => {
                let Some(list) = inner.as_sequence().filter(|l| !l.is_empty()) else {
                    return Err(Problems::One(Diagnostic::new(
                        file,
                        Pos::of(inner.span()),
                        format!("`{combiner}` takes a list of conditions"),
                    )
                    .with_hint(format!(
                        "`{combiner}: [{{field: status, equals: paid}}, {{field: amount, gt: 100}}]`"
                    ))));
                };
                let mut conditions = Vec::new();
                let mut problems = Vec::new();
                for c in list.iter() {
                    match condition(file, c) {
                        Ok(c) => conditions.push(c),
                        Err(ds) => problems.extend(ds),
                    }
                }
                if !problems.is_empty() {
                    return Err(Problems::Many(problems));
                }
                Ok(if *combiner == "all" {
                    Condition::All(conditions)
                } else {
                    Condition::Any(conditions)
                })
            }
        };
    }
    let Some(field_node) = mapping.get_node("field") else {
        return Err(Diagnostic::new(
            file,
            pos,
            "a filter condition names a `field` (or combines others with `all`, `any` or `not`)",
        )
        .with_hint("for example `{field: status, equals: paid}`")
        .into());
    };
    let field = yaml::scalar(file, field_node, "field")?.trim().to_string();
    let field_pos = Pos::of(field_node.span());
    if field.is_empty() {
        return Err(Diagnostic::new(file, field_pos, "`field` is empty").into());
    }
    let mut ops = Vec::new();
    for key in mapping.keys() {
        let name = key.as_str();
        if name == "field" {
            continue;
        }
        if !OPERATORS.contains(&name) {
            return Err(Diagnostic::new(
                file,
                Pos::of(key.span()),
                format!("unknown filter operator `{name}`"),
            )
            .with_hint(crate::suggest::hint(name, OPERATORS))
            .into());
        }
        ops.push((name, mapping.get_node(name).unwrap_or(node)));
    }
    let (name, value) = match ops.as_slice() {
        [one] => *one,
        [] => {
            return Err(Diagnostic::new(
                file,
                field_pos,
                format!("the condition on `{field}` has no operator"),
            )
            .with_hint(format!("add one of: {}", OPERATORS.join(", ")))
            .into())
        }
        _ => {
            return Err(Diagnostic::new(
                file,
                pos,
                format!(
                    "the condition on `{field}` has {} operators; it takes one",
                    ops.len()
                ),
            )
            .with_hint(
                "combine tests of one field with `all: [{field: …, gt: …}, {field: …, lt: …}]`",
            )
            .into())
        }
    };
    Ok(Condition::Test(Test {
        op: operator(file, name, value)?,
        field,
        pos: field_pos,
    }))
}

/// A value a field is compared with: a number keeps the digits written (a long id read
/// as floating point would lose its last ones); it is compared by value all the same.
fn compared(node: &Node) -> Value {
    match (yaml::literal(node), node.as_scalar()) {
        (Value::Number(_), Some(text)) => Value::String(text.as_str().to_string()),
        (value, _) => value,
    }
}

fn operator(file: &Path, name: &str, node: &Node) -> Result<Op, Diagnostic> {
    let pos = Pos::of(node.span());
    let single = |what: &str| -> Result<String, Diagnostic> {
        Ok(yaml::scalar(file, node, what)?.to_string())
    };
    Ok(match name {
        "equals" | "not_equals" => {
            if node.as_scalar().is_none() {
                return Err(Diagnostic::new(
                    file,
                    pos,
                    format!("`{name}` compares with one value"),
                )
                .with_hint("for several, use `in: [a, b]`"));
            }
            let value = compared(node);
            if name == "equals" {
                Op::Equals(value)
            } else {
                Op::NotEquals(value)
            }
        }
        "in" => match node.as_sequence() {
            Some(list) if !list.is_empty() && list.iter().all(|n| n.as_scalar().is_some()) => {
                Op::In(list.iter().map(compared).collect())
            }
            _ => {
                return Err(Diagnostic::new(file, pos, "`in` takes a list of values")
                    .with_hint("for example `in: [paid, shipped]`"))
            }
        },
        "contains" => Op::Contains(single(name)?),
        "starts_with" => Op::StartsWith(single(name)?),
        "matches" => {
            let pattern = single(name)?;
            let regex = regex::Regex::new(&pattern).map_err(|e| {
                let detail = e.to_string();
                let last = detail.lines().last().unwrap_or(&detail).trim().to_string();
                Diagnostic::new(
                    file,
                    pos,
                    format!("`matches`: `{pattern}` is not a regular expression: {last}"),
                )
                .with_hint("Rust regex syntax; `(?i)` at the start ignores case; quote it in YAML")
            })?;
            Op::Matches(regex)
        }
        "gt" | "gte" | "lt" | "lte" => {
            let text = single(name)?;
            let bound = number(&text)
                .map(Bound::Number)
                .or_else(|| date(&text).map(Bound::Date))
                .ok_or_else(|| {
                    Diagnostic::new(
                        file,
                        pos,
                        format!("`{name}` compares numbers or dates; `{text}` is neither"),
                    )
                    .with_hint("for example `gt: 100`, or `lt: 2026-12-31` (text is compared with `equals`, `in`, `contains`, `starts_with` or `matches`)")
                })?;
            let cmp = match name {
                "gt" => Cmp::Gt,
                "gte" => Cmp::Gte,
                "lt" => Cmp::Lt,
                _ => Cmp::Lte,
            };
            Op::Compare(cmp, bound)
        }
        _ => {
            let want = match single(name)?.as_str() {
                "true" | "yes" => true,
                "false" | "no" => false,
                other => {
                    return Err(Diagnostic::new(
                        file,
                        pos,
                        format!("`{name}` is `true` or `false`, not `{other}`"),
                    ))
                }
            };
            Op::Empty(if name == "empty" { want } else { !want })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filter(text: &str) -> Result<Filter, String> {
        let file = Path::new("f.yaml");
        let node = yaml::load(file, text).map_err(|d| d.to_string())?;
        parse(file, &node).map_err(|ds| {
            ds.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        })
    }

    fn check(filter_text: &str, record: Value) -> Verdict {
        let f = filter(filter_text).expect("filter succeeds");
        f.check(record.as_object().unwrap_or(&Map::new()))
    }

    #[test]
    fn tests_combine_with_all_any_and_not() {
        let paid_and_big = "{all: [{field: status, equals: paid}, {field: amount, gt: 100}]}";
        assert_eq!(
            check(paid_and_big, json!({"status": "paid", "amount": "250.5"})),
            Verdict::Pass
        );
        assert_eq!(
            check(paid_and_big, json!({"status": "paid", "amount": "99"})),
            Verdict::Drop("`amount` is `99`, and the filter wants more than 100".into())
        );
        let either = "{any: [{field: status, in: [paid, shipped]}, {field: vip, equals: true}]}";
        assert_eq!(
            check(either, json!({"status": "new", "vip": true})),
            Verdict::Pass
        );
        assert!(
            matches!(check(either, json!({"status": "new", "vip": "no"})), Verdict::Drop(w) if w.starts_with("none of: "))
        );
        let not_test = "{not: {field: email, contains: \"@example.com\"}}";
        assert_eq!(
            check(not_test, json!({"email": "a@shop.ua"})),
            Verdict::Pass
        );
        assert!(matches!(
            check(not_test, json!({"email": "t@example.com"})),
            Verdict::Drop(_)
        ));
    }

    #[test]
    fn each_operator_judges_as_a_person_would() {
        let r = json!({"n": "100.0", "s": "Olena K", "tags": ["vip", "new"], "when": "2026-11-28", "blank": " ", "nested": {"kind": "Lead"}});
        for (f, want) in [
            ("{field: n, equals: 100}", true),
            ("{field: n, not_equals: 100}", false),
            ("{field: s, starts_with: Ole}", true),
            ("{field: s, contains: \"a K\"}", true),
            ("{field: tags, contains: vip}", true),
            ("{field: s, matches: \"(?i)^olena\"}", true),
            ("{field: when, gte: 2026-11-28}", true),
            ("{field: when, lt: 2026-11-28}", false),
            ("{field: n, lte: 100}", true),
            ("{field: blank, empty: true}", true),
            ("{field: missing, empty: true}", true),
            ("{field: s, not_empty: true}", true),
            ("{field: nested.kind, equals: Lead}", true),
            ("{field: tags.1, equals: new}", true),
        ] {
            assert_eq!(check(f, r.clone()) == Verdict::Pass, want, "{f}");
        }
        // A record the filter cannot judge is an error, not a quiet drop.
        assert_eq!(
            check("{field: s, gt: 3}", r.clone()),
            Verdict::Error("`s` is `Olena K`, not a number".into())
        );
        assert_eq!(
            check("{field: absent, equals: x}", r),
            Verdict::Drop("the record has no `absent`".into())
        );
    }

    #[test]
    fn long_numeric_ids_compare_exactly_not_as_floating_point() {
        // Both are 12345678901234567000 as f64: they must not be taken for each other.
        let id = json!({"id": "12345678901234567890", "big": "9007199254740993"});
        assert!(matches!(
            check("{field: id, equals: 12345678901234567891}", id.clone()),
            Verdict::Drop(_)
        ));
        assert_eq!(
            check("{field: id, equals: \"12345678901234567890\"}", id.clone()),
            Verdict::Pass
        );
        assert_eq!(
            check("{field: id, in: [1, 12345678901234567890]}", id.clone()),
            Verdict::Pass
        );
        assert!(matches!(
            check("{field: big, gt: 9007199254740992}", id.clone()),
            Verdict::Pass
        ));
        assert!(matches!(
            check("{field: big, lte: 9007199254740992}", id),
            Verdict::Drop(_)
        ));
        // By value still: 100 = 100.0 = 1e2, -0 = 0, and order across signs and fractions.
        for (a, b, order) in [
            ("100", "100.0", Ordering::Equal),
            ("1e2", "100", Ordering::Equal),
            ("-0", "0.000", Ordering::Equal),
            ("-2", "-10", Ordering::Greater),
            ("0.5", ".50", Ordering::Equal),
            ("10.01", "10.1", Ordering::Less),
            ("-0.1", "0", Ordering::Less),
            ("007", "7", Ordering::Equal),
        ] {
            let (x, y) = (Decimal::parse(a), Decimal::parse(b));
            assert_eq!(x.zip(y).map(|(x, y)| x.cmp(&y)), Some(order), "{a} vs {b}");
        }
        for not_a_number in ["", "-", ".", "1.2.3", "12a", "NaN", "inf", "0x10"] {
            assert_eq!(Decimal::parse(not_a_number), None, "{not_a_number}");
        }
    }

    #[test]
    fn a_filter_spec_changes_with_what_it_asks_not_where_it_stands() {
        let spec = |text: &str| filter(text).map(|f| f.spec()).unwrap_or_default();
        let paid = spec("{all: [{field: status, equals: paid}, {field: amount, gt: 100}]}");
        assert_eq!(
            paid,
            spec("\n\n{all: [{field: status,   equals: paid}, {field: amount, gt: 100.0}]}")
        );
        for other in [
            "{all: [{field: status, equals: paid}, {field: amount, gt: 10}]}",
            "{all: [{field: status, equals: shipped}, {field: amount, gt: 100}]}",
            "{any: [{field: status, equals: paid}, {field: amount, gt: 100}]}",
            "{all: [{field: status, not_equals: paid}, {field: amount, gt: 100}]}",
            "{all: [{field: state, equals: paid}, {field: amount, gt: 100}]}",
            "{not: {all: [{field: status, equals: paid}, {field: amount, gt: 100}]}}",
        ] {
            assert_ne!(paid, spec(other), "{other}");
        }
    }

    #[test]
    fn mistakes_are_caught_when_the_file_is_read() {
        for (text, expected) in [
            (
                "{field: status, eqals: paid}",
                "f.yaml:1:17: unknown filter operator `eqals`",
            ),
            (
                "{field: status}",
                "the condition on `status` has no operator",
            ),
            (
                "{field: a, equals: 1, gt: 2}",
                "has 2 operators; it takes one",
            ),
            (
                "{field: a, matches: \"(unclosed\"}",
                "`matches`: `(unclosed` is not a regular expression",
            ),
            (
                "{field: a, gt: soon}",
                "`gt` compares numbers or dates; `soon` is neither",
            ),
            ("{field: a, in: paid}", "`in` takes a list of values"),
            (
                "{all: {field: a, equals: 1}}",
                "`all` takes a list of conditions",
            ),
            ("{all: [], field: a}", "`all` stands alone in its condition"),
            ("{equals: 1}", "names a `field`"),
            ("[status]", "must be a mapping"),
            ("{field: a, empty: maybe}", "`empty` is `true` or `false`"),
        ] {
            match filter(text) {
                Err(e) => assert!(e.contains(expected), "{text}: {e}"),
                Ok(_) => panic!("{text} was accepted"),
            }
        }
        let hint = filter("{field: status, eqals: paid}")
            .err()
            .unwrap_or_default();
        assert!(hint.contains("did you mean `equals`?"), "{hint}");
    }
}
