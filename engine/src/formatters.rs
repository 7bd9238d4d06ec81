//! The formatter helpers: arithmetic (`add`, `sub`, `mul`, `div`, `round`), numbers and
//! money for people (`format_number`, `format_currency`, in a locale), text (`replace`,
//! `regex_replace`, `split`, `join`, `coalesce`), dates (`parse_date` in a given format
//! and zone, `convert_tz`) and a table of values (`map_value`). Each answers a value, so
//! they nest: `{{format_currency (mul price qty) "UAH" "uk"}}`. How many parameters
//! each takes is in [`ARITY`], which `validate` checks.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};

use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use handlebars::{Context, Handlebars, Helper, HelperDef, RenderContext, RenderError, ScopedJson};
use serde_json::Value;

use crate::helpers::{failed, optional_param, param, parse_when, text_of};

/// How many positional parameters each formatter takes: (name, at least, at most).
pub const ARITY: &[(&str, usize, usize)] = &[
    ("add", 2, 2),
    ("sub", 2, 2),
    ("mul", 2, 2),
    ("div", 2, 2),
    ("round", 1, 2),
    ("format_number", 1, 3),
    ("format_currency", 2, 3),
    ("replace", 3, 3),
    ("regex_replace", 3, 3),
    ("split", 2, 3),
    ("join", 2, 2),
    ("coalesce", 1, usize::MAX),
    ("parse_date", 2, 3),
    ("convert_tz", 2, 3),
    ("map_value", 1, 1),
];

/// Register every formatter on a registry.
pub(crate) fn register(registry: &mut Handlebars<'static>) {
    let all: [(&str, Formatter); 15] = [
        ("add", |h| arithmetic(h, |a, b| Ok(a + b))),
        ("sub", |h| arithmetic(h, |a, b| Ok(a - b))),
        ("mul", |h| arithmetic(h, |a, b| Ok(a * b))),
        ("div", |h| {
            arithmetic(h, |a, b| match b {
                0.0 => Err("division by zero".to_string()),
                b => Ok(a / b),
            })
        }),
        ("round", round),
        ("format_number", format_number),
        ("format_currency", format_currency),
        ("replace", replace),
        ("regex_replace", regex_replace),
        ("split", split),
        ("join", join),
        ("coalesce", coalesce),
        ("parse_date", parse_date),
        ("convert_tz", convert_tz),
        ("map_value", map_value),
    ];
    for (name, formatter) in all {
        registry.register_helper(name, Box::new(ValueFn(formatter)));
    }
}

/// A formatter: the helper's parameters to the value it answers.
type Formatter = fn(&Helper<'_>) -> Result<Value, RenderError>;

/// A helper that answers a value (so it can stand inside another helper's call).
struct ValueFn(Formatter);

impl HelperDef for ValueFn {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        (self.0)(h).map(ScopedJson::Derived)
    }
}

/// Parameter `index` as a number: `12.5`, `12,5`, `1 234.50` (spaces, `_` and
/// no-break spaces between digits are ignored).
fn number(h: &Helper<'_>, index: usize) -> Result<f64, RenderError> {
    if let Some(Value::Number(n)) = h.param(index).map(|p| p.value()) {
        if let Some(n) = n.as_f64() {
            return Ok(n);
        }
    }
    let text = param(h, index)?;
    parse_number(&text).ok_or_else(|| {
        failed(
            h.name(),
            format!("`{text}` is not a number (like 12.50 or 12,50)"),
        )
    })
}

/// A number as people write it, if it is one.
pub(crate) fn parse_number(text: &str) -> Option<f64> {
    let bare: String = text
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '\u{a0}' | '\u{202f}'))
        .collect();
    let bare = if bare.contains(',') && !bare.contains('.') {
        bare.replace(',', ".")
    } else {
        bare.replace(',', "")
    };
    f64::from_str(&bare).ok().filter(|n| n.is_finite())
}

/// A computed number as a JSON value: whole numbers as integers, others rounded to ten
/// places (so `0.1 + 0.2` is `0.3`).
fn number_value(n: f64) -> Result<Value, String> {
    if !n.is_finite() {
        return Err("the result is not a finite number".into());
    }
    let rounded = (n * 1e10).round() / 1e10;
    if rounded.fract() == 0.0 && rounded.abs() < 9e15 {
        return Ok(Value::from(rounded as i64));
    }
    serde_json::Number::from_f64(rounded)
        .map(Value::Number)
        .ok_or_else(|| "the result is not a finite number".into())
}

fn arithmetic(
    h: &Helper<'_>,
    op: impl Fn(f64, f64) -> Result<f64, String>,
) -> Result<Value, RenderError> {
    let (a, b) = (number(h, 0)?, number(h, 1)?);
    op(a, b)
        .and_then(number_value)
        .map_err(|e| failed(h.name(), e))
}

/// The number of decimal places parameter `index` asks for (0 to 10; `default` if absent).
fn places(h: &Helper<'_>, index: usize, default: usize) -> Result<usize, RenderError> {
    match optional_param(h, index)? {
        None => Ok(default),
        Some(text) => text
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|p| *p <= 10)
            .ok_or_else(|| {
                failed(
                    h.name(),
                    format!("`{text}` is not a number of decimal places (0 to 10)"),
                )
            }),
    }
}

