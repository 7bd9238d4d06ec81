//! The envelope of a flow file as JSON Schema (draft-07, what editors' YAML support
//! reads): every key this crate parses itself, and the schema of a `map:` field from its
//! [`FieldSpec`]. The connector sections are described by the catalogue, which assembles
//! the whole schema.

use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};

use crate::fields::{FieldKind, FieldSpec};
use crate::flow::Delivery;

/// The keys every flow file must have (and `receiver` + `map`, or `steps`).
pub const REQUIRED: &[&str] = &["source"];

/// The envelope's own keys (everything but `source`, `receiver`, `lookup` and `map`).
pub fn envelope(generator: &mut SchemaGenerator) -> Map<String, Value> {
    let mut properties = Map::new();
    properties.insert(
        "name".into(),
        json!({
            "type": "string",
            "pattern": "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$",
            "description": "The flow's name (default: the file name without .yaml): letters, digits, `-`, `_` and `.`."
        }),
    );
    properties.insert(
        "description".into(),
        json!({"type": "string", "description": "What the flow does, for people."}),
    );
    properties.insert(
        "enabled".into(),
        json!({
            "type": "boolean",
            "default": true,
            "description": "When false the flow never runs by itself (`switchboard run` still runs it)."
        }),
    );
    properties.insert(
        "timezone".into(),
        json!({
            "type": "string",
            "default": "UTC",
            "description": "An IANA zone (`Europe/Kyiv`) for `{{date}}`, `{{time}}` and the times of `schedule.at`."
        }),
    );
    properties.insert(
        "resend_uncertain".into(),
        json!({
            "type": "boolean",
            "default": true,
            "description": "After a crash, resend the sends it interrupted (they may arrive twice; history marks them), or park them for a person to replay."
        }),
    );
    properties.insert(
        "redelivery_window".into(),
        json!({
            "type": "string",
            "default": "5m",
            "description": "Pushed sources: an event without an id of its own (a webhook without `key:`, a CINNOX event without an event id), identical to one handled less than this long ago, is a redelivery and is not sent again; later, it is a new event (at most 7d; `0s`: never a redelivery)."
        }),
    );
    properties.insert("schedule".into(), schedule());
    properties.insert("filter".into(), filter());
    properties.insert(
        "priority".into(),
        json!({
            "enum": ["high", "normal", "low"],
            "default": "normal",
            "description": "When more flows are due than the daemon runs at once (`--max-runs`), higher ones start first, then the longest waiting."
        }),
    );
    properties.insert(
        "alerts".into(),
        crate::alerts::RawAlerts::json_schema(generator).to_value(),
    );
    properties.insert(
        "history".into(),
        crate::History::json_schema(generator).to_value(),
    );
    properties.insert(
        "auto_pause".into(),
        json!({
            "description": "The daemon pauses the flow after this many failed runs in a row with no success for the grace period (default `{after: 10, grace: 24h}`); `off` never pauses it. `switchboard resume FLOW` resumes it.",
            "anyOf": [
                {"enum": ["off", "on", false, true]},
                crate::flow::AutoPause::json_schema(generator).to_value()
            ]
        }),
    );
    properties.insert(
        "filtered".into(),
        json!({
            "enum": ["remember", "retry"],
            "default": "remember",
            "description": "A record the filter drops: remembered with its data, so it is judged again only once its data changes (`remember`), or judged again on every run (`retry`, for filters on look-up results). Pushed events are always remembered."
        }),
    );
    properties.insert(
        "delivery".into(),
        Delivery::json_schema(generator).to_value(),
    );
    properties
}

/// `filter:`: a condition — a test of one field, or `all` / `any` / `not` of conditions.
fn filter() -> Value {
    let mut test = Map::new();
    test.insert(
        "field".into(),
        json!({"type": "string", "description": "The record's field (after the look-up), dotted into nested values: `contact.type`."}),
    );
    let scalar = json!({"type": ["string", "number", "boolean"]});
    for (op, schema) in [
        ("equals", scalar.clone()),
        ("not_equals", scalar.clone()),
        (
            "in",
            json!({"type": "array", "items": scalar, "minItems": 1}),
        ),
        ("contains", json!({"type": "string"})),
        ("starts_with", json!({"type": "string"})),
        (
            "matches",
            json!({"type": "string", "description": "A regular expression (Rust syntax; `(?i)` ignores case)."}),
        ),
        (
            "gt",
            json!({"type": ["number", "string"], "description": "A number, or a date like 2026-11-28."}),
        ),
        ("gte", json!({"type": ["number", "string"]})),
        ("lt", json!({"type": ["number", "string"]})),
        ("lte", json!({"type": ["number", "string"]})),
        ("empty", json!({"type": "boolean"})),
        ("not_empty", json!({"type": "boolean"})),
    ] {
        test.insert(op.into(), schema);
    }
    let one_op: Vec<Value> = crate::filter::OPERATORS
        .iter()
        .map(|op| json!({"required": [op]}))
        .collect();
    json!({
        "description": "Only send records for which this holds: `{field: status, equals: paid}`, or `{all: [...]}` / `{any: [...]}` / `{not: {...}}` of such conditions. A dropped record is recorded `filtered`.",
        "allOf": [{"$ref": "#/properties/filter/definitions/condition"}],
        "definitions": {
            "condition": {
                "anyOf": [
                    {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["field"],
                        "properties": test,
                        "oneOf": one_op
                    },
                    {"type": "object", "additionalProperties": false, "required": ["all"], "properties": {"all": {"type": "array", "minItems": 1, "items": {"$ref": "#/properties/filter/definitions/condition"}}}},
                    {"type": "object", "additionalProperties": false, "required": ["any"], "properties": {"any": {"type": "array", "minItems": 1, "items": {"$ref": "#/properties/filter/definitions/condition"}}}},
                    {"type": "object", "additionalProperties": false, "required": ["not"], "properties": {"not": {"$ref": "#/properties/filter/definitions/condition"}}}
                ]
            }
        }
    })
}

