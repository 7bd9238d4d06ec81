//! The conformance kit: every receiver action of every HTTP connector in the registry,
//! built as a user would build it (an account in `accounts.yaml`, a flow whose `map:`
//! gives each required field of the action's card a value of its type), sent against a
//! service that answers the way services fail — 401, 429 with `Retry-After`, 500, 400
//! with the service's own error body — and each failure checked to be classified as the
//! engine needs it: the account refused, tried again later (after the wait asked for),
//! tried again, or the record failed with the service's reason. A connector added to the
//! registry is in the kit by its card; only its account's sample is written here.

use std::path::Path;
use std::time::Duration;

use engine::SendError;
use flows::{FieldKind, FieldSpec, LoadOptions};
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::CONNECTORS;

/// The key the Google sample's service account signs with.
const GOOGLE_KEY: &str = include_str!("google_sheets/test-key.pem");

/// An account of `connector` whose calls go to `base` (`None`: not an HTTP service).
fn sample_account(connector: &str, base: &str, dir: &Path) -> Option<String> {
    Some(match connector {
        "8x8" => format!("{{connector: 8x8, subaccount_id: shop_main, api_key: kit-key, base_url: \"{base}\", rate_limit: off}}"),
        "textrequest" => format!("{{connector: textrequest, api_key: kit-key, base_url: \"{base}\", rate_limit: off}}"),
        "cinnox" => format!("{{connector: cinnox, app_id: kit-app, app_token: kit-token, base_url: \"{base}\", rate_limit: off}}"),
        "aranda" => format!("{{connector: aranda, api_key: kit-key, instance_url: \"https://asms.example.com\", base_url: \"{base}\", rate_limit: off}}"),
        "http" => format!("{{connector: http, base_url: \"{base}\", rate_limit: off}}"),
        "telegram" => format!("{{connector: telegram, bot_token: \"123:kit\", base_url: \"{base}\", rate_limit: off}}"),
        "google_sheets" => {
            let key = json!({"type": "service_account", "client_email": "kit@project.iam.gserviceaccount.com", "private_key": GOOGLE_KEY});
            std::fs::write(dir.join("key.json"), key.to_string()).ok()?;
            format!("{{connector: google_sheets, service_account_file: key.json, token_url: \"{base}/token\", base_url: \"{base}\", rate_limit: off}}")
        }
        _ => return None,
    })
}

/// Options an action cannot go without (beside `connector`, `action`, `account`).
fn sample_options(connector: &str, action: &str) -> &'static str {
    match (connector, action) {
        ("textrequest", "create_dashboard" | "rename_dashboard" | "delete_dashboard") => "",
        ("textrequest", _) => ", dashboard_id: 121",
        ("google_sheets", "update_row") => ", spreadsheet_id: kit-sheet, key: order_id",
        ("google_sheets", _) => ", spreadsheet_id: kit-sheet",
        _ => "",
    }
}

/// A value of the field's type, as a template renders it (the few a type does not say
/// enough for: given by connector, action and field).
fn sample_value(connector: &str, action: &str, field: &FieldSpec) -> String {
    let given = match (connector, action, field.name) {
        ("google_sheets", "append_row", "values") => Some(r#"["kit", "5"]"#),
        ("telegram", _, "chat_id") => Some("-1001234567890"),
        ("aranda", "attach_file", "content") => Some("a2l0"),
        _ => None,
    };
    if let Some(value) = given {
        return value.to_string();
    }
    let value = match (field.name, field.kind) {
        (name, FieldKind::Text) if name.contains("email") => "kit@example.com",
        (_, FieldKind::Text) => "kit",
        (_, FieldKind::Phone) => "+380501234567",
        (_, FieldKind::OneOf(values)) => values.first().copied().unwrap_or("kit"),
        (_, FieldKind::DateTime) => "2026-12-07T10:00:00Z",
        (_, FieldKind::Url) => "https://example.com/kit.pdf",
        (_, FieldKind::Integer) => "5",
        (_, FieldKind::Number) => "12.50",
        (_, FieldKind::Boolean) => "true",
        (_, FieldKind::IntegerList) => "3",
        (_, FieldKind::TextList) => "kit",
        (_, FieldKind::Json) => r#"{"status": "kit"}"#,
    };
    value.to_string()
}

/// Optional fields of which an action needs one (a contact's name, a file).
fn needed(connector: &str, action: &str, field: &str) -> bool {
    matches!(
        (connector, action, field),
        ("cinnox", "create_contact", "firstName") | ("aranda", "attach_file", "content")
    )
}

/// What an answer must become.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expected {
    /// The account refused: runs stop sending with it.
    Account,
    /// Tried again, after the wait the service asked for (if it asked).
    Later(Option<Duration>),
    /// The record failed, with the service's reason.
    Record,
}

