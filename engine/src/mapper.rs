//! The field map: Handlebars templates rendered against a record, with HTML escaping
//! off, strict about missing fields, ApiX-Drive's system variables in the flow's
//! timezone, and the result coerced to each receiver field's declared type.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use flows::{did_you_mean, Diagnostic, FieldKind, FieldSpec, Flow, MapValue};
use handlebars::{Context, Handlebars, RenderErrorReason};

use serde_json::{Map, Value};

use crate::helpers;
use crate::record::Record;

/// A flow's `map:`, compiled.
pub struct Mapper {
    registry: Handlebars<'static>,
    entries: Vec<Entry>,
    timezone: Tz,
    fields: &'static [FieldSpec],
    /// The system variables of the last second rendered: a run renders thousands of
    /// records in the same second, and formatting the time is a fifth of the work.
    vars: Mutex<Option<(i64, Arc<SystemVars>)>>,
    /// The system variables some template may use (its text names them); only these go
    /// into each record's context.
    used_vars: Vec<&'static str>,
    /// Whether some template may use `system.*`.
    uses_system: bool,
}

struct Entry {
    field: String,
    value: Compiled,
    pos: flows::Pos,
}

enum Compiled {
    /// The name the template is registered under.
    Template(String),
    /// A template of only text and `{{field}}`s: filled in directly, without handlebars
    /// (the registered template, by name, renders anything else, errors included).
    Simple {
        parts: Vec<Part>,
        template: String,
    },
    Literal(Value),
    List(Vec<Compiled>),
    Object(Vec<(String, Compiled)>),
}

impl Compiled {
    /// The value when it does not depend on the record (text or a literal).
    fn constant(&self) -> Option<Value> {
        match self {
            Compiled::Literal(value) => Some(value.clone()),
            Compiled::Simple { parts, .. } => parts
                .iter()
                .map(|part| match part {
                    Part::Text(text) => Some(text.as_str()),
                    Part::Field(_) => None,
                })
                .collect::<Option<String>>()
                .map(Value::String),
            Compiled::Template(_) | Compiled::List(_) | Compiled::Object(_) => None,
        }
    }
}

/// A record that could not be mapped: which receiver field, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{field}`: {message}")]
pub struct MapError {
    pub field: String,
    pub message: String,
}

/// ApiX-Drive's system variables at one instant in one timezone.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemVars(Map<String, Value>);

