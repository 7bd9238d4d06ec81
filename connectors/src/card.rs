//! What each connector says about itself, for people and tools: its card — what it
//! is, the source it can be, its receiver actions and look-ups with their fields and
//! the HTTP calls they make, and its account. Each connector folder declares one
//! [`Card`] (in its `config.rs`); the catalogue lists them, derives its name lists from
//! them, and renders them for `switchboard connectors` and `switchboard schema`.

use std::collections::BTreeMap;

use flows::{FieldKind, FieldSpec};
use schemars::{Schema, SchemaGenerator};
use serde::Serialize;
use serde_json::{json, Value};

/// A section's options as a JSON Schema (a `JsonSchema` type's `json_schema`).
pub type Options = fn(&mut SchemaGenerator) -> Schema;

/// One connector.
pub struct Card {
    /// What `connector:` says.
    pub name: &'static str,
    /// One line: the service and what it does here.
    pub about: &'static str,
    pub source: Option<Part>,
    /// Receiver actions.
    pub actions: &'static [Action],
    pub lookups: &'static [Action],
    pub account: Option<Part>,
}

/// A source or an account: its options (beyond `connector`).
pub struct Part {
    pub about: &'static str,
    pub options: Options,
    /// The HTTP calls it makes (a source's reads, a push source's subscription).
    pub calls: &'static [Call],
}

/// A receiver action or a look-up.
pub struct Action {
    pub name: &'static str,
    pub about: &'static str,
    /// The HTTP calls one record makes.
    pub calls: &'static [Call],
    /// The fields `map:` gives it (none for a look-up: it takes `query`).
    pub fields: &'static [FieldSpec],
    /// Options beside `connector`, `action` and `account` (a look-up's beside `query`,
    /// `as` and `required`); `None`: it takes none.
    pub options: Option<Options>,
}

/// An HTTP call, as the service documents it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Call {
    /// `None`: the method the flow's map gives (the generic HTTP receiver's).
    #[serde(serialize_with = "method_shown")]
    pub method: Option<engine::Method>,
    pub path: &'static str,
    /// When or how it is made, for people (`unless the range names its last row`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
}

impl Call {
    pub const fn new(method: engine::Method, path: &'static str) -> Call {
        Call {
            method: Some(method),
            path,
            note: None,
        }
    }

    /// A call whose method the flow's map gives.
    pub const fn mapped(path: &'static str) -> Call {
        Call {
            method: None,
            path,
            note: None,
        }
    }

    /// The call, with when or how it is made.
    pub const fn noted(self, note: &'static str) -> Call {
        Call {
            note: Some(note),
            ..self
        }
    }

    /// Its path with each `{name}` replaced by `value(name)`, URL-encoded (a `+` in a
    /// phone number becomes `%2B`) — except `{path}`, a path the flow's options give,
    /// kept as it is: how code makes the call its card declares, so the path is written
    /// once.
    pub fn path_with<E>(
        &self,
        mut value: impl FnMut(&str) -> Result<String, E>,
    ) -> Result<String, E> {
        let mut path = String::with_capacity(self.path.len() + 16);
        let mut rest = self.path;
        while let Some((before, after)) = rest.split_once('{') {
            let Some((name, after)) = after.split_once('}') else {
                break;
            };
            path.push_str(before);
            let value = value(name)?;
            if name == "path" {
                path.push_str(value.trim_start_matches('/'));
            } else {
                path.push_str(&engine::encode_component(&value));
            }
            rest = after;
        }
        path.push_str(rest);
        Ok(path)
    }

    /// The method as people read it (`{method}` when the map gives it).
    pub fn method_shown(&self) -> &'static str {
        self.method.map_or("{method}", engine::Method::as_str)
    }
}

fn method_shown<S: serde::Serializer>(
    method: &Option<engine::Method>,
    to: S,
) -> Result<S::Ok, S::Error> {
    to.serialize_str(method.map_or("{method}", engine::Method::as_str))
}

impl Card {
    /// No roles, no name: what a card leaves out, as in
    /// `Card { name, about, source: Some(…), ..Card::NOTHING }`.
    pub const NOTHING: Card = Card {
        name: "",
        about: "",
        source: None,
        actions: &[],
        lookups: &[],
        account: None,
    };
}

impl Part {
    /// A part whose options are `T`'s, making no HTTP calls.
    pub const fn of<T: schemars::JsonSchema>(about: &'static str) -> Part {
        Part {
            about,
            options: <T as schemars::JsonSchema>::json_schema,
            calls: &[],
        }
    }

    /// The part, making `calls`.
    pub const fn calling(self, calls: &'static [Call]) -> Part {
        Part { calls, ..self }
    }

    /// Its options, as people read them.
    pub fn fields(&self) -> Vec<Field> {
        option_fields(self.options, &mut SchemaGenerator::default())
    }
}

impl Action {
    /// Its options (not its map's fields), as people read them.
    pub fn option_fields(&self) -> Vec<Field> {
        self.options
            .map(|o| option_fields(o, &mut SchemaGenerator::default()))
            .unwrap_or_default()
    }

    /// The fields its map takes, as people read them.
    pub fn map_fields(&self) -> Vec<Field> {
        map_fields(self.fields)
    }
}