fn round(h: &Helper<'_>) -> Result<Value, RenderError> {
    let n = number(h, 0)?;
    let scale = 10f64.powi(places(h, 1, 0)? as i32);
    number_value((n * scale).round() / scale).map_err(|e| failed("round", e))
}

/// How a locale writes numbers: its decimal mark, its group separator, and whether a
/// currency's symbol comes before the amount.
struct Locale {
    decimal: char,
    group: char,
    symbol_first: bool,
}

/// The locales numbers are written in (their language, or language-REGION).
fn locale(h: &Helper<'_>, index: usize) -> Result<Locale, RenderError> {
    let name = optional_param(h, index)?.unwrap_or_else(|| "en".into());
    let language = name
        .split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_lowercase();
    let (decimal, group, symbol_first) = match language.as_str() {
        "en" | "ja" | "zh" | "ko" | "he" | "th" => ('.', ',', true),
        "uk" | "ru" | "pl" | "cs" | "sk" | "fr" | "fi" | "sv" | "nb" | "no" | "hu" | "bg"
        | "lt" | "lv" | "et" => (',', '\u{a0}', false),
        "de" | "es" | "it" | "pt" | "nl" | "da" | "tr" | "ro" | "el" | "id" | "hr" | "sl"
        | "sr" => (',', '.', false),
        _ => {
            return Err(failed(
                h.name(),
                format!(
                    "`{name}` is not a locale it knows; write a language like en, uk, de or fr"
                ),
            ))
        }
    };
    Ok(Locale {
        decimal,
        group,
        symbol_first,
    })
}

/// `n` with `places` decimals, its digits grouped by threes, as `locale` writes it.
fn written(n: f64, places: usize, locale: &Locale) -> String {
    let fixed = format!("{:.*}", places, n.abs());
    let (whole, fraction) = fixed.split_once('.').unwrap_or((&fixed, ""));
    let mut grouped = String::new();
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(locale.group);
        }
        grouped.push(digit);
    }
    let sign = if n < 0.0 && fixed.chars().any(|c| c.is_ascii_digit() && c != '0') {
        "-"
    } else {
        ""
    };
    match fraction {
        "" => format!("{sign}{grouped}"),
        f => format!("{sign}{grouped}{}{f}", locale.decimal),
    }
}

fn format_number(h: &Helper<'_>) -> Result<Value, RenderError> {
    let n = number(h, 0)?;
    let places = places(h, 1, 2)?;
    Ok(Value::String(written(n, places, &locale(h, 2)?)))
}

/// Currencies' symbols (any other code is written as the code).
fn symbol(code: &str) -> &str {
    match code {
        "USD" => "$",
        "EUR" => "€",
        "GBP" => "£",
        "UAH" => "₴",
        "PLN" => "zł",
        "JPY" | "CNY" => "¥",
        "INR" => "₹",
        "CHF" => "CHF",
        "CAD" => "CA$",
        "AUD" => "A$",
        "BRL" => "R$",
        "TRY" => "₺",
        "CZK" => "Kč",
        "MXN" => "MX$",
        other => other,
    }
}

fn format_currency(h: &Helper<'_>) -> Result<Value, RenderError> {
    let n = number(h, 0)?;
    let code = param(h, 1)?.trim().to_uppercase();
    if code.len() != 3 || !code.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(failed(
            "format_currency",
            format!("`{code}` is not a currency code (three letters, like UAH or USD)"),
        ));
    }
    let locale = locale(h, 2)?;
    let places = if matches!(code.as_str(), "JPY" | "KRW") {
        0
    } else {
        2
    };
    let amount = written(n, places, &locale);
    let symbol = symbol(&code);
    Ok(Value::String(if locale.symbol_first {
        match amount.strip_prefix('-') {
            Some(positive) => format!("-{symbol}{positive}"),
            None => format!("{symbol}{amount}"),
        }
    } else {
        format!("{amount}\u{a0}{symbol}")
    }))
}

fn replace(h: &Helper<'_>) -> Result<Value, RenderError> {
    let (text, from, to) = (param(h, 0)?, param(h, 1)?, param(h, 2)?);
    if from.is_empty() {
        return Err(failed("replace", "the text to replace is empty"));
    }
    Ok(Value::String(text.replace(&from, &to)))
}

/// Regular expressions compiled once per process (a flow renders the same few again
/// and again); at most this many are kept.
const KEPT_PATTERNS: usize = 256;

