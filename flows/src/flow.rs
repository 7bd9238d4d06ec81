//! One flow file: the envelope every flow has — name, switch, timezone, schedule, map,
//! delivery, look-up — parsed into a [`Flow`] with every problem in the file collected
//! with its position. The connector sections (`source:`, `receiver:`, a look-up's
//! options) are parsed by the [`Catalogue`] the caller provides.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono_tz::Tz;
use marked_yaml::Node;
use serde::{Deserialize, Deserializer};

use crate::diag::{Diagnostic, Pos};
use crate::fields::FieldSpec;
use crate::filter::{self, Filter, Filtered};
use crate::schedule::{self, Schedule};
use crate::section::{Catalogue, Cx, Role, Section};
use crate::suggest;
use crate::yaml;

/// A parsed, individually valid flow.
#[derive(Debug, Clone)]
pub struct Flow {
    /// The flow's name: `name:` if given, else the file stem.
    pub name: String,
    /// The file it was read from.
    pub file: PathBuf,
    pub description: Option<String>,
    /// The auto-update slider: when false the flow never runs by itself.
    pub enabled: bool,
    /// The zone for system variables and daily schedule times.
    pub timezone: Tz,
    pub source: Source,
    pub receiver: Receiver,
    /// The field map, in file order.
    pub map: Vec<MapEntry>,
    /// Where `map:` stands (for errors about the map as a whole).
    pub map_pos: Pos,
    pub schedule: Option<Schedule>,
    pub delivery: Delivery,
    /// After a crash, resend the sends it interrupted (they may arrive twice; history
    /// marks them), or park them as uncertain for a person to replay.
    pub resend_uncertain: bool,
    /// A pushed event without an id of its own, identical to one handled less than this
    /// long ago, is a redelivery (not sent again); later, it is a new event.
    pub redelivery_window: Duration,
    /// A look-up whose result joins each record before the map (`{{contact.mobilePhone}}`).
    pub lookup: Option<Lookup>,
    /// `steps:` — look-ups and actions done in order for each record (empty: the
    /// one-step form). With steps, `receiver` and `map` are the last action's, for
    /// whatever shows a flow's destination; the run does every step.
    pub steps: Vec<crate::steps::Step>,
    /// Which records are sent (`filter:`); the others are recorded `filtered`.
    pub filter: Option<Filter>,
    /// Whether a filtered record is remembered (judged again once its data changes) or
    /// judged again every run.
    pub filtered: Filtered,
    /// Which flows start first when more are due than the daemon runs at once.
    pub priority: Priority,
    /// When the daemon pauses the flow after failing runs (`None`: never).
    pub auto_pause: Option<AutoPause>,
    /// How much history the flow keeps (`None`: what `switchboard.yaml` says, else all).
    pub history: Option<crate::History>,
    /// Where its alerts go (`None`: where `switchboard.yaml` says, else nowhere).
    pub alerts: Option<crate::Alerts>,
    /// Identifies the file's text: a flow whose text is unchanged is the same flow.
    pub fingerprint: u64,
}

impl Flow {
    /// The flow as the one-step flow doing `step` alone (its receiver and map, or its
    /// look-up; no filter, no other steps): what a step's parts are built and checked
    /// from, by the same code as a one-step flow's.
    pub fn step_flow(&self, step: &crate::steps::Step) -> Flow {
        let mut one = self.clone();
        one.steps = Vec::new();
        one.filter = None;
        match &step.kind {
            crate::steps::StepKind::Lookup(lookup) => one.lookup = Some(lookup.clone()),
            crate::steps::StepKind::Action {
                receiver,
                map,
                map_pos,
            } => {
                one.receiver = receiver.clone();
                one.map = map.clone();
                one.map_pos = *map_pos;
                one.lookup = None;
            }
        }
        one
    }
}

