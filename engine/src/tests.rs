//! The mapper and the run path, as users see them: exact text, strict fields, system
//! variables in a timezone, helpers, dedupe across runs, backlog, retries.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use flows::{Flow, LoadOptions};
use serde_json::{json, Map, Value};

use crate::*;

const ACCOUNTS: &str = "sms:\n  connector: sms\n  api_key: k\n";

/// A flow whose map is `map_yaml` (indented under `map:`), loaded the way users load it.
fn flow_with(map_yaml: &str, extra: &str) -> Flow {
    let dir = tempfile::tempdir().expect("a temporary directory");
    load_flow(
        dir.path(),
        &format!(
            "timezone: Europe/Kyiv\nsource: {{connector: rows, path: rows.csv, key: id}}\nreceiver: {{connector: sms, action: send, account: sms}}\n{extra}map:\n{map_yaml}"
        ),
    )
}

/// Flow `f` of `text`, written into `dir` beside the test accounts and loaded the way
/// users load it (with no problem).
fn load_flow(dir: &std::path::Path, text: &str) -> Flow {
    std::fs::write(dir.join("accounts.yaml"), ACCOUNTS).expect("the test writes its file");
    std::fs::write(dir.join("f.yaml"), text).expect("the test writes its file");
    let project = flows::load_project(
        &LoadOptions {
            flows_dir: dir.into(),
            ..LoadOptions::default()
        },
        &flows::testkit::TestCatalogue,
    );
    assert!(
        project.diagnostics().is_empty(),
        "{:#?}",
        project.diagnostics()
    );
    project.flows["f"].clone()
}

fn sms_flow(text: &str) -> Flow {
    flow_with(
        &format!("  destination: \"{{{{phone}}}}\"\n  text: {text}\n"),
        "",
    )
}

fn record(key: &str, fields: Value) -> Record {
    Record::new(key, fields.as_object().cloned().unwrap_or_default())
}

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

fn render(text: &str, fields: Value) -> Result<String, MapError> {
    let mapper = Mapper::new(&sms_flow(text)).unwrap_or_else(|e| panic!("{e:#?}"));
    let mut fields = fields;
    fields["phone"] = json!("+380501234567");
    mapper
        .render(&record("1", fields), at("2026-11-21T10:08:00Z"))
        .map(|m| m["text"].as_str().unwrap_or_default().to_string())
}

#[test]
fn text_arrives_exactly_as_written_without_html_escaping() {
    assert_eq!(
        render("\"Hi {{name}}\"", json!({"name": "Tom & Jerry <3"})),
        Ok("Hi Tom & Jerry <3".into())
    );
    assert_eq!(
        render("\"{{{name}}} '\\\"\"", json!({"name": "a<b"})),
        Ok("a<b '\"".into())
    );
}

#[test]
fn a_field_the_record_lacks_fails_the_row_with_a_clear_reason() {
    let err = render("\"Hi {{nmae}}\"", json!({"name": "Olena"})).err();
    let err = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        err.starts_with("`text`: the record has no field `nmae` (it has: name, phone)"),
        "{err}"
    );
    let err = render("\"Hi {{upper nmae}}\"", json!({"name": "Olena"}))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("no field `nmae`"),
        "helpers are strict too: {err}"
    );
    // A template that is just one field takes a shortcut; it must behave the same.
    let err = render("\"{{nmae}}\"", json!({"name": "Olena"}))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.starts_with("`text`: the record has no field `nmae` (it has: name, phone)"),
        "{err}"
    );
    assert_eq!(
        render("\"{{total}}\"", json!({"total": 980.5}))
            .ok()
            .as_deref(),
        Some("980.5")
    );
    assert_eq!(
        render("\"{{ date }}\"", json!({})).ok().as_deref(),
        Some("2026-11-21"),
        "system variables too"
    );
}

#[test]
fn system_variables_are_in_the_flows_timezone() {
    // 10:08 UTC is 12:08 in Kyiv (UTC+2 in November).
    let text = render(
        "\"{{now}}|{{date}}|{{time}}|{{year}}|{{month}}|{{day}}\"",
        json!({}),
    );
    assert_eq!(
        text,
        Ok("2026-11-21T12:08:00+02:00|2026-11-21|12:08|2026|11|21".into())
    );
    // a record field of the same name wins; the system value stays under `system.`
    let text = render(
        "\"{{date}} / {{system.date}}\"",
        json!({"date": "tomorrow"}),
    );
    assert_eq!(text, Ok("tomorrow / 2026-11-21".into()));
}

#[test]
fn helpers_users_need_for_sms() {
    let r = |t: &str, f: Value| render(t, f).unwrap_or_else(|e| format!("ERR {e}"));
    assert_eq!(
        r("\"{{default name 'friend'}}\"", json!({"name": ""})),
        "friend"
    );
    assert_eq!(r("\"{{default name 'friend'}}\"", json!({})), "friend");
    assert_eq!(
        r("\"{{default name 'friend'}}\"", json!({"name": "Ivan"})),
        "Ivan"
    );
    assert_eq!(
        r("\"[{{trim name}}]\"", json!({"name": "  Ivan \t"})),
        "[Ivan]"
    );
    assert_eq!(
        r(
            "\"{{upper name}} {{lower name}}\"",
            json!({"name": "Олена"})
        ),
        "ОЛЕНА олена"
    );
    assert_eq!(
        r("\"{{truncate note 5}}\"", json!({"note": "Привіт світ"})),
        "Приві"
    );
    assert_eq!(
        r(
            "\"{{truncate note 8 '…'}}\"",
            json!({"note": "Hello world"})
        ),
        "Hello w…"
    );
    assert_eq!(
        r("\"{{truncate note 80 '…'}}\"", json!({"note": "short"})),
        "short"
    );
    assert_eq!(
        r(
            "\"{{format_date when '%d.%m.%Y %H:%M'}}\"",
            json!({"when": "2026-11-21 09:05"})
        ),
        "21.11.2026 09:05"
    );
    assert_eq!(r("\"{{format_date now '%H:%M'}}\"", json!({})), "12:08");
    assert_eq!(
        r("\"{{e164 tel 'UA'}}\"", json!({"tel": "050 123 45 67"})),
        "+380501234567"
    );
    let bad = r("\"{{e164 tel 'UA'}}\"", json!({"tel": "12"}));
    assert!(bad.starts_with("ERR `text`: e164: `12` is not a"), "{bad}");
    assert!(r("\"{{format_date when '%d'}}\"", json!({"when": "soon"}))
        .contains("`soon` is not a date"));
}

