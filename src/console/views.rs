//! What the console's pages show, gathered from the daemon's state: the flows with their
//! recent runs, a flow's run log, a run's records, search hits. Every value that leaves
//! here has been through the scrubber: pages render these and nothing else.

use chrono::{DateTime, Duration, Utc};
use engine::{RowOutcome, RunStatus, RunSummary};
use runtime::engine;

use runtime::daemon::Shared;

/// Flows on one page of the flows list.
pub const FLOWS_PER_PAGE: usize = 100;
/// Runs on one page of a flow's run log.
pub const RUNS_PER_PAGE: usize = 50;
/// Records on one page of a run.
pub const ROWS_PER_PAGE: usize = 100;
/// Runs in the strip beside each flow.
pub const STRIP: usize = 30;
/// The most runs read to count a day's failures (a flow every minute runs 1,440 a day).
const DAY_RUNS: usize = 1500;

/// One flow as the flows page shows it.
pub struct FlowView {
    pub name: String,
    pub file: Option<String>,
    pub enabled: Option<bool>,
    pub paused: Option<String>,
    pub schedule: Option<String>,
    pub next_run: Option<String>,
    pub running: bool,
    /// In a cluster: the node running it now.
    pub node: Option<String>,
    /// The last runs, oldest first.
    pub strip: Vec<RunSummary>,
    /// Records failed in runs started in the last 24 hours.
    pub failed_24h: u64,
    /// Its problems, each `file:line:col: message`.
    pub problems: Vec<String>,
}

impl FlowView {
    pub fn last(&self) -> Option<&RunSummary> {
        self.strip.last()
    }
}

/// The flows whose names contain `filter`, sorted by name, and how many there are.
pub fn flow_names(shared: &Shared, filter: &str) -> Vec<String> {
    let mut names = shared.flow_names();
    let filter = filter.trim().to_lowercase();
    names.retain(|n| filter.is_empty() || n.to_lowercase().contains(&filter));
    names
}