/// A hash of a text, for telling whether it changed (within one process).
pub(crate) fn fingerprint(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// `source:` — where records come from.
#[derive(Debug, Clone)]
pub struct Source {
    pub connector: &'static str,
    /// The account it reads with, if it has one.
    pub account: Option<(String, Pos)>,
    /// What the first run does with records already there (pushed events are all new).
    pub backlog: Backlog,
    /// Records are pushed to the daemon and queued, rather than fetched.
    pub push: bool,
    /// How the records of a source read again are told apart ([`crate::SourceSpec::keyed_by`]).
    pub keyed_by: Option<String>,
    /// Where `source:` stands.
    pub pos: Pos,
    /// The connector's own options.
    pub section: Section,
}

impl Source {
    /// Whether records are pushed to the daemon (and queued) rather than fetched.
    pub fn is_push(&self) -> bool {
        self.push
    }

    /// What the first run does with existing records.
    pub fn backlog(&self) -> Backlog {
        self.backlog
    }
}

/// `receiver:` — where records go: an account of some service and one of its actions.
#[derive(Debug, Clone)]
pub struct Receiver {
    pub connector: &'static str,
    pub action: &'static str,
    pub account: String,
    pub account_pos: Pos,
    /// The fields the action takes in `map:`.
    pub fields: &'static [FieldSpec],
    pub pos: Pos,
    /// The connector's own options (`batch`, `dashboard_id`, …).
    pub section: Section,
}

/// `lookup:` — find something for each record in a service and add it to the record
/// under `as`, so the map can use it.
#[derive(Debug, Clone)]
pub struct Lookup {
    pub connector: &'static str,
    pub action: &'static str,
    pub account: String,
    /// What to look for: a template rendered against the record.
    pub query: String,
    /// Where `query`'s value stands.
    pub query_pos: Pos,
    /// The name the result gets in the record.
    pub as_name: String,
    /// Whether a record with nothing found fails (default) or goes on without it.
    pub required: bool,
    pub pos: Pos,
    /// The connector's own options (`path`, …).
    pub section: Section,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLookup {
    #[serde(default, rename = "as")]
    as_name: Option<String>,
    #[serde(default = "enabled_by_default")]
    required: bool,
}

/// A key that takes one value or a list of them (`key: id` or `key: [a, b]`).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// What the first run does with the rows that are already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Backlog {
    /// Remember existing rows without sending them (the default).
    #[default]
    Skip,
    /// Send existing rows.
    Send,
}

/// One `field: value` line of `map:`.
#[derive(Debug, Clone)]
pub struct MapEntry {
    pub field: String,
    pub value: MapValue,
    pub pos: Pos,
}

/// A value in `map:`: text is a Handlebars template; YAML literals (numbers, booleans)
/// pass through as they are; lists and mappings nest.
#[derive(Debug, Clone, PartialEq)]
pub enum MapValue {
    Template(String),
    Literal(serde_json::Value),
    List(Vec<MapValue>),
    Object(Vec<(String, MapValue)>),
}

impl MapValue {
    fn from_node(node: &Node) -> MapValue {
        match node {
            Node::Scalar(_) => match yaml::literal(node) {
                serde_json::Value::String(text) => MapValue::Template(text),
                other => MapValue::Literal(other),
            },
            Node::Sequence(items) => {
                MapValue::List(items.iter().map(MapValue::from_node).collect())
            }
            Node::Mapping(map) => MapValue::Object(
                map.iter()
                    .map(|(k, v)| (k.as_str().to_string(), MapValue::from_node(v)))
                    .collect(),
            ),
        }
    }
}

/// Auto-pause: after `after` failed runs in a row, with no success for `grace`, the flow
/// is paused until a person resumes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AutoPause {
    /// Failed runs in a row (1 to 1000).
    #[schemars(extend("default" = 10), range(min = 1, max = 1000))]
    pub after: usize,
    /// How long with no successful run (the grace period).
    #[serde(deserialize_with = "de_duration")]
    #[schemars(with = "String", extend("default" = "24h"))]
    pub grace: Duration,
}

impl Default for AutoPause {
    fn default() -> Self {
        AutoPause {
            after: 10,
            grace: Duration::from_secs(24 * 3600),
        }
    }
}

/// `auto_pause: off`, or its settings.
fn parse_auto_pause(file: &Path, node: &Node) -> Result<Option<AutoPause>, Diagnostic> {
    if let Some(text) = node.as_scalar().map(|s| s.as_str()) {
        return match text {
            "off" | "false" | "no" => Ok(None),
            "on" | "true" | "yes" => Ok(Some(AutoPause::default())),
            other => Err(Diagnostic::new(
                file,
                Pos::of(node.span()),
                format!("`auto_pause` is `off` or `{{after: 10, grace: 24h}}`, not `{other}`"),
            )),
        };
    }
    let auto: AutoPause = yaml::from_node(file, node, "auto_pause")?;
    if !(1..=1000).contains(&auto.after) {
        return Err(Diagnostic::new(
            file,
            crate::Cx { file }.at(node, "after"),
            format!(
                "`auto_pause.after` is {}; it must be between 1 and 1000",
                auto.after
            ),
        ));
    }
    Ok(Some(auto))
}