#[test]
fn formatters_compute_format_and_convert() {
    let r = |t: &str, f: Value| render(t, f).unwrap_or_else(|e| format!("ERR {e}"));
    let nb = '\u{a0}';
    // Arithmetic, on numbers as people write them.
    assert_eq!(r("\"{{add a b}}\"", json!({"a": 2, "b": "3,5"})), "5.5");
    assert_eq!(r("\"{{sub 10 '2.5'}}\"", json!({})), "7.5");
    assert_eq!(
        r("\"{{mul price qty}}\"", json!({"price": "12.50", "qty": 3})),
        "37.5"
    );
    assert_eq!(r("\"{{add '0.1' '0.2'}}\"", json!({})), "0.3");
    assert_eq!(r("\"{{div 1 3}}\"", json!({})), "0.3333333333");
    assert!(r("\"{{div 1 0}}\"", json!({})).contains("div: division by zero"));
    assert!(r("\"{{add a 1}}\"", json!({"a": "many"})).contains("`many` is not a number"));
    assert_eq!(r("\"{{round '2.346' 2}}\"", json!({})), "2.35");
    assert_eq!(r("\"{{round 980.5}}\"", json!({})), "981");
    // Numbers and money in a locale.
    assert_eq!(
        r("\"{{format_number 1234.5 2 'uk'}}\"", json!({})),
        format!("1{nb}234,50")
    );
    assert_eq!(
        r("\"{{format_number 1234.5 2 'en'}}\"", json!({})),
        "1,234.50"
    );
    assert_eq!(
        r("\"{{format_number 1234.5 2 'de'}}\"", json!({})),
        "1.234,50"
    );
    assert_eq!(
        r("\"{{format_number 1234567}}\"", json!({})),
        "1,234,567.00"
    );
    assert!(r("\"{{format_number 1 2 'xx'}}\"", json!({})).contains("`xx` is not a locale"));
    assert_eq!(
        r("\"{{format_currency 1234.5 'UAH' 'uk'}}\"", json!({})),
        format!("1{nb}234,50{nb}₴")
    );
    assert_eq!(r("\"{{format_currency -5 'USD'}}\"", json!({})), "-$5.00");
    assert_eq!(
        r(
            "\"{{format_currency (mul price qty) 'UAH' 'uk'}}\"",
            json!({"price": "12.50", "qty": 3})
        ),
        format!("37,50{nb}₴")
    );
    // Text.
    assert_eq!(
        r("\"{{replace tel '-' ''}}\"", json!({"tel": "050-123-45"})),
        "05012345"
    );
    assert_eq!(
        r(
            "\"{{regex_replace note ' +' ' '}}\"",
            json!({"note": "a   b  c"})
        ),
        "a b c"
    );
    assert_eq!(
        r(
            "\"{{regex_replace mail '([a-z]+)@([a-z.]+)' '$2'}}\"",
            json!({"mail": "ivan@example.com"})
        ),
        "example.com"
    );
    assert!(r("\"{{regex_replace a '(' ''}}\"", json!({"a": "x"}))
        .contains("is not a regular expression"));
    assert_eq!(
        r(
            "\"{{split name ' ' 1}}\"",
            json!({"name": "Olena Kovalenko"})
        ),
        "Kovalenko"
    );
    assert_eq!(
        r(
            "\"{{#each (split tags ',')}}[{{this}}]{{/each}}\"",
            json!({"tags": "a, b"})
        ),
        "[a][b]"
    );
    assert_eq!(
        r("\"{{join items ', '}}\"", json!({"items": ["a", "", "b"]})),
        "a, b"
    );
    assert_eq!(
        r("\"{{coalesce mobile other 'none'}}\"", json!({"other": ""})),
        "none"
    );
    assert_eq!(
        r(
            "\"{{coalesce mobile other 'none'}}\"",
            json!({"other": "0501"})
        ),
        "0501"
    );
    // Dates in a format and a zone.
    assert_eq!(
        r(
            "\"{{parse_date when '%d/%m/%Y %H:%M' 'Europe/Kyiv'}}\"",
            json!({"when": "21/11/2026 12:08"})
        ),
        "2026-11-21T12:08:00+02:00"
    );
    assert_eq!(
        r(
            "\"{{parse_date d '%d.%m.%Y'}}\"",
            json!({"d": "21.11.2026"})
        ),
        "2026-11-21T00:00:00+00:00"
    );
    assert!(r("\"{{parse_date d '%d.%m.%Y'}}\"", json!({"d": "soon"}))
        .contains("is not a date written as"));
    assert_eq!(
        r(
            "\"{{convert_tz when 'America/New_York' '%H:%M'}}\"",
            json!({"when": "2026-11-21T12:08:00+02:00"})
        ),
        "05:08"
    );
    assert_eq!(
        r("\"{{convert_tz now 'UTC'}}\"", json!({})),
        "2026-11-21T10:08:00+00:00"
    );
    assert!(r("\"{{convert_tz now 'Mars/Base'}}\"", json!({})).contains("is not a time zone"));
    // A table of values.
    let status = "\"{{map_value status pending='Очікує' paid='Сплачено'}}\"";
    assert_eq!(r(status, json!({"status": "paid"})), "Сплачено");
    assert_eq!(r(status, json!({"status": "lost"})), "lost");
    assert_eq!(
        r(
            "\"{{map_value status paid='Сплачено' otherwise='—'}}\"",
            json!({"status": "lost"})
        ),
        "—"
    );
}

#[test]
fn a_helper_called_with_the_wrong_number_of_parameters_is_refused_at_its_place() {
    let flow = sms_flow("\"Total {{add total}}\"");
    let problems = Mapper::new(&flow).err().unwrap_or_default();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!((problems[0].line, problems[0].column), (6, 3));
    assert_eq!(
        problems[0].message,
        "template of `text` calls `add` with 1 parameter; it takes 2"
    );
    assert_eq!(
        problems[0].hint.as_deref(),
        Some("for example `{{mul price qty}}`")
    );
    let unknown = Mapper::new(&sms_flow("\"{{fromat_number total}}\""))
        .err()
        .unwrap_or_default();
    assert!(
        unknown[0]
            .message
            .contains("calls unknown helper `fromat_number`")
            && unknown[0].hint.as_deref() == Some("did you mean `format_number`?"),
        "{unknown:#?}"
    );
}

#[test]
fn rendered_text_is_checked_against_the_receivers_field_types_and_limits() {
    let flow = flow_with("  destination: \"{{phone}}\"\n  text: hi\n  source: \"{{shop}}\"\n  encoding: \"{{enc}}\"\n", "");
    let mapper = Mapper::new(&flow).unwrap_or_else(|e| panic!("{e:#?}"));
    let now = at("2026-11-21T10:08:00Z");
    let ok = mapper.render(
        &record(
            "1",
            json!({"phone": "+380501234567", "shop": "", "enc": "ucs2"}),
        ),
        now,
    );
    let ok = ok.expect("it succeeds");
    assert!(
        !ok.contains_key("source"),
        "an optional field that renders empty is left out"
    );
    assert_eq!(ok["encoding"], "UCS2");
    let long = mapper.render(
        &record(
            "1",
            json!({"phone": "+1", "shop": "A very long shop name", "enc": "AUTO"}),
        ),
        now,
    );
    assert_eq!(
        long.err().map(|e| e.to_string()),
        Some("`source`: `A very long shop name` is 21 characters; at most 16 are allowed".into())
    );
    let bad = mapper.render(
        &record("1", json!({"phone": "+1", "shop": "x", "enc": "utf8"})),
        now,
    );
    assert_eq!(
        bad.err().map(|e| e.to_string()),
        Some("`encoding`: `utf8` is not one of AUTO, GSM7, UCS2".into())
    );
}

