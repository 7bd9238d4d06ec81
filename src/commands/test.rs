//! `switchboard test FLOW`: ApiX-Drive's "send test data". Shows exactly what the next
//! run would send — the first records not handled before, with their look-ups — and
//! changes no state; `--send` really sends one (to `--to`, when given, and the preview
//! shows it so). A push flow previews its queued events, else the events of `--events
//! FILE`, the `events.json` beside it, or the last events it received.

use runtime::{connectors, engine, flows};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::Utc;
use connectors::push::Door;
use engine::{FlowState, LookupStep, Prepared, Record};
use flows::{FieldKind, Flow, Project};
use serde_json::Value;

use crate::commands::run::daemon_request;
use runtime::daemon::discovery::{self, Daemon};
use runtime::preview::{self, Preview, Previewer};
use runtime::Global;
use runtime::{report, wiring};

/// What `switchboard test` was asked.
pub struct TestArgs<'a> {
    pub flow: &'a str,
    pub limit: usize,
    pub all: bool,
    pub send: bool,
    pub to: Option<&'a str>,
    pub events: Option<&'a Path>,
    pub json: bool,
}

/// Where the handled marks come from: the state itself, the daemon holding it, or
/// nowhere (said so).
enum Marks {
    Local(Arc<dyn FlowState>),
    Daemon(Daemon),
    Unknown(String),
    /// The flow has never run: nothing is handled.
    Fresh,
}