/// How a flow's sends are paced and retried.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Delivery {
    /// Sends in flight at once within one run (1 to 1024).
    #[schemars(extend("default" = 4), range(min = 1, max = 1024))]
    pub concurrency: std::num::NonZeroUsize,
    /// Tries per record for transient failures (timeouts, 429, 5xx), first try included
    /// (1 to 100).
    #[schemars(extend("default" = 4), range(min = 1, max = 100))]
    pub attempts: u32,
    /// The first retry's delay; each further retry doubles it (with jitter).
    #[serde(deserialize_with = "de_duration")]
    #[schemars(with = "String", extend("default" = "500ms"))]
    pub backoff: Duration,
    /// The longest single wait between tries (also caps `Retry-After`).
    #[serde(deserialize_with = "de_duration")]
    #[schemars(with = "String", extend("default" = "30s"))]
    pub max_backoff: Duration,
    /// How long one request may take.
    #[serde(deserialize_with = "de_duration")]
    #[schemars(with = "String", extend("default" = "30s"))]
    pub timeout: Duration,
    /// How long one record may spend on retries in all before it fails for this run.
    #[serde(deserialize_with = "de_duration")]
    #[schemars(with = "String", extend("default" = "5m"))]
    pub max_time: Duration,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            concurrency: std::num::NonZeroUsize::new(4).unwrap_or(std::num::NonZeroUsize::MIN),
            attempts: 4,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            max_time: Duration::from_secs(300),
        }
    }
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|_| {
        serde::de::Error::custom(format!(
            "`{text}` is not a duration; write a number and a unit, like `500ms`, `30s`, `5m`"
        ))
    })
}

/// The keys of a flow file's head: plain values, read together ([`Head`]).
const HEAD_KEYS: &[&str] = &[
    "name",
    "description",
    "enabled",
    "resend_uncertain",
    "redelivery_window",
    "filtered",
    "priority",
];

/// The keys of a flow file's sections, each parsed on its own.
const SECTION_KEYS: &[&str] = &[
    "timezone",
    "source",
    "receiver",
    "map",
    "schedule",
    "delivery",
    "lookup",
    "steps",
    "filter",
    "auto_pause",
    "history",
    "alerts",
];

/// `a` then `b`, as one array.
const fn joined<const N: usize>(a: &[&'static str], b: &[&'static str]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < a.len() {
        out[i] = a[i];
        i += 1;
    }
    let mut j = 0;
    while j < b.len() {
        out[a.len() + j] = b[j];
        j += 1;
    }
    out
}

/// Every key a flow file may have at its top.
pub const TOP_LEVEL_KEYS: &[&str] =
    &joined::<{ HEAD_KEYS.len() + SECTION_KEYS.len() }>(HEAD_KEYS, SECTION_KEYS);

#[derive(Debug, Deserialize)]
struct Head {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default = "enabled_by_default")]
    enabled: bool,
    #[serde(default = "enabled_by_default")]
    resend_uncertain: bool,
    #[serde(
        default = "default_redelivery_window",
        deserialize_with = "de_duration"
    )]
    redelivery_window: Duration,
    #[serde(default)]
    filtered: Filtered,
    #[serde(default)]
    priority: Priority,
}

/// ApiX-Drive's update priority: when more flows are due than the daemon runs at once
/// (`--max-runs`), higher ones start first, then the longest waiting.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
}

impl Priority {
    pub fn name(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
        }
    }
}

/// How long an identical pushed event without an id is taken for a redelivery.
pub const REDELIVERY_WINDOW: Duration = Duration::from_secs(5 * 60);

/// The longest `redelivery_window`.
const MAX_REDELIVERY_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

fn default_redelivery_window() -> Duration {
    REDELIVERY_WINDOW
}

fn enabled_by_default() -> bool {
    true
}

/// Whether a flow name is usable in URLs, state keys and file names.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.')
}

/// What the cross-file checks need to know about a parsed flow.
pub(crate) struct Parsed {
    pub flow: Flow,
    pub name_pos: Pos,
    /// Problems found though every part of the flow could be read (an unknown map field,
    /// a bad value): the flow is invalid, yet complete enough for the checks that follow
    /// (accounts, source columns), so that `validate` reports every problem at once.
    pub problems: Vec<Diagnostic>,
}

/// Parse one flow file. All problems in the file are returned together.
pub(crate) fn parse(
    file: &Path,
    text: &str,
    catalogue: &dyn Catalogue,
) -> Result<Parsed, Vec<Diagnostic>> {
    let parsed = parse_partly(file, text, catalogue)?;
    if parsed.problems.is_empty() {
        Ok(parsed)
    } else {
        Err(parsed.problems)
    }
}

