//! The console's HTML: one function per page and per fragment the live updates swap in.
//! Server-rendered with maud (every value escaped); htmx and its SSE extension, embedded
//! in the binary, only swap fragments in. Every form that changes something carries the
//! page's anti-forgery token.

use chrono::{DateTime, Utc};
use engine::{RowOutcome, RowStatus, RunSummary};
use maud::{html, Markup, DOCTYPE};
use runtime::{connectors, engine};

use super::views::{FlowView, Hit, RunFilter};

/// Which part of the console a page belongs to (its tab).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Flows,
    Search,
    Accounts,
    Connectors,
    None,
}

/// The frame of every page.
/// A page: `csrf` and whether the visitor signed in (then it offers to sign out).
/// What every page shows around its body: the forms' anti-forgery token, Sign out for a
/// visitor who signed in, and the toast of the action that led here.
pub struct Chrome<'a> {
    pub csrf: &'a str,
    pub signed_in: bool,
    pub flash: Option<&'a super::flash::Flash>,
}

impl Chrome<'static> {
    /// A page for nobody in particular (a problem, the sign-in).
    pub fn bare() -> Chrome<'static> {
        Chrome {
            csrf: "",
            signed_in: false,
            flash: None,
        }
    }
}

pub fn layout(title: &str, tab: Tab, chrome: Chrome<'_>, body: Markup) -> Markup {
    let Chrome {
        csrf,
        signed_in,
        flash,
    } = chrome;
    let nav = |target: Tab, href: &str, label: &str| {
        html! { a href=(href) class=[(tab == target).then_some("here")] { (label) } }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false}"#;
                title { (title) " · Switchboard" }
                link rel="stylesheet" href="/assets/console.css";
                link rel="icon" href="data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Crect width='16' height='16' rx='3' fill='%23111827'/%3E%3Cpath d='M4 5h8M4 8h5M4 11h8' stroke='%2360a5fa' stroke-width='1.6'/%3E%3C/svg%3E";
                script src="/assets/htmx.min.js" defer {}
                script src="/assets/sse.min.js" defer {}
                script src="/assets/console.js" defer {}
            }
            body data-csrf=(csrf) {
                header {
                    a.brand href="/" { "Switchboard" }
                    nav aria-label="Sections" {
                        (nav(Tab::Flows, "/", "Flows"))
                        (nav(Tab::Search, "/search", "Search"))
                        (nav(Tab::Accounts, "/accounts", "Accounts"))
                        (nav(Tab::Connectors, "/connectors", "Connectors"))
                    }
                    form.find action="/search" method="get" {
                        input type="search" name="q" placeholder="Find a record: phone, e-mail, order id…" aria-label="Find a record";
                    }
                    @if signed_in {
                        form.signout action="/logout" method="post" {
                            (csrf_field(csrf))
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                div.offline #offline role="alert" hidden data-test="offline" {
                    "The daemon does not answer: what this page shows may be out of date. It reconnects by itself."
                }
                @if let Some(flash) = flash {
                    div #toast role="status" data-test="toast" class=(if flash.ok { "toast ok" } else { "toast refused" }) {
                        (ticks(&flash.text))
                    }
                }
                main { (body) }
            }
        }
    }
}

/// Text whose `backticked` parts are code (problems and reasons are written that way),
/// shown as such rather than with their backticks.
pub fn ticks(text: &str) -> Markup {
    html! {
        @for (i, part) in text.split('`').enumerate() {
            @if i % 2 == 1 { code { (part) } } @else { (part) }
        }
    }
}

/// A hidden anti-forgery field.
fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

/// A POST button.
fn action(csrf: &str, path: &str, label: &str, class: &str, test: &str) -> Markup {
    named_action(csrf, path, (label, None), class, test)
}

/// A POST button whose label alone does not say what it acts on (a row's "Run now"):
/// `what` follows the label for assistive technology only, and the id keeps the
/// keyboard's focus on it when a live update redraws the row.
fn named_action(
    csrf: &str,
    path: &str,
    (label, what): (&str, Option<(&str, &str)>),
    class: &str,
    test: &str,
) -> Markup {
    html! {
        form.inline method="post" action=(path) {
            (csrf_field(csrf))
            @match what {
                Some((id, what)) => button type="submit" id=(id) class=(class) data-test=(test) { (label) span.sr { " " (what) } },
                None => button type="submit" class=(class) data-test=(test) { (label) },
            }
        }
    }
}

pub fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn took(run: &RunSummary) -> String {
    match run.finished_at {
        Some(end) => {
            let ms = (end - run.started_at).num_milliseconds().max(0);
            if ms < 1000 {
                format!("{ms} ms")
            } else {
                format!("{:.1} s", ms as f64 / 1000.0)
            }
        }
        None => "running".into(),
    }
}

fn status_word(run: &RunSummary) -> &'static str {
    super::views::RunOutcome::of(run).word()
}

fn run_badge(flow: &str, run: &RunSummary) -> Markup {
    let c = &run.counts;
    html! {
        a class={"badge " (status_word(run))} href=(format!("/flows/{}/runs/{}", enc(flow), run.id)) {
            "#" (run.id) " " (status_word(run)) " · sent " (c.sent) ", failed " (c.failed)
        }
    }
}

/// What identifies a live fragment as rendered: the page tells its live stream what it
/// shows, and the stream sends only what differs from it (a swap replaces the rows a
/// person may be clicking).
pub fn fingerprint(fragment: &str) -> String {
    use sha2::Digest as _;
    hex::encode(&sha2::Sha256::digest(fragment.as_bytes())[..8])
}