impl Card {
    /// The action named `name` of `role` (receiver actions, or look-ups).
    pub fn action(&self, lookup: bool, name: &str) -> Option<&Action> {
        let actions = if lookup { self.lookups } else { self.actions };
        actions.iter().find(|a| a.name == name)
    }

    /// The roles it plays, as words.
    pub fn roles(&self) -> Vec<&'static str> {
        let mut roles = Vec::new();
        if self.source.is_some() {
            roles.push("source");
        }
        if !self.actions.is_empty() {
            roles.push("receiver");
        }
        if !self.lookups.is_empty() {
            roles.push("look-up");
        }
        roles
    }
}

/// One field of a section or a map, as people read it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Field {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    pub doc: String,
    /// A secret: written as `${VARIABLE}`, never shown.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
}

/// The fields of a section, from its options' schema.
pub fn option_fields(options: Options, generator: &mut SchemaGenerator) -> Vec<Field> {
    let schema = options(generator).to_value();
    let definitions: BTreeMap<String, Value> = generator
        .definitions()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, property)| Field {
            name: name.clone(),
            kind: type_of(property, &definitions),
            required: required.contains(&name.as_str()),
            default: property.get("default").cloned().filter(|d| !d.is_null()),
            doc: property
                .get("description")
                .and_then(Value::as_str)
                .map(one_paragraph)
                .unwrap_or_default(),
            secret: write_only(property, &definitions),
        })
        .collect()
}

/// A property marked `writeOnly` (a secret), directly or through the type it refers to.
fn write_only(property: &Value, definitions: &BTreeMap<String, Value>) -> bool {
    if property.get("writeOnly") == Some(&Value::Bool(true)) {
        return true;
    }
    property
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| definitions.get(r.rsplit('/').next().unwrap_or(r)))
        .is_some_and(|d| d.get("writeOnly") == Some(&Value::Bool(true)))
}

/// A doc comment as one line.
fn one_paragraph(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A property's type in a word or two: `string`, `integer`, `list of string`, one of
/// its values, or the name of the type it refers to.
fn type_of(property: &Value, definitions: &BTreeMap<String, Value>) -> String {
    if let Some(reference) = property.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return definitions
            .get(name)
            .map(|d| type_of(d, definitions))
            .filter(|t| t != "any")
            .unwrap_or_else(|| name.to_string());
    }
    if let Some(values) = property.get("enum").and_then(Value::as_array) {
        let values: Vec<String> = values
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect();
        return format!("one of {}", values.join(", "));
    }
    if let Some(value) = property.get("const").and_then(Value::as_str) {
        return format!("`{value}`");
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(options) = property.get(key).and_then(Value::as_array) {
            let kinds: Vec<String> = options
                .iter()
                .map(|o| type_of(o, definitions))
                .filter(|t| t != "null")
                .collect();
            return kinds.join(" or ");
        }
    }
    match property.get("type") {
        Some(Value::String(kind)) if kind == "array" => {
            let item = property
                .get("items")
                .map(|i| type_of(i, definitions))
                .unwrap_or_else(|| "any".into());
            format!("list of {item}")
        }
        Some(Value::String(kind)) => kind.clone(),
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .filter(|k| *k != "null")
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "any".into(),
    }
}

/// A receiver field's type in words.
pub fn kind_name(kind: FieldKind) -> String {
    match kind {
        FieldKind::Text => "text".into(),
        FieldKind::Phone => "phone number".into(),
        FieldKind::OneOf(values) => format!("one of {}", values.join(", ")),
        FieldKind::DateTime => "date-time (RFC 3339)".into(),
        FieldKind::Url => "URL".into(),
        FieldKind::Integer => "integer".into(),
        FieldKind::Number => "number".into(),
        FieldKind::Boolean => "true or false".into(),
        FieldKind::IntegerList => "list of integers".into(),
        FieldKind::TextList => "list of texts".into(),
        FieldKind::Json => "any JSON".into(),
    }
}

/// The fields `map:` gives an action.
pub fn map_fields(fields: &[FieldSpec]) -> Vec<Field> {
    fields
        .iter()
        .map(|f| Field {
            name: f.name.into(),
            kind: match f.max_chars {
                Some(max) => format!("{} (at most {max} characters)", kind_name(f.kind)),
                None => kind_name(f.kind),
            },
            required: f.required,
            default: f.default.map(|d| Value::String(d.into())),
            doc: f.doc.into(),
            secret: false,
        })
        .collect()
}

/// A card as JSON, for `switchboard connectors --json`.
pub fn to_json(card: &Card) -> Value {
    let part = |part: &Part| {
        json!({
            "about": part.about,
            "options": part.fields(),
            "calls": part.calls,
        })
    };
    let action = |action: &Action| {
        json!({
            "name": action.name,
            "about": action.about,
            "calls": action.calls,
            "options": action.option_fields(),
            "fields": action.map_fields(),
        })
    };
    json!({
        "name": card.name,
        "about": card.about,
        "roles": card.roles(),
        "source": card.source.as_ref().map(part),
        "actions": card.actions.iter().map(action).collect::<Vec<_>>(),
        "lookups": card.lookups.iter().map(action).collect::<Vec<_>>(),
        "account": card.account.as_ref().map(part),
    })
}
