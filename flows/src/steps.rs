//! `steps:` — several things done for each record, in order: look-ups whose answer later
//! steps use (`{{steps.contact.mobilePhone}}`) and actions (each an account's receiver
//! action with its own `map:`), each maybe only `when:` a condition holds (the `filter:`
//! grammar). The one-step form (`receiver:` + `map:`, maybe `lookup:`) stays as it is.
//!
//! ```yaml
//! steps:
//!   - name: contact
//!     lookup: {connector: cinnox, account: cx, action: get_contact, query: "{{customerId}}"}
//!   - name: text
//!     when: {field: steps.contact.mobilePhone, not_empty: true}
//!     action: {connector: 8x8, account: sms, action: send_sms}
//!     map: {destination: "{{steps.contact.mobilePhone}}", text: "Hi"}
//! ```
//!
//! Parsing checks what can be checked from the file: names unique and well formed, one
//! of `lookup:`/`action:` each, an action's `map:` against its fields, and every
//! `steps.NAME.FIELD` a template or condition names — the step must come earlier, and an
//! action answers only `id` and `status`.

use std::path::Path;

use marked_yaml::Node;
use serde::Deserialize;

use crate::diag::{Diagnostic, Pos};
use crate::filter::{self, Filter};
use crate::flow::{self, Lookup, MapEntry, MapValue, Receiver};
use crate::section::{Catalogue, Cx};
use crate::suggest;
use crate::yaml;

/// One step of a flow's `steps:`.
#[derive(Debug, Clone)]
pub struct Step {
    /// Its name: later steps read its answer as `steps.NAME`.
    pub name: String,
    pub pos: Pos,
    /// Done only for records that pass this condition; the others record the step as
    /// skipped by its condition.
    pub when: Option<Filter>,
    /// What a failure of this step does to the record.
    pub on_error: OnError,
    pub kind: StepKind,
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum StepKind {
    /// Ask a service; its answer (or nothing found) is the step's answer.
    Lookup(Lookup),
    /// Send to a receiver; the service's id and the status are the step's answer.
    Action {
        receiver: Receiver,
        map: Vec<MapEntry>,
        map_pos: Pos,
    },
}

impl Step {
    /// Whether the step sends (an action) rather than reads (a look-up).
    pub fn sends(&self) -> bool {
        matches!(self.kind, StepKind::Action { .. })
    }

    /// `connector action`, as people read it.
    pub fn what(&self) -> String {
        match &self.kind {
            StepKind::Lookup(l) => format!("{} {}", l.connector, l.action),
            StepKind::Action { receiver, .. } => {
                format!("{} {}", receiver.connector, receiver.action)
            }
        }
    }

    /// The account the step uses.
    pub fn account(&self) -> (&str, Pos) {
        match &self.kind {
            StepKind::Lookup(l) => (&l.account, l.pos),
            StepKind::Action { receiver, .. } => (&receiver.account, receiver.account_pos),
        }
    }
}

/// `on_error:` of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// The record stops at the failed step and is recorded failed; `replay` goes on from
    /// that step (the default).
    #[default]
    Stop,
    /// The failure is recorded on the step and the record goes on to the next step.
    Continue,
}

/// The fields an action step answers (`{{steps.case.id}}`).
pub const ACTION_ANSWERS: &[&str] = &["id", "status"];