/// Parse one flow file: the flow whenever all its parts could be read (with the
/// problems found on the way), else every problem.
pub(crate) fn parse_partly(
    file: &Path,
    text: &str,
    catalogue: &dyn Catalogue,
) -> Result<Parsed, Vec<Diagnostic>> {
    let root = yaml::load(file, text).map_err(|d| vec![d])?;
    let mapping = top_mapping(file, &root)?;
    let mut errors = yaml::fill_ins(file, &root, None);
    errors.extend(unknown_top_keys(file, mapping));
    let head = parse_head(file, &root, &mut errors);
    let (name, name_pos) = flow_name(file, head.as_ref(), mapping, &mut errors);
    let cx = Cx { file };
    let sections = Sections::parse(&cx, mapping, Pos::of(root.span()), catalogue, &mut errors);
    if let (Some(source), Some(node)) = (&sections.source, mapping.get_node("redelivery_window")) {
        if !source.push {
            errors.push(
                Diagnostic::new(
                    file,
                    Pos::of(node.span()),
                    format!(
                        "`redelivery_window` is for pushed events; a `{}` source is read again every run, its rows told apart by their key",
                        source.connector
                    ),
                )
                .with_hint("remove it"),
            );
        }
    }
    let Sections {
        timezone: Some(timezone),
        source: Some(source),
        receiver: Some(receiver),
        delivery: Some(delivery),
        map,
        map_pos,
        schedule,
        lookup,
        steps,
        alerts,
        history,
        auto_pause,
        filter,
    } = sections
    else {
        return Err(errors);
    };
    let Some(head) = head else {
        return Err(errors);
    };
    Ok(Parsed {
        flow: Flow {
            name,
            file: file.to_path_buf(),
            description: head.description,
            enabled: head.enabled,
            timezone,
            source,
            receiver,
            map,
            map_pos,
            schedule,
            delivery,
            resend_uncertain: head.resend_uncertain,
            redelivery_window: head.redelivery_window,
            lookup,
            steps,
            filter,
            filtered: head.filtered,
            priority: head.priority,
            auto_pause,
            history,
            alerts,
            fingerprint: fingerprint(text),
        },
        name_pos,
        problems: errors,
    })
}

/// The file's top: a mapping with something in it.
fn top_mapping<'n>(file: &Path, root: &'n Node) -> Result<&'n yaml::Mapping, Vec<Diagnostic>> {
    let Some(mapping) = root.as_mapping() else {
        return Err(vec![Diagnostic::new(
            file,
            Pos::of(root.span()),
            "expected a mapping",
        )]);
    };
    if mapping.is_empty() {
        return Err(vec![Diagnostic::new(
            file,
            Pos::of(root.span()),
            "the file is empty",
        )
        .with_hint(
            "a flow file needs at least `source:`, `receiver:` and `map:`",
        )]);
    }
    Ok(mapping)
}

/// A problem for each key at the top a flow file cannot have.
fn unknown_top_keys(file: &Path, mapping: &yaml::Mapping) -> Vec<Diagnostic> {
    mapping
        .keys()
        .filter(|key| !TOP_LEVEL_KEYS.contains(&key.as_str()))
        .map(|key| yaml::unknown_key(file, Pos::of(key.span()), key.as_str(), "", TOP_LEVEL_KEYS))
        .collect()
}

/// The head's plain values, and whether its redelivery window is one a flow can have.
fn parse_head(file: &Path, root: &Node, errors: &mut Vec<Diagnostic>) -> Option<Head> {
    let head: Head = collect(
        errors,
        yaml::from_node(file, &retain_keys(root, HEAD_KEYS), "flow"),
    )?;
    let window = root
        .as_mapping()
        .and_then(|m| m.get_node("redelivery_window"));
    if let Some(node) = window.filter(|_| head.redelivery_window > MAX_REDELIVERY_WINDOW) {
        errors.push(
            Diagnostic::new(
                file,
                Pos::of(node.span()),
                "`redelivery_window` is longer than 7 days",
            )
            .with_hint("an identical event seen again after it is a new event; `0s` never takes one for a redelivery"),
        );
    }
    Some(head)
}

/// The flow's name (`name:`, else the file's stem) and where it is said.
fn flow_name(
    file: &Path,
    head: Option<&Head>,
    mapping: &yaml::Mapping,
    errors: &mut Vec<Diagnostic>,
) -> (String, Pos) {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name_pos = mapping
        .get_node("name")
        .map(|n| Pos::of(n.span()))
        .unwrap_or(Pos::new(1, 1));
    let name = head.and_then(|h| h.name.clone()).unwrap_or(stem);
    if !valid_name(&name) {
        errors.push(
            Diagnostic::new(
                file,
                name_pos,
                format!("`{name}` is not a usable flow name"),
            )
            .with_hint("use letters, digits, `-`, `_` and `.` (it appears in URLs and logs)"),
        );
    }
    (name, name_pos)
}