#[test]
fn templates_are_checked_against_known_fields_with_a_hint() {
    let flow = sms_flow("\"Hi {{nmae}}, {{order}} {{date}}\"");
    let mapper = Mapper::new(&flow).unwrap_or_else(|e| panic!("{e:#?}"));
    let known = vec![
        "name".to_string(),
        "phone".to_string(),
        "order_id".to_string(),
    ];
    let problems: Vec<String> = mapper
        .check_fields(&flow, &known, &[])
        .iter()
        .map(|d| d.message.clone())
        .collect();
    assert_eq!(
        problems,
        [
            "template of `text` uses unknown field `nmae`",
            "template of `text` uses unknown field `order`"
        ]
    );
    let hint = mapper.check_fields(&flow, &known, &[])[0]
        .hint
        .clone()
        .unwrap_or_default();
    assert!(hint.starts_with("did you mean `name`?"), "{hint}");
}

#[test]
fn a_value_the_same_for_every_record_is_checked_when_the_flow_is_read() {
    let flow = flow_with(
        "  destination: \"{{phone}}\"\n  text: hi\n  encoding: utf8\n  source: A very long shop name\n",
        "",
    );
    let problems: Vec<String> = Mapper::new(&flow)
        .err()
        .unwrap_or_default()
        .iter()
        .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
        .collect();
    assert_eq!(
        problems,
        [
            "7:3: `encoding`: `utf8` is not one of AUTO, GSM7, UCS2",
            "8:3: `source`: `A very long shop name` is 21 characters; at most 16 are allowed"
        ]
    );
    // With a field in it, the value is known only per record.
    let per_record = flow_with(
        "  destination: \"{{phone}}\"\n  text: hi\n  encoding: \"{{enc}}\"\n",
        "",
    );
    assert!(Mapper::new(&per_record).is_ok());
}

#[test]
fn a_template_that_does_not_parse_is_a_positioned_error() {
    let flow = sms_flow("\"Hi {{name\"");
    let problems = Mapper::new(&flow).err().unwrap_or_default();
    assert_eq!(problems.len(), 1);
    assert_eq!((problems[0].line, problems[0].column), (6, 3));
    assert!(
        problems[0]
            .message
            .starts_with("template of `text` does not parse"),
        "{}",
        problems[0]
    );
}

// ---- the run path -------------------------------------------------------------

/// The harness's source. It streams its rows two at a time (so every run-path test goes
/// through chunking), and can be told to fail after its first chunk.
struct Rows(Mutex<Vec<Record>>, std::sync::atomic::AtomicBool);

#[async_trait]
impl Source for Rows {
    async fn fetch(&self) -> Result<Fetched, SourceError> {
        Ok(Fetched {
            records: self.0.lock().map(|r| r.clone()).unwrap_or_default(),
            rejects: vec![],
        })
    }

    async fn stream(&self, _size: usize) -> Chunks {
        let rows = self.0.lock().map(|r| r.clone()).unwrap_or_default();
        let fail = self.1.load(std::sync::atomic::Ordering::SeqCst);
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tokio::spawn(async move {
            for (i, chunk) in rows.chunks(2).enumerate() {
                if fail && i == 1 {
                    let _ = tx.send(Err(SourceError("the file went away".into()))).await;
                    return;
                }
                let chunk = Fetched {
                    records: chunk.to_vec(),
                    rejects: vec![],
                };
                if tx.send(Ok(chunk)).await.is_err() {
                    return;
                }
            }
        });
        rx
    }
}

/// A receiver that answers from a script (then succeeds) and records what it was sent.
#[derive(Default)]
struct Scripted {
    script: Mutex<VecDeque<Result<Delivered, SendError>>>,
    sent: Mutex<Vec<String>>,
}

#[async_trait]
impl Receiver for Scripted {
    fn prepare(&self, fields: Map<String, Value>, reference: &str) -> Result<Prepared, SendError> {
        let mut body = fields;
        body.insert("ref".into(), json!(reference));
        Ok(Prepared {
            method: crate::Method::Post,
            url: "http://x".into(),
            body: Value::Object(body),
            notes: Map::new(),
        })
    }

    async fn send(&self, request: &Prepared) -> Result<Delivered, SendError> {
        let next = self.script.lock().ok().and_then(|mut s| s.pop_front());
        let result = next.unwrap_or(Ok(Delivered {
            remote_id: Some("id".into()),
        }));
        if result.is_ok() {
            if let Ok(mut sent) = self.sent.lock() {
                sent.push(request.body["ref"].as_str().unwrap_or_default().to_string());
            }
        }
        result
    }
}

struct Harness {
    flow: Flow,
    store: SqliteStore,
    rows: Rows,
    receiver: Arc<Scripted>,
    lookup: Option<LookupStep>,
    _dir: tempfile::TempDir,
}

impl Harness {
    fn new(backlog: &str, delivery: &str) -> Harness {
        let flow = flow_with(
            "  destination: \"{{phone}}\"\n  text: \"Hi {{name}}\"\n",
            delivery,
        );
        let mut flow = flow;
        flow.source.backlog = if backlog == "send" {
            flows::Backlog::Send
        } else {
            flows::Backlog::Skip
        };
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = SqliteStore::open(dir.path()).expect("the store opens");
        Harness {
            flow,
            store,
            rows: Rows(
                Mutex::new(vec![]),
                std::sync::atomic::AtomicBool::new(false),
            ),
            receiver: Arc::new(Scripted::default()),
            lookup: None,
            _dir: dir,
        }
    }

    fn add(&self, keys: &[&str]) {
        if let Ok(mut rows) = self.rows.0.lock() {
            for k in keys {
                rows.push(record(
                    k,
                    json!({"name": format!("n{k}"), "phone": "+380501234567"}),
                ));
            }
        }
    }

    /// Change a row's data in the source, as a person editing the sheet would.
    fn edit(&self, key: &str, name: &str) {
        if let Ok(mut rows) = self.rows.0.lock() {
            for row in rows.iter_mut().filter(|row| row.key == key) {
                row.fields.insert("name".into(), json!(name));
            }
        }
    }

    /// Whether the state holds the chunk of these rows of the source as settled.
    fn settled(&self, keys: &[&str]) -> bool {
        let chunk: Vec<Record> = self
            .rows
            .0
            .lock()
            .map(|rows| {
                keys.iter()
                    .filter_map(|key| rows.iter().find(|row| row.key == *key).cloned())
                    .collect()
            })
            .unwrap_or_default();
        let state = self
            .store
            .flow(&self.flow.name)
            .expect("the flow's state opens");
        let latest = state.runs(1).unwrap_or_default();
        let run = latest.first().map_or(0, |run| run.id);
        let sorted = state
            .sort_chunk(Some(ChunkPrint::of(&chunk, None, None)), &[], run)
            .expect("sort_chunk succeeds");
        matches!(sorted, crate::Sorted::Settled)
    }

    fn script(&self, results: Vec<Result<Delivered, SendError>>) {
        if let Ok(mut s) = self.receiver.script.lock() {
            s.extend(results);
        }
    }

    async fn run(&self) -> RunReport {
        let mapper = Mapper::new(&self.flow).unwrap_or_else(|e| panic!("{e:#?}"));
        let state = self
            .store
            .flow(&self.flow.name)
            .expect("the flow's state opens");
        let now = Utc::now;
        run_flow(RunContext {
            flow: &self.flow,
            source: &self.rows,
            receiver: self.receiver.clone(),
            mapper: &mapper,
            lookup: self.lookup.as_ref(),
            chain: None,
            state: &*state,
            trigger: Trigger::Manual,
            now: &now,
            progress: None,
            stop: crate::Stop::never(),
        })
        .await
        .expect("run_flow succeeds")
    }