impl SystemVars {
    pub const NAMES: [&'static str; 6] = ["now", "date", "time", "year", "month", "day"];

    pub fn at(now: DateTime<Utc>, timezone: Tz) -> Self {
        let local = now.with_timezone(&timezone);
        let mut vars = Map::new();
        let mut put = |k: &str, pattern: &str| {
            vars.insert(
                k.to_string(),
                Value::String(local.format(pattern).to_string()),
            );
        };
        put("now", "%Y-%m-%dT%H:%M:%S%:z");
        put("date", "%Y-%m-%d");
        put("time", "%H:%M");
        put("year", "%Y");
        put("month", "%m");
        put("day", "%d");
        SystemVars(vars)
    }
}

impl Mapper {
    /// Compile a flow's map. Template syntax errors come back with the entry's position.
    pub fn new(flow: &Flow) -> Result<Mapper, Vec<Diagnostic>> {
        let mut registry = crate::template::registry();
        let mut problems = Vec::new();
        let mut entries = Vec::new();
        let mut sources: Vec<String> = Vec::new();
        for entry in &flow.map {
            let mut compile = |name: String, source: &str| -> Compiled {
                sources.push(source.to_string());
                if let Err(problem) = crate::template::register(&mut registry, &name, source) {
                    problems.push(
                        Diagnostic::new(
                            &flow.file,
                            entry.pos,
                            format!("template of `{}` {problem}", entry.field),
                        )
                        .with_hint(problem.hint),
                    );
                }
                match simple_parts(source) {
                    Some(parts) => Compiled::Simple {
                        parts,
                        template: name,
                    },
                    None => Compiled::Template(name),
                }
            };
            let value = compile_value(&entry.value, &format!("map.{}", entry.field), &mut compile);
            entries.push(Entry {
                field: entry.field.clone(),
                value,
                pos: entry.pos,
            });
        }
        // A value without a field in it is the same for every record: one the receiver
        // refuses would fail every record, so it is refused now.
        for entry in &entries {
            let spec = flow.receiver.fields.iter().find(|f| f.name == entry.field);
            if let (Some(spec), Some(value)) = (spec, entry.value.constant()) {
                if let Err(message) = coerce(Some(spec), value) {
                    problems.push(
                        Diagnostic::new(
                            &flow.file,
                            entry.pos,
                            format!("`{}`: {message}", entry.field),
                        )
                        .with_hint(
                            "the value is the same for every record, so every record would fail",
                        ),
                    );
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Mapper {
            registry,
            entries,
            timezone: flow.timezone,
            fields: flow.receiver.fields,
            vars: Mutex::new(None),
            used_vars: SystemVars::NAMES
                .into_iter()
                .filter(|name| sources.iter().any(|s| s.contains(name)))
                .collect(),
            uses_system: sources.iter().any(|s| s.contains("system")),
        })
    }

    /// The system variables at `now` (cached for the second).
    fn vars_at(&self, now: DateTime<Utc>) -> Arc<SystemVars> {
        let second = now.timestamp();
        let mut cache = self.vars.lock().unwrap_or_else(|p| p.into_inner());
        match &*cache {
            Some((at, vars)) if *at == second => Arc::clone(vars),
            _ => {
                let vars = Arc::new(SystemVars::at(now, self.timezone));
                *cache = Some((second, Arc::clone(&vars)));
                vars
            }
        }
    }

    /// Render every field for one record at `now`, then coerce each to its declared type.
    /// Optional text fields that render empty are left out.
    pub fn render(
        &self,
        record: &Record,
        now: DateTime<Utc>,
    ) -> Result<Map<String, Value>, MapError> {
        self.render_owned(record.clone(), now).1
    }

    /// [`Mapper::render`] for a record the caller owns: its fields are read in place (or
    /// become the handlebars context without a copy) and come back with the result.
    pub fn render_owned(
        &self,
        record: Record,
        now: DateTime<Utc>,
    ) -> (Record, Result<Map<String, Value>, MapError>) {
        let Record { key, fields } = record;
        let mut scope = Scope::Fields(fields);
        let vars = self.vars_at(now);
        let result = self.render_scope(&mut scope, &vars);
        let record = Record {
            key,
            fields: scope.into_fields(),
        };
        let result = result.map_err(|(field, error)| MapError {
            field,
            message: self.explain(error, &record),
        });
        (record, result)
    }

    fn render_scope(
        &self,
        scope: &mut Scope,
        vars: &SystemVars,
    ) -> Result<Map<String, Value>, (String, handlebars::RenderError)> {
        helpers::reset_loop_budget();
        let mut out = Map::new();
        for entry in &self.entries {
            let value = self
                .render_value(&entry.value, scope, vars)
                .map_err(|error| (entry.field.clone(), error))?;
            let spec = self.fields.iter().find(|f| f.name == entry.field);
            match coerce(spec, value) {
                Ok(Some(value)) => {
                    out.insert(entry.field.clone(), value);
                }
                Ok(None) => {}
                Err(message) => {
                    return Err((
                        entry.field.clone(),
                        handlebars::RenderErrorReason::Other(message).into(),
                    ))
                }
            }
        }
        Ok(out)
    }

    /// Templates that name a field records will not have, given the fields a source
    /// is known to produce (a CSV header). Each such field is one diagnostic. Fields in
    /// `open` (a look-up's result) have a shape only the service knows: any path below
    /// them is taken as known.
    pub fn check_fields(&self, flow: &Flow, known: &[String], open: &[String]) -> Vec<Diagnostic> {
        let mut problems = Vec::new();
        let mut sample = Map::new();
        for name in known {
            // A look-up's answer may be text, a map or a list (`{{#each cases}}`): an
            // empty map renders as any of them, and paths below it are taken as known.
            let value = if open.contains(name) {
                Value::Object(Map::new())
            } else {
                Value::String("sample".into())
            };
            sample.insert(name.clone(), value);
        }
        let record = Record::new("sample", sample);
        let vars = SystemVars::at(Utc::now(), self.timezone);
        for entry in &self.entries {
            // Inside a block over a look-up's answer (`{{#each cases}}…{{subject}}`) the
            // fields are the service's: a name unknown to the source may be one of them.
            let inside_open = flow
                .map
                .iter()
                .filter(|m| m.field == entry.field)
                .any(|m| open.iter().any(|o| blocks_over(&m.value, o)));
            let (context, added) = self.context_of(record.fields.clone(), &vars);
            let mut scope = Scope::Context(context, added);
            // Each pass finds one missing field; add it and look for the next.
            let mut reported: Vec<String> = Vec::new();
            for _ in 0..32 {
                let Err(Missing(Some(name))) = self.render_missing(&entry.value, &mut scope, &vars)
                else {
                    break;
                };
                if reported.contains(&name) {
                    // Adding it did not satisfy the template: nothing more to learn.
                    break;
                }
                reported.push(name.clone());
                let path: Vec<&str> = name.split(['.', '/']).filter(|s| !s.is_empty()).collect();
                if path.len() > 1 && open.iter().any(|o| o == path[0]) {
                    // A path into a look-up's result, whose shape the service decides:
                    // taken as known, and present from now on.
                    if let Scope::Context(context, _) = &mut scope {
                        if let Value::Object(map) = context.data_mut() {
                            insert_path(map, &path);
                        }
                    }
                    continue;
                }
                if known.iter().any(|k| k == path[0]) {
                    // A field the source has, used as something it is not (a block over
                    // text): not an unknown field.
                    problems.push(
                        Diagnostic::new(
                            &flow.file,
                            entry.pos,
                            format!(
                                "template of `{}` uses field `{}` as something it is not",
                                entry.field, path[0]
                            ),
                        )
                        .with_hint(format!(
                            "`{{{{#each}}}}` and `{{{{#with}}}}` need a list or a map, and `{0}.x` a map; write `{{{{{0}}}}}` for its text",
                            path[0]
                        )),
                    );
                    break;
                }
                if inside_open {
                    if let Scope::Context(context, _) = &mut scope {
                        if let Value::Object(map) = context.data_mut() {
                            map.insert(name, Value::String("sample".into()));
                        }
                    }
                    continue;
                }
                let mut candidates: Vec<&str> = known.iter().map(String::as_str).collect();
                candidates.extend(SystemVars::NAMES);
                let hint = match did_you_mean(&name, candidates.iter().copied()) {
                    Some(best) => format!(
                        "did you mean `{best}`? the source's fields are: {}",
                        known.join(", ")
                    ),
                    None => format!("the source's fields are: {}", known.join(", ")),
                };
                problems.push(
                    Diagnostic::new(
                        &flow.file,
                        entry.pos,
                        format!("template of `{}` uses unknown field `{name}`", entry.field),
                    )
                    .with_hint(hint),
                );
                if let Scope::Context(context, _) = &mut scope {
                    if let Value::Object(map) = context.data_mut() {
                        map.insert(name, Value::String("sample".into()));
                    }
                }
            }
        }
        problems
    }

    /// The handlebars context of a record's fields, and the names added to them (in
    /// order, at the end): the system variables the templates use that the record does
    /// not shadow, and `system.*`. One per record, shared by all its templates.
    fn context_of(
        &self,
        mut fields: Map<String, Value>,
        vars: &SystemVars,
    ) -> (Context, Vec<&'static str>) {
        let mut added = Vec::with_capacity(self.used_vars.len() + 1);
        for name in &self.used_vars {
            if !fields.contains_key(*name) {
                if let Some(value) = vars.0.get(*name) {
                    fields.insert((*name).to_string(), value.clone());
                    added.push(*name);
                }
            }
        }
        if self.uses_system && !fields.contains_key("system") {
            fields.insert("system".into(), Value::Object(vars.0.clone()));
            added.push("system");
        }
        (Context::from(Value::Object(fields)), added)
    }

    fn render_value(
        &self,
        value: &Compiled,
        scope: &mut Scope,
        vars: &SystemVars,
    ) -> Result<Value, handlebars::RenderError> {
        Ok(match value {
            Compiled::Simple { parts, template } => match fill(parts, scope, vars) {
                Some(text) => Value::String(text),
                None => self.handlebars(template, scope, vars)?,
            },
            Compiled::Template(name) => self.handlebars(name, scope, vars)?,
            Compiled::Literal(v) => v.clone(),
            Compiled::List(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.render_value(i, scope, vars))
                    .collect::<Result<_, _>>()?,
            ),
            Compiled::Object(pairs) => Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), self.render_value(v, scope, vars)?)))
                    .collect::<Result<_, handlebars::RenderError>>()?,
            ),
        })
    }

    /// Render a registered template through handlebars (the record's context is built
    /// the first time a record needs it).
    fn handlebars(
        &self,
        name: &str,
        scope: &mut Scope,
        vars: &SystemVars,
    ) -> Result<Value, handlebars::RenderError> {
        if let Scope::Fields(fields) = scope {
            let (context, added) = self.context_of(std::mem::take(fields), vars);
            *scope = Scope::Context(context, added);
        }
        let Scope::Context(context, _) = scope else {
            return Err(RenderErrorReason::Other("no context to render with".into()).into());
        };
        // Into a buffer of the text's size: handlebars' own string output starts at
        // 8 KiB, which a run holding thousands of rendered fields pays for.
        let mut text = Bounded(Vec::with_capacity(64));
        self.registry
            .render_with_context_to_write(name, context, &mut text)
            .map_err(|e| match e.reason() {
                RenderErrorReason::IOError(io) if io.kind() == std::io::ErrorKind::FileTooLarge => {
                    RenderErrorReason::Other(format!(
                        "the rendered text passed {} bytes; a field may have at most that many",
                        MAX_RENDERED
                    ))
                    .into()
                }
                _ => e,
            })?;
        Ok(Value::String(String::from_utf8(text.0).map_err(|e| {
            RenderErrorReason::Other(format!("rendered text is not UTF-8: {e}"))
        })?))
    }

    fn render_missing(
        &self,
        value: &Compiled,
        scope: &mut Scope,
        vars: &SystemVars,
    ) -> Result<(), Missing> {
        match helpers::while_checking(|| self.render_value(value, scope, vars)) {
            Ok(_) => Ok(()),
            Err(e) => match e.reason() {
                RenderErrorReason::MissingVariable(path) => Err(Missing(path.clone())),
                _ => Ok(()),
            },
        }
    }

    /// A render error as a sentence for the run history.
    fn explain(&self, error: handlebars::RenderError, record: &Record) -> String {
        match error.reason() {
            RenderErrorReason::MissingVariable(Some(name)) => {
                let fields: Vec<&str> = record.fields.keys().map(String::as_str).collect();
                format!(
                    "the record has no field `{name}` (it has: {})",
                    fields.join(", ")
                )
            }
            RenderErrorReason::MissingVariable(None) => {
                "a field the template uses is missing".into()
            }
            RenderErrorReason::Other(message) => message.clone(),
            other => other.to_string(),
        }
    }
}