/// The failing answers every service is tried with.
fn answers() -> Vec<(&'static str, ResponseTemplate, Expected)> {
    vec![
        (
            "401",
            ResponseTemplate::new(401).set_body_json(json!({"code": 1200, "message": "Unauthorized", "ok": false, "error_code": 401, "description": "Unauthorized"})),
            Expected::Account,
        ),
        (
            "429 with Retry-After",
            ResponseTemplate::new(429)
                .insert_header("retry-after", "7")
                .set_body_json(json!({"code": 1429, "message": "Too many requests", "ok": false, "error_code": 429, "description": "Too Many Requests"})),
            Expected::Later(Some(Duration::from_secs(7))),
        ),
        (
            "500",
            ResponseTemplate::new(500).set_body_json(json!({"code": 1500, "message": "Internal error", "ok": false, "error_code": 500, "description": "Internal Server Error"})),
            Expected::Later(None),
        ),
        (
            "400 with a service code",
            ResponseTemplate::new(400).set_body_json(json!({"code": 1001, "message": "kit: the field is invalid", "ok": false, "error_code": 400, "description": "Bad Request: kit: the field is invalid", "error": {"code": 400, "message": "kit: the field is invalid", "status": "INVALID_ARGUMENT"}})),
            Expected::Record,
        ),
    ]
}

/// A flows directory holding `files`, loaded with the real catalogue; it must have no
/// problem (`what` names the action for the message).
fn kit_project(flows_dir: &Path, files: &[(&str, String)], what: &str) -> flows::Project {
    for (name, text) in files {
        std::fs::write(flows_dir.join(name), text).expect("the test writes its file");
    }
    let project = flows::load_project(
        &LoadOptions {
            flows_dir: flows_dir.to_path_buf(),
            ..LoadOptions::default()
        },
        &crate::Catalogue,
    );
    let problems = project.diagnostics();
    assert!(problems.is_empty(), "{what}: {problems:?}");
    project
}

/// A temporary place with a `flows/` directory in it (kept while the result lives).
fn kit_dir() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let flows_dir = dir.path().join("flows");
    std::fs::create_dir_all(&flows_dir).expect("the test makes its directory");
    (dir, flows_dir)
}

/// The action's receiver, built from a flow directory as a user writes it.
fn build(card_name: &str, action: &crate::card::Action, base: &str) -> Option<Built> {
    let (dir, flows_dir) = kit_dir();
    let connector = card_name;
    let account = sample_account(connector, base, &flows_dir)?;
    let map: Vec<String> = action
        .fields
        .iter()
        .filter(|f| f.required || needed(card_name, action.name, f.name))
        .map(|f| {
            format!(
                "  {}: '{}'",
                f.name,
                sample_value(connector, action.name, f)
            )
        })
        .collect();
    let map = if map.is_empty() {
        "map: {}".to_string()
    } else {
        format!("map:\n{}", map.join("\n"))
    };
    let flow = format!(
        "source: {{connector: csv, path: rows.csv, key: id}}\nreceiver: {{connector: {connector}, action: {}, account: kit{}}}\n{map}\ndelivery: {{attempts: 1}}\n",
        action.name,
        sample_options(connector, action.name)
    );
    let files = [
        ("accounts.yaml", format!("kit: {account}\n")),
        ("kit.yaml", flow),
        ("rows.csv", "id\n1\n".to_string()),
    ];
    let project = kit_project(&flows_dir, &files, &format!("{connector} {}", action.name));
    let flow = &project.flows["kit"];
    let receiver = crate::build_receiver(flow, &project.accounts)
        .unwrap_or_else(|e| panic!("{connector} {}: {e}", action.name));
    // Rendered and typed by the engine's own mapper, as a run renders them.
    let mapper = engine::Mapper::new(flow).unwrap_or_else(|e| panic!("{e:?}"));
    let record = engine::Record::new("1", serde_json::Map::new());
    let fields = mapper
        .render(&record, chrono::Utc::now())
        .unwrap_or_else(|e| panic!("{connector} {}: {e}", action.name));
    Some((dir, receiver, fields))
}

/// The look-up's live form, built from a flow directory as a user writes it.
fn build_lookup(
    connector: &str,
    action: &crate::card::Action,
    base: &str,
) -> Option<(tempfile::TempDir, std::sync::Arc<dyn engine::Lookup>)> {
    let (dir, flows_dir) = kit_dir();
    let account = sample_account(connector, base, &flows_dir)?;
    let flow = format!(
        "source: {{connector: csv, path: rows.csv, key: id}}\nlookup: {{connector: {connector}, action: {}, account: kit, query: kit{}}}\nreceiver: {{connector: http, action: request, account: hook}}\nmap: {{url: /x, body: '{{{{id}}}}'}}\n",
        action.name,
        sample_lookup_options(connector, action.name)
    );
    let files = [
        (
            "accounts.yaml",
            format!("kit: {account}\nhook: {{connector: http, base_url: \"{base}\"}}\n"),
        ),
        ("kit.yaml", flow),
        ("rows.csv", "id\n1\n".to_string()),
    ];
    let project = kit_project(&flows_dir, &files, &format!("{connector} {}", action.name));
    let lookup = crate::build_lookup(&project.flows["kit"], &project.accounts)
        .unwrap_or_else(|e| panic!("{connector} {}: {e}", action.name))
        .unwrap_or_else(|| panic!("{connector} {}: no look-up built", action.name));
    Some((dir, lookup))
}