    async fn replay(&self, filter: ReplayFilter) -> RunReport {
        let mapper = Mapper::new(&self.flow).unwrap_or_else(|e| panic!("{e:#?}"));
        let state = self
            .store
            .flow(&self.flow.name)
            .expect("the flow's state opens");
        let now = Utc::now;
        replay(
            RunContext {
                flow: &self.flow,
                source: &self.rows,
                receiver: self.receiver.clone(),
                mapper: &mapper,
                lookup: None,
                chain: None,
                state: &*state,
                trigger: Trigger::Replay,
                now: &now,
                progress: None,
                stop: crate::Stop::never(),
            },
            filter,
        )
        .await
        .expect("replay succeeds")
    }

    fn sent(&self) -> Vec<String> {
        let mut sent = self
            .receiver
            .sent
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        sent.sort();
        sent
    }
}

#[tokio::test]
async fn rows_are_sent_once_and_appended_rows_are_sent_next_run() {
    let h = Harness::new("send", "");
    h.add(&["1", "2", "3"]);
    let first = h.run().await;
    assert_eq!(
        (
            first.summary.counts.fetched,
            first.summary.counts.new,
            first.summary.counts.sent
        ),
        (3, 3, 3)
    );
    let again = h.run().await;
    assert_eq!(
        (
            again.summary.counts.fetched,
            again.summary.counts.new,
            again.summary.counts.sent
        ),
        (3, 0, 0)
    );
    h.add(&["4", "5"]);
    let third = h.run().await;
    assert_eq!(
        (third.summary.counts.new, third.summary.counts.sent),
        (2, 2)
    );
    assert_eq!(h.sent(), ["f:1", "f:2", "f:3", "f:4", "f:5"]);
    assert_eq!(third.summary.status, RunStatus::Succeeded);
}