struct Missing(Option<String>);

/// Put a sample text at `path` (`contact`, `mobilePhone`) in `map`, making the objects
/// on the way.
/// Whether a map value's templates open a block (`#each`, `#with`) over field `name`.
fn blocks_over(value: &flows::MapValue, name: &str) -> bool {
    match value {
        flows::MapValue::Template(text) => ["#each", "#with"].iter().any(|block| {
            text.match_indices(block).any(|(at, _)| {
                let mut rest = text[at + block.len()..].trim_start();
                while let Some(inner) = rest.strip_prefix("../") {
                    rest = inner;
                }
                let rest = rest.strip_prefix("this.").unwrap_or(rest);
                rest.strip_prefix(name).is_some_and(|after| {
                    !after.starts_with(|c: char| c.is_alphanumeric() || c == '_' || c == '-')
                })
            })
        }),
        flows::MapValue::Literal(_) => false,
        flows::MapValue::List(items) => items.iter().any(|v| blocks_over(v, name)),
        flows::MapValue::Object(entries) => entries.iter().any(|(_, v)| blocks_over(v, name)),
    }
}

fn insert_path(map: &mut Map<String, Value>, path: &[&str]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = map;
    for part in parents {
        let entry = current
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(next) = entry else {
            return;
        };
        current = next;
    }
    current.insert(last.to_string(), Value::String("sample".into()));
}