pub async fn test(global: &Global, args: TestArgs<'_>) -> anyhow::Result<ExitCode> {
    let mut project = wiring::load(global, BTreeMap::new());
    // A daemon holding the state holds the secrets too: a preview here needs the files'
    // shape, not the keys this shell may not have. Sending from here does.
    let mut secrets_unset = false;
    if !project.flows.contains_key(args.flow) && wiring::daemon_holding(global).is_some() {
        let shaped = wiring::load_for_daemon(global);
        if shaped.flows.contains_key(args.flow) {
            project = shaped;
            secrets_unset = true;
        }
    }
    if args.send && secrets_unset {
        anyhow::bail!(
            "`--send` sends from this shell, and the flow's accounts need environment variables this shell does not set (the daemon has them)\n  hint: export them here to send a test, or preview without --send"
        );
    }
    wiring::warn(&project);
    let flow = match wiring::find_flow(&project, args.flow) {
        Ok(flow) => flow,
        Err(code) => return Ok(code),
    };
    let previewer = Previewer::new(flow, &project.accounts)?;
    let receiver = previewer.receiver.clone();
    let marks = marks(global, &flow.name)?;
    if let Marks::Unknown(why) = &marks {
        eprintln!(
            "note: which records were handled before is unknown: {why}; every record is shown"
        );
    }
    let lookup = previewer.lookup.as_ref();
    let chain = previewer.chain.as_ref();
    if chain.is_some() && args.to.is_some() {
        anyhow::bail!(
            "`--to` replaces one receiver's phone number; `{}` has several steps\n  hint: `--send` without `--to` sends every step for the first record, to its own recipients",
            flow.name
        );
    }

    let (records, from) = match records(&project, flow, &marks, args.events).await? {
        Ok(found) => found,
        Err(code) => return Ok(code),
    };
    // A pushed event is handled once: the preview shows every one, marked.
    let skip_handled = !args.all && !flow.source.is_push();

    let now = Utc::now();
    let once = &previewer.policy;
    let total = records.len();
    let mut handled_count = 0usize;
    let mut previews: Vec<Preview> = Vec::new();
    for chunk in records.chunks(200) {
        if previews.len() >= args.limit {
            break;
        }
        let handled = handled_in(&marks, flow, chunk, lookup).await?;
        for (record, already_handled) in chunk.iter().zip(handled) {
            if previews.len() >= args.limit {
                break;
            }
            if already_handled == Some(true) && skip_handled {
                handled_count += 1;
                continue;
            }
            previews.push(previewer.record(record, already_handled, now).await);
        }
    }

    // What `--send` sends is what the preview shows: its request as it will leave.
    let mut to_send: Option<(usize, Prepared)> = None;
    if let (Some(chain), true) = (chain, args.send) {
        return send_steps(global, &marks, flow, chain, &previews, once, args.json).await;
    }
    if args.send {
        let Some(index) = previews.iter().position(|p| p.request.is_some()) else {
            eprintln!("error: no previewed record can be sent");
            return Ok(ExitCode::from(1));
        };
        let mut fields = previews[index].fields.clone().unwrap_or_default();
        if let Some(to) = args.to {
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
        previews[index].request = Some(request.clone());
        previews[index].to = args.to.map(String::from);
        to_send = Some((index, request));
    }

    if args.json && !args.send {
        report::json(&serde_json::json!({
            "flow": flow.name,
            "from": from,
            "fetched": total,
            "already_handled": handled_count,
            "previews": previews,
        }));
    } else if !args.json {
        let handled_note = if handled_count > 0 {
            format!(", {handled_count} already handled (not shown; --all shows them)")
        } else {
            String::new()
        };
        outln!(
            "{}: {total} record(s) {from}{handled_note}; previewing {} the next run would send",
            flow.name,
            previews.len()
        );
        for p in &previews {
            print_preview(p);
        }
    }
    let mut ok = previews.iter().all(|p| p.error.is_none());

    if let Some((index, request)) = to_send {
        let key = &previews[index].key;
        match receiver.send(&request).await {
            Ok(delivered) => {
                // Sent to the record's own recipient: recorded as sent, so the next run
                // does not send it again. Sent to `--to`: the record stays unsent.
                let recorded = match args.to {
                    Some(_) => None,
                    None => {
                        let record = Record::new(
                            key.clone(),
                            previews[index].fields.clone().unwrap_or_default(),
                        );
                        let sent = serde_json::to_value(&request).ok();
                        Some(record_sent(global, &marks, flow, &record, &delivered, sent).await)
                    }
                };
                let id = delivered
                    .remote_id
                    .as_ref()
                    .map(|id| format!(" (id {id})"))
                    .unwrap_or_default();
                let note = match (&recorded, args.to) {
                    (None, Some(to)) => format!(
                        " to {to}; the record is not marked handled: the next run sends it to its own recipient"
                    ),
                    (Some(Ok(run)), _) => format!(
                        " to the record's own recipient; recorded as sent (run {run}), so the next run does not send it again"
                    ),
                    (Some(Err(e)), _) => {
                        ok = false;
                        format!(
                            " to the record's own recipient, but it could not be recorded as sent ({}): the next run will send it again unless it is",
                            report::error_text(e)
                        )
                    }
                    (None, None) => String::new(),
                };
                if args.json {
                    report::json(&serde_json::json!({
                        "sent": request,
                        "remote_id": delivered.remote_id,
                        "recorded_run": recorded.as_ref().and_then(|r| r.as_ref().ok()),
                    }));
                } else {
                    outln!("test send of `{key}`: sent{id}{note}");
                }
            }
            Err(e) => {
                ok = false;
                if args.json {
                    report::json(&serde_json::json!({"request": request, "error": e.to_string()}));
                } else {
                    outln!("test send of `{key}`: failed: {e}");
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

/// `--send` for a flow with `steps:`: every step for the first record the preview shows
/// going through, to its own recipients; recorded as sent, so the next run does not send
/// it again.
async fn send_steps(
    global: &Global,
    marks: &Marks,
    flow: &Flow,
    chain: &engine::Chain,
    previews: &[Preview],
    once: &engine::RetryPolicy,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let Some(preview) = previews
        .iter()
        .find(|p| p.error.is_none() && p.filtered.is_none() && !p.steps.is_empty())
    else {
        eprintln!("error: no previewed record goes through every step");
        return Ok(ExitCode::from(1));
    };
    let fields = preview.fields.clone().unwrap_or_default();
    let at = engine::Attempt {
        flow: &flow.name,
        key: &preview.key,
        policy: once,
        stop: &engine::Stop::never(),
        now: Utc::now(),
        send: true,
    };
    let steps = chain.preview(&at, &fields).await;
    let failed = steps
        .iter()
        .any(|s| s.outcome.status == engine::StepStatus::Failed);
    let last = steps
        .iter()
        .rev()
        .find(|s| s.outcome.remote_id.is_some() || s.request.is_some());
    let mut recorded = None;
    if !failed {
        let record = Record::new(preview.key.clone(), fields);
        let delivered = engine::Delivered {
            remote_id: last.and_then(|s| s.outcome.remote_id.clone()),
        };
        let sent = last.and_then(|s| s.outcome.sent.clone());
        recorded = Some(record_sent(global, marks, flow, &record, &delivered, sent).await);
    }
    if json {
        report::json(&serde_json::json!({
            "key": preview.key,
            "steps": steps,
            "recorded_run": recorded.as_ref().and_then(|r| r.as_ref().ok()),
        }));
    } else {
        outln!("test send of `{}`, step by step:", preview.key);
        for step in &steps {
            outln!("  {}", report::step_line(&step.outcome));
        }
        match &recorded {
            Some(Ok(run)) => outln!(
                "recorded as sent (run {run}), so the next run does not send it again"
            ),
            Some(Err(e)) => outln!(
                "sent, but it could not be recorded as sent ({}): the next run will send it again unless it is",
                report::error_text(e)
            ),
            None => outln!("a step failed: the record is not marked handled; the next run takes it again from its first step"),
        }
    }
    let ok = !failed && recorded.is_some_and(|r| r.is_ok());
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Record what `--send` sent to the record's own recipient as sent, in the state (or
/// through the daemon holding it): the run it was recorded in.
async fn record_sent(
    global: &Global,
    marks: &Marks,
    flow: &Flow,
    record: &Record,
    delivered: &engine::Delivered,
    sent: Option<Value>,
) -> anyhow::Result<u64> {
    let remote_id = delivered.remote_id.clone();
    let summary = match marks {
        Marks::Local(state) => {
            let summary = engine::record_test_send(&**state, record, remote_id, sent, Utc::now())?;
            state.durable().await?;
            summary
        }
        Marks::Fresh => {
            let store = wiring::open_store(global)?;
            let state = store.flow(&flow.name)?;
            let summary = engine::record_test_send(&*state, record, remote_id, sent, Utc::now())?;
            store.flush().await?;
            summary
        }
        Marks::Daemon(daemon) => {
            let body = serde_json::json!({
                "key": record.key, "record": record.fields, "remote_id": remote_id, "sent": sent,
            });
            let path = format!("/api/flows/{}/test-send", flow.name);
            let answer = daemon_request(daemon, reqwest::Method::POST, &path, Some(&body)).await?;
            return answer["run"]["id"]
                .as_u64()
                .ok_or_else(|| anyhow::anyhow!("the daemon did not say which run recorded it"));
        }
        Marks::Unknown(why) => anyhow::bail!("{why}"),
    };
    Ok(summary.id)
}

/// The handled marks of flow `name`: read from the state when no other process holds
/// it, else asked of the daemon that does.
fn marks(global: &Global, name: &str) -> anyhow::Result<Marks> {
    let state_dir = wiring::state_dir(global);
    if !wiring::state_exists(global) {
        return Ok(Marks::Fresh);
    }
    match wiring::open_store(global) {
        Ok(store) => Ok(Marks::Local(store.flow(name)?)),
        Err(engine::StateError::Locked(_)) => match discovery::find(&state_dir, &global.flows) {
            Ok(Some(daemon)) => Ok(Marks::Daemon(daemon)),
            _ => Ok(Marks::Unknown(format!(
                "the state directory `{}` is held by another process and no daemon answers for it",
                state_dir.display()
            ))),
        },
        Err(e) => Ok(Marks::Unknown(e.to_string())),
    }
}

/// For each record: handled before and unchanged (`Some(true)`), new (`Some(false)`), or
/// unknown (`None`).
async fn handled_in(
    marks: &Marks,
    flow: &Flow,
    records: &[Record],
    lookup: Option<&LookupStep>,
) -> anyhow::Result<Vec<Option<bool>>> {
    Ok(match marks {
        Marks::Fresh => vec![Some(false); records.len()],
        Marks::Unknown(_) => vec![None; records.len()],
        Marks::Local(state) => records
            .iter()
            .map(|r| {
                engine::handled_before(state.as_ref(), r, lookup, flow)
                    .ok()
                    .map(|run| run.is_some())
            })
            .collect(),
        Marks::Daemon(daemon) => {
            let skip = lookup.map(LookupStep::as_name);
            let asked: Vec<Value> = records
                .iter()
                .map(|r| serde_json::json!({"key": r.key, "digest": engine::digest(&r.fields, skip)}))
                .collect();
            let answer = daemon_request(
                daemon,
                reqwest::Method::POST,
                &format!("/api/flows/{}/handled", flow.name),
                Some(&Value::Array(asked)),
            )
            .await?;
            let handled = answer.get("handled").and_then(Value::as_object);
            records
                .iter()
                .map(|r| Some(handled.is_some_and(|h| h.contains_key(&r.key))))
                .collect()
        }
    })
}

/// The records to preview, and where they came from (for the header line).
async fn records(
    project: &Project,
    flow: &Flow,
    marks: &Marks,
    events: Option<&Path>,
) -> anyhow::Result<Result<(Vec<Record>, String), ExitCode>> {
    let door = Door::of(project, &flow.name).map_err(anyhow::Error::msg)?;
    if let Some(file) = events {
        let Some(door) = &door else {
            eprintln!(
                "error: `{}` reads its source; --events is for flows whose events are pushed (webhook, CINNOX, Text Request)",
                flow.name
            );
            return Ok(Err(ExitCode::from(2)));
        };
        return Ok(Ok((
            preview::events_in(door, flow, file)?,
            format!("in {}", file.display()),
        )));
    }
    let local = match marks {
        Marks::Local(state) => Some(state.as_ref()),
        _ => None,
    };
    let found = match (&door, marks) {
        // The daemon holds the state: the samples here, else its last events (below).
        (Some(door), Marks::Daemon(_)) => match preview::samples(flow) {
            Some(samples) => preview::events_in(door, flow, &samples)
                .map(|records| (records, format!("in {}", samples.display()))),
            None => Ok((Vec::new(), String::new())),
        },
        _ => preview::records(project, flow, local).await,
    };
    let (records, from) = match found {
        Ok(found) => found,
        Err(e) => {
            eprintln!("error: {}", report::error_text(&e));
            return Ok(Err(ExitCode::from(1)));
        }
    };
    if !records.is_empty() || door.is_none() {
        return Ok(Ok((records, from)));
    }
    if let Marks::Daemon(daemon) = marks {
        let last = last_events(daemon, &flow.name).await?;
        if !last.is_empty() {
            return Ok(Ok((last, "received last (from history)".into())));
        }
    }
    outln!(
        "{}: no events to preview: none queued, no events.json beside the flow, none received yet\n  hint: pass --events FILE with a body as the service posts it (POST it to the daemon's /hooks/{})",
        flow.name,
        flow.name
    );
    Ok(Err(ExitCode::SUCCESS))
}

/// The events of the flow's latest runs, newest run first, asked of the daemon that
/// holds the state.
async fn last_events(daemon: &Daemon, flow: &str) -> anyhow::Result<Vec<Record>> {
    let runs = daemon_request(
        daemon,
        reqwest::Method::GET,
        &format!("/api/flows/{flow}/runs?limit=5"),
        None,
    )
    .await?;
    let mut rows = Vec::new();
    for id in runs["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["id"].as_u64())
    {
        let run = daemon_request(
            daemon,
            reqwest::Method::GET,
            &format!("/api/flows/{flow}/runs/{id}"),
            None,
        )
        .await?;
        rows.extend(
            serde_json::from_value::<Vec<engine::RowOutcome>>(run["rows"].clone())
                .unwrap_or_default(),
        );
    }
    Ok(preview::last_events(rows))
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
    if let Some(why) = &p.filtered {
        outln!("  filtered out, not sent: {why}");
    }
    if let Some(to) = &p.to {
        outln!("  (what --send sends: the phone number replaced by --to {to})");
    }
    for step in &p.steps {
        let o = &step.outcome;
        match (&o.status, &step.request) {
            (engine::StepStatus::Done, Some(request)) => {
                outln!(
                    "  step {}: would send {} {}",
                    o.step,
                    request.method,
                    request.url
                );
                let body = serde_json::to_string_pretty(&request.body).unwrap_or_default();
                for line in body.lines() {
                    outln!("    {line}");
                }
            }
            (engine::StepStatus::Done, None) if o.answer.is_null() => {
                outln!(
                    "  step {}: found nothing (not required: the steps go on)",
                    o.step
                )
            }
            (engine::StepStatus::Done, None) => {
                outln!(
                    "  step {}: found {}",
                    o.step,
                    clip(&o.answer.to_string(), 300)
                )
            }
            _ => outln!("  {}", report::step_line(o)),
        }
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

/// `text` cut to about `most` characters, with an ellipsis when cut.
fn clip(text: &str, most: usize) -> String {
    match text.char_indices().nth(most) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}