/// A path segment, percent-encoded.
pub fn enc(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

// --- Flows ---

pub struct FlowsPage<'a> {
    pub flows: &'a [FlowView],
    pub total: usize,
    pub page: usize,
    pub pages: usize,
    pub filter: &'a str,
    pub general: &'a [String],
}

pub fn flows(page: &FlowsPage<'_>, csrf: &str) -> Markup {
    let query = |p: usize| format!("/?page={p}&q={}", enc(page.filter));
    let rows = flow_rows(page.flows, csrf);
    let live = format!(
        "/live/flows?page={}&q={}&shown={}",
        page.page,
        enc(page.filter),
        fingerprint(&rows.0)
    );
    html! {
        h1 { "Flows" }
        @for problem in page.general {
            p.problem { (ticks(problem)) }
        }
        form.filter method="get" action="/" {
            input type="search" name="q" value=(page.filter) placeholder="Filter by name" aria-label="Filter the flows by name";
            " " (page.total) " flow(s) · "
            a href="/new" data-test="new-flow" { "New flow" }
        }
        table.flows {
            thead { tr {
                th { "On" } th { "Flow" } th { "Runs" } th { "Next run" } th { "Last run" }
                th { "Last 30 runs" } th { "Failed 24 h" } th { "Actions" }
            } }
            tbody hx-ext="sse" sse-connect=(live) sse-swap="flows" { (rows) }
        }
        @if page.pages > 1 {
            nav.pages aria-label="Pages" {
                @if page.page > 1 { a href=(query(page.page - 1)) { "← previous" } " " }
                "page " (page.page) " of " (page.pages)
                @if page.page < page.pages { " " a href=(query(page.page + 1)) { "next →" } }
            }
        }
    }
}

/// The rows of the flows table (swapped in live).
pub fn flow_rows(flows: &[FlowView], csrf: &str) -> Markup {
    html! {
        @for flow in flows {
            tr id=(format!("flow-{}", flow.name)) data-flow=(flow.name) {
                td data-label="On" {
                    @match flow.enabled {
                        Some(on) => {
                            form.inline method="post" action=(format!("/flows/{}/enabled", enc(&flow.name))) {
                                (csrf_field(csrf))
                                input type="hidden" name="enabled" value=(if on { "false" } else { "true" });
                                button type="submit" class=(if on { "toggle on" } else { "toggle off" })
                                    id=(format!("toggle-{}", flow.name))
                                    data-test="toggle" aria-pressed=(on)
                                    title=(if on { "On: click to switch off (edits the file's enabled: line)" } else { "Off: click to switch on" }) {
                                    span.knob {} span.state { (if on { "on" } else { "off" }) } span.sr { " " (flow.name) }
                                }
                            }
                        }
                        None => span.badge.failed { "invalid" },
                    }
                }
                td data-label="Flow" {
                    a.name href=(format!("/flows/{}", enc(&flow.name))) { (flow.name) }
                    @if let Some(file) = &flow.file { div.file { (file) } }
                    @if let Some(reason) = &flow.paused { div.problem { "paused: " (ticks(reason)) } }
                    @for problem in &flow.problems { div.problem { (ticks(problem)) } }
                }
                td data-label="Runs" { (flow.schedule.as_deref().unwrap_or("—")) }
                td data-label="Next run" { @if flow.running { span.badge.running { "running" } @if let Some(node) = &flow.node { " on " span.node { (node) } } } @else if flow.paused.is_some() { span.badge.uncertain { "paused" } } @else { (flow.next_run.as_deref().unwrap_or("—")) } }
                td data-label="Last run" data-test="last-run" {
                    @match flow.last() { Some(run) => (run_badge(&flow.name, run)), None => "never" }
                }
                td.strip data-label="Last 30 runs" {
                    @for run in &flow.strip {
                        a class=(status_word(run)) href=(format!("/flows/{}/runs/{}", enc(&flow.name), run.id))
                            title=(format!("#{} {} {}: sent {}, failed {}", run.id, time(run.started_at), status_word(run), run.counts.sent, run.counts.failed)) {}
                    }
                }
                td.num data-label="Failed 24 h" { (flow.failed_24h) }
                td data-label="Actions" {
                    @if flow.enabled.is_some() {
                        (named_action(
                            csrf,
                            &format!("/flows/{}/run", enc(&flow.name)),
                            ("▶ Run now", Some((&format!("run-{}", flow.name), &flow.name))),
                            "run",
                            "run-now",
                        ))
                    }
                }
            }
        }
    }
}

// --- A flow's run log ---

/// What a flow does (its valid version).
pub struct FlowShape {
    /// `csv → 8x8 · send_sms`.
    pub route: String,
    /// The receiver's account.
    pub account: String,
    pub lookup: Option<String>,
    pub description: Option<String>,
    /// Receiver field ← its template.
    pub map: Vec<(String, String)>,
    /// A flow with `steps:`: each step (and no `route`'s receiver, `map`).
    pub steps: Vec<StepShape>,
}

/// One step of a flow with `steps:`, as its page shows it.
pub struct StepShape {
    pub name: String,
    /// `aranda · create_case`, or `look-up cinnox · get_contact`.
    pub what: String,
    pub account: String,
    /// Its `when:`, as written.
    pub when: Option<String>,
    /// Field ← template (an action), or `query` ← template (a look-up).
    pub map: Vec<(String, String)>,
}

pub struct FlowPage<'a> {
    pub flow: &'a FlowView,
    pub runs: &'a [RunSummary],
    pub more: bool,
    pub filter: RunFilter,
    /// What it does (none for an invalid flow).
    pub shape: Option<&'a FlowShape>,
    /// The flow's file as it is on disk (scrubbed), shown highlighted.
    pub text: Option<&'a str>,
}