#[tokio::test]
async fn the_default_backlog_remembers_existing_rows_without_sending() {
    let h = Harness::new("skip", "");
    h.add(&["1", "2"]);
    let first = h.run().await;
    assert_eq!(
        (first.summary.counts.skipped, first.summary.counts.sent),
        (2, 0)
    );
    h.add(&["3"]);
    let second = h.run().await;
    assert_eq!(
        (second.summary.counts.new, second.summary.counts.sent),
        (1, 1)
    );
    assert_eq!(h.sent(), ["f:3"]);
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_and_permanent_ones_are_not() {
    let h = Harness::new(
        "send",
        "delivery: {concurrency: 1, attempts: 3, backoff: 1s}\n",
    );
    h.add(&["1", "2"]);
    let busy = || {
        Err(SendError::Transient {
            reason: "HTTP 503".into(),
            retry_after: None,
        })
    };
    h.script(vec![
        busy(),
        busy(),
        Ok(Delivered::default()),
        Err(SendError::permanent("1002: Invalid MSISDN format")),
    ]);
    let report = h.run().await;
    assert_eq!(
        (report.summary.counts.sent, report.summary.counts.failed),
        (1, 1)
    );
    assert_eq!(report.failures[0].key, "2");
    assert_eq!(report.failures[0].attempts, 1);
    assert_eq!(
        report.failures[0].reason.as_deref(),
        Some("1002: Invalid MSISDN format")
    );
    let state = h.store.flow("f").expect("the flow's state opens");
    let rows = state.rows(report.summary.id).unwrap_or_default();
    assert_eq!(
        rows.iter().find(|r| r.key == "1").map(|r| r.attempts),
        Some(3)
    );
    // a permanent failure is remembered (replayable), not retried every run
    assert_eq!(h.run().await.summary.counts.new, 0);
}

#[tokio::test(start_paused = true)]
async fn a_record_that_keeps_failing_transiently_gives_up_and_is_retried_next_run() {
    let h = Harness::new(
        "send",
        "delivery: {concurrency: 1, attempts: 2, backoff: 1s}\n",
    );
    h.add(&["1"]);
    let busy = || {
        Err(SendError::Transient {
            reason: "timed out after 30s".into(),
            retry_after: None,
        })
    };
    h.script(vec![busy(), busy()]);
    let report = h.run().await;
    assert_eq!(report.summary.counts.failed, 1);
    assert!(report.failures[0].retry_next_run);
    assert_eq!(
        report.failures[0].reason.as_deref(),
        Some("timed out after 30s (gave up after 2 tries)")
    );
    let next = h.run().await;
    assert_eq!((next.summary.counts.new, next.summary.counts.sent), (1, 1));
}

#[tokio::test]
async fn a_refused_account_fails_the_rest_of_the_run_fast() {
    let h = Harness::new("send", "delivery: {concurrency: 1}\n");
    h.add(&["1", "2", "3"]);
    h.script(vec![Err(SendError::Unauthorized {
        code: Some("1200".into()),
        message: "Unauthorized (HTTP 401)".into(),
    })]);
    let report = h.run().await;
    assert_eq!(report.summary.counts.failed, 3);
    assert!(h.sent().is_empty(), "no further request after the 401");
    assert!(report.failures[1]
        .reason
        .as_deref()
        .unwrap_or_default()
        .contains("the account was refused earlier in this run"));
    // fixed credentials: every row goes out on the next run
    let next = h.run().await;
    assert_eq!(next.summary.counts.sent, 3);
}

#[tokio::test]
async fn a_row_that_cannot_be_mapped_fails_alone() {
    let h = Harness::new("send", "");
    h.add(&["1"]);
    if let Ok(mut rows) = h.rows.0.lock() {
        rows.push(record("2", json!({"phone": "+380501234567"})));
    }
    let report = h.run().await;
    assert_eq!(
        (report.summary.counts.sent, report.summary.counts.failed),
        (1, 1)
    );
    let reason = report.failures[0].reason.clone().unwrap_or_default();
    assert!(
        reason.starts_with("map: `text`: the record has no field `name`"),
        "{reason}"
    );
    assert_eq!(report.summary.status, RunStatus::Failed);
}

#[tokio::test]
async fn duplicate_keys_in_one_fetch_are_sent_once() {
    let h = Harness::new("send", "");
    h.add(&["1", "1"]);
    let report = h.run().await;
    assert_eq!(
        (report.summary.counts.sent, report.summary.counts.skipped),
        (1, 1)
    );
    assert_eq!(h.sent(), ["f:1"]);
}

fn crash_left_in_flight(h: &Harness, keys: &[&str]) {
    let state = h.store.flow("f").expect("the flow's state opens");
    let marks: Vec<InFlight> = keys
        .iter()
        .map(|k| InFlight {
            version: 1,
            key: k.to_string(),
            run: 1,
            since: Utc::now(),
            record: json!({"name": format!("n{k}"), "phone": "+380501234567"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            boot: None,
        })
        .collect();
    let _in_flight = state
        .mark_in_flight(1, 1, &marks)
        .expect("mark_in_flight succeeds");
}

#[tokio::test]
async fn sends_a_crash_interrupted_are_resent_once_and_marked_as_repeats() {
    let h = Harness::new("send", "");
    h.add(&["1", "2", "3"]);
    crash_left_in_flight(&h, &["2"]);
    let report = h.run().await;
    assert_eq!(
        (report.summary.counts.new, report.summary.counts.sent),
        (3, 3)
    );
    assert_eq!(
        h.sent(),
        ["f:1", "f:2", "f:3"],
        "the interrupted row is sent once, not twice"
    );
    let state = h.store.flow("f").expect("the flow's state opens");
    let rows = state.rows(report.summary.id).unwrap_or_default();
    let repeats: Vec<&str> = rows
        .iter()
        .filter(|r| r.repeat)
        .map(|r| r.key.as_str())
        .collect();
    assert_eq!(repeats, ["2"]);
    assert!(
        state
            .recover()
            .map(|l| l.entries.is_empty())
            .unwrap_or(false),
        "the ledger is empty after the run"
    );
}

#[tokio::test]
async fn a_batch_a_crash_interrupted_is_resent_except_rows_whose_outcome_reached_the_disk() {
    let h = Harness::new("send", "");
    h.add(&["1", "2", "3"]);
    let state = h.store.flow("f").expect("the flow's state opens");
    // Run 1 marked a batch of 1, 2, 3 and stored 1's outcome before it died.
    let run = state
        .begin_run(Trigger::Manual, Utc::now())
        .expect("the run begins");
    let marks: Vec<InFlight> = ["1", "2", "3"]
        .iter()
        .map(|k| InFlight {
            version: 1,
            key: k.to_string(),
            run: run.id,
            since: Utc::now(),
            record: json!({"name": format!("n{k}"), "phone": "+380501234567"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            boot: None,
        })
        .collect();
    let _in_flight = state
        .mark_in_flight(run.id, 1, &marks)
        .expect("mark_in_flight succeeds");
    let sent = RowOutcome {
        version: 1,
        run: run.id,
        seq: 1,
        key: "1".into(),
        status: RowStatus::Sent,
        reason: None,
        code: None,
        remote_id: None,
        attempts: 1,
        retry_next_run: false,
        repeat: false,
        uncertain: false,
        at: Utc::now(),
        record: serde_json::Map::new(),
        sent: None,
        call: None,
        digest: None,
        steps: Vec::new(),
    };
    state
        .record(&[(&sent, true)], &[])
        .expect("record succeeds");
    let ledger = state.recover().expect("the state recovers");
    let keys: Vec<&str> = ledger.entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["2", "3"], "1's outcome is on disk: settled");

    let report = h.run().await;
    assert_eq!(h.sent(), ["f:2", "f:3"], "2 and 3 resent, 1 not");
    let rows = state.rows(report.summary.id).unwrap_or_default();
    assert!(rows.iter().all(|r| r.repeat));
    let left = state.recover().expect("the state recovers");
    assert!(
        left.entries.is_empty() && left.marks.is_empty(),
        "the batch's entry is gone"
    );
}

#[tokio::test]
async fn with_resend_uncertain_off_they_are_parked_for_a_person_then_replayed() {
    let mut h = Harness::new("send", "");
    h.flow.resend_uncertain = false;
    h.add(&["1", "2"]);
    crash_left_in_flight(&h, &["2"]);
    let report = h.run().await;
    assert_eq!(h.sent(), ["f:1"], "zero repeats");
    assert_eq!(report.summary.counts.failed, 1);
    assert!(report.failures[0].uncertain);
    assert!(report.failures[0]
        .reason
        .as_deref()
        .unwrap_or_default()
        .contains("switchboard replay f --uncertain"));
    assert_eq!(
        h.run().await.summary.counts.new,
        0,
        "a parked row is not resent by itself"
    );

    let replayed = h
        .replay(ReplayFilter {
            run: None,
            only_uncertain: true,
        })
        .await;
    assert_eq!(
        (replayed.summary.trigger, replayed.summary.counts.sent),
        (Trigger::Replay, 1)
    );
    assert_eq!(h.sent(), ["f:1", "f:2"]);
    assert_eq!(
        h.replay(ReplayFilter::default()).await.summary.counts.new,
        0,
        "nothing left to replay"
    );
}

#[tokio::test]
async fn replay_resends_exactly_the_failed_rows_of_a_run() {
    let h = Harness::new("send", "delivery: {concurrency: 1}\n");
    h.add(&["1", "2", "3"]);
    h.script(vec![
        Ok(Delivered::default()),
        Err(SendError::permanent("1002: Invalid MSISDN format")),
        Ok(Delivered::default()),
    ]);
    let first = h.run().await;
    assert_eq!(first.summary.counts.failed, 1);
    let replayed = h
        .replay(ReplayFilter {
            run: Some(first.summary.id),
            only_uncertain: false,
        })
        .await;
    assert_eq!(
        (replayed.summary.counts.new, replayed.summary.counts.sent),
        (1, 1)
    );
    assert_eq!(h.sent(), ["f:1", "f:2", "f:3"]);
    assert_eq!(
        h.replay(ReplayFilter {
            run: Some(first.summary.id),
            only_uncertain: false
        })
        .await
        .summary
        .counts
        .new,
        0
    );
}

#[tokio::test(start_paused = true)]
async fn retries_stop_at_the_time_limit_even_with_attempts_left() {
    let h = Harness::new(
        "send",
        "delivery: {attempts: 10, backoff: 1s, max_backoff: 100s, max_time: 5s}\n",
    );
    h.add(&["1"]);
    let slow = || {
        Err(SendError::Transient {
            reason: "HTTP 429".into(),
            retry_after: Some(std::time::Duration::from_secs(3)),
        })
    };
    h.script(vec![slow(), slow(), slow(), slow()]);
    let report = h.run().await;
    let reason = report.failures[0].reason.clone().unwrap_or_default();
    assert_eq!(report.failures[0].attempts, 2, "{reason}");
    assert!(
        reason.contains("the next wait would pass the 5s limit"),
        "{reason}"
    );
}

struct Broken;

#[async_trait]
impl Source for Broken {
    async fn fetch(&self) -> Result<Fetched, SourceError> {
        Err(SourceError("cannot open `orders.csv`: no such file".into()))
    }
}

#[tokio::test]
async fn a_source_that_fails_records_a_failed_run_with_the_reason_and_the_next_run_goes_on() {
    let h = Harness::new("send", "");
    let mapper = Mapper::new(&h.flow).unwrap_or_else(|e| panic!("{e:#?}"));
    let state = h.store.flow("f").expect("the flow's state opens");
    let now = Utc::now;
    let failed = run_flow(RunContext {
        flow: &h.flow,
        source: &Broken,
        receiver: h.receiver.clone(),
        mapper: &mapper,
        lookup: None,
        chain: None,
        state: &*state,
        trigger: Trigger::Schedule,
        now: &now,
        progress: None,
        stop: crate::Stop::never(),
    })
    .await
    .expect("run_flow succeeds");
    assert_eq!(failed.summary.status, RunStatus::Failed);
    assert_eq!(
        failed.summary.error.as_deref(),
        Some("source: cannot open `orders.csv`: no such file")
    );
    assert_eq!(
        state.runs(1).unwrap_or_default()[0].error,
        failed.summary.error,
        "the reason is in history"
    );
    // the file is back: the next run works, and the backlog rule still applies to it
    h.add(&["1"]);
    let next = h.run().await;
    assert_eq!(
        (next.summary.status, next.summary.counts.sent),
        (RunStatus::Succeeded, 1)
    );
}

#[test]
fn list_fields_accept_comma_text_or_yaml_lists_and_say_what_is_wrong() {
    let spec = flows::FieldSpec::optional("groups", flows::FieldKind::IntegerList, "group ids");
    assert_eq!(
        crate::mapper::coerce_for_tests(&spec, json!("3, 5")),
        Ok(Some(json!([3, 5])))
    );
    assert_eq!(
        crate::mapper::coerce_for_tests(&spec, json!([3, "5"])),
        Ok(Some(json!([3, 5])))
    );
    assert_eq!(
        crate::mapper::coerce_for_tests(&spec, json!("3, x")),
        Err("`x` is not an integer".to_string())
    );
    let tags = flows::FieldSpec::optional("contact_tags", flows::FieldKind::TextList, "tags");
    assert_eq!(
        crate::mapper::coerce_for_tests(&tags, json!("vip, new")),
        Ok(Some(json!(["vip", "new"])))
    );
    let id = flows::FieldSpec::required("projectId", flows::FieldKind::Integer, "project");
    assert_eq!(
        crate::mapper::coerce_for_tests(&id, json!("abc")),
        Err("`abc` is not an integer".to_string())
    );
    assert_eq!(
        crate::mapper::coerce_for_tests(&id, json!(7)),
        Ok(Some(json!(7)))
    );
}

/// A directory of people by name (records are named `n<key>`): `nobody` is unknown,
/// `nflaky` is a service down.
struct People;

#[async_trait]
impl Lookup for People {
    async fn find(&self, query: &str) -> Result<Option<Value>, SendError> {
        match query {
            "nobody" => Ok(None),
            "nflaky" => Err(SendError::Transient {
                reason: "503".into(),
                retry_after: None,
            }),
            name => Ok(Some(
                json!({"mobile": format!("+38050{}", name.len()), "id": name}),
            )),
        }
    }
}

#[tokio::test]
async fn a_lookup_feeds_the_map_and_a_record_it_cannot_find_fails_alone() {
    let mut h = Harness::new("send", "delivery: {attempts: 1}\n");
    h.flow.map[0].value = flows::MapValue::Template("{{person.mobile}}".into());
    let config = flows::Lookup {
        connector: "cinnox",
        account: "cx".into(),
        action: "get_contact",
        query: "{{name}}".into(),
        query_pos: flows::Pos::new(1, 1),
        as_name: "person".into(),
        required: true,
        pos: flows::Pos::new(1, 1),
        section: flows::Section::new(()),
    };
    h.lookup = Some(LookupStep::new(&config, Arc::new(People)).expect("it is made"));
    h.add(&["ok", "obody", "flaky"]);
    let report = h.run().await;
    assert_eq!(h.sent(), ["f:ok"], "only the record found is sent");
    assert_eq!(report.summary.counts.failed, 2);
    let nobody = report.failures.iter().find(|f| f.key == "obody").cloned();
    let nobody = nobody.unwrap_or_else(|| panic!("{:#?}", report.failures));
    assert!(
        nobody
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("found nothing for `nobody`"),
        "{nobody:?}"
    );
    assert!(
        !nobody.retry_next_run,
        "nothing found is this record's fate"
    );
    let flaky = report.failures.iter().find(|f| f.key == "flaky").cloned();
    assert!(
        flaky.is_some_and(|f| f.retry_next_run),
        "a service down is tried next run"
    );

    // Next run: only the flaky one is asked again.
    h.add(&[]);
    let again = h.run().await;
    assert_eq!(
        (again.summary.counts.new, again.summary.counts.failed),
        (1, 1)
    );
}

#[tokio::test]
async fn a_source_is_read_chunk_by_chunk_and_a_failure_midway_keeps_what_was_sent() {
    let h = Harness::new("send", "");
    // 1 and 2 form the first chunk, 3 and a repeated 1 the second, 4 the third.
    h.add(&["1", "2", "3", "1", "4"]);
    h.rows.1.store(true, std::sync::atomic::Ordering::SeqCst);
    let broken = h.run().await;
    assert_eq!(
        h.sent(),
        ["f:1", "f:2"],
        "the first chunk went before the failure"
    );
    assert_eq!(broken.summary.status, RunStatus::Failed);
    assert!(broken
        .summary
        .error
        .as_deref()
        .unwrap_or_default()
        .contains("the file went away"));

    h.rows.1.store(false, std::sync::atomic::Ordering::SeqCst);
    let rest = h.run().await;
    assert_eq!(
        (rest.summary.counts.fetched, rest.summary.counts.new),
        (5, 2)
    );
    assert_eq!(h.sent(), ["f:1", "f:2", "f:3", "f:4"]);

    let fresh = Harness::new("send", "");
    fresh.add(&["1", "2", "3", "1", "4"]);
    let whole = fresh.run().await;
    assert_eq!(
        (whole.summary.counts.new, whole.summary.counts.skipped),
        (4, 1),
        "a key repeated in a later chunk is still a duplicate"
    );
}

#[tokio::test]
async fn a_key_repeated_after_an_outcome_not_remembered_is_still_a_duplicate() {
    // Chunks [1, 2] and [3, 1]: the account is refused, so every failure is one to try
    // again next run (not remembered); the state cannot tell the repeated 1, the run must.
    let h = Harness::new("send", "delivery: {concurrency: 1}\n");
    h.add(&["1", "2", "3", "1"]);
    h.script(vec![Err(SendError::Unauthorized {
        code: Some("1200".into()),
        message: "Unauthorized (HTTP 401)".into(),
    })]);
    let refused = h.run().await;
    assert_eq!(
        (
            refused.summary.counts.new,
            refused.summary.counts.failed,
            refused.summary.counts.skipped
        ),
        (3, 3, 1)
    );
    let next = h.run().await;
    assert_eq!(
        (next.summary.counts.sent, next.summary.counts.skipped),
        (3, 1)
    );
    assert_eq!(h.sent(), ["f:1", "f:2", "f:3"]);
}

#[test]
fn loops_inside_loops_and_huge_output_fail_the_record_instead_of_taking_the_process() {
    let items: Vec<u32> = (0..200).collect();
    // 200 × 200 × 200 = 8,000,000 steps: refused once 100,000 items are gone through.
    let nested = render(
        "\"{{#each @root.items}}{{#each @root.items}}{{#each @root.items}}x{{/each}}{{/each}}{{/each}}\"",
        json!({"items": items}),
    );
    let error = nested.err().map(|e| e.message).unwrap_or_default();
    assert!(
        error.contains("loops go through more than 100000 items"),
        "{error}"
    );
    // A loop within the budget renders, each with @index, @first and @last as before.
    assert_eq!(
        render(
            "\"{{#each items}}{{@index}}{{#if @first}}F{{/if}}{{#if @last}}L{{/if}};{{/each}}\"",
            json!({"items": [5, 6, 7]})
        ),
        Ok("0F;1;2L;".into())
    );
    assert_eq!(
        render(
            "\"{{#each map as |v k|}}{{k}}={{v}} {{/each}}{{#each none}}x{{else}}empty{{/each}}\"",
            json!({"map": {"a": 1, "b": 2}, "none": []})
        ),
        Ok("a=1 b=2 empty".into())
    );
    let big = "y".repeat(300_000);
    let huge = render(
        "\"{{#each items}}{{@root.big}}{{/each}}\"",
        json!({"items": [1, 2, 3, 4, 5], "big": big}),
    );
    let error = huge.err().map(|e| e.message).unwrap_or_default();
    assert!(
        error.contains("the rendered text passed 1048576 bytes"),
        "{error}"
    );
}

#[tokio::test]
async fn a_chunk_that_holds_nothing_new_is_settled_and_a_changed_one_is_read_key_by_key() {
    // Chunks [1, 2] and [3, 4]; 4 fails for good (remembered with its data).
    let h = Harness::new("send", "delivery: {concurrency: 1}\n");
    h.add(&["1", "2", "3", "4"]);
    h.script(vec![
        Ok(Delivered::default()),
        Ok(Delivered::default()),
        Ok(Delivered::default()),
        Err(SendError::permanent("1002: Invalid MSISDN format")),
    ]);
    let first = h.run().await;
    assert_eq!(
        (first.summary.counts.sent, first.summary.counts.failed),
        (3, 1)
    );
    assert!(h.settled(&["1", "2"]), "every row of it was sent");
    assert!(!h.settled(&["3", "4"]), "a row of it failed");

    // Read again: nothing is new; the chunk with the failed row is settled now (the row
    // is the one that failed, unchanged).
    let again = h.run().await;
    assert_eq!(
        (again.summary.counts.fetched, again.summary.counts.new),
        (4, 0)
    );
    assert!(h.settled(&["3", "4"]));

    // The failed row fixed: its chunk changed, so its keys are asked again and it goes.
    h.edit("4", "fixed");
    let fixed = h.run().await;
    assert_eq!(
        (fixed.summary.counts.new, fixed.summary.counts.sent),
        (1, 1)
    );
    // An appended row goes too; the unchanged chunks are still settled.
    h.add(&["5"]);
    let appended = h.run().await;
    assert_eq!(
        (appended.summary.counts.new, appended.summary.counts.sent),
        (1, 1)
    );
    assert_eq!(h.sent(), ["f:1", "f:2", "f:3", "f:4", "f:5"]);
    assert!(h.settled(&["1", "2"]) && h.settled(&["3", "4"]) && h.settled(&["5"]));
}

#[tokio::test]
async fn a_settled_chunk_is_read_key_by_key_again_once_one_of_its_keys_failed_since() {
    // Chunks [1, 2] and [3, 2]: key 2 twice, with other data the second time (B).
    let h = Harness::new("send", "delivery: {concurrency: 1}\n");
    h.add(&["1", "2", "3"]);
    if let Ok(mut rows) = h.rows.0.lock() {
        rows.push(record("2", json!({"name": "B", "phone": "+380501234567"})));
    }
    let invalid = || Err(SendError::permanent("1002: Invalid MSISDN format"));
    // 2 fails with its first data (A); the second 2 is a duplicate in this run.
    h.script(vec![
        Ok(Delivered::default()),
        invalid(),
        Ok(Delivered::default()),
    ]);
    let first = h.run().await;
    assert_eq!(
        (first.summary.counts.sent, first.summary.counts.failed),
        (2, 1)
    );
    // Next run: [1, 2] holds nothing new (2 failed with the data it still has) and is
    // settled; in [3, 2] the second 2 is new (other data than it failed with), is taken
    // and fails: 2 is now remembered as failed with B.
    h.script(vec![invalid()]);
    let second = h.run().await;
    assert_eq!(
        (second.summary.counts.new, second.summary.counts.failed),
        (1, 1)
    );
    assert!(
        !h.settled(&["1", "2"]),
        "the note went when 2 failed again, with other data"
    );
    // So the first 2 (A) is new again, as it would be had chunks never been settled.
    let third = h.run().await;
    assert_eq!(
        (third.summary.counts.new, third.summary.counts.sent),
        (1, 1)
    );
    assert_eq!(h.sent(), ["f:1", "f:2", "f:3"]);
}

#[tokio::test]
async fn keys_forgotten_by_pruning_are_sent_again_though_their_chunk_was_settled() {
    let h = Harness::new("send", "");
    h.add(&["1", "2"]);
    h.run().await;
    h.run().await;
    assert!(h.settled(&["1", "2"]));
    let state = h.store.flow("f").expect("the flow's state opens");
    let forget = Retention {
        keep_runs: Some(1),
        forget_handled: true,
        ..Retention::default()
    };
    let pruned = state.prune(&forget, false).expect("prune succeeds");
    assert_eq!(pruned.keys, 2);
    let after = h.run().await;
    assert_eq!(
        (after.summary.counts.new, after.summary.counts.sent),
        (2, 2)
    );
    assert_eq!(h.sent(), ["f:1", "f:1", "f:2", "f:2"]);
}

#[test]
fn a_chunk_print_changes_with_any_key_field_value_order_or_look_up() {
    let row = |key: &str, fields: Value| record(key, fields);
    let base = vec![
        row("1", json!({"name": "ab", "phone": "c"})),
        row("2", json!({"name": "d", "phone": "e"})),
    ];
    let print = ChunkPrint::of(&base, None, None);
    assert_eq!(
        print,
        ChunkPrint::of(&base.clone(), None, None),
        "the same rows"
    );
    let differs = [
        vec![
            row("1", json!({"name": "a", "phone": "bc"})),
            base[1].clone(),
        ],
        vec![row("1", json!({"name": "ab", "phone": "c"}))],
        vec![base[1].clone(), base[0].clone()],
        vec![
            row("12", json!({"name": "ab", "phone": "c"})),
            base[1].clone(),
        ],
        vec![row("1", json!({"name": "ab", "phone": 5})), base[1].clone()],
        vec![
            row("1", json!({"name": "ab", "phone": "5"})),
            base[1].clone(),
        ],
        vec![row("1", json!({"name": "ab"})), base[1].clone()],
    ];
    for (i, other) in differs.iter().enumerate() {
        assert_ne!(print, ChunkPrint::of(other, None, None), "case {i}");
    }
    assert_ne!(
        print,
        ChunkPrint::of(&base, Some("found"), None),
        "a look-up"
    );
    assert_ne!(
        ChunkPrint::of(&base, Some(""), None),
        ChunkPrint::of(&base, None, None),
        "a look-up named nothing"
    );
    assert_ne!(
        print,
        ChunkPrint::of(&base, None, Some("[\"status\",\"equals\",\"paid\"]")),
        "a filter"
    );
    assert_ne!(
        ChunkPrint::of(&base, None, Some("[\"status\",\"equals\",\"paid\"]")),
        ChunkPrint::of(&base, None, Some("[\"status\",\"equals\",\"new\"]")),
        "another filter"
    );
}

/// Three texts per row, `a` then `b` then `c`, each by its own scripted receiver.
struct Steps {
    flow: Flow,
    chain: Chain,
    receivers: Vec<Arc<Scripted>>,
    store: SqliteStore,
    rows: Rows,
    _dir: tempfile::TempDir,
}

impl Steps {
    fn new(delivery: &str) -> Steps {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let step = |name: &str| {
            format!(
                "  - name: {name}\n    action: {{connector: sms, action: send, account: sms}}\n    map: {{destination: \"{{{{phone}}}}\", text: \"{name} {{{{name}}}}\"}}\n"
            )
        };
        let text = format!(
            "source: {{connector: rows, path: rows.csv, key: id, backlog: send}}\n{delivery}steps:\n{}{}{}",
            step("a"),
            step("b"),
            step("c")
        );
        let flow = load_flow(dir.path(), &text);
        let receivers: Vec<Arc<Scripted>> = (0..3).map(|_| Arc::new(Scripted::default())).collect();
        let chain = Chain::new(
            flow.steps
                .iter()
                .zip(&receivers)
                .map(|(step, receiver)| {
                    let mapper =
                        Mapper::new(&flow.step_flow(step)).unwrap_or_else(|e| panic!("{e:#?}"));
                    ChainStep::action(step, receiver.clone(), mapper)
                })
                .collect(),
        );
        let store = SqliteStore::open(dir.path()).expect("the store opens");
        let rows = Rows(
            Mutex::new(
                ["1", "2"]
                    .iter()
                    .map(|k| {
                        record(
                            k,
                            json!({"name": format!("n{k}"), "phone": "+380501234567"}),
                        )
                    })
                    .collect(),
            ),
            std::sync::atomic::AtomicBool::new(false),
        );
        Steps {
            flow,
            chain,
            receivers,
            store,
            rows,
            _dir: dir,
        }
    }

    async fn run(&self) -> RunReport {
        let mapper = Mapper::new(&self.flow).unwrap_or_else(|e| panic!("{e:#?}"));
        let state = self.store.flow("f").expect("the flow's state opens");
        let now = Utc::now;
        run_flow(RunContext {
            flow: &self.flow,
            source: &self.rows,
            receiver: self.receivers[2].clone(),
            mapper: &mapper,
            lookup: None,
            chain: Some(&self.chain),
            state: &*state,
            trigger: Trigger::Manual,
            now: &now,
            progress: None,
            stop: crate::Stop::never(),
        })
        .await
        .expect("run_flow succeeds")
    }

    /// What each step's receiver was sent: the keys, step by step.
    fn sent(&self) -> Vec<Vec<String>> {
        self.receivers
            .iter()
            .map(|r| {
                let mut sent = r.sent.lock().map(|s| s.clone()).unwrap_or_default();
                sent.sort();
                sent
            })
            .collect()
    }

    /// A crash of run 1 left record 1 in flight, marked on `boot`, its step `a` done.
    fn crashed_after_a(&self, boot: Option<&str>) {
        let state = self.store.flow("f").expect("the flow's state opens");
        let run = state
            .begin_run(Trigger::Manual, Utc::now())
            .expect("the run begins");
        let mark = InFlight {
            version: 1,
            key: "1".into(),
            run: run.id,
            since: Utc::now(),
            record: json!({"name": "n1", "phone": "+380501234567"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            boot: boot.map(str::to_string),
        };
        let _in_flight = state
            .mark_in_flight(run.id, 1, &[mark])
            .expect("mark_in_flight succeeds");
        let a = StepOutcome {
            step: "a".into(),
            status: StepStatus::Done,
            reason: None,
            code: None,
            remote_id: Some("A-1".into()),
            answer: json!({"id": "A-1", "status": "sent"}),
            attempts: 1,
            repeat: false,
            sent: None,
            at: Utc::now(),
        };
        state
            .save_meta(
                &progress_key("1"),
                &json!({"run": run.id, "steps": [serde_json::to_value(a).unwrap_or_default()]}),
            )
            .expect("save_meta succeeds");
    }

    /// The steps of `key` in the run's stored outcomes, as `(step, status, repeat)`.
    fn steps_of(&self, run: u64, key: &str) -> Vec<(String, StepStatus, bool)> {
        let state = self.store.flow("f").expect("the flow's state opens");
        let rows = state.rows(run).unwrap_or_default();
        rows.iter()
            .find(|r| r.key == key)
            .map(|r| {
                r.steps
                    .iter()
                    .map(|s| (s.step.clone(), s.status, s.repeat))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn a_record_resumed_on_the_same_boot_skips_its_done_steps_and_marks_only_the_next_send() {
    if crate::boot_id().is_none() {
        return; // no boot id here: every resumed send is marked (the next test)
    }
    let s = Steps::new("");
    s.crashed_after_a(crate::boot_id());
    let report = s.run().await;
    assert_eq!(report.summary.counts.sent, 2);
    assert_eq!(
        s.sent(),
        [vec!["f:2"], vec!["f:1", "f:2"], vec!["f:1", "f:2"]],
        "step a of record 1 is not sent again"
    );
    assert_eq!(
        s.steps_of(report.summary.id, "1"),
        [
            ("a".to_string(), StepStatus::Done, false),
            ("b".to_string(), StepStatus::Done, true),
            ("c".to_string(), StepStatus::Done, false),
        ],
        "b may have left before the crash; c could not have"
    );
    let state = s.store.flow("f").expect("the flow's state opens");
    assert!(
        state
            .metas_under(crate::state::PROGRESS_PREFIX)
            .unwrap_or_default()
            .is_empty(),
        "the progress goes with the outcome"
    );
}

#[tokio::test]
async fn a_record_resumed_after_another_boot_marks_every_send_it_makes() {
    for boot in [Some("another-boot"), None] {
        let s = Steps::new("");
        s.crashed_after_a(boot);
        let report = s.run().await;
        assert_eq!(s.sent()[0], ["f:2"], "{boot:?}");
        assert_eq!(
            s.steps_of(report.summary.id, "1"),
            [
                ("a".to_string(), StepStatus::Done, false),
                ("b".to_string(), StepStatus::Done, true),
                ("c".to_string(), StepStatus::Done, true),
            ],
            "{boot:?}: progress written without a flush may have lost b's outcome"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_step_that_gives_up_keeps_the_steps_before_it_and_the_next_run_resumes_there() {
    let s = Steps::new("delivery: {concurrency: 1, attempts: 1}\n");
    s.receivers[1]
        .script
        .lock()
        .expect("the script")
        .push_back(Err(SendError::Transient {
            reason: "HTTP 503".into(),
            retry_after: None,
        }));
    let first = s.run().await;
    assert_eq!(first.summary.counts.failed, 1);
    let failure = &first.failures[0];
    assert!(failure.retry_next_run);
    assert!(
        failure
            .reason
            .as_deref()
            .unwrap_or_default()
            .starts_with("step `b`"),
        "{:?}",
        failure.reason
    );
    let failed = failure.key.clone();
    let second = s.run().await;
    assert_eq!(second.summary.counts.sent, 1);
    let sent = s.sent();
    let times = |step: usize| {
        sent[step]
            .iter()
            .filter(|k| **k == format!("f:{failed}"))
            .count()
    };
    assert_eq!(
        (times(0), times(1), times(2)),
        (1, 1, 1),
        "a once, b once (after its failure), c once: {sent:?}"
    );
}
