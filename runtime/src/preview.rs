//! What a flow would send for a record, without sending it or changing the state: its
//! look-up asked, its filter judged, its map rendered and its request prepared as a run
//! does (the same stages, the same words) — or, for a flow with `steps:`, each step.
//! `switchboard test` and the console's preview page show it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use engine::{stages, Mapper, Prepared, Receiver, Record};
use flows::{Accounts, Flow};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::wiring;

/// What the next run would do with one record.
#[derive(Debug, Serialize)]
pub struct Preview {
    pub key: String,
    /// Handled by an earlier run (a real run would not send it); `None` when unknown.
    pub already_handled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<Prepared>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why the flow's `filter:` drops it (a run records it `filtered`, sends nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filtered: Option<String>,
    /// The request is the one `test --send` sends: its phone number replaced by `--to`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// A flow with `steps:`: what each step would do (look-ups asked, actions prepared).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<engine::StepPreview>,
    /// What the request was made of: the mapped fields of a one-step flow, the record's
    /// fields for a flow with `steps:` (what `test --send` sends again).
    #[serde(skip)]
    pub fields: Option<Map<String, Value>>,
    /// The record as the map saw it (with its look-up's answer).
    #[serde(skip)]
    pub record: Map<String, Value>,
}

impl Preview {
    /// Every text scrubbed of the secrets `scrubber` knows (a page shows it).
    pub fn scrub(&mut self, scrubber: &engine::scrub::Scrubber) {
        scrubber.map(&mut self.record);
        if let Some(request) = &mut self.request {
            scrubber.request(request);
        }
        for step in &mut self.steps {
            scrubber.step(&mut step.outcome);
            if let Some(request) = &mut step.request {
                scrubber.request(request);
            }
        }
        for text in [&mut self.error, &mut self.filtered] {
            *text = text.take().map(|t| scrubber.string(t));
        }
    }
}

/// A flow ready to be previewed: its receiver, map, look-up and steps built once.
pub struct Previewer<'a> {
    pub flow: &'a Flow,
    pub receiver: Arc<dyn Receiver>,
    mapper: Mapper,
    pub lookup: Option<engine::LookupStep>,
    pub chain: Option<engine::Chain>,
    /// A person is waiting: each look-up is tried once.
    pub policy: engine::RetryPolicy,
}