/// The most bytes one field's template may render to.
pub const MAX_RENDERED: usize = 1024 * 1024;

/// A render's output, refusing to grow past [`MAX_RENDERED`] (a loop over a large
/// field could otherwise take the memory).
struct Bounded(Vec<u8>);

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_RENDERED {
            return Err(std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                "the rendered text is too long",
            ));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What a record's templates read: its fields, or — once a template needs handlebars —
/// the context built from them with the system variables added at the end.
enum Scope {
    Fields(Map<String, Value>),
    Context(Context, Vec<&'static str>),
}

impl Scope {
    fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Scope::Fields(fields) => fields.get(name),
            Scope::Context(context, _) => context.data().get(name),
        }
    }

    /// The record's own fields (the added variables taken off again).
    fn into_fields(self) -> Map<String, Value> {
        match self {
            Scope::Fields(fields) => fields,
            Scope::Context(mut context, added) => match std::mem::take(context.data_mut()) {
                Value::Object(mut map) => {
                    // They are the last entries, so removing them keeps the order.
                    for name in added.iter().rev() {
                        map.remove(*name);
                    }
                    map
                }
                _ => Map::new(),
            },
        }
    }
}

/// A piece of a simple template.
enum Part {
    Text(String),
    Field(String),
}

/// A template's pieces when it is only text and `{{field}}`s (plain identifiers: no
/// helpers, paths, blocks, comments, raw or escaped braces); otherwise `None`.
fn simple_parts(source: &str) -> Option<Vec<Part>> {
    let mut parts = Vec::new();
    let mut rest = source;
    while let Some(open) = rest.find("{{") {
        if rest[..open].ends_with('\\') {
            return None;
        }
        if open > 0 {
            parts.push(Part::Text(rest[..open].to_string()));
        }
        let after = &rest[open + 2..];
        let close = after.find("}}")?;
        let name = after[..close].trim();
        let mut chars = name.chars();
        let first = chars.next()?;
        if !(first.is_alphabetic() || first == '_')
            || !chars.all(|c| c.is_alphanumeric() || c == '_')
        {
            return None;
        }
        parts.push(Part::Field(name.to_string()));
        rest = &after[close + 2..];
    }
    if rest.contains("}}") {
        return None;
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_string()));
    }
    Some(parts)
}

