//! Template helpers users need for SMS: `default`, `trim`, `upper`, `lower`, `truncate`,
//! `format_date` and `e164` (phone normalisation with a default region); the formatters
//! (arithmetic, numbers and money, text, dates, value tables) are in
//! [`crate::formatters`].
//!
//! Under strict mode a helper is handed missing fields as "missing" values; every helper
//! except `default` turns that into the same error a plain `{{field}}` would raise.

use std::fmt::Write as _;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone};
use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, Output, PathAndJson, RenderContext,
    RenderError, RenderErrorReason,
};
use serde_json::Value;

/// Register every helper on a registry.
pub(crate) fn register(registry: &mut Handlebars<'static>) {
    registry.register_helper("default", Box::new(default));
    registry.register_helper("trim", Box::new(TextFn(|s| s.trim().to_string())));
    registry.register_helper("upper", Box::new(TextFn(str::to_uppercase)));
    registry.register_helper("lower", Box::new(TextFn(str::to_lowercase)));
    registry.register_helper("truncate", Box::new(truncate));
    registry.register_helper("format_date", Box::new(format_date));
    registry.register_helper("e164", Box::new(e164));
    registry.register_helper("each", Box::new(BoundedEach));
    crate::formatters::register(registry);
}

/// How many positional parameters each of these helpers takes: (name, at least, at most).
pub const ARITY: &[(&str, usize, usize)] = &[
    ("default", 2, 2),
    ("trim", 1, 1),
    ("upper", 1, 1),
    ("lower", 1, 1),
    ("truncate", 2, 3),
    ("format_date", 2, 2),
    ("e164", 1, 2),
];

/// A value as the text a template would print.
pub(crate) fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

pub(crate) fn failed(helper: &str, message: impl Into<String>) -> RenderError {
    RenderErrorReason::Other(format!("{helper}: {}", message.into())).into()
}

/// Parameter `index` as text; a missing field is a strict-mode error naming it.
pub(crate) fn param(h: &Helper<'_>, index: usize) -> Result<String, RenderError> {
    let name = h.name();
    let p: &PathAndJson<'_> = h
        .param(index)
        .ok_or_else(|| failed(name, format!("needs a value as parameter {}", index + 1)))?;
    if p.is_value_missing() {
        return Err(RenderError::strict_error(p.relative_path()));
    }
    Ok(text_of(p.value()))
}

pub(crate) fn optional_param(h: &Helper<'_>, index: usize) -> Result<Option<String>, RenderError> {
    match h.param(index) {
        None => Ok(None),
        Some(_) => param(h, index).map(Some),
    }
}

fn default(
    h: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let value = h
        .param(0)
        .filter(|p| !p.is_value_missing())
        .map(|p| text_of(p.value()))
        .unwrap_or_default();
    let chosen = if value.trim().is_empty() {
        param(h, 1)?
    } else {
        value
    };
    out.write(&chosen)?;
    Ok(())
}

/// A helper that maps its one text parameter through a function.
struct TextFn(fn(&str) -> String);

impl HelperDef for TextFn {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        out.write(&(self.0)(&param(h, 0)?))?;
        Ok(())
    }
}

/// `{{truncate text 20}}` or `{{truncate text 20 "…"}}`: at most 20 characters,
/// the suffix included when the text was cut.
fn truncate(
    h: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let text = param(h, 0)?;
    let limit: usize = param(h, 1)?.trim().parse().map_err(|_| {
        failed(
            "truncate",
            "the length must be a whole number, as in {{truncate text 20}}",
        )
    })?;
    let suffix = optional_param(h, 2)?.unwrap_or_default();
    if text.chars().count() <= limit {
        out.write(&text)?;
    } else {
        let keep = limit.saturating_sub(suffix.chars().count());
        let cut: String = text.chars().take(keep).collect();
        out.write(&cut)?;
        out.write(&suffix)?;
    }
    Ok(())
}