/// A YAML file highlighted line by line: comments, keys, quoted strings and `{{…}}`
/// templates each in a span of their own (everything else as written). No parser: a line
/// it misreads is only coloured less.
fn yaml(text: &str) -> Markup {
    // A value: quoted strings and templates marked, the rest plain.
    let value = |v: &str| {
        let trimmed = v.trim_start();
        html! {
            @if trimmed.starts_with('"') || trimmed.starts_with('\'') {
                span.y-str { (v) }
            } @else if v.contains("{{") {
                span.y-tpl { (v) }
            } @else {
                (v)
            }
        }
    };
    html! {
        @for line in text.lines() {
            @let body = line.trim_start();
            @let indent = &line[..line.len() - body.len()];
            @let (code, comment) = match body.find(" #") {
                _ if body.starts_with('#') => ("", body),
                Some(at) if !body[..at].contains('"') => (&body[..at], &body[at..]),
                _ => (body, ""),
            };
            @let key = code
                .trim_start_matches("- ")
                .split_once(':')
                .filter(|(k, _)| !k.is_empty() && !k.contains(['"', '\'', '{', ' ']));
            (indent)
            @match key {
                Some((k, rest)) => {
                    @let dash = if code.starts_with("- ") { "- " } else { "" };
                    (dash) span.y-key { (k) } ":" (value(rest))
                }
                None => { (value(code)) }
            }
            @if !comment.is_empty() { span.y-com { (comment) } }
            "\n"
        }
    }
}

/// The triggers a run log can be narrowed to, as the run log writes them.
const RUN_TRIGGERS: &[&str] = &["schedule", "manual", "event", "after", "replay", "takeover"];

fn filter_query(filter: RunFilter) -> String {
    let mut q = Vec::new();
    if filter.errors {
        q.push("errors=true".to_string());
    }
    if filter.hide_empty {
        q.push("hide_empty=true".to_string());
    }
    if let Some(trigger) = filter.trigger {
        q.push(format!(
            "trigger={}",
            runtime::report::trigger_word(trigger)
        ));
    }
    if let Some(status) = filter.status {
        q.push(format!("status={}", status.word()));
    }
    if let Some(day) = filter.day {
        q.push(format!("day={day}"));
    }
    if let Some(b) = filter.before {
        q.push(format!("before={b}"));
    }
    q.join("&")
}