/// The flows page's view of each named flow.
pub fn flows(shared: &Shared, names: &[String], now: DateTime<Utc>) -> Vec<FlowView> {
    let scrubber = shared.scrubber();
    let status = shared.status.read().map(|s| s.clone()).unwrap_or_default();
    let served = shared.snapshot();
    let errors = &served.errors;
    // In a cluster, who runs what.
    let holders = shared.holders();
    let project = &served.project;
    let day_ago = now - Duration::hours(24);
    names
        .iter()
        .map(|name| {
            let flow = project.flows.get(name);
            let s = status.get(name).cloned().unwrap_or_default();
            let state = shared.store.flow(name).ok();
            let mut strip = state
                .as_ref()
                .and_then(|f| f.runs(STRIP).ok())
                .unwrap_or_default();
            strip.iter_mut().for_each(|r| scrubber.summary(r));
            // The strip covers the day unless the flow runs more often than that.
            let whole_day = match strip.last() {
                Some(oldest) if strip.len() == STRIP && oldest.started_at >= day_ago => state
                    .as_ref()
                    .and_then(|f| f.runs(DAY_RUNS).ok())
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            let day: Vec<&RunSummary> = if whole_day.is_empty() {
                &strip
            } else {
                &whole_day
            }
            .iter()
            .filter(|r| r.started_at >= day_ago)
            .collect();
            let failed_24h = failing(state.as_deref(), &day);
            strip.reverse();
            let paused = state
                .as_ref()
                .and_then(|f| engine::pause::paused(&**f).ok().flatten())
                .map(|p| scrubber.string(p.reason));
            let mut problems: Vec<String> = errors
                .get(name)
                .map(|p| p.iter().map(ToString::to_string).collect())
                .unwrap_or_default();
            problems.extend(s.error.clone());
            FlowView {
                name: name.clone(),
                file: flow.map(|f| f.file.display().to_string()).or_else(|| {
                    errors
                        .get(name)
                        .and_then(|p| p.first())
                        .map(|d| d.file.display().to_string())
                }),
                enabled: flow.map(|f| f.enabled),
                paused,
                schedule: flow.map(runtime::report::when_it_runs).or(s.schedule),
                next_run: match (s.next_run, flow) {
                    (Some(at), Some(flow)) => Some(when(at, &flow.timezone, now)),
                    _ => None,
                },
                running: s.running || holders.contains_key(name),
                node: holders.get(name).cloned(),
                strip,
                failed_24h,
                problems: problems.into_iter().map(|p| scrubber.string(p)).collect(),
            }
        })
        .collect()
}

/// Records failing after the day's runs (`day`, newest first): each record once — those
/// the state remembers as failed by one of them (none a later run or replay sent), and
/// those the newest ended run will try again. A run that failed as a whole (its source
/// unread) shows in the strip, not here.
fn failing(state: Option<&dyn engine::FlowState>, day: &[&RunSummary]) -> u64 {
    let (Some(state), Some(first)) = (state, day.iter().map(|r| r.id).min()) else {
        return 0;
    };
    let remembered = state.failed_since(first).unwrap_or(0);
    let retrying = day
        .iter()
        .find(|r| r.status != RunStatus::Running)
        .map_or(0, |r| r.counts.retrying);
    remembered + retrying
}

/// A time as a person reads it: in the flow's zone, with how far off it is
/// (`2026-11-28 19:30 EET, in 12 min`).
fn when(at: DateTime<Utc>, zone: &chrono_tz::Tz, now: DateTime<Utc>) -> String {
    let local = at.with_timezone(zone).format("%Y-%m-%d %H:%M %Z");
    let minutes = (at - now).num_minutes();
    let off = match minutes {
        m if m < 1 => "now".to_string(),
        m if m < 60 => format!("in {m} min"),
        m if m < 48 * 60 => format!("in {} h {} min", m / 60, m % 60),
        m => format!("in {} days", m / (24 * 60)),
    };
    format!("{local}, {off}")
}

/// Which of a run's failed records (by their place in the run) a later run sent — a
/// replay, or the next run once the service was fixed — and in which run.
pub fn resent(
    shared: &Shared,
    flow: &str,
    run: u64,
    rows: &[engine::RowOutcome],
) -> std::collections::BTreeMap<u64, u64> {
    let Ok(state) = shared.store.flow(flow) else {
        return Default::default();
    };
    rows.iter()
        .filter(|row| row.status == engine::RowStatus::Failed)
        .filter_map(|row| match state.handled(&row.key) {
            Ok(Some(h)) if h.run > run && h.status == engine::RowStatus::Sent => {
                Some((row.seq, h.run))
            }
            _ => None,
        })
        .collect()
}

/// What a flow does, as its page shows it: where records come from and go, its
/// description, and its map as receiver field ← template (secrets scrubbed).
pub fn shape(shared: &Shared, name: &str) -> Option<super::pages::FlowShape> {
    use runtime::flows::MapValue;
    fn shown(value: &MapValue) -> String {
        match value {
            MapValue::Template(t) => t.clone(),
            MapValue::Literal(v) => v.to_string(),
            MapValue::List(items) => format!(
                "[{}]",
                items.iter().map(shown).collect::<Vec<_>>().join(", ")
            ),
            MapValue::Object(pairs) => format!(
                "{{{}}}",
                pairs
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", shown(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
    let served = shared.snapshot();
    let flow = served.project.flows.get(name)?;
    let scrubber = shared.scrubber();
    Some(super::pages::FlowShape {
        route: match flow.steps.is_empty() {
            true => format!(
                "{} → {} · {}",
                flow.source.connector, flow.receiver.connector, flow.receiver.action
            ),
            false => format!(
                "{} → {}",
                flow.source.connector,
                flow.steps
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(" → ")
            ),
        },
        account: flow.receiver.account.clone(),
        lookup: flow
            .lookup
            .as_ref()
            .map(|l| format!("{} · {} as {}", l.connector, l.action, l.as_name)),
        description: flow.description.clone(),
        map: flow
            .map
            .iter()
            .map(|entry| (entry.field.clone(), scrubber.string(shown(&entry.value))))
            .collect(),
        steps: flow
            .steps
            .iter()
            .map(|step| {
                use runtime::flows::steps::StepKind;
                let (what, map) = match &step.kind {
                    StepKind::Lookup(l) => (
                        format!("look-up {} · {}", l.connector, l.action),
                        vec![("query".to_string(), scrubber.string(l.query.clone()))],
                    ),
                    StepKind::Action { receiver, map, .. } => (
                        format!("{} · {}", receiver.connector, receiver.action),
                        map.iter()
                            .map(|e| (e.field.clone(), scrubber.string(shown(&e.value))))
                            .collect(),
                    ),
                };
                super::pages::StepShape {
                    name: step.name.clone(),
                    what,
                    account: step.account().0.to_string(),
                    when: step.when.as_ref().map(|w| w.spec()),
                    map,
                }
            })
            .collect(),
    })
}

/// How many flows use account `name` (as their source's, receiver's or look-up's).
pub fn used_by(project: &runtime::flows::Project, name: &str) -> usize {
    project
        .flows
        .values()
        .filter(|flow| {
            flow.receiver.account == name
                || flow.source.account.as_ref().is_some_and(|(a, _)| a == name)
                || flow.lookup.as_ref().is_some_and(|l| l.account == name)
        })
        .count()
}

/// How many records the preview page shows.
pub const PREVIEWED: usize = 3;

/// What a flow would send next: where its records came from, and the first
/// [`PREVIEWED`] not handled before (a pushed flow's events, handled or not, marked),
/// scrubbed of every secret the accounts hold.
pub async fn preview(
    shared: &Shared,
    name: &str,
) -> anyhow::Result<(String, Vec<runtime::preview::Preview>)> {
    let served = shared.snapshot();
    let flow = served.project.flows.get(name).ok_or_else(|| {
        anyhow::anyhow!("`{name}` has problems to fix before it can be previewed")
    })?;
    preview_in(shared, &served.project, flow).await
}

/// [`preview`] of `flow` as `project` has it (an edit not saved yet, in the editor).
pub async fn preview_in(
    shared: &Shared,
    project: &runtime::flows::Project,
    flow: &runtime::flows::Flow,
) -> anyhow::Result<(String, Vec<runtime::preview::Preview>)> {
    let previewer = runtime::preview::Previewer::new(flow, &project.accounts)?;
    let state = shared.store.flow(&flow.name)?;
    let (records, from) = runtime::preview::records(project, flow, Some(&*state)).await?;
    let pushed = flow.source.is_push();
    let now = Utc::now();
    let mut previews = Vec::new();
    for record in &records {
        if previews.len() >= PREVIEWED {
            break;
        }
        let handled = engine::handled_before(&*state, record, previewer.lookup.as_ref(), flow)
            .ok()
            .map(|run| run.is_some());
        if handled == Some(true) && !pushed {
            continue;
        }
        previews.push(previewer.record(record, handled, now).await);
    }
    let scrubber = shared.scrubber();
    previews.iter_mut().for_each(|p| p.scrub(&scrubber));
    Ok((format!("{} record(s) {from}", records.len()), previews))
}

/// Which runs a flow's run log shows.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
pub struct RunFilter {
    /// Only runs with errors (failed records, or the run itself failed).
    #[serde(default)]
    pub errors: bool,
    /// Hide runs that found nothing new and had no error.
    #[serde(default)]
    pub hide_empty: bool,
    /// Only runs started so (`schedule`, `manual`, `event`, …); empty: any.
    #[serde(default, deserialize_with = "empty_is_none")]
    pub trigger: Option<engine::Trigger>,
    /// Only runs that ended so (`ok`, `failed`, `interrupted`, `running`); empty: any.
    #[serde(default, deserialize_with = "empty_is_none")]
    pub status: Option<RunOutcome>,
    /// Only runs started on this day, in the flow's time zone; empty: any.
    #[serde(default, deserialize_with = "empty_is_none")]
    pub day: Option<chrono::NaiveDate>,
    /// Runs older than this id (the next page).
    pub before: Option<u64>,
}

/// How a run ended, as the run log's badges say it (a run that failed records is
/// `failed`, though its status is `succeeded`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunOutcome {
    Ok,
    Failed,
    Interrupted,
    Running,
}

impl RunOutcome {
    pub const ALL: [(RunOutcome, &'static str); 4] = [
        (RunOutcome::Ok, "ok"),
        (RunOutcome::Failed, "failed"),
        (RunOutcome::Interrupted, "interrupted"),
        (RunOutcome::Running, "running"),
    ];

    pub fn of(run: &RunSummary) -> RunOutcome {
        match run.status {
            RunStatus::Running => RunOutcome::Running,
            RunStatus::Interrupted => RunOutcome::Interrupted,
            RunStatus::Failed => RunOutcome::Failed,
            RunStatus::Succeeded if run.counts.failed > 0 => RunOutcome::Failed,
            RunStatus::Succeeded => RunOutcome::Ok,
        }
    }

    pub fn word(self) -> &'static str {
        RunOutcome::ALL
            .iter()
            .find(|(o, _)| *o == self)
            .map_or("", |(_, w)| w)
    }
}

/// A form's empty field (`trigger=`: the "any" choice) as no value.
fn empty_is_none<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let text: Option<String> = serde::Deserialize::deserialize(deserializer)?;
    match text.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => serde_json::from_value(serde_json::Value::String(text.to_string()))
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

impl RunFilter {
    fn keeps(&self, run: &RunSummary, zone: &chrono_tz::Tz) -> bool {
        let erred = run.counts.failed > 0
            || matches!(run.status, RunStatus::Failed | RunStatus::Interrupted);
        // Nothing new: a poller reads every row again on each run, so "fetched nothing"
        // would hide nothing; a run that sent nothing new and had no error is empty.
        let empty = run.counts.new == 0 && run.counts.sent == 0 && !erred;
        self.before.is_none_or(|b| run.id < b)
            && (!self.errors || erred)
            && !(self.hide_empty && empty && run.status != RunStatus::Running)
            && self.trigger.is_none_or(|t| run.trigger == t)
            && self.status.is_none_or(|o| RunOutcome::of(run) == o)
            && self
                .day
                .is_none_or(|day| run.started_at.with_timezone(zone).date_naive() == day)
    }

    /// Whether it leaves some runs out (else the newest page is all it reads).
    fn narrows(&self) -> bool {
        self.errors
            || self.hide_empty
            || self.trigger.is_some()
            || self.status.is_some()
            || self.day.is_some()
    }
}

/// How far back a filtered run log looks for a page of matching runs.
const SCAN_RUNS: usize = 5000;

/// A page of a flow's runs, newest first, and whether older ones match.
pub fn runs(
    shared: &Shared,
    name: &str,
    filter: RunFilter,
) -> Result<(Vec<RunSummary>, bool), engine::StateError> {
    let state = shared.store.flow(name)?;
    let scrubber = shared.scrubber();
    let wanted = match filter.before {
        // Ids count down from the newest: a page before `b` is within the newest
        // (newest - b) + a page, when nothing is filtered.
        None if !filter.narrows() => RUNS_PER_PAGE + 1,
        _ => SCAN_RUNS,
    };
    let zone = shared
        .snapshot()
        .project
        .flows
        .get(name)
        .map_or(chrono_tz::UTC, |flow| flow.timezone);
    let mut page: Vec<RunSummary> = state
        .runs(wanted)?
        .into_iter()
        .filter(|r| filter.keeps(r, &zone))
        .take(RUNS_PER_PAGE + 1)
        .collect();
    let more = page.len() > RUNS_PER_PAGE;
    page.truncate(RUNS_PER_PAGE);
    page.iter_mut().for_each(|r| scrubber.summary(r));
    Ok((page, more))
}

/// A page of a run's records from `from` (only failed ones, when `failed_only`), and
/// whether more follow.
pub fn rows(
    shared: &Shared,
    name: &str,
    run: u64,
    from: u64,
    failed_only: bool,
) -> Result<(Vec<RowOutcome>, bool), engine::StateError> {
    let state = shared.store.flow(name)?;
    let mut rows = Vec::with_capacity(ROWS_PER_PAGE + 1);
    // Failed records are looked for a chunk at a time through the run.
    let chunk = if failed_only { 1000 } else { ROWS_PER_PAGE + 1 };
    walk_rows(&*state, run, from, chunk, |found| {
        rows.extend(
            found
                .into_iter()
                .filter(|r| !failed_only || r.status == engine::RowStatus::Failed),
        );
        rows.len() > ROWS_PER_PAGE || !failed_only
    })?;
    let more = rows.len() > ROWS_PER_PAGE;
    rows.truncate(ROWS_PER_PAGE);
    let scrubber = shared.scrubber();
    rows.iter_mut().for_each(|r| scrubber.outcome(r));
    Ok((rows, more))
}

/// A run's records from `from` on, read `chunk` at a time and handed to `enough` until it
/// says it has enough or the run has no more.
pub fn walk_rows(
    state: &dyn engine::FlowState,
    run: u64,
    from: u64,
    chunk: usize,
    mut enough: impl FnMut(Vec<RowOutcome>) -> bool,
) -> Result<(), engine::StateError> {
    let mut next = from;
    loop {
        let found = state.rows_from(run, next, chunk)?;
        let Some(last) = found.last().map(|r| r.seq) else {
            return Ok(());
        };
        if enough(found) {
            return Ok(());
        }
        next = last + 1;
    }
}

/// A record found by search: where, and the record.
pub struct Hit {
    pub flow: String,
    pub row: RowOutcome,
}

/// Hits shown for one search.
pub const HITS: usize = 100;

/// The records that carried `query`, newest run first.
pub fn search(shared: &Shared, query: &str) -> Result<Vec<Hit>, engine::StateError> {
    // Runs that just ended are indexed first.
    shared.indexing.catch_up(&*shared.store);
    let scrubber = shared.scrubber();
    let mut hits = Vec::new();
    for found in shared.store.search(query, HITS)? {
        let state = shared.store.flow(&found.flow)?;
        if let Some(mut row) = state
            .rows_from(found.run, found.seq, 1)?
            .into_iter()
            .find(|r| r.seq == found.seq)
        {
            scrubber.outcome(&mut row);
            hits.push(Hit {
                flow: found.flow,
                row,
            });
        }
    }
    hits.sort_by_key(|hit| std::cmp::Reverse(hit.row.at));
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_run_is_one_that_found_nothing_new_however_much_it_read() {
        let run = |fetched, new, sent, failed| RunSummary {
            version: 1,
            id: 1,
            flow: "f".into(),
            trigger: engine::Trigger::Schedule,
            started_at: Utc::now(),
            finished_at: Some(Utc::now()),
            status: RunStatus::Succeeded,
            counts: engine::Counts {
                fetched,
                new,
                sent,
                failed,
                ..Default::default()
            },
            error: None,
            node: None,
        };
        let hide = RunFilter {
            hide_empty: true,
            ..RunFilter::default()
        };
        assert!(
            !hide.keeps(&run(40, 0, 0, 0), &chrono_tz::UTC),
            "a poller's rerun with nothing new"
        );
        assert!(!hide.keeps(&run(0, 0, 0, 0), &chrono_tz::UTC));
        assert!(hide.keeps(&run(40, 1, 1, 0), &chrono_tz::UTC));
        assert!(
            hide.keeps(&run(40, 0, 0, 1), &chrono_tz::UTC),
            "an error is never hidden"
        );
        assert!(
            hide.keeps(&run(0, 0, 3, 0), &chrono_tz::UTC),
            "a replay sent something"
        );
    }

    #[test]
    fn runs_are_filtered_by_trigger_and_by_day_in_the_flows_zone() {
        let parse = |query: &str| {
            let uri: axum::http::Uri = format!("/flows/f?{query}").parse().expect("a URI");
            axum::extract::Query::<RunFilter>::try_from_uri(&uri).map(|q| q.0)
        };
        let filter = |query: &str| parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
        let at = |rfc3339: &str, trigger| RunSummary {
            version: 1,
            id: 1,
            flow: "f".into(),
            trigger,
            started_at: DateTime::parse_from_rfc3339(rfc3339)
                .map(|t| t.with_timezone(&Utc))
                .expect("a time"),
            finished_at: None,
            status: RunStatus::Succeeded,
            counts: engine::Counts::default(),
            error: None,
            node: None,
        };
        let kyiv = chrono_tz::Europe::Kyiv;
        let late = at("2026-12-06T22:30:00Z", engine::Trigger::Replay);
        // Half past midnight on the 7th in Kyiv, still the 6th in UTC.
        assert!(filter("day=2026-12-07").keeps(&late, &kyiv));
        assert!(!filter("day=2026-12-07").keeps(&late, &chrono_tz::UTC));
        assert!(filter("trigger=replay").keeps(&late, &kyiv));
        assert!(!filter("trigger=schedule").keeps(&late, &kyiv));
        // The form's "any" choices are empty fields.
        assert!(filter("trigger=&day=&status=").keeps(&late, &kyiv));
        assert!(filter("status=ok").keeps(&late, &kyiv));
        assert!(!filter("status=failed").keeps(&late, &kyiv));
        assert!(parse("trigger=sometimes").is_err());
    }

    #[test]
    fn a_next_run_reads_in_the_flows_zone_with_how_far_off_it_is() {
        let now = DateTime::parse_from_rfc3339("2026-11-28T17:18:00Z")
            .map(|t| t.with_timezone(&Utc))
            .expect("it succeeds");
        let kyiv = chrono_tz::Europe::Kyiv;
        assert_eq!(
            when(now + Duration::minutes(12), &kyiv, now),
            "2026-11-28 19:30 EET, in 12 min"
        );
        assert_eq!(
            when(now + Duration::minutes(150), &kyiv, now),
            "2026-11-28 21:48 EET, in 2 h 30 min"
        );
        assert_eq!(
            when(now + Duration::days(3), &chrono_tz::UTC, now),
            "2026-12-01 17:18 UTC, in 3 days"
        );
        assert!(when(now, &kyiv, now).ends_with("now"));
    }
}
