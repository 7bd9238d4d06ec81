//! JSON Schemas (draft-07) of flow files and of `accounts.yaml`, assembled from the
//! envelope `flows` describes and every connector's [`Card`]: what `switchboard schema`
//! prints and `schema/` holds for editors. A connector's section is closed (unknown keys
//! are errors, as when the file is read), chosen by its `connector` (and `action`), and a
//! receiver's `map:` lists exactly its fields.

use schemars::generate::SchemaSettings;
use schemars::SchemaGenerator;
use serde_json::{json, Map, Value};

use super::cards;
use crate::card::{Action, Card, Options};

/// The schema of a flow file.
pub fn flow() -> Value {
    let mut generator = SchemaSettings::draft07().into_generator();
    let mut properties = flows::schema::envelope(&mut generator);

    let sources: Vec<&Card> = cards().filter(|c| c.source.is_some()).collect();
    let receivers: Vec<&Card> = cards().filter(|c| !c.actions.is_empty()).collect();
    let lookups: Vec<&Card> = cards().filter(|c| !c.lookups.is_empty()).collect();

    let source_rules: Vec<Value> = sources
        .iter()
        .filter_map(|card| {
            let part = card.source.as_ref()?;
            let then = closed(
                &mut generator,
                Some(part.options),
                &[("connector".to_string(), json!({"const": card.name}))],
                part.about,
            );
            Some(when(&[("connector", card.name)], then))
        })
        .collect();
    properties.insert(
        "source".into(),
        section(
            "Where the records come from.",
            &sources.iter().map(|c| c.name).collect::<Vec<_>>(),
            source_rules,
        ),
    );

    let receiver_rules = actions(&mut generator, &receivers, false);
    properties.insert(
        "receiver".into(),
        section(
            "Where the records go: an account of a service and one of its actions.",
            &receivers.iter().map(|c| c.name).collect::<Vec<_>>(),
            receiver_rules,
        ),
    );

    let lookup_rules = actions(&mut generator, &lookups, true);
    properties.insert(
        "lookup".into(),
        section(
            "Something asked of a service for each record before the map; the answer joins the record under `as`.",
            &lookups.iter().map(|c| c.name).collect::<Vec<_>>(),
            lookup_rules,
        ),
    );
    properties.insert(
        "map".into(),
        json!({
            "type": "object",
            "description": "The receiver's fields: templates (`\"Hi {{name}}\"`) or YAML values."
        }),
    );

    // `steps:` — each a look-up or an action (the same sections), maybe `when`.
    let when_schema = properties
        .get("filter")
        .cloned()
        .unwrap_or(json!({"type": "object"}));
    let lookup_section = properties.get("lookup").cloned().unwrap_or(json!({}));
    let action_section = properties.get("receiver").cloned().unwrap_or(json!({}));
    properties.insert(
        "steps".into(),
        json!({
            "type": "array",
            "minItems": 1,
            "description": "Several things done for each record, in order (instead of `receiver`, `map` and `lookup`): look-ups whose answer later steps read as `{{steps.NAME.…}}`, and actions, each with its own `map`; a step runs only `when` its condition holds.",
            "items": {
                "type": "object",
                "additionalProperties": false,
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$", "description": "The step's name: later steps read its answer as `steps.NAME`."},
                    "lookup": lookup_section,
                    "action": action_section,
                    "map": {"type": "object", "description": "The action's fields: templates (`\"Case {{steps.case.id}}\"`) or YAML values."},
                    "when": when_schema,
                    "on_error": {"enum": ["stop", "continue"], "default": "stop", "description": "A failed step stops the record (`stop`; a replay goes on from it) or is recorded and the next step runs (`continue`)."}
                },
                "oneOf": [{"required": ["lookup"]}, {"required": ["action"]}]
            }
        }),
    );

    // Each receiver action's fields, chosen by the receiver it names.
    let maps: Vec<Value> = receivers
        .iter()
        .flat_map(|card| {
            card.actions.iter().map(|action| {
                json!({
                    "if": {
                        "required": ["receiver"],
                        "properties": {"receiver": when_keys(&[("connector", card.name), ("action", action.name)])}
                    },
                    "then": {"properties": {"map": flows::schema::map(action.fields)}}
                })
            })
        })
        .collect();

    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Switchboard flow file",
        "description": "One flow: records from a source, through the map, to a receiver. Generated by `switchboard schema flow`.",
        "type": "object",
        "additionalProperties": false,
        "required": flows::schema::REQUIRED,
        "oneOf": [
            {"required": ["receiver", "map"], "not": {"required": ["steps"]}},
            {"required": ["steps"], "not": {"anyOf": [{"required": ["receiver"]}, {"required": ["map"]}, {"required": ["lookup"]}]}}
        ],
        "properties": properties,
        "allOf": maps,
        "definitions": definitions(generator),
    })
}