impl<'a> Previewer<'a> {
    pub fn new(flow: &'a Flow, accounts: &Accounts) -> anyhow::Result<Previewer<'a>> {
        Ok(Previewer {
            flow,
            receiver: wiring::receiver(flow, accounts)?,
            mapper: wiring::compiled(flow)?,
            lookup: wiring::lookup(flow, accounts)?,
            chain: wiring::chain(flow, accounts)?,
            policy: engine::RetryPolicy {
                attempts: 1,
                ..engine::RetryPolicy::from(&flow.delivery)
            },
        })
    }

    /// What the next run would do with `record`.
    pub async fn record(
        &self,
        record: &Record,
        already_handled: Option<bool>,
        now: DateTime<Utc>,
    ) -> Preview {
        let flow = self.flow;
        let mut preview = Preview {
            key: record.key.clone(),
            already_handled,
            request: None,
            error: None,
            filtered: None,
            to: None,
            steps: Vec::new(),
            fields: None,
            record: Map::new(),
        };
        let mut record = record.clone();
        let found = match &self.lookup {
            Some(step) => step
                .enrich(&mut record, &self.policy, &engine::Stop::never())
                .await
                .map_err(|f| f.reason),
            None => Ok(()),
        };
        // The filter judges the record as a run does: after its look-up.
        preview.record = record.fields.clone();
        let verdict = match &found {
            Ok(()) => stages::judge(flow.filter.as_ref(), &record.fields),
            Err(_) => stages::Judged::Pass,
        };
        let found = match verdict {
            stages::Judged::Pass => found,
            stages::Judged::Filtered(why) => {
                preview.filtered = Some(why);
                return preview;
            }
            stages::Judged::Failed(why) => Err(why),
        };
        if let Err(reason) = found {
            preview.error = Some(reason);
            return preview;
        }
        if let Some(chain) = &self.chain {
            let at = engine::Attempt {
                flow: &flow.name,
                key: &record.key,
                policy: &self.policy,
                stop: &engine::Stop::never(),
                now,
                send: false,
            };
            preview.steps = chain.preview(&at, &record.fields).await;
            preview.error = preview
                .steps
                .iter()
                .find(|s| s.outcome.status == engine::StepStatus::Failed)
                .map(|s| {
                    format!(
                        "step `{}`: {}",
                        s.outcome.step,
                        s.outcome.reason.as_deref().unwrap_or_default()
                    )
                });
            preview.fields = Some(record.fields);
            return preview;
        }
        let (record, mapped) = stages::map(&self.mapper, record, now);
        let prepared = mapped.and_then(|fields| {
            stages::prepare(&*self.receiver, &flow.name, &record.key, fields.clone())
                .map(|request| (request, fields))
        });
        match prepared {
            Ok((request, fields)) => {
                preview.request = Some(request);
                preview.fields = Some(fields);
            }
            Err(unsendable) => preview.error = Some(unsendable.reason),
        }
        preview
    }
}

/// The records a preview shows, and where they came from (`in the source`, `queued`, …):
/// a pulled source's records as it reads them now; a pushed flow's events waiting in the
/// state, else those of the `events.json` beside the flow file, else the last it received.
pub async fn records(
    project: &flows::Project,
    flow: &Flow,
    state: Option<&dyn engine::FlowState>,
) -> anyhow::Result<(Vec<Record>, String)> {
    let door = connectors::push::Door::of(project, &flow.name).map_err(anyhow::Error::msg)?;
    let Some(door) = door else {
        let source = wiring::source(flow, &project.accounts)?
            .ok_or_else(|| anyhow::anyhow!("`{}` has no source to read", flow.name))?;
        let fetched = source
            .fetch()
            .await
            .map_err(|e| anyhow::anyhow!("the source of `{}` cannot be read: {e}", flow.name))?;
        return Ok((fetched.records, "in the source".into()));
    };
    if let Some(state) = state {
        let queued = state.queued()?;
        if !queued.is_empty() {
            return Ok((queued, "queued".into()));
        }
    }
    if let Some(samples) = samples(flow) {
        let records = events_in(&door, flow, &samples)?;
        if !records.is_empty() {
            return Ok((records, format!("in {}", samples.display())));
        }
    }
    let mut rows = Vec::new();
    if let Some(state) = state {
        for run in state.runs(5)? {
            rows.extend(state.rows(run.id)?);
        }
    }
    Ok((last_events(rows), "received last (from history)".into()))
}

/// The `events.json` beside a pushed flow's file: events as its service posts them.
pub fn samples(flow: &Flow) -> Option<std::path::PathBuf> {
    flow.file
        .parent()
        .map(|dir| dir.join("events.json"))
        .filter(|path| path.exists())
}

/// This flow's events in a body as the service would post it.
pub fn events_in(
    door: &connectors::push::Door,
    flow: &Flow,
    file: &std::path::Path,
) -> anyhow::Result<Vec<Record>> {
    let body =
        std::fs::read(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    match door
        .take(&body, &std::collections::BTreeMap::new())
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?
    {
        connectors::push::Taken::Handshake(_) => {
            anyhow::bail!("{} is a handshake, not events", file.display())
        }
        connectors::push::Taken::Events { queued, .. } => Ok(queued
            .into_iter()
            .filter(|(target, _)| target.flow == flow.name)
            .flat_map(|(_, records)| records)
            .collect()),
    }
}

/// The events of recorded outcomes (newest run first), each key once.
pub fn last_events(rows: Vec<engine::RowOutcome>) -> Vec<Record> {
    let mut seen = std::collections::HashSet::new();
    rows.into_iter()
        .filter(|row| !row.record.is_empty() && seen.insert(row.key.clone()))
        .map(|row| Record::new(row.key, row.record))
        .collect()
}