/// A flow file's sections, each read on its own: `None` where one could not be (its
/// problems are kept), or — for the optional ones — where it is absent.
struct Sections {
    timezone: Option<Tz>,
    source: Option<Source>,
    receiver: Option<Receiver>,
    map: Vec<MapEntry>,
    map_pos: Pos,
    schedule: Option<Schedule>,
    delivery: Option<Delivery>,
    lookup: Option<Lookup>,
    steps: Vec<crate::steps::Step>,
    alerts: Option<crate::Alerts>,
    history: Option<crate::History>,
    auto_pause: Option<AutoPause>,
    filter: Option<Filter>,
}

impl Sections {
    fn parse(
        cx: &Cx<'_>,
        mapping: &yaml::Mapping,
        top: Pos,
        catalogue: &dyn Catalogue,
        errors: &mut Vec<Diagnostic>,
    ) -> Sections {
        let file = cx.file;
        let node = |key: &str| mapping.get_node(key);
        let missing = |what: &str, question: &str, role: Role| {
            Diagnostic::new(file, top, format!("missing `{what}:`: {question}"))
                .with_hint(format!("for example `{what}: {}`", catalogue.example(role)))
        };
        let timezone = match node("timezone") {
            None => Some(Tz::UTC),
            Some(node) => collect(errors, parse_timezone(file, node)),
        };
        let source = match node("source") {
            None => {
                errors.push(missing(
                    "source",
                    "where do the records come from?",
                    Role::Source,
                ));
                None
            }
            Some(node) => collect(errors, parse_source(cx, node, catalogue)),
        };
        let steps = node("steps")
            .map(|n| crate::steps::parse(cx, n, catalogue, errors))
            .unwrap_or_default();
        if let Some(steps_node) = node("steps") {
            for key in crate::steps::ONE_STEP_KEYS {
                if let Some(one) = mapping.get_node(key) {
                    errors.push(
                        Diagnostic::new(
                            file,
                            Pos::of(one.span()),
                            format!("`{key}:` beside `steps:`: with steps, each receiver, map and look-up belongs to a step"),
                        )
                        .with_hint(format!(
                            "move it into a step under `steps:` (line {})",
                            Pos::of(steps_node.span()).line
                        )),
                    );
                }
            }
        }
        let last_action = steps.iter().rev().find_map(|step| match &step.kind {
            crate::steps::StepKind::Action {
                receiver,
                map,
                map_pos,
            } => Some((receiver.clone(), map.clone(), *map_pos)),
            crate::steps::StepKind::Lookup(_) => None,
        });
        let receiver = match node("receiver") {
            _ if node("steps").is_some() => last_action.as_ref().map(|(r, _, _)| r.clone()),
            None => {
                errors.push(missing(
                    "receiver",
                    "where do the records go?",
                    Role::Receiver,
                ));
                None
            }
            Some(node) => collect(errors, parse_receiver(cx, node, catalogue)),
        };
        let (map, map_pos) = match node("map") {
            _ if node("steps").is_some() => last_action
                .map(|(_, map, pos)| (map, pos))
                .unwrap_or((Vec::new(), top)),
            None => (Vec::new(), top),
            Some(node) => (
                collect(errors, parse_map(file, node)).unwrap_or_default(),
                Pos::of(node.span()),
            ),
        };
        if let (Some(receiver), true) = (&receiver, steps.is_empty()) {
            errors.extend(check_map_fields(file, receiver, &map, map_pos));
        }
        // In the order problems are told.
        let schedule =
            node("schedule").and_then(|n| collect(errors, schedule::parse(file, n)).flatten());
        let delivery = match node("delivery") {
            None => Some(Delivery::default()),
            Some(node) => collect(errors, parse_delivery(file, node)),
        };
        let lookup = node("lookup")
            .filter(|_| steps.is_empty())
            .and_then(|n| collect(errors, parse_lookup(cx, n, catalogue)));
        let alerts = node("alerts").and_then(|n| collect(errors, crate::alerts::parse(file, n)));
        let history =
            node("history").and_then(|n| collect(errors, crate::settings::parse_history(file, n)));
        let auto_pause = match node("auto_pause") {
            None => Some(AutoPause::default()),
            Some(node) => collect(errors, parse_auto_pause(file, node)).flatten(),
        };
        let filter = match node("filter").map(|node| filter::parse(file, node)) {
            None => None,
            Some(Ok(filter)) => Some(filter),
            Some(Err(problems)) => {
                errors.extend(problems);
                None
            }
        };
        Sections {
            timezone,
            source,
            receiver,
            map,
            map_pos,
            schedule,
            delivery,
            lookup,
            steps,
            alerts,
            history,
            auto_pause,
            filter,
        }
    }
}