/// A simple template filled in from the record (its fields win over system variables),
/// or `None` when a field is missing or is not text, a number or a boolean — handlebars
/// then renders it, with its errors.
fn fill(parts: &[Part], scope: &Scope, vars: &SystemVars) -> Option<String> {
    let mut text = String::with_capacity(64);
    for part in parts {
        match part {
            Part::Text(t) => text.push_str(t),
            Part::Field(name) => {
                let value = scope.get(name).or_else(|| {
                    SystemVars::NAMES
                        .contains(&name.as_str())
                        .then(|| vars.0.get(name.as_str()))
                        .flatten()
                })?;
                match value {
                    Value::String(s) => text.push_str(s),
                    Value::Number(n) => text.push_str(&n.to_string()),
                    Value::Bool(b) => text.push_str(if *b { "true" } else { "false" }),
                    _ => return None,
                }
            }
        }
    }
    Some(text)
}

fn compile_value(
    value: &MapValue,
    name: &str,
    compile: &mut dyn FnMut(String, &str) -> Compiled,
) -> Compiled {
    match value {
        MapValue::Template(source) => compile(name.to_string(), source),
        MapValue::Literal(v) => Compiled::Literal(v.clone()),
        MapValue::List(items) => Compiled::List(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| compile_value(v, &format!("{name}.{i}"), compile))
                .collect(),
        ),
        MapValue::Object(pairs) => Compiled::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.clone(), compile_value(v, &format!("{name}.{k}"), compile)))
                .collect(),
        ),
    }
}