pub fn flow(page: &FlowPage<'_>, csrf: &str) -> Markup {
    let flow = page.flow;
    let name = enc(&flow.name);
    let f = page.filter;
    let with = |errors: bool, hide_empty: bool| {
        format!(
            "/flows/{name}?{}",
            filter_query(RunFilter {
                errors,
                hide_empty,
                before: None,
                ..f
            })
        )
    };
    let trigger = f.trigger.map(runtime::report::trigger_word);
    let rows = run_rows(&flow.name, page.runs);
    let live = format!(
        "/live/flows/{name}?{}&shown={}",
        filter_query(RunFilter { before: None, ..f }),
        fingerprint(&rows.0)
    );
    html! {
        h1 { (flow.name) }
        dl.facts {
            dt { "File" } dd { (flow.file.as_deref().unwrap_or("—")) }
            dt { "Runs" } dd { (flow.schedule.as_deref().unwrap_or("—")) }
            dt { "Next run" } dd { @if flow.paused.is_some() { "none while paused: Resume runs it again" } @else { (flow.next_run.as_deref().unwrap_or("—")) } }
            dt { "Switched" } dd { (match flow.enabled { Some(true) => "on", Some(false) => "off", None => "invalid" }) }
            @if let Some(reason) = &flow.paused { dt { "Paused" } dd.problem { (ticks(reason)) } }
        }
        @for problem in &flow.problems { p.problem { (ticks(problem)) } }
        @if let Some(shape) = page.shape {
            section.card.shape {
                h2 { "What it does" }
                @if let Some(description) = &shape.description { p { (description) } }
                @if shape.steps.is_empty() {
                p { (shape.route) " with the account " code { (shape.account) }
                    @if let Some(lookup) = &shape.lookup { "; each record first looked up in " (lookup) } }
                table.fields.map {
                    thead { tr { th { "Receiver field" } th { "← from the record" } } }
                    tbody { @for (field, template) in &shape.map {
                        tr { td data-label="Receiver field" { code { (field) } } td data-label="From the record" { code { (template) } } }
                    } }
                }
                } @else {
                    p { (shape.route) ", in " (shape.steps.len()) " steps; a later step reads an earlier one's answer as " code { "steps.NAME" } ":" }
                    ol.steps data-test="flow-steps" {
                        @for step in &shape.steps {
                            li {
                                b { (step.name) } " — " (step.what) " with the account " code { (step.account) }
                                @if let Some(when) = &step.when { " · only when " code { (when) } }
                                table.fields.map {
                                    thead { tr { th { "Field" } th { "← from the record and earlier steps" } } }
                                    tbody { @for (field, template) in &step.map {
                                        tr { td data-label="Field" { code { (field) } } td data-label="From" { code { (template) } } }
                                    } }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(text) = page.text {
            details.file data-test="file" {
                summary { "The file, as it is" }
                pre.yaml { code { (yaml(text)) } }
            }
        }
        div.actions {
            @if flow.enabled.is_some() {
                (action(csrf, &format!("/flows/{name}/run"), "▶ Run now", "run", "run-now"))
                (action(csrf, &format!("/flows/{name}/replay"), "Replay every failed record", "", "replay-all"))
            }
            @if flow.paused.is_some() {
                (action(csrf, &format!("/flows/{name}/resume"), "Resume", "", "resume"))
            }
            a href=(format!("/flows/{name}/edit")) data-test="edit" { "Edit the file" }
            a href=(format!("/flows/{name}/preview")) data-test="preview" { "What it sends next" }
        }
        nav.filters aria-label="Filter the runs" {
            a href=(with(!f.errors, f.hide_empty)) class=[f.errors.then_some("here")] data-test="only-errors" { "only runs with errors" }
            " · "
            a href=(with(f.errors, !f.hide_empty)) class=[f.hide_empty.then_some("here")] { "hide empty runs" }
        }
        form.filter.runs method="get" action=(format!("/flows/{name}")) data-test="run-filter" {
            @if f.errors { input type="hidden" name="errors" value="true"; }
            @if f.hide_empty { input type="hidden" name="hide_empty" value="true"; }
            label { "Trigger "
                select name="trigger" {
                    option value="" { "any" }
                    @for word in RUN_TRIGGERS {
                        option value=(word) selected[trigger.as_deref() == Some(*word)] { (word) }
                    }
                }
            }
            " "
            label { "Status "
                select name="status" {
                    option value="" { "any" }
                    @for (outcome, word) in super::views::RunOutcome::ALL {
                        option value=(word) selected[f.status == Some(outcome)] { (word) }
                    }
                }
            }
            " "
            label { "Day " input type="date" name="day" value=[f.day.map(|d| d.to_string())]; }
            " " button type="submit" { "Show" }
            @if f.trigger.is_some() || f.status.is_some() || f.day.is_some() {
                " " a href=(format!("/flows/{name}?{}", filter_query(RunFilter { errors: f.errors, hide_empty: f.hide_empty, ..RunFilter::default() }))) data-test="clear-filter" { "any trigger, status and day" }
            }
        }
        table.runs {
            thead { tr {
                th { "Run" } th { "Trigger" } th { "Started" } th { "Took" } th { "Fetched" }
                th { "New" } th { "Sent" } th { "Failed" } th { "Skipped" } th { "Filtered" } th { "Status" }
            } }
            @if f.before.is_none() {
                tbody hx-ext="sse" sse-connect=(live) sse-swap="runs" { (rows) }
            } @else {
                tbody { (rows) }
            }
        }
        // Hidden by the style sheet once a run arrives live.
        @if page.runs.is_empty() {
            @if f.errors || f.hide_empty || f.trigger.is_some() || f.status.is_some() || f.day.is_some() {
                p.empty data-test="no-runs" { "No run matches these filters." }
            } @else {
                p.empty data-test="no-runs" { "No runs yet: Run now starts one, or wait for its schedule." }
            }
        }
        @if page.more {
            @if let Some(last) = page.runs.last() {
                nav.pages aria-label="Older runs" { a href=(format!("/flows/{name}?{}", filter_query(RunFilter { before: Some(last.id), ..f }))) { "older runs →" } }
            }
        }
    }
}

/// The rows of a run log (swapped in live while runs go on).
pub fn run_rows(flow: &str, runs: &[RunSummary]) -> Markup {
    html! {
        @for run in runs {
            tr class=(status_word(run)) data-run=(run.id) {
                td data-label="Run" { a href=(format!("/flows/{}/runs/{}", enc(flow), run.id)) { "#" (run.id) } }
                td data-label="Trigger" { (runtime::report::trigger_word(run.trigger))
                    @if let Some(node) = &run.node { " on " span.node { (node) } } }
                td data-label="Started" { (time(run.started_at)) }
                td data-label="Took" { (took(run)) }
                td.num data-label="Fetched" { (run.counts.fetched) }
                td.num data-label="New" { (run.counts.new) }
                td.num data-label="Sent" data-test="sent" { (run.counts.sent) }
                td.num data-label="Failed" data-test="failed" { (run.counts.failed) }
                td.num data-label="Skipped" { (run.counts.skipped) }
                td.num data-label="Filtered" { (run.counts.filtered) }
                td data-label="Status" { span class={"badge " (status_word(run))} { (status_word(run)) }
                    @if let Some(error) = &run.error { div.problem { (ticks(error)) } } }
            }
        }
    }
}

// --- A run ---

pub struct RunPage<'a> {
    pub flow: &'a str,
    pub run: &'a RunSummary,
    pub rows: &'a [RowOutcome],
    pub from: u64,
    pub more: bool,
    /// The record to point at (from search).
    pub at: Option<u64>,
    /// Only failed records are listed.
    pub failed_only: bool,
    /// Failed records a later run sent (their place → that run).
    pub resent: &'a std::collections::BTreeMap<u64, u64>,
}

pub fn run(page: &RunPage<'_>, csrf: &str) -> Markup {
    let run = page.run;
    let name = enc(page.flow);
    let base = format!("/flows/{name}/runs/{}", run.id);
    let per_page = super::views::ROWS_PER_PAGE as u64;
    let only = if page.failed_only { "&failed=true" } else { "" };
    html! {
        p.crumbs { a href=(format!("/flows/{name}")) { (page.flow) } " › run #" (run.id) }
        h1 { (page.flow) " · run #" (run.id) " " span class={"badge " (status_word(run))} { (status_word(run)) } }
        dl.facts {
            dt { "Trigger" } dd { (runtime::report::trigger_word(run.trigger)) }
            @if let Some(node) = &run.node { dt { "Node" } dd.node { (node) } }
            dt { "Started" } dd { (time(run.started_at)) }
            dt { "Took" } dd { (took(run)) }
            dt { "Records" } dd {
                "fetched " (run.counts.fetched) ", new " (run.counts.new) ", sent " (run.counts.sent)
                ", failed " (run.counts.failed) ", skipped " (run.counts.skipped) ", filtered " (run.counts.filtered)
            }
            @if let Some(error) = &run.error { dt { "Error" } dd.problem { (ticks(error)) } }
        }
        p.small { a href=(format!("{base}/records.csv")) data-test="csv" download { "Every record as CSV" } }
        @let ended = run.status != engine::RunStatus::Running;
        @let uncertain = run.status == engine::RunStatus::Interrupted || page.rows.iter().any(|r| r.uncertain);
        @if ended && (run.counts.failed > 0 || uncertain) {
            div.actions {
                @if run.counts.failed > 0 {
                    (action(csrf, &format!("/flows/{name}/replay?run={}", run.id), "Replay failed", "", "replay-failed"))
                }
                @if uncertain {
                    (action(csrf, &format!("/flows/{name}/replay?run={}&uncertain=true", run.id), "Replay uncertain", "", "replay-uncertain"))
                }
            }
        }
        nav.filters aria-label="Filter the records" {
            @if page.failed_only {
                a href=(base) { "every record" } " · " b { "only failed records" }
            } @else {
                b { "every record" } " · " a href=(format!("{base}?failed=true")) data-test="only-failed" { "only failed records" }
            }
        }
        table.rows {
            thead { tr { th { "#" } th { "Key" } th { "Status" } th { "Why" } th { "Service id" } th { "Record and request" } } }
            tbody {
                @for row in page.rows {
                    tr id=(format!("row-{}", row.seq)) class=[(page.at == Some(row.seq)).then_some("found")] data-key=(row.key) {
                        td.num data-label="#" { (row.seq) }
                        td data-label="Key" { (row.key) }
                        td data-label="Status" {
                            span class={"badge " (row_word(row))} { (row_word(row)) }
                            @if row.repeat { " " span.badge.uncertain title="sent again after a crash: the recipient may have it twice" { "repeat" } }
                            @if row.uncertain { " " span.badge.uncertain title="a crash cut its send short; replay it with Replay uncertain" { "uncertain" } }
                            @if let Some(later) = page.resent.get(&row.seq) {
                                " " a.badge.sent href=(format!("/flows/{name}/runs/{later}")) data-test="resent" { "resent in #" (later) }
                            } @else if row.retry_next_run { div.small { "tried again next run" } }
                        }
                        td data-label="Why" {
                            (row.reason.as_deref().unwrap_or("")) @if let Some(code) = &row.code { " " code { (code) } }
                            @if !row.steps.is_empty() {
                                ol.steps data-test="steps" aria-label="Steps" {
                                    @for step in &row.steps {
                                        li {
                                            b { (step.step) } " "
                                            span class={"badge " (step_word(step))} { (step_word(step)) }
                                            @if step.repeat { " " span.badge.uncertain title="sent again after a crash: the recipient may have it twice" { "repeat" } }
                                            @if let Some(id) = &step.remote_id { " " code { (id) } }
                                            @if let Some(reason) = &step.reason { " " span.small { (reason) } }
                                        }
                                    }
                                }
                            }
                        }
                        td data-label="Service id" { (row.remote_id.as_deref().unwrap_or("")) }
                        td data-label="Record and request" {
                            details {
                                summary { (row.record.len()) " field(s)" @if row.sent.is_some() { ", the request" } ", its timeline" }
                                ol.timeline data-test="timeline" aria-label="Timeline" {
                                    li { (row.at.format("%H:%M:%S%.3f")) " UTC, " (into_run(run, row)) " into the run, after "
                                        (row.attempts) (if row.attempts == 1 { " attempt" } else { " attempts" }) }
                                    @if let Some(call) = &row.call { li { code { (call) } } }
                                    li { "the service answered: "
                                        @match (&row.remote_id, &row.reason) {
                                            (Some(id), _) => { "id " code { (id) } }
                                            (None, Some(reason)) => { (reason) }
                                            (None, None) => { "—" }
                                        }
                                    }
                                }
                                pre { (pretty(&serde_json::Value::Object(row.record.clone()))) }
                                @if row.steps.is_empty() {
                                    @if let Some(sent) = &row.sent { p.small { "as sent:" } pre { (pretty(sent)) } }
                                }
                                @for step in &row.steps {
                                    @if let Some(sent) = &step.sent { p.small { "step " (step.step) ", as sent:" } pre { (pretty(sent)) } }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if page.rows.is_empty() { p { "No records in this page." } }
        nav.pages aria-label="Pages" {
            @if page.from > 1 {
                a href=(format!("{base}?from={}{only}", if page.failed_only { 1 } else { page.from.saturating_sub(per_page).max(1) })) { (if page.failed_only { "← first" } else { "← previous" }) } " "
            }
            @match (page.rows.first(), page.rows.last()) {
                (Some(first), Some(last)) => { "records " (first.seq) "–" (last.seq) }
                _ => {}
            }
            @if page.more {
                @if let Some(last) = page.rows.last() { " " a href=(format!("{base}?from={}{only}", last.seq + 1)) { "next →" } }
            }
        }
    }
}

fn row_word(row: &RowOutcome) -> &'static str {
    match row.status {
        RowStatus::Sent => "sent",
        RowStatus::Skipped => "skipped",
        RowStatus::Failed => "failed",
        RowStatus::Filtered => "filtered",
    }
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

// --- Search ---

/// The search page; `asked`: a query was given (it is not written into the page).
pub fn search(asked: bool, hits: &[Hit]) -> Markup {
    html! {
        h1 { "Search" }
        form.filter method="get" action="/search" {
            input type="search" name="q" data-from-address="q" aria-label="Find records carrying a value" placeholder="A phone number, an e-mail, an order id, a key…" autofocus;
            " " button type="submit" { "Find" }
        }
        @if asked {
            p data-test="hits" { (hits.len()) " record(s) carried what you searched for"
                @if hits.len() >= super::views::HITS { " (the first " (super::views::HITS) ")" } }
            table.rows {
                thead { tr { th { "Flow" } th { "Run" } th { "#" } th { "Key" } th { "Status" } th { "When" } th { "Why" } } }
                tbody {
                    @for hit in hits {
                        @let per_page = super::views::ROWS_PER_PAGE as u64;
                        @let from = (hit.row.seq.saturating_sub(1) / per_page) * per_page + 1;
                        @let href = format!("/flows/{}/runs/{}?from={from}&at={}#row-{}", enc(&hit.flow), hit.row.run, hit.row.seq, hit.row.seq);
                        tr data-test="hit" {
                            td data-label="Flow" { a href=(format!("/flows/{}", enc(&hit.flow))) { (hit.flow) } }
                            td data-label="Run" { a href=(href) { "#" (hit.row.run) } }
                            td.num data-label="#" { a href=(href) data-test="hit-link" { (hit.row.seq) } }
                            td data-label="Key" { (hit.row.key) }
                            td data-label="Status" { span class={"badge " (row_word(&hit.row))} { (row_word(&hit.row)) } }
                            td data-label="When" { (time(hit.row.at)) }
                            td data-label="Why" { (hit.row.reason.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}

// --- Accounts ---

/// An account's row: being checked (it asks for its own result), or checked.
pub enum AccountRow {
    Checking {
        account: String,
        connector: &'static str,
        used_by: usize,
    },
    /// Checked, and how many flows use it.
    Checked(connectors::check::AccountStatus, usize),
}

impl AccountRow {
    pub fn name(&self) -> &str {
        match self {
            AccountRow::Checking { account, .. } => account,
            AccountRow::Checked(s, _) => &s.account,
        }
    }
}

pub fn accounts(file: &str, rows: &[AccountRow]) -> Markup {
    html! {
        h1 { "Accounts" }
        p.small { "From " code { (file) } ". Each is checked now with a harmless call, each row as its service answers; secrets are never shown." }
        @if rows.is_empty() { p { "No accounts: add them to " code { (file) } " (" code { "switchboard new" } " writes the ones a flow needs)." } }
        table {
            thead { tr { th { "Account" } th { "Connector" } th { "Used by" } th { "State" } th { "What the service said" } } }
            tbody { @for row in rows { (account_row(row)) } }
        }
    }
}

/// "3 flows", "1 flow", "no flow".
fn flows_count(n: usize) -> String {
    match n {
        0 => "no flow".into(),
        1 => "1 flow".into(),
        n => format!("{n} flows"),
    }
}

/// One row of the accounts page.
pub fn account_row(row: &AccountRow) -> Markup {
    html! {
        @match row {
            AccountRow::Checking { account, connector, used_by } => {
                tr data-account=(account) hx-get=(format!("/accounts/{}/status", enc(account)))
                    hx-trigger="load" hx-swap="outerHTML" {
                    td data-label="Account" { (account) }
                    td data-label="Connector" { (connector) }
                    td data-label="Used by" { (flows_count(*used_by)) }
                    td data-label="State" { span.badge { "checking…" } }
                    td data-label="What the service said" {}
                }
            }
            AccountRow::Checked(s, used_by) => {
                tr data-account=(s.account) {
                    td data-label="Account" { (s.account) }
                    td data-label="Connector" { (s.connector) }
                    td data-label="Used by" { (flows_count(*used_by)) }
                    td data-label="State" { span class={"badge " (if s.active { "ok" } else { "failed" })} { (if s.active { "active" } else { "inactive" }) } }
                    td data-label="What the service said" { (s.detail) }
                }
            }
        }
    }
}

// --- Connectors ---

pub fn connectors() -> Markup {
    use connectors::card::Field;
    let cards: Vec<&connectors::card::Card> = connectors::catalogue::cards().collect();
    let fields = |fields: &[Field]| {
        html! {
            @if !fields.is_empty() {
                table.fields {
                    thead { tr { th { "Field" } th { "Type" } th { "Required" } th { "About" } } }
                    tbody { @for f in fields { tr {
                        td data-label="Field" { code { (f.name) } @if f.secret { " " span.badge.uncertain { "secret" } } }
                        td data-label="Type" { (f.kind) }
                        td data-label="Required" { (if f.required { "yes" } else { "" }) }
                        td data-label="About" { (f.doc) }
                    } } }
                }
            }
        }
    };
    let calls = |calls: &[connectors::card::Call]| {
        html! { @for c in calls { div.small { code { (c.method_shown()) " " (c.path) } @if let Some(note) = c.note { " (" (note) ")" } } } }
    };
    html! {
        h1 { "Connectors" }
        p.small { "What each connector can be, as " code { "switchboard connectors" } " lists it." }
        nav.toc aria-label="Connectors" { @for card in &cards { a href=(format!("#{}", card.name)) { (card.name) } " " } }
        @for card in &cards {
            section.card id=(card.name) {
                h2 { (card.name) }
                p { (card.about) }
                @if let Some(source) = &card.source {
                    h3 { "Source" } p { (source.about) } (calls(source.calls)) (fields(&source.fields()))
                }
                @for a in card.actions {
                    h3 { "Receiver action " code { (a.name) } } p { (a.about) } (calls(a.calls))
                    (fields(&a.map_fields())) (fields(&a.option_fields()))
                }
                @for l in card.lookups {
                    h3 { "Look-up " code { (l.name) } } p { (l.about) } (calls(l.calls)) (fields(&l.option_fields()))
                }
                @if let Some(account) = &card.account {
                    h3 { "Account" } p { (account.about) } (fields(&account.fields()))
                }
            }
        }
    }
}

// --- Sign-in and errors ---

pub fn login(failed: bool, next: &str) -> Markup {
    html! {
        h1 { "Sign in" }
        p { "This daemon is reachable off this machine, so it asks for its API token (" code { "--token" } " or " code { "SWITCHBOARD_TOKEN" } ") once; a cookie keeps you signed in for 12 hours." }
        @if failed { p.problem { "That is not the token." } }
        form method="post" action="/login" {
            input type="hidden" name="next" value=(next);
            input type="password" name="token" placeholder="API token" autofocus aria-label="API token";
            " " button type="submit" { "Sign in" }
        }
    }
}

pub fn problem(title: &str, detail: &str) -> Markup {
    html! { h1 { (title) } p.problem { (detail) } p { a href="/" { "Back to the flows" } } }
}

// --- Editing a flow's file ---

/// A problem of the text being edited, at its line.
pub struct LineProblem {
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub hint: Option<String>,
}

pub struct EditPage<'a> {
    pub flow: &'a str,
    pub file: &'a str,
    pub text: &'a str,
    pub version: &'a str,
    pub problems: &'a [LineProblem],
    /// Why the last save was refused.
    pub note: Option<&'a str>,
    pub csrf: &'a str,
}

pub fn edit(page: &EditPage<'_>) -> Markup {
    let name = enc(page.flow);
    html! {
        p.crumbs { a href=(format!("/flows/{name}")) { (page.flow) } " › edit" }
        h1 { "Edit " (page.flow) }
        @if let Some(note) = page.note { p.problem role="alert" { (note) } }
        form.editor method="post" action=(format!("/flows/{name}/edit")) {
            (csrf_field(page.csrf))
            input type="hidden" name="version" value=(page.version);
            label for="text" { "The flow file " code { (page.file) } " — checked as you type; Save writes it and the daemon runs it at once" }
            textarea #text name="text" rows="26" spellcheck="false" autocapitalize="off"
                aria-describedby="problems"
                hx-post=(format!("/flows/{name}/check")) hx-trigger="input changed delay:400ms"
                hx-target="#problems" hx-swap="innerHTML" hx-include="closest form" { (page.text) }
            div #problems aria-live="polite" { (edit_problems(page.problems)) }
            div.actions {
                button.run type="submit" data-test="save" { "Save" }
                button type="button" data-test="try" hx-post=(format!("/flows/{name}/try"))
                    hx-target="#tried" hx-swap="innerHTML" hx-include="closest form" { "Preview the next request" }
                a href=(format!("/flows/{name}")) { "Cancel" }
            }
        }
        div #tried aria-live="polite" {}
    }
}

/// The problems of an edit, each at its line (or that there are none).
pub fn edit_problems(problems: &[LineProblem]) -> Markup {
    html! {
        @if problems.is_empty() {
            p.ok data-test="no-problems" { "No problems." }
        } @else {
            ul.problems {
                @for p in problems {
                    li.problem data-line=(p.line) {
                        "line " (p.line) ", column " (p.column) ": " (ticks(&p.message))
                        @if let Some(hint) = &p.hint { div.small { "hint: " (ticks(hint)) } }
                    }
                }
            }
        }
    }
}

// --- A new flow from the catalogue ---

/// The form that makes a new flow: its name, a source and a receiver action from the
/// cards (`given`: what was asked last time, with `problem` why it was not made).
/// What the New flow form holds: the choices so far, and (once a sample file was read)
/// its columns and the field each was mapped to.
#[derive(Default)]
pub struct NewFlowView<'a> {
    pub flow: &'a str,
    pub source: &'a str,
    /// `connector/action`.
    pub receiver: &'a str,
    pub path: &'a str,
    pub columns: &'a [String],
    pub map: Vec<(String, String)>,
}

pub fn new_flow(csrf: &str, problem: Option<&str>, given: &NewFlowView<'_>) -> Markup {
    let cards: Vec<&connectors::card::Card> = connectors::catalogue::cards().collect();
    // The chosen action's map fields, required first.
    let fields: Vec<connectors::card::Field> = given
        .receiver
        .split_once('/')
        .and_then(|(card, action)| connectors::catalogue::card(card)?.action(false, action))
        .map(|action| {
            let mut fields = action.map_fields();
            fields.sort_by_key(|f| !f.required);
            fields
        })
        .unwrap_or_default();
    let chosen = |field: &str| {
        given
            .map
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, t)| t.clone())
            // A column of the field's own name is the likely choice.
            .or_else(|| {
                given
                    .columns
                    .iter()
                    .find(|c| c.eq_ignore_ascii_case(field))
                    .map(|c| format!("{{{{{c}}}}}"))
            })
            .unwrap_or_default()
    };
    html! {
        p.crumbs { a href="/" { "Flows" } " › new flow" }
        h1 { "New flow" }
        p { "The file is written from the connectors' cards, every option and field commented; you fill in what it needs in the editor that opens next, where each problem is shown at its line. It starts switched off." }
        @if let Some(problem) = problem { p.problem role="alert" data-test="new-problem" { (ticks(problem)) } }
        form.newflow method="post" action="/new" {
            (csrf_field(csrf))
            label for="flow" { "Name (its file is NAME.yaml)" }
            input #flow type="text" name="flow" value=(given.flow) required pattern="[A-Za-z0-9._-]+" autocomplete="off";
            label for="source" { "Where the records come from" }
            select #source name="source" {
                @for card in cards.iter().filter(|c| c.source.is_some()) {
                    option value=(card.name) selected[card.name == given.source] { (card.name) " — " (card.about) }
                }
            }
            label for="path" { "Its file, for a file source (from the flows directory): its columns can be mapped below" }
            input #path type="text" name="path" value=(given.path) placeholder="orders.csv" autocomplete="off";
            label for="receiver" { "What is done with each" }
            select #receiver name="receiver" {
                @for card in cards.iter().filter(|c| !c.actions.is_empty()) {
                    @for action in card.actions {
                        @let value = format!("{}/{}", card.name, action.name);
                        option value=(value) selected[value == given.receiver] { (card.name) " · " (action.name) " — " (action.about) }
                    }
                }
            }
            @if !given.columns.is_empty() && !fields.is_empty() {
                fieldset.mapping data-test="mapping" {
                    legend { "Each field from the sample's columns (" (given.columns.len()) " read from " code { (given.path) } ")" }
                    @for field in &fields {
                        @let id = format!("map-{}", field.name);
                        @let now = chosen(&field.name);
                        label for=(id) { code { (field.name) } @if field.required { " (required)" } " — " (field.doc) }
                        select id=(id) name=(format!("map.{}", field.name)) {
                            option value="" { "fill in later, in the editor" }
                            @for column in given.columns {
                                @let template = format!("{{{{{column}}}}}");
                                option value=(template) selected[now == template] { (column) }
                            }
                        }
                    }
                }
            }
            div.actions {
                button type="submit" name="step" value="columns" data-test="read-columns" formnovalidate { "Read its columns" }
                button.run type="submit" name="step" value="write" data-test="create" { "Write the file" }
            }
        }
    }
}

/// How long after its run began a record's outcome came (`+1.234 s`).
fn into_run(run: &RunSummary, row: &RowOutcome) -> String {
    let ms = (row.at - run.started_at).num_milliseconds().max(0);
    format!("+{}.{:03} s", ms / 1000, ms % 1000)
}

/// A step's status as the run page shows it (and its badge's class).
fn step_word(step: &engine::StepOutcome) -> &'static str {
    match step.status {
        engine::StepStatus::Done if step.sent.is_some() => "sent",
        engine::StepStatus::Done => "found",
        engine::StepStatus::Skipped => "skipped",
        engine::StepStatus::Failed => "failed",
    }
}

/// A request as it would leave: method, URL, the receiver's notes and the body.
fn outgoing(request: &engine::Prepared) -> Markup {
    html! {
        p.small { code { (request.method.as_str()) " " (request.url) } }
        @if !request.notes.is_empty() {
            p.small { @for (name, value) in &request.notes { (name) ": " (value.as_str().map_or_else(|| value.to_string(), String::from)) " " } }
        }
        pre { (pretty(&request.body)) }
    }
}

/// What a flow would send next (`switchboard test`, in the browser).
pub fn preview(flow: &str, from: &str, previews: &[runtime::preview::Preview]) -> Markup {
    let name = enc(flow);
    html! {
        p.crumbs { a href=(format!("/flows/{name}")) { (flow) } " › what it sends next" }
        h1 { "What " (flow) " sends next" }
        p { (from) "; the next " (previews.len()) " the next run would take, as it would send them. "
            "Look-ups are asked; nothing is sent and nothing is recorded ("
            code { "switchboard test " (flow) " --send" } " sends one)." }
        (preview_cards(previews))
    }
}

/// Each previewed record: its fields beside what goes out.
pub fn preview_cards(previews: &[runtime::preview::Preview]) -> Markup {
    html! {
        @if previews.is_empty() {
            p.empty data-test="nothing-next" { "Nothing new to send: every record was handled before." }
        }
        @for p in previews {
            section.card data-test="preview" {
                h2 { "Record " code { (p.key) }
                    @if p.already_handled == Some(true) { " " span.badge.skipped { "handled before" } } }
                div.preview {
                    div {
                        h3 { "The record" }
                        table.fields {
                            @for (field, value) in &p.record {
                                tr { th scope="row" { code { (field) } } td { (value.as_str().map_or_else(|| value.to_string(), String::from)) } }
                            }
                        }
                    }
                    div {
                        h3 { "What goes out" }
                        @if let Some(why) = &p.filtered {
                            p { span.badge.skipped { "filtered" } " " (ticks(why)) }
                        }
                        @if let Some(request) = &p.request { (outgoing(request)) }
                        @if !p.steps.is_empty() {
                            ol.steps {
                                @for step in &p.steps {
                                    li {
                                        @let word = step_word(&step.outcome);
                                        b { (step.outcome.step) } " "
                                        @if step.request.is_some() {
                                            span.badge.sent { "would send" }
                                        } @else {
                                            span class=(format!("badge {word}")) { (word) }
                                        }
                                        @if let Some(reason) = &step.outcome.reason { " " (ticks(reason)) }
                                        @if let Some(request) = &step.request { (outgoing(request)) }
                                        @if step.request.is_none() && !step.outcome.answer.is_null() {
                                            p.small { "answers:" } pre { (pretty(&step.outcome.answer)) }
                                        }
                                    }
                                }
                            }
                        }
                        @if let Some(error) = &p.error {
                            p.problem data-test="preview-problem" { (ticks(error)) }
                        }
                    }
                }
            }
        }
    }
}