fn collect<T>(errors: &mut Vec<Diagnostic>, result: Result<T, Diagnostic>) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            errors.push(e);
            None
        }
    }
}

pub(crate) fn retain_keys(node: &Node, keep: &[&str]) -> Node {
    let mut node = node.clone();
    if let Some(mapping) = node.as_mapping_mut() {
        mapping.retain(|k, _| keep.contains(&k.as_str()));
    }
    node
}

fn parse_timezone(file: &Path, node: &Node) -> Result<Tz, Diagnostic> {
    let text = yaml::scalar(file, node, "timezone")?;
    Tz::from_str(text).map_err(|_| {
        let names = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
        let hint = match suggest::did_you_mean(text, names) {
            Some(best) => format!("did you mean `{best}`?"),
            None => {
                "use an IANA zone name such as `Europe/Kyiv`, `America/New_York` or `UTC`".into()
            }
        };
        Diagnostic::new(
            file,
            Pos::of(node.span()),
            format!("unknown timezone `{text}`"),
        )
        .with_hint(hint)
    })
}

/// The `connector:` of a source or receiver mapping, with its position.
fn connector<'n>(
    file: &Path,
    node: &'n Node,
    section: &str,
    example: &str,
) -> Result<(&'n str, Pos), Diagnostic> {
    let Some(mapping) = node.as_mapping() else {
        return Err(Diagnostic::new(
            file,
            Pos::of(node.span()),
            format!("`{section}` must be a mapping"),
        )
        .with_hint(format!("for example `{section}: {example}`")));
    };
    let Some(connector) = mapping.get_node("connector") else {
        return Err(Diagnostic::new(
            file,
            Pos::of(node.span()),
            format!("missing `connector` in `{section}`"),
        )
        .with_hint(format!("for example `{section}: {example}`")));
    };
    Ok((
        yaml::scalar(file, connector, "connector")?,
        Pos::of(connector.span()),
    ))
}

/// A connector name as the catalogue spells it, for `role`; or the error saying what
/// it is instead (another role's connector, a typo).
fn known_connector(
    cx: &Cx<'_>,
    catalogue: &dyn Catalogue,
    role: Role,
    name: &str,
    pos: Pos,
) -> Result<&'static str, Diagnostic> {
    let known = catalogue.connectors(role);
    if let Some(found) = known.iter().find(|c| **c == name) {
        return Ok(found);
    }
    let what = match role {
        Role::Source => "source",
        Role::Receiver => "receiver",
        Role::Lookup => "look-up",
        Role::Account => "account",
    };
    let other = match role {
        Role::Source => Some((Role::Receiver, "receiver")),
        Role::Receiver => Some((Role::Source, "source")),
        _ => None,
    };
    if let Some((other_role, other_what)) = other {
        if catalogue.connectors(other_role).contains(&name) {
            let problem = cx.problem(pos, format!("`{name}` is a {other_what}, not a {what}"));
            return Err(match role {
                Role::Source => {
                    problem.with_hint(format!("sources are: {}", suggest::backticked(&known)))
                }
                _ => problem,
            });
        }
    }
    if role == Role::Lookup {
        return Err(cx
            .problem(pos, format!("`{name}` has no look-ups"))
            .with_hint(suggest::hint(name, &known)));
    }
    Err(cx
        .problem(pos, format!("unknown {what} connector `{name}`"))
        .with_hint(suggest::hint(name, &known)))
}

fn parse_source(cx: &Cx<'_>, node: &Node, catalogue: &dyn Catalogue) -> Result<Source, Diagnostic> {
    let file = cx.file;
    let (name, pos) = connector(file, node, "source", catalogue.example(Role::Source))?;
    let connector = known_connector(cx, catalogue, Role::Source, name, pos)?;
    let rest = yaml::without_keys(node, &["connector"]);
    let spec = catalogue.source(cx, connector, &rest, Pos::of(node.span()))?;
    Ok(Source {
        connector,
        account: spec.account,
        backlog: spec.backlog,
        push: spec.push,
        keyed_by: spec.keyed_by,
        pos: Pos::of(node.span()),
        section: spec.section,
    })
}

