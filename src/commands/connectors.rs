//! `switchboard connectors [NAME] [--json]` and `switchboard schema`: the catalogue as
//! people and tools read it, generated from the connectors' cards.

use runtime::{connectors, flows};
use std::process::ExitCode;

use connectors::card::{self, Action, Card, Field, Part};
use connectors::catalogue;

use crate::cli::SchemaOf;

pub fn connectors(name: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let cards: Vec<&Card> = match name {
        None => catalogue::cards().collect(),
        Some(name) => match catalogue::card(name) {
            Some(card) => vec![card],
            None => {
                let names: Vec<&str> = catalogue::cards().map(|c| c.name).collect();
                anyhow::bail!(
                    "no connector `{name}`\n  hint: {}",
                    flows::hint(name, &names)
                );
            }
        },
    };
    if json {
        let list: Vec<serde_json::Value> = cards.iter().map(|c| card::to_json(c)).collect();
        let value = match (name, list.as_slice()) {
            (Some(_), [one]) => one.clone(),
            _ => serde_json::Value::Array(list),
        };
        outln!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    match name {
        None => overview(&cards),
        Some(_) => cards.iter().for_each(|c| detail(c)),
    }
    Ok(ExitCode::SUCCESS)
}

/// One line per connector: its name, what it can be, what it is.
fn overview(cards: &[&Card]) {
    let rows: Vec<(String, String)> = cards
        .iter()
        .map(|c| {
            let mut can = Vec::new();
            if c.source.is_some() {
                can.push("source".to_string());
            }
            if !c.actions.is_empty() {
                let names: Vec<&str> = c.actions.iter().map(|a| a.name).collect();
                can.push(format!("receiver ({})", names.join(", ")));
            }
            if !c.lookups.is_empty() {
                let names: Vec<&str> = c.lookups.iter().map(|a| a.name).collect();
                can.push(format!("look-up ({})", names.join(", ")));
            }
            (c.name.to_string(), can.join("; "))
        })
        .collect();
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (card, (name, can)) in cards.iter().zip(&rows) {
        outln!("{name:width$}  {}", card.about);
        outln!("{:width$}  {can}", "");
    }
    outln!();
    outln!("`switchboard connectors NAME` shows one in full; `--json` for tools.");
}

/// Everything about one connector.
fn detail(card: &Card) {
    outln!("{}: {}", card.name, card.about);
    if let Some(source) = &card.source {
        part("source", card.name, source);
    }
    for action in card.actions {
        action_detail("receiver", card.name, action);
    }
    for lookup in card.lookups {
        action_detail("lookup", card.name, lookup);
    }
    if let Some(account) = &card.account {
        part("account", card.name, account);
    }
}

fn part(role: &str, name: &str, part: &Part) {
    outln!();
    outln!("{role}: {{connector: {name}, …}} — {}", part.about);
    calls(part.calls);
    fields("options", &part.fields());
}

fn action_detail(role: &str, name: &str, action: &Action) {
    outln!();
    outln!(
        "{role}: {{connector: {name}, action: {}}} — {}",
        action.name,
        action.about
    );
    calls(action.calls);
    fields("options", &action.option_fields());
    fields("map", &action.map_fields());
}

fn calls(calls: &[card::Call]) {
    for call in calls {
        match call.note {
            Some(note) => outln!("  {} {} ({note})", call.method_shown(), call.path),
            None => outln!("  {} {}", call.method_shown(), call.path),
        }
    }
}

/// A table of fields: name, required or the default, type, doc.
fn fields(title: &str, fields: &[Field]) {
    if fields.is_empty() {
        return;
    }
    outln!("  {title}:");
    let name_width = fields.iter().map(|f| f.name.len()).max().unwrap_or(0);
    for field in fields {
        let need = match (&field.required, &field.default) {
            (true, _) => "required".to_string(),
            (false, Some(default)) => format!(
                "default `{}`",
                default
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| default.to_string())
            ),
            (false, None) => "optional".to_string(),
        };
        outln!(
            "    {:name_width$}  {need}; {}. {}",
            field.name,
            field.kind,
            field.doc
        );
    }
}

/// `switchboard schema [flow|accounts]`.
pub fn schema(of: SchemaOf) -> anyhow::Result<ExitCode> {
    let schema = match of {
        SchemaOf::Flow => catalogue::schema::flow(),
        SchemaOf::Accounts => catalogue::schema::accounts(),
    };
    outln!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(ExitCode::SUCCESS)
}