#[cfg(test)]
pub(crate) fn coerce_for_tests(spec: &FieldSpec, value: Value) -> Result<Option<Value>, String> {
    coerce(Some(spec), value)
}

/// A list field: a YAML list, or rendered text separated by commas.
fn list(kind: FieldKind, value: Value) -> Result<Value, String> {
    let items: Vec<Value> = match value {
        Value::Array(items) => items,
        Value::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| Value::String(p.to_string()))
            .collect(),
        other => vec![other],
    };
    items
        .into_iter()
        .map(|item| match kind {
            FieldKind::IntegerList => match &item {
                Value::Number(n) if n.is_i64() => Ok(item),
                other => {
                    let t = helpers::text_of(other);
                    t.trim()
                        .parse::<i64>()
                        .map(Value::from)
                        .map_err(|_| format!("`{t}` is not an integer"))
                }
            },
            _ => Ok(Value::String(helpers::text_of(&item))),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

/// Turn a rendered value into the type the receiver field declares. `Ok(None)` drops an
/// optional field that rendered empty.
fn coerce(spec: Option<&FieldSpec>, value: Value) -> Result<Option<Value>, String> {
    let Some(spec) = spec else {
        return Ok(Some(value));
    };
    let text = match &value {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(_) | Value::Bool(_) => Some(helpers::text_of(&value)),
        Value::Null => Some(String::new()),
        _ => None,
    };
    if let Some(text) = &text {
        if text.is_empty() {
            return if spec.required {
                Err("is empty, but the receiver requires it".into())
            } else {
                Ok(None)
            };
        }
    }
    let coerced = match (spec.kind, text) {
        (FieldKind::Text | FieldKind::Phone | FieldKind::DateTime | FieldKind::Url, Some(_)) => {
            match value {
                Value::String(s) => Value::String(s),
                other => Value::String(helpers::text_of(&other)),
            }
        }
        (FieldKind::OneOf(allowed), Some(t)) => {
            match allowed.iter().find(|a| a.eq_ignore_ascii_case(&t)) {
                Some(a) => Value::String(a.to_string()),
                None => return Err(format!("`{t}` is not one of {}", allowed.join(", "))),
            }
        }
        (FieldKind::Integer, Some(t)) => match t.parse::<i64>() {
            Ok(i) => Value::from(i),
            Err(_) => return Err(format!("`{t}` is not an integer")),
        },
        (FieldKind::Number, Some(t)) => match t
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .and_then(serde_json::Number::from_f64)
        {
            Some(n) => Value::Number(n),
            None => return Err(format!("`{t}` is not a number (like 12.50)")),
        },
        (FieldKind::Boolean, Some(t)) => match t.to_lowercase().as_str() {
            "true" | "yes" | "1" => Value::Bool(true),
            "false" | "no" | "0" => Value::Bool(false),
            _ => return Err(format!("`{t}` is not true or false")),
        },
        (FieldKind::IntegerList | FieldKind::TextList, _) => list(spec.kind, value)?,
        // Rendered JSON text becomes JSON; YAML lists and mappings pass through.
        (FieldKind::Json, Some(t)) if matches!(value, Value::String(_)) => {
            serde_json::from_str(&t).map_err(|e| format!("`{t}` is not JSON: {e}"))?
        }
        (FieldKind::Json, _) => value,
        (_, None) => value,
    };
    if let (Some(max), Value::String(s)) = (spec.max_chars, &coerced) {
        let n = s.chars().count();
        if n > max {
            return Err(format!(
                "`{s}` is {n} characters; at most {max} are allowed"
            ));
        }
    }
    if spec.kind == FieldKind::DateTime {
        if let Value::String(s) = &coerced {
            if DateTime::parse_from_rfc3339(s).is_err() {
                return Err(format!(
                    "`{s}` is not a date-time like 2026-11-21T12:08:00+02:00"
                ));
            }
        }
    }
    Ok(Some(coerced))
}