const STEP_KEYS: &[&str] = &["name", "lookup", "action", "map", "when", "on_error"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHead {
    name: String,
    #[serde(default)]
    on_error: OnError,
}

/// Parse `steps:`. Problems are collected; the steps that could be read are returned.
pub(crate) fn parse(
    cx: &Cx<'_>,
    node: &Node,
    catalogue: &dyn Catalogue,
    errors: &mut Vec<Diagnostic>,
) -> Vec<Step> {
    let file = cx.file;
    let Some(items) = node.as_sequence() else {
        errors.push(
            Diagnostic::new(file, Pos::of(node.span()), "`steps` must be a list of steps")
                .with_hint("for example `steps: [{name: text, action: {connector: 8x8, account: sms, action: send_sms}, map: {…}}]`"),
        );
        return Vec::new();
    };
    if items.is_empty() {
        errors.push(
            Diagnostic::new(file, Pos::of(node.span()), "`steps` is empty")
                .with_hint("add at least one step with `action:`"),
        );
    }
    let mut steps: Vec<Step> = Vec::new();
    // Steps whose own problems were told: what names them is not told again.
    let mut unread: Vec<String> = Vec::new();
    for item in items.iter() {
        let Some(step) = parse_step(cx, item, catalogue, errors) else {
            if let Some(name) = item
                .as_mapping()
                .and_then(|m| m.get_scalar("name"))
                .map(|n| n.as_str().to_string())
            {
                unread.push(name);
            }
            continue;
        };
        {
            if steps.iter().any(|s| s.name == step.name) {
                errors.push(
                    Diagnostic::new(
                        file,
                        step.pos,
                        format!("two steps are named `{}`", step.name),
                    )
                    .with_hint("give each step its own name: later steps read its answer by it"),
                );
                continue;
            }
            steps.push(step);
        }
    }
    if !steps.is_empty() && !steps.iter().any(Step::sends) {
        errors.push(
            Diagnostic::new(file, Pos::of(node.span()), "no step sends anything")
                .with_hint("add a step with `action:` (look-ups only read)"),
        );
    }
    errors.extend(check_references(file, &steps, &unread));
    steps
}

fn parse_step(
    cx: &Cx<'_>,
    node: &Node,
    catalogue: &dyn Catalogue,
    errors: &mut Vec<Diagnostic>,
) -> Option<Step> {
    let file = cx.file;
    let pos = Pos::of(node.span());
    let Some(mapping) = node.as_mapping() else {
        errors.push(
            Diagnostic::new(file, pos, "a step must be a mapping")
                .with_hint("for example `- {name: text, action: {…}, map: {…}}`"),
        );
        return None;
    };
    for key in mapping.keys() {
        if !STEP_KEYS.contains(&key.as_str()) {
            errors.push(yaml::unknown_key(
                file,
                Pos::of(key.span()),
                key.as_str(),
                "steps[]",
                STEP_KEYS,
            ));
        }
    }
    let head = flow::retain_keys(node, &["name", "on_error"]);
    let head: RawHead = match yaml::from_node(file, &head, "step") {
        Ok(head) => head,
        Err(problem) => {
            errors.push(problem);
            return None;
        }
    };
    let well_formed = !head.name.is_empty()
        && head
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    if !well_formed {
        let at = mapping.get_node("name").map_or(pos, |n| Pos::of(n.span()));
        errors.push(
            Diagnostic::new(file, at, format!("`{}` is not a step name", head.name))
                .with_hint("use letters, digits, `_` and `-` (`contact`, `case`, `text`)"),
        );
        return None;
    }
    let when = match mapping.get_node("when").map(|n| filter::parse(file, n)) {
        None => None,
        Some(Ok(filter)) => Some(filter),
        Some(Err(problems)) => {
            errors.extend(problems);
            None
        }
    };
    let kind = match (mapping.get_node("lookup"), mapping.get_node("action")) {
        (Some(_), Some(action)) => {
            errors.push(
                Diagnostic::new(
                    file,
                    Pos::of(action.span()),
                    format!("step `{}` has both `lookup:` and `action:`", head.name),
                )
                .with_hint("a step does one thing: make two steps"),
            );
            return None;
        }
        (None, None) => {
            errors.push(
                Diagnostic::new(
                    file,
                    pos,
                    format!("step `{}` has neither `lookup:` nor `action:`", head.name),
                )
                .with_hint("for example `action: {connector: 8x8, account: sms, action: send_sms}` with a `map:`"),
            );
            return None;
        }
        (Some(lookup), None) => {
            if let Some(map) = mapping.get_node("map") {
                errors.push(
                    Diagnostic::new(
                        file,
                        Pos::of(map.span()),
                        "a look-up step has no `map:`: its `query` says what to look for",
                    )
                    .with_hint("remove `map:`, or make the step an `action:`"),
                );
            }
            let mut lookup = flow::parse_lookup(cx, lookup, catalogue)
                .map_err(|e| errors.push(e))
                .ok()?;
            lookup.as_name = head.name.clone();
            StepKind::Lookup(lookup)
        }
        (None, Some(action)) => {
            // A step's next step needs this one's answer per record: no batches.
            if let Some(batch) = action.as_mapping().and_then(|m| m.get_node("batch")) {
                errors.push(
                    Diagnostic::new(
                        file,
                        Pos::of(batch.span()),
                        "`batch` is for one-step flows: a step sends each record on its own",
                    )
                    .with_hint("remove `batch:`, or make this a flow of its own with `receiver:`"),
                );
                return None;
            }
            let receiver = flow::parse_receiver(cx, action, catalogue)
                .map_err(|e| errors.push(e))
                .ok();
            let (map, map_pos) = match mapping.get_node("map") {
                None => (Vec::new(), pos),
                Some(node) => match flow::parse_map(file, node) {
                    Ok(map) => (map, Pos::of(node.span())),
                    Err(problem) => {
                        errors.push(problem);
                        (Vec::new(), Pos::of(node.span()))
                    }
                },
            };
            let receiver = receiver?;
            errors.extend(flow::check_map_fields(file, &receiver, &map, map_pos));
            StepKind::Action {
                receiver,
                map,
                map_pos,
            }
        }
    };
    Some(Step {
        name: head.name,
        pos,
        when,
        on_error: head.on_error,
        kind,
    })
}

/// Every `steps.NAME[.FIELD]` a step's templates and condition name: NAME is an earlier
/// step, and FIELD one an action answers.
fn check_references(file: &Path, steps: &[Step], unread: &[String]) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let mut texts: Vec<(String, Pos)> = Vec::new();
        match &step.kind {
            StepKind::Lookup(lookup) => texts.push((lookup.query.clone(), lookup.query_pos)),
            StepKind::Action { map, .. } => {
                for entry in map {
                    templates_of(&entry.value, entry.pos, &mut texts);
                }
            }
        }
        if let Some(when) = &step.when {
            for (field, pos) in when.fields() {
                texts.push((field.to_string(), pos));
            }
        }
        for (text, pos) in texts {
            for (name, field) in references(&text) {
                if unread.contains(&name) {
                    continue;
                }
                let problem = match steps.iter().position(|s| s.name == name) {
                    None => Some((
                        format!("step `{}` names a step `{name}` the flow does not have", step.name),
                        suggest::hint(&name, &steps[..i].iter().map(|s| s.name.as_str()).collect::<Vec<_>>()),
                    )),
                    Some(j) if j >= i => Some((
                        format!(
                            "step `{}` reads `steps.{name}`, which {} it",
                            step.name,
                            if j == i { "is the step itself: its answer comes after" } else { "runs after" }
                        ),
                        "a step reads only the answers of the steps before it: move it up, or the other down".to_string(),
                    )),
                    Some(j) => match (&steps[j].kind, field) {
                        (StepKind::Action { .. }, Some(field)) if !ACTION_ANSWERS.contains(&field.as_str()) => Some((
                            format!("`steps.{name}.{field}`: an action step answers {} only", suggest::backticked(ACTION_ANSWERS)),
                            format!("`{{{{steps.{name}.id}}}}` is the service's id for what `{name}` sent ({})", steps[j].what()),
                        )),
                        _ => None,
                    },
                };
                if let Some((message, hint)) = problem {
                    problems.push(Diagnostic::new(file, pos, message).with_hint(hint));
                }
            }
        }
    }
    problems
}