/// `{{format_date when "%d.%m.%Y %H:%M"}}`: reformat a date or date-time (RFC 3339,
/// `YYYY-MM-DD HH:MM[:SS]`, `YYYY-MM-DD`, `DD.MM.YYYY`) with a strftime pattern.
fn format_date(
    h: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let value = param(h, 0)?;
    let pattern = param(h, 1)?;
    let when = parse_when(value.trim()).ok_or_else(|| {
        failed(
            "format_date",
            format!(
                "`{value}` is not a date (expected e.g. 2026-11-21 or 2026-11-21T12:08:00+02:00)"
            ),
        )
    })?;
    let mut formatted = String::new();
    write!(formatted, "{}", when.format(&pattern)).map_err(|_| {
        failed(
            "format_date",
            format!("`{pattern}` is not a valid date pattern (use strftime, e.g. %d.%m.%Y)"),
        )
    })?;
    out.write(&formatted)?;
    Ok(())
}

pub(crate) fn parse_when(text: &str) -> Option<DateTime<FixedOffset>> {
    let utc = FixedOffset::east_opt(0)?;
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t);
    }
    for pattern in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%d.%m.%Y %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, pattern) {
            return utc.from_local_datetime(&t).single();
        }
    }
    for pattern in ["%Y-%m-%d", "%d.%m.%Y"] {
        if let Ok(d) = NaiveDate::parse_from_str(text, pattern) {
            return utc.from_local_datetime(&d.and_hms_opt(0, 0, 0)?).single();
        }
    }
    None
}