pub(crate) fn parse_receiver(
    cx: &Cx<'_>,
    node: &Node,
    catalogue: &dyn Catalogue,
) -> Result<Receiver, Diagnostic> {
    let file = cx.file;
    let (name, pos) = connector(file, node, "receiver", catalogue.example(Role::Receiver))?;
    let connector = known_connector(cx, catalogue, Role::Receiver, name, pos)?;
    let actions = catalogue
        .actions(Role::Receiver, connector)
        .unwrap_or_default();
    let mapping = node.as_mapping();
    let Some(action_node) = mapping.and_then(|m| m.get_node("action")) else {
        return Err(Diagnostic::new(
            file,
            Pos::of(node.span()),
            format!("missing `action` in `receiver` ({connector})"),
        )
        .with_hint(format!(
            "{connector} actions: {}",
            suggest::backticked(&actions)
        )));
    };
    let written = yaml::scalar(file, action_node, "action")?;
    let Some(action) = actions.iter().find(|a| **a == written).copied() else {
        return Err(Diagnostic::new(
            file,
            Pos::of(action_node.span()),
            format!("`{connector}` has no action `{written}`"),
        )
        .with_hint(suggest::hint(written, &actions)));
    };
    let Some(account_node) = mapping.and_then(|m| m.get_node("account")) else {
        return Err(Diagnostic::new(
            file,
            Pos::of(node.span()),
            "missing `account` in `receiver`",
        )
        .with_hint(format!(
            "name an account from accounts.yaml whose connector is `{connector}`"
        )));
    };
    let account = yaml::scalar(file, account_node, "account")?.to_string();
    let rest = yaml::without_keys(node, &["connector", "action", "account"]);
    let spec = catalogue.receiver(cx, connector, action, &rest, Pos::of(node.span()))?;
    Ok(Receiver {
        connector,
        action,
        account,
        account_pos: Pos::of(account_node.span()),
        fields: spec.fields,
        pos: Pos::of(node.span()),
        section: spec.section,
    })
}

pub(crate) fn parse_lookup(
    cx: &Cx<'_>,
    node: &Node,
    catalogue: &dyn Catalogue,
) -> Result<Lookup, Diagnostic> {
    let file = cx.file;
    let pos = Pos::of(node.span());
    let (name, _) = connector(file, node, "lookup", catalogue.example(Role::Lookup))?;
    let connector = known_connector(cx, catalogue, Role::Lookup, name, pos)?;
    let actions = catalogue
        .actions(Role::Lookup, connector)
        .unwrap_or_default();
    let mapping = node.as_mapping();
    let text_of = |key: &str| -> Result<Option<&str>, Diagnostic> {
        match mapping.and_then(|m| m.get_node(key)) {
            Some(n) => Ok(Some(yaml::scalar(file, n, key)?)),
            None => Ok(None),
        }
    };
    let missing = |key: &str| {
        Diagnostic::new(file, pos, format!("missing `{key}` in `lookup`")).with_hint(format!(
            "for example `lookup: {}`",
            catalogue.example(Role::Lookup)
        ))
    };
    let written = text_of("action")?.ok_or_else(|| missing("action"))?;
    let Some(action) = actions.iter().find(|a| **a == written).copied() else {
        return Err(Diagnostic::new(
            file,
            pos,
            format!("unknown `{connector}` look-up `{written}`"),
        )
        .with_hint(suggest::hint(written, &actions)));
    };
    let account = text_of("account")?
        .ok_or_else(|| missing("account"))?
        .to_string();
    let query = text_of("query")?
        .ok_or_else(|| missing("query"))?
        .to_string();
    let common = yaml::without_keys(node, &["connector", "action", "account", "query"]);
    let common = retain_keys(&common, &["as", "required"]);
    let raw: RawLookup = yaml::from_node(file, &common, "lookup")?;
    let rest = yaml::without_keys(
        node,
        &["connector", "action", "account", "query", "as", "required"],
    );
    let spec = catalogue.lookup(cx, connector, action, &rest, pos)?;
    // The action's noun: `get_case` → `case`, `list_numbers` → `numbers`, `search_cases`
    // → `cases`, `find_row` → `row`.
    let as_name = raw.as_name.unwrap_or_else(|| {
        ["get_", "list_", "search_", "find_"]
            .iter()
            .find_map(|verb| action.strip_prefix(verb))
            .unwrap_or(action)
            .to_string()
    });
    let query_pos = mapping
        .and_then(|m| m.get_node("query"))
        .map(|n| Pos::of(n.span()))
        .unwrap_or(pos);
    Ok(Lookup {
        connector,
        action,
        account,
        query,
        query_pos,
        as_name,
        required: raw.required,
        pos,
        section: spec.section,
    })
}

pub(crate) fn parse_map(file: &Path, node: &Node) -> Result<Vec<MapEntry>, Diagnostic> {
    let Some(mapping) = node.as_mapping() else {
        return Err(Diagnostic::new(
            file,
            Pos::of(node.span()),
            "`map` must be a mapping of receiver fields to templates",
        )
        .with_hint("for example `map: {destination: \"{{phone}}\", text: \"Hi {{name}}\"}`"));
    };
    Ok(mapping
        .iter()
        .map(|(key, value)| MapEntry {
            field: key.as_str().to_string(),
            value: MapValue::from_node(value),
            pos: Pos::of(key.span()),
        })
        .collect())
}