fn regex_replace(h: &Helper<'_>) -> Result<Value, RenderError> {
    let (text, pattern, with) = (param(h, 0)?, param(h, 1)?, param(h, 2)?);
    static PATTERNS: OnceLock<Mutex<HashMap<String, regex::Regex>>> = OnceLock::new();
    let patterns = PATTERNS.get_or_init(Mutex::default);
    let kept = patterns.lock().ok().and_then(|p| p.get(&pattern).cloned());
    let regex = match kept {
        Some(regex) => regex,
        None => {
            let regex = regex::RegexBuilder::new(&pattern)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| {
                    failed(
                        "regex_replace",
                        format!("`{pattern}` is not a regular expression: {e}"),
                    )
                })?;
            if let Ok(mut p) = patterns.lock() {
                if p.len() >= KEPT_PATTERNS {
                    p.clear();
                }
                p.insert(pattern.clone(), regex.clone());
            }
            regex
        }
    };
    Ok(Value::String(
        regex.replace_all(&text, with.as_str()).into_owned(),
    ))
}

fn split(h: &Helper<'_>) -> Result<Value, RenderError> {
    let (text, separator) = (param(h, 0)?, param(h, 1)?);
    if separator.is_empty() {
        return Err(failed("split", "the separator is empty"));
    }
    let parts: Vec<&str> = text.split(separator.as_str()).map(str::trim).collect();
    match optional_param(h, 2)? {
        None => Ok(Value::Array(
            parts.into_iter().map(|p| Value::String(p.into())).collect(),
        )),
        Some(index) => {
            let i: usize = index.trim().parse().map_err(|_| {
                failed(
                    "split",
                    format!("`{index}` is not a position (0 is the first part)"),
                )
            })?;
            Ok(Value::String(
                parts.get(i).copied().unwrap_or_default().into(),
            ))
        }
    }
}

fn join(h: &Helper<'_>) -> Result<Value, RenderError> {
    let separator = param(h, 1)?;
    let list = h.param(0).ok_or_else(|| failed("join", "needs a list"))?;
    if list.is_value_missing() {
        return Err(RenderError::strict_error(list.relative_path()));
    }
    Ok(Value::String(match list.value() {
        Value::Array(items) => items
            .iter()
            .map(text_of)
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(&separator),
        other => text_of(other),
    }))
}

/// The first parameter that is there and not empty (missing fields are passed over).
fn coalesce(h: &Helper<'_>) -> Result<Value, RenderError> {
    Ok(h.params()
        .iter()
        .filter(|p| !p.is_value_missing())
        .map(|p| p.value())
        .find(|v| !text_of(v).trim().is_empty())
        .cloned()
        .unwrap_or(Value::String(String::new())))
}

fn zone(h: &Helper<'_>, index: usize) -> Result<Option<Tz>, RenderError> {
    match optional_param(h, index)? {
        None => Ok(None),
        Some(name) => Tz::from_str(name.trim()).map(Some).map_err(|_| {
            failed(
                h.name(),
                format!("`{name}` is not a time zone (like Europe/Kyiv or UTC)"),
            )
        }),
    }
}

/// `{{parse_date when "%d/%m/%Y %H:%M" "Europe/Kyiv"}}`: a date written in a given
/// format (in a zone, UTC by default) as RFC 3339.
fn parse_date(h: &Helper<'_>) -> Result<Value, RenderError> {
    let (text, format) = (param(h, 0)?, param(h, 1)?);
    let text = text.trim();
    let zone = zone(h, 2)?.unwrap_or(Tz::UTC);
    if let Ok(with_offset) = chrono::DateTime::parse_from_str(text, &format) {
        return Ok(Value::String(with_offset.to_rfc3339()));
    }
    let local = NaiveDateTime::parse_from_str(text, &format)
        .or_else(|_| {
            NaiveDate::parse_from_str(text, &format).map(|d| d.and_time(Default::default()))
        })
        .map_err(|_| {
            failed(
                "parse_date",
                format!("`{text}` is not a date written as `{format}`"),
            )
        })?;
    let at = zone
        .from_local_datetime(&local)
        .earliest()
        .ok_or_else(|| failed("parse_date", format!("`{text}` does not exist in {zone}")))?;
    Ok(Value::String(at.to_rfc3339()))
}

/// `{{convert_tz when "America/New_York"}}` (or with a strftime pattern after the zone):
/// the moment as it is there.
fn convert_tz(h: &Helper<'_>) -> Result<Value, RenderError> {
    let text = param(h, 0)?;
    let zone = zone(h, 1)?.ok_or_else(|| failed("convert_tz", "needs a time zone"))?;
    let when = parse_when(text.trim()).ok_or_else(|| {
        failed(
            "convert_tz",
            format!("`{text}` is not a date-time (RFC 3339, or YYYY-MM-DD HH:MM)"),
        )
    })?;
    let there = when.with_timezone(&zone);
    Ok(Value::String(match optional_param(h, 2)? {
        Some(pattern) => there.format(&pattern).to_string(),
        None => there.to_rfc3339(),
    }))
}

/// `{{map_value status pending="Очікує" paid="Сплачено" otherwise="—"}}`: the value
/// its text names; unnamed, `otherwise` (or the value itself).
fn map_value(h: &Helper<'_>) -> Result<Value, RenderError> {
    let key = param(h, 0)?;
    if let Some(mapped) = h.hash_get(key.trim()) {
        return Ok(mapped.value().clone());
    }
    Ok(match h.hash_get("otherwise") {
        Some(otherwise) => otherwise.value().clone(),
        None => Value::String(key),
    })
}
