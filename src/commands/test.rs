//! `switchboard test FLOW`: ApiX-Drive's "send test data". Shows exactly what would be
//! sent for the first records and changes no state; `--send` really sends one.

use std::collections::BTreeMap;
use std::process::ExitCode;

use chrono::Utc;
use engine::{Mapper, Prepared};
use flows::FieldKind;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::cli::Global;
use crate::{report, wiring};

#[derive(Serialize)]
struct Preview {
    key: String,
    /// Handled by an earlier run (a real run would not send it).
    already_handled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request: Option<Prepared>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip)]
    fields: Option<Map<String, Value>>,
}

pub async fn test(
    global: &Global,
    name: &str,
    limit: usize,
    send: bool,
    to: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let project = wiring::load(global, BTreeMap::new());
    wiring::warn(&project);
    let flow = match wiring::find_flow(&project, name) {
        Ok(flow) => flow,
        Err(code) => return Ok(code),
    };
    let receiver = wiring::receiver(flow, &project.accounts)?;
    let mapper = Mapper::new(flow).map_err(|p| {
        anyhow::anyhow!(
            "{}",
            p.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })?;
    // Read-only look at the state, when it exists and no other process holds it.
    let state_dir = wiring::state_dir(global);
    let state = if state_dir.exists() {
        engine::SledStore::open(&state_dir)
            .ok()
            .and_then(|s| engine::Store::flow(&s, name).ok())
    } else {
        None
    };
    // A push flow previews the events queued for it.
    let built = wiring::source(flow, &project.accounts)?;
    let source: Box<dyn engine::Source> = match (built, &state) {
        (Some(source), _) => source,
        (None, Some(state)) => Box::new(engine::Queued(state.clone())),
        (None, None) => {
            outln!("{name}: no events queued (POST one to the daemon's /hooks/{name})");
            return Ok(ExitCode::SUCCESS);
        }
    };
    let fetched = match source.fetch().await {
        Ok(fetched) => fetched,
        Err(e) => {
            eprintln!("error: the source of `{name}` cannot be read: {e}");
            return Ok(ExitCode::from(1));
        }
    };

    let reference_of = |key: &str| format!("{}:{}", flow.name, key);
    let now = Utc::now();
    let lookup = wiring::lookup(flow, &project.accounts)?;
    // A preview tries each look-up once: a person is waiting.
    let once = engine::RetryPolicy {
        attempts: 1,
        ..engine::RetryPolicy::from(&flow.delivery)
    };
    let mut previews: Vec<Preview> = Vec::new();
    for record in fetched.records.iter().take(limit) {
        let already_handled = state.as_ref().and_then(|s| {
            engine::handled_before(s.as_ref(), record, lookup.as_ref())
                .ok()
                .map(|run| run.is_some())
        });
        let mut record = record.clone();
        let found = match &lookup {
            Some(step) => step
                .enrich(&mut record, &once, &engine::Stop::never())
                .await
                .map_err(|f| f.reason),
            None => Ok(()),
        };
        let (request, error, fields) = match found.map(|()| mapper.render(&record, now)) {
            Err(reason) => (None, Some(reason), None),
            Ok(Err(e)) => (None, Some(format!("map: {e}")), None),
            Ok(Ok(fields)) => match receiver.prepare(fields.clone(), &reference_of(&record.key)) {
                Ok(request) => (Some(request), None, Some(fields)),
                Err(e) => (None, Some(format!("invalid for the receiver: {e}")), None),
            },
        };
        previews.push(Preview {
            key: record.key.clone(),
            already_handled,
            request,
            error,
            fields,
        });
    }

    if json && !send {
        report::json(
            &serde_json::json!({"flow": flow.name, "fetched": fetched.records.len(), "previews": previews}),
        );
    } else if !json {
        outln!(
            "{}: {} record(s) in the source; previewing {}",
            flow.name,
            fetched.records.len(),
            previews.len()
        );
        for p in &previews {
            print_preview(p);
        }
    }
    let mut ok = previews.iter().all(|p| p.error.is_none());

    if send {
        let Some(first) = previews.iter().find(|p| p.request.is_some()) else {
            eprintln!("error: no previewed record can be sent");
            return Ok(ExitCode::from(1));
        };
        let mut fields = first.fields.clone().unwrap_or_default();
        if let Some(to) = to {
            let phone = flow
                .receiver
                .fields
                .iter()
                .find(|f| f.kind == FieldKind::Phone);
            match phone {
                Some(spec) => {
                    fields.insert(spec.name.to_string(), Value::String(to.to_string()));
                }
                None => anyhow::bail!(
                    "`--to` needs a receiver with a phone field; `{}` has none",
                    flow.receiver.action
                ),
            }
        }
        let request = receiver.prepare(fields, &format!("{}:test", flow.name))?;
        match receiver.send(&request).await {
            Ok(delivered) => {
                let id = delivered
                    .remote_id
                    .map(|id| format!(" (id {id})"))
                    .unwrap_or_default();
                if json {
                    report::json(&serde_json::json!({"sent": request, "remote_id": id}));
                } else {
                    outln!("test send of `{}`: sent{id}", first.key);
                }
            }
            Err(e) => {
                ok = false;
                if json {
                    report::json(&serde_json::json!({"request": request, "error": e.to_string()}));
                } else {
                    outln!("test send of `{}`: failed: {e}", first.key);
                }
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_preview(p: &Preview) {
    let handled = match p.already_handled {
        Some(true) => " (already handled by an earlier run)",
        Some(false) => " (new)",
        None => "",
    };
    outln!();
    outln!("record {}{handled}", p.key);
    if let Some(error) = &p.error {
        outln!("  would fail: {error}");
    }
    if let Some(request) = &p.request {
        outln!("  {} {}", request.method, request.url);
        let body = serde_json::to_string_pretty(&request.body).unwrap_or_default();
        for line in body.lines() {
            outln!("  {line}");
        }
        if !request.notes.is_empty() {
            let notes: Vec<String> = request
                .notes
                .iter()
                .map(|(k, v)| format!("{k}: {}", text(v)))
                .collect();
            outln!("  ({})", notes.join(", "));
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