/// `schedule:`: one rule, and what a restart does about runs missed.
fn schedule() -> Value {
    json!({
        "type": "object",
        "description": "When the flow runs by itself: one of `every`, `at`, `cron` or `after`. Without a schedule a flow runs when asked (and a push source's flow on each event).",
        "additionalProperties": false,
        "properties": {
            "every": {
                "type": "string",
                "description": "An interval of at least a minute: `15m`, `1h`, `1d`."
            },
            "at": {
                "description": "Daily times, `HH:MM` in the flow's timezone (a time less than 5 minutes away waits for the next day).",
                "anyOf": [
                    {"type": "string"},
                    {"type": "array", "items": {"type": "string"}, "minItems": 1}
                ]
            },
            "cron": {
                "type": "string",
                "description": "Five fields (minute hour day month weekday) in the flow's timezone."
            },
            "after": {
                "description": "Run after another flow completes: its name, or `{flow, on: [success, failure]}`.",
                "anyOf": [
                    {"type": "string"},
                    {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["flow"],
                        "properties": {
                            "flow": {"type": "string"},
                            "on": {
                                "type": "array",
                                "items": {"enum": ["success", "failure"]},
                                "default": ["success"]
                            }
                        }
                    }
                ]
            },
            "catch_up": {
                "enum": ["last", "none"],
                "default": "last",
                "description": "On start-up, runs missed while the daemon was down: one run for them all (`last`) or none."
            }
        },
        "oneOf": [
            {"required": ["every"]},
            {"required": ["at"]},
            {"required": ["cron"]},
            {"required": ["after"]}
        ]
    })
}

/// `lookup:`'s common keys (the connector adds `action`'s options).
pub fn lookup_keys() -> Map<String, Value> {
    let mut keys = Map::new();
    keys.insert(
        "account".into(),
        json!({"type": "string", "description": "An account of accounts.yaml of this connector."}),
    );
    keys.insert(
        "query".into(),
        json!({"type": "string", "description": "A template: what to look up for each record (`{{name}}`)."}),
    );
    keys.insert(
        "as".into(),
        json!({"type": "string", "description": "The name the result has in `map:` (default: the action without `get_`/`list_`)."}),
    );
    keys.insert(
        "required".into(),
        json!({"type": "boolean", "default": true, "description": "A record whose look-up finds nothing fails (otherwise the map sees no result)."}),
    );
    keys
}

/// One `map:` field: a template (text with `{{…}}`), or a YAML value of the field's type.
pub fn map_field(spec: &FieldSpec) -> Value {
    let scalar = json!(["string", "number", "boolean"]);
    let mut schema = match spec.kind {
        FieldKind::Text | FieldKind::Phone | FieldKind::DateTime | FieldKind::Url => {
            json!({"type": scalar})
        }
        FieldKind::OneOf(values) => json!({
            "anyOf": [
                {"enum": values},
                {"type": "string", "pattern": "\\{\\{"}
            ]
        }),
        FieldKind::Integer => json!({"type": ["integer", "string"]}),
        FieldKind::Number => json!({"type": ["number", "string"]}),
        FieldKind::Boolean => json!({"type": ["boolean", "string"]}),
        FieldKind::IntegerList => {
            json!({"type": ["array", "string", "integer"], "items": {"type": ["integer", "string"]}})
        }
        FieldKind::TextList => json!({"type": ["array", "string"]}),
        FieldKind::Json => json!({}),
    };
    let mut doc = spec.doc.to_string();
    if let Some(max) = spec.max_chars {
        doc.push_str(&format!(" (at most {max} characters once rendered)"));
    }
    schema["description"] = Value::String(doc);
    if let Some(default) = spec.default {
        schema["default"] = Value::String(default.into());
    }
    schema
}

/// `map:` for a receiver taking `fields`: each one a template or value, the required
/// ones present, no other.
pub fn map(fields: &[FieldSpec]) -> Value {
    let properties: Map<String, Value> = fields
        .iter()
        .map(|f| (f.name.to_string(), map_field(f)))
        .collect();
    let required: Vec<&str> = fields
        .iter()
        .filter(|f| f.required)
        .map(|f| f.name)
        .collect();
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false
    })
}