/// Every map field must be one the receiver knows, and every required one must be there.
pub(crate) fn check_map_fields(
    file: &Path,
    receiver: &Receiver,
    map: &[MapEntry],
    map_pos: Pos,
) -> Vec<Diagnostic> {
    let specs = receiver.fields;
    let names: Vec<&str> = specs.iter().map(|f| f.name).collect();
    let what = format!("{} {}", receiver.connector, receiver.action);
    let mut errors = Vec::new();
    for entry in map {
        if !names.contains(&entry.field.as_str()) {
            errors.push(
                Diagnostic::new(
                    file,
                    entry.pos,
                    format!("`{what}` has no field `{}`", entry.field),
                )
                .with_hint(suggest::hint(&entry.field, &names)),
            );
        }
    }
    for spec in specs.iter().filter(|s| s.required) {
        if !map.iter().any(|e| e.field == spec.name) {
            errors.push(
                Diagnostic::new(
                    file,
                    map_pos,
                    format!(
                        "missing required field `{}` for `{what}` in `map`",
                        spec.name
                    ),
                )
                .with_hint(format!(
                    "add `{}: \"{{{{…}}}}\"` under `map:` ({})",
                    spec.name, spec.doc
                )),
            );
        }
    }
    errors
}

fn parse_delivery(file: &Path, node: &Node) -> Result<Delivery, Diagnostic> {
    let at = |key: &str| {
        node.as_mapping()
            .and_then(|m| m.get_node(key))
            .map(|n| Pos::of(n.span()))
            .unwrap_or(Pos::of(node.span()))
    };
    // Checked before the whole is read, to say what is allowed: 0 cannot be read.
    let concurrency = node.as_mapping().and_then(|m| m.get_node("concurrency"));
    if let Some(concurrency) = concurrency {
        let n: u64 = yaml::from_node(file, concurrency, "delivery.concurrency")?;
        if n == 0 || n > 1024 {
            return Err(Diagnostic::new(
                file,
                at("concurrency"),
                format!("`delivery.concurrency` is {n}; it must be between 1 and 1024"),
            )
            .with_hint(
                "sends in flight at once; 4 is the default, the account's rate limit paces them anyway",
            ));
        }
    }
    let delivery: Delivery = yaml::from_node(file, node, "delivery")?;
    let shown = |d: Duration| humantime::format_duration(d).to_string();
    if delivery.attempts == 0 || delivery.attempts > 100 {
        return Err(Diagnostic::new(
            file,
            at("attempts"),
            format!(
                "`delivery.attempts` is {}; it must be between 1 and 100",
                delivery.attempts
            ),
        )
        .with_hint("tries per record for timeouts, 429 and 5xx, the first included; default 4"));
    }
    // Every duration is bounded, so no sum of them can pass the end of the calendar.
    let written = |key: &str, value: Duration| {
        node.as_mapping()
            .and_then(|m| m.get_node(key))
            .and_then(|n| n.as_scalar())
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| shown(value))
    };
    let bounds: [(&str, Duration, Duration, Duration, &str); 4] = [
        (
            "timeout",
            delivery.timeout,
            Duration::from_millis(1),
            Duration::from_secs(3600),
            "1ms and 1h",
        ),
        (
            "backoff",
            delivery.backoff,
            Duration::ZERO,
            Duration::from_secs(3600),
            "0s and 1h",
        ),
        (
            "max_backoff",
            delivery.max_backoff,
            Duration::ZERO,
            Duration::from_secs(3600),
            "0s and 1h",
        ),
        (
            "max_time",
            delivery.max_time,
            Duration::from_millis(1),
            Duration::from_secs(7 * 86_400),
            "1ms and 7d",
        ),
    ];
    for (key, value, least, most, range) in bounds {
        if value < least || value > most {
            return Err(Diagnostic::new(
                file,
                at(key),
                format!(
                    "`delivery.{key}` is {}; it must be between {range}",
                    written(key, value)
                ),
            ));
        }
    }
    if delivery.max_backoff < delivery.backoff {
        return Err(Diagnostic::new(
            file,
            at("max_backoff"),
            format!(
                "`delivery.max_backoff` ({}) is shorter than `delivery.backoff` ({})",
                written("max_backoff", delivery.max_backoff),
                written("backoff", delivery.backoff)
            ),
        )
        .with_hint(
            "`backoff` is the first wait and `max_backoff` the longest; raise `max_backoff`",
        ));
    }
    Ok(delivery)
}