/// The schema of `accounts.yaml`: named accounts, each of one connector.
pub fn accounts() -> Value {
    let mut generator = SchemaSettings::draft07().into_generator();
    let cards: Vec<&Card> = cards().filter(|c| c.account.is_some()).collect();
    let rules: Vec<Value> = cards
        .iter()
        .filter_map(|card| {
            let part = card.account.as_ref()?;
            let then = closed(
                &mut generator,
                Some(part.options),
                &[("connector".to_string(), json!({"const": card.name}))],
                part.about,
            );
            Some(when(&[("connector", card.name)], then))
        })
        .collect();
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Switchboard accounts file",
        "description": "Named accounts of services. Write secrets as ${VARIABLE} (or ${VARIABLE:-default}) and keep their values in the environment. Generated by `switchboard schema accounts`.",
        "type": "object",
        "additionalProperties": section(
            "An account: its `connector` and that connector's credentials.",
            &cards.iter().map(|c| c.name).collect::<Vec<_>>(),
            rules,
        ),
        "definitions": definitions(generator),
    })
}

/// A section chosen by its `connector`: the names allowed, then each one's rules.
fn section(about: &str, connectors: &[&str], rules: Vec<Value>) -> Value {
    json!({
        "type": "object",
        "description": about,
        "required": ["connector"],
        "properties": {"connector": {"enum": connectors}},
        "allOf": rules,
    })
}

/// The receiver actions (or look-ups) of `cards`: for each connector the actions it has,
/// and for each action its closed section.
fn actions(generator: &mut SchemaGenerator, cards: &[&Card], lookup: bool) -> Vec<Value> {
    let mut rules = Vec::new();
    for card in cards {
        let list: &[Action] = if lookup { card.lookups } else { card.actions };
        let names: Vec<&str> = list.iter().map(|a| a.name).collect();
        rules.push(when(
            &[("connector", card.name)],
            json!({"required": ["action", "account"], "properties": {"action": {"enum": names}}}),
        ));
        for action in list {
            let mut common = vec![
                ("connector".to_string(), json!({"const": card.name})),
                ("action".to_string(), json!({"const": action.name})),
                (
                    "account".to_string(),
                    json!({"type": "string", "description": format!("An account of accounts.yaml whose connector is `{}`.", card.name)}),
                ),
            ];
            if lookup {
                common.extend(
                    flows::schema::lookup_keys()
                        .into_iter()
                        .filter(|(k, _)| k != "account"),
                );
            }
            let then = closed(generator, action.options, &common, action.about);
            rules.push(when(
                &[("connector", card.name), ("action", action.name)],
                then,
            ));
        }
    }
    rules
}

/// A section's options as a closed object with the `common` keys added.
fn closed(
    generator: &mut SchemaGenerator,
    options: Option<Options>,
    common: &[(String, Value)],
    about: &str,
) -> Value {
    let mut schema = options
        .map(|o| o(generator).to_value())
        .unwrap_or_else(|| json!({"type": "object"}));
    let object = match schema.as_object_mut() {
        Some(object) => object,
        None => return schema,
    };
    let properties = object
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(properties) = properties.as_object_mut() {
        for (key, value) in common {
            properties.insert(key.clone(), value.clone());
        }
    }
    object.insert("additionalProperties".into(), Value::Bool(false));
    object.insert("description".into(), Value::String(about.into()));
    object.remove("title");
    object.remove("$schema");
    schema
}

/// `if` these keys have these values, `then` this.
fn when(keys: &[(&str, &str)], then: Value) -> Value {
    json!({"if": when_keys(keys), "then": then})
}

fn when_keys(keys: &[(&str, &str)]) -> Value {
    let properties: Map<String, Value> = keys
        .iter()
        .map(|(k, v)| ((*k).to_string(), json!({"const": v})))
        .collect();
    let required: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
    json!({"required": required, "properties": properties})
}

fn definitions(mut generator: SchemaGenerator) -> Value {
    Value::Object(generator.take_definitions(true))
}