/// What a look-up is asked, in the shape it takes.
fn sample_query(connector: &str, action: &str) -> &'static str {
    match (connector, action) {
        ("cinnox", "list_numbers") => "sms-numbers",
        ("textrequest", "get_payment" | "get_group" | "get_dashboard") => "5",
        ("textrequest", "get_contact" | "get_messages") => "+14239876543",
        _ => "kit",
    }
}

/// Options a look-up cannot go without (beside `connector`, `action`, `account`, `query`).
fn sample_lookup_options(connector: &str, action: &str) -> &'static str {
    match (connector, action) {
        ("google_sheets", _) => ", spreadsheet_id: kit-sheet, key: order_id",
        ("aranda", "search_cases") => ", field: Subject",
        ("textrequest", "get_dashboard" | "list_dashboards") => "",
        ("textrequest", _) => ", dashboard_id: 121",
        _ => "",
    }
}

/// A receiver built for the kit: its flows directory (kept while it is used), the
/// receiver, and the fields the map rendered.
type Built = (
    tempfile::TempDir,
    std::sync::Arc<dyn engine::Receiver>,
    serde_json::Map<String, Value>,
);

/// What a send's error is, in the kit's words.
fn classified<T>(result: &Result<T, SendError>) -> Option<Expected> {
    match result {
        Err(SendError::Unauthorized { .. }) => Some(Expected::Account),
        Err(SendError::Transient { retry_after, .. }) => Some(Expected::Later(*retry_after)),
        Err(SendError::Permanent { .. }) => Some(Expected::Record),
        _ => None,
    }
}

/// A service that gives a service account its token and answers everything else with
/// `answer`.
async fn failing(answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "kit-token", "expires_in": 3600, "token_type": "Bearer"}),
        ))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(wiremock::matchers::any())
        .respond_with(answer)
        .with_priority(2)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn every_action_of_every_http_connector_classifies_every_failure_as_the_engine_needs() {
    let mut tried = 0;
    let mut wrong = Vec::new();
    for connector in CONNECTORS {
        let card = connector.card();
        for action in card.actions {
            for (label, answer, expected) in answers() {
                let server = failing(answer).await;
                let Some((_dir, receiver, fields)) = build(card.name, action, &server.uri()) else {
                    continue;
                };
                let prepared = match receiver.prepare(fields, "kit:1") {
                    Ok(prepared) => prepared,
                    Err(e) => {
                        wrong.push(format!(
                            "{} {}: the sample map is refused: {e}",
                            card.name, action.name
                        ));
                        break;
                    }
                };
                let started = std::time::Instant::now();
                let sent = receiver.send(&prepared).await;
                // A failure comes back at once: waiting is the engine's (bounded by
                // `max_time`), never a send slot held asleep.
                if started.elapsed() > Duration::from_secs(2) {
                    wrong.push(format!(
                        "{} {} answered {label}: the send took {:?} to fail",
                        card.name,
                        action.name,
                        started.elapsed()
                    ));
                }
                tried += 1;
                let got = classified(&sent);
                if got != Some(expected) {
                    wrong.push(format!(
                        "{} {} answered {label}: expected {expected:?}, got {sent:?}",
                        card.name, action.name
                    ));
                }
                // The service's reason reaches the record.
                if let (Expected::Record, Err(SendError::Permanent { message, .. })) =
                    (expected, &sent)
                {
                    if !message.contains("kit: the field is invalid") {
                        wrong.push(format!(
                            "{} {} answered {label}: the service's reason is lost: {message}",
                            card.name, action.name
                        ));
                    }
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {tried}:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(tried >= 4 * 25, "the kit tried only {tried} answers");
}

#[tokio::test]
async fn every_look_up_of_every_http_connector_classifies_every_failure_as_the_engine_needs() {
    let mut tried = 0;
    let mut wrong = Vec::new();
    for connector in CONNECTORS {
        let card = connector.card();
        for action in card.lookups {
            for (label, answer, expected) in answers() {
                let server = failing(answer).await;
                let Some((_dir, lookup)) = build_lookup(card.name, action, &server.uri()) else {
                    continue;
                };
                let started = std::time::Instant::now();
                let found = lookup.find(sample_query(card.name, action.name)).await;
                tried += 1;
                if classified(&found) != Some(expected) {
                    wrong.push(format!(
                        "{} {} answered {label}: expected {expected:?}, got {found:?}",
                        card.name, action.name
                    ));
                }
                if started.elapsed() > Duration::from_secs(2) {
                    wrong.push(format!(
                        "{} {} answered {label}: the look-up took {:?} to fail",
                        card.name,
                        action.name,
                        started.elapsed()
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {tried}:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(tried >= 4 * 15, "the kit tried only {tried} answers");
}