thread_local! {
    /// Templates are being checked against sample data, not rendered for a record.
    static CHECKING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `f` as a check of templates against sample data: helpers whose work needs data
/// they load on first use (`e164`'s phone-number metadata, half a second) skip it, so
/// commands that only check flows stay quick.
pub(crate) fn while_checking<T>(f: impl FnOnce() -> T) -> T {
    let was = CHECKING.with(|c| c.replace(true));
    let out = f();
    CHECKING.with(|c| c.set(was));
    out
}

/// `{{e164 phone "UA"}}`: a phone number in E.164 (`+380501234567`); national numbers
/// are read in the given region (ISO 3166-1 alpha-2).
fn e164(
    h: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let value = param(h, 0)?;
    let region = optional_param(h, 1)?;
    if CHECKING.with(std::cell::Cell::get) {
        out.write(&value)?;
        return Ok(());
    }
    out.write(&normalise_phone(&value, region.as_deref()).map_err(|m| failed("e164", m))?)?;
    Ok(())
}

/// Normalise a phone number to E.164, or say why it cannot be.
pub fn normalise_phone(value: &str, region: Option<&str>) -> Result<String, String> {
    let country = match region.map(str::trim).filter(|r| !r.is_empty()) {
        None => None,
        Some(r) => Some(
            phonenumber::country::Id::from_str(&r.to_uppercase()).map_err(|_| {
                format!("`{r}` is not a region code (use ISO 3166-1, like UA or US)")
            })?,
        ),
    };
    let number = phonenumber::parse(country, value.trim()).map_err(|_| match region {
        Some(r) => format!("`{value}` is not a phone number in region {r}"),
        None => format!("`{value}` is not a phone number (give a region for national numbers: {{{{e164 phone \"UA\"}}}})"),
    })?;
    if !phonenumber::is_valid(&number) {
        return Err(format!("`{value}` is not a valid phone number"));
    }
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checking templates against sample data does not load the phone-number metadata
    /// (half a second on every command that checks a flow using `e164`): the value
    /// passes through unchanged.
    #[test]
    fn e164_passes_sample_values_through_while_templates_are_checked() {
        let mut registry = handlebars::Handlebars::new();
        register(&mut registry);
        let render = || {
            registry
                .render_template(
                    "{{e164 phone \"UA\"}}",
                    &serde_json::json!({"phone": "050 123 4567"}),
                )
                .expect("render_template succeeds")
        };
        assert_eq!(while_checking(render), "050 123 4567");
        assert_eq!(render(), "+380501234567");
    }

    #[test]
    fn normalises_national_and_international_numbers() {
        assert_eq!(
            normalise_phone("050 123 4567", Some("UA")),
            Ok("+380501234567".into())
        );
        assert_eq!(
            normalise_phone("+1 (202) 555-0175", None),
            Ok("+12025550175".into())
        );
        assert!(normalise_phone("12", Some("UA")).is_err());
        assert!(normalise_phone("0501234567", Some("XX")).is_err());
    }

    #[test]
    fn parses_common_date_shapes() {
        assert!(parse_when("2026-11-21").is_some());
        assert!(parse_when("21.11.2026").is_some());
        assert!(parse_when("2026-11-21 12:08").is_some());
        assert!(parse_when("2026-11-21T12:08:00+02:00").is_some());
        assert!(parse_when("tomorrow").is_none());
    }
}

/// How many items the `each` loops of one record's render may go through in all. Loops
/// inside loops multiply (`{{#each @root.items}}` nested over a thousand items is a
/// billion steps); a message needs far fewer.
pub const MAX_LOOP_ITEMS: u64 = 100_000;

thread_local! {
    /// Items `each` may still go through in the render under way on this thread.
    static LOOP_BUDGET: std::cell::Cell<u64> = const { std::cell::Cell::new(MAX_LOOP_ITEMS) };
}

/// Give the next render on this thread a fresh loop budget (renders are synchronous).
pub(crate) fn reset_loop_budget() {
    LOOP_BUDGET.with(|b| b.set(MAX_LOOP_ITEMS));
}

fn spend_loop_budget(items: usize) -> Result<(), RenderError> {
    LOOP_BUDGET.with(|budget| {
        let left = budget.get();
        match left.checked_sub(items as u64) {
            Some(rest) => {
                budget.set(rest);
                Ok(())
            }
            None => Err(failed(
                "each",
                format!("the template's loops go through more than {MAX_LOOP_ITEMS} items for one record"),
            )),
        }
    })
}

/// handlebars' own `each` (MIT, Copyright (c) 2014 Ning Sun), unchanged but for one
/// line: the items it goes through are counted against the render's loop budget.
#[derive(Clone, Copy)]
pub(crate) struct BoundedEach;

impl HelperDef for BoundedEach {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        use handlebars::{to_json, BlockContext, Renderable};
        let value = h
            .param(0)
            .ok_or(RenderErrorReason::ParamNotFoundForIndex("each", 0))?;
        let Some(template) = h.template() else {
            return Ok(());
        };
        let block_of = |value: &PathAndJson<'rc>| {
            let mut block = BlockContext::new();
            match value.context_path() {
                Some(path) => block.base_path_mut().clone_from(path),
                None => block.set_base_value(value.value().clone()),
            }
            block
        };
        let items: Vec<(Value, &Value)> = match value.value() {
            Value::Array(list) if !list.is_empty() || h.inverse().is_none() => list
                .iter()
                .enumerate()
                .map(|(i, v)| (to_json(i), v))
                .collect(),
            Value::Object(map) if !map.is_empty() || h.inverse().is_none() => {
                map.iter().map(|(k, v)| (to_json(k), v)).collect()
            }
            _ => {
                return if let Some(otherwise) = h.inverse() {
                    otherwise.render(r, ctx, rc, out)
                } else if r.strict_mode() {
                    Err(RenderError::strict_error(value.relative_path()))
                } else {
                    Ok(())
                };
            }
        };
        spend_loop_budget(items.len())?;
        let is_object = value.value().is_object();
        let base_path = value.context_path();
        rc.push_block(block_of(value));
        let len = items.len();
        for (i, (key, item)) in items.into_iter().enumerate() {
            if let Some(block) = rc.block_mut() {
                let is_first = i == 0;
                block.set_local_var("first", to_json(is_first));
                block.set_local_var("last", to_json(i == len - 1));
                block.set_local_var("index", to_json(i));
                if is_object {
                    block.set_local_var("key", key.clone());
                }
                let relative = match &key {
                    Value::String(k) => k.clone(),
                    other => other.to_string(),
                };
                match base_path {
                    Some(path) => {
                        if is_first {
                            let mut full = path.clone();
                            full.push(relative);
                            *block.base_path_mut() = full;
                        } else if let Some(last) = block.base_path_mut().last_mut() {
                            *last = relative;
                        }
                    }
                    None => block.set_base_value(item.clone()),
                }
                let mut params = handlebars::BlockParams::new();
                if let Some(name) = h.block_param() {
                    if base_path.is_some() {
                        params.add_path(name, Vec::new())?;
                    } else {
                        params.add_value(name, item.clone())?;
                    }
                    block.set_block_params(params);
                } else if let Some((name, key_name)) = h.block_param_pair() {
                    if base_path.is_some() {
                        params.add_path(name, Vec::new())?;
                    } else {
                        params.add_value(name, item.clone())?;
                    }
                    params.add_value(key_name, key.clone())?;
                    block.set_block_params(params);
                }
            }
            template.render(r, ctx, rc, out)?;
        }
        rc.pop_block();
        Ok(())
    }
}