/// The text of every template in a map value.
fn templates_of(value: &MapValue, pos: Pos, out: &mut Vec<(String, Pos)>) {
    match value {
        MapValue::Template(text) => out.push((text.clone(), pos)),
        MapValue::Literal(_) => {}
        MapValue::List(items) => items.iter().for_each(|v| templates_of(v, pos, out)),
        MapValue::Object(entries) => entries.iter().for_each(|(_, v)| templates_of(v, pos, out)),
    }
}

/// The `steps.NAME[.FIELD]` a text names: `(NAME, FIELD)`. `steps` counts only as a
/// word of its own (not `my_steps.x`, not `a.steps.x`).
pub fn references(text: &str) -> Vec<(String, Option<String>)> {
    let bytes = text.as_bytes();
    let is_name = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    let is_field = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let run = |from: usize, ok: &dyn Fn(u8) -> bool| {
        from + bytes[from..].iter().take_while(|b| ok(**b)).count()
    };
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(offset) = text[at..].find("steps.") {
        let start = at + offset;
        at = start + "steps.".len();
        let before = start.checked_sub(1).map(|i| bytes[i]);
        if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.') {
            continue;
        }
        let name_end = run(at, &is_name);
        if name_end == at {
            continue;
        }
        let name = text[at..name_end].to_string();
        at = name_end;
        let mut field = None;
        if bytes.get(name_end) == Some(&b'.') {
            let field_end = run(name_end + 1, &is_field);
            if field_end > name_end + 1 {
                field = Some(text[name_end + 1..field_end].to_string());
                at = field_end;
            }
        }
        found.push((name, field));
    }
    found
}

/// Keys that a flow with `steps:` may not have at its top: they belong to a step.
pub(crate) const ONE_STEP_KEYS: &[&str] = &["receiver", "map", "lookup"];
