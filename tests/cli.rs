//! End-to-end tests of the `switchboard` binary: each command run as a user runs it,
//! against a local mock of the 8x8 API (wiremock) or the built-in stand-in.

// The whole crate is tests (its helpers too): they state what they expect.
#![allow(clippy::expect_used)]

use std::path::Path;
use std::process::Output;

use serde_json::{json, Value};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const API_KEY: &str = "sk-live-SECRET-0123456789";
const MESSAGES: &str = "/api/v1/subaccounts/shop_main/messages";

const FLOW: &str = r#"enabled: true
timezone: Europe/Kyiv
source:
  connector: csv
  path: orders.csv
  key: order_id
  backlog: send
receiver:
  connector: 8x8
  action: send_sms
  account: shop-8x8
map:
  destination: "{{phone}}"
  source: "MyShop"
  text: "Hi {{name}}, order {{order_id}} is confirmed."
schedule:
  every: 15m
"#;

const ORDERS: &str = "order_id,name,phone\nA-1,Olena,+380501234567\nA-2,Tom & Jerry <3,+12025550175\nA-3,王芳,+8613800138000\n";

/// A flows directory in a temporary place, pointed at `base_url`.
struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    fn new(base_url: &str) -> Dir {
        let tmp = tempfile::tempdir().expect("a temporary directory");
        let d = Dir { tmp };
        d.write(
            "flows/accounts.yaml",
            &format!("shop-8x8:\n  connector: 8x8\n  subaccount_id: shop_main\n  api_key: ${{EIGHTX8_API_KEY}}\n  base_url: {base_url}\n"),
        );
        d.write("flows/order-sms.yaml", FLOW);
        d.write("flows/orders.csv", ORDERS);
        d.private("flows/accounts.yaml");
        d
    }

    /// Readable by its owner only, as an accounts file should be.
    fn private(&self, name: &str) {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(
            self.path().join(name),
            std::fs::Permissions::from_mode(0o600),
        );
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    fn write(&self, name: &str, text: &str) {
        let p = self.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("the test makes its directory");
        }
        std::fs::write(p, text).expect("the test writes its file");
    }

    fn append(&self, name: &str, text: &str) {
        let p = self.path().join(name);
        let mut all = std::fs::read_to_string(&p).unwrap_or_default();
        all.push_str(text);
        std::fs::write(p, all).expect("the test writes its file");
    }

    /// Run the binary in this directory (so the default `--flows flows` applies).
    async fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[]).await
    }

    /// [`Dir::run`] with more environment variables (or the test's ones replaced).
    async fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(args)
            .current_dir(self.path())
            .env("EIGHTX8_API_KEY", API_KEY)
            .envs(env.iter().copied())
            .env_remove("SWITCHBOARD_FLOWS")
            .env_remove("SWITCHBOARD_STATE")
            .env_remove("SWITCHBOARD_ACCOUNTS")
            .env_remove("RUST_LOG")
            .output()
            .await
            .unwrap_or_else(|e| panic!("cannot run switchboard: {e}"));
        Run::from(output)
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn queued(request: &Request) -> ResponseTemplate {
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    ResponseTemplate::new(200).set_body_json(json!({
        "umid": format!("umid-{}", body["clientMessageId"].as_str().unwrap_or_default()),
        "clientMessageId": body["clientMessageId"],
        "destination": body["destination"],
        "encoding": "GSM7",
        "status": {"code": "QUEUED", "description": "SMS is accepted and queued for processing"}
    }))
}

/// A mock 8x8 that accepts messages carrying the right key.
async fn mock_8x8() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .and(header(
            "authorization",
            format!("Bearer {API_KEY}").as_str(),
        ))
        .and(header("content-type", "application/json"))
        .respond_with(queued)
        .mount(&server)
        .await;
    server
}

async fn bodies(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect()
}

fn client_ids(bodies: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = bodies
        .iter()
        .map(|b| {
            b["clientMessageId"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn run_sends_every_row_once_and_appended_rows_on_the_next_run() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());

    let first = dir.run(&["run", "order-sms"]).await;
    assert_eq!(first.code, 0, "{first:?}");
    assert!(
        first.stdout.starts_with(
            "order-sms run 1: fetched 3, new 3, sent 3, failed 0, skipped 0 (succeeded"
        ),
        "{first:?}"
    );
    let sent = bodies(&server).await;
    let tom = sent
        .iter()
        .find(|b| b["clientMessageId"] == "order-sms:A-2")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        tom,
        json!({"destination": "+12025550175", "source": "MyShop", "text": "Hi Tom & Jerry <3, order A-2 is confirmed.", "clientMessageId": "order-sms:A-2"})
    );

    let again = dir.run(&["run", "order-sms"]).await;
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again
            .stdout
            .starts_with("order-sms run 2: fetched 3, new 0, sent 0, failed 0, skipped 0"),
        "{again:?}"
    );

    dir.append(
        "flows/orders.csv",
        "A-4,Ivan,+380671112233\nA-5,Anna,+447700900123\n",
    );
    let third = dir.run(&["run", "order-sms"]).await;
    assert!(
        third
            .stdout
            .starts_with("order-sms run 3: fetched 5, new 2, sent 2, failed 0, skipped 0"),
        "{third:?}"
    );
    assert_eq!(
        client_ids(&bodies(&server).await),
        [
            "order-sms:A-1",
            "order-sms:A-2",
            "order-sms:A-3",
            "order-sms:A-4",
            "order-sms:A-5"
        ]
    );
}

#[tokio::test]
async fn run_exits_nonzero_and_explains_each_failed_row() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"destination": "+12025550175"})))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "code": 1002, "message": "Invalid MSISDN format", "errorId": "e1", "timestamp": "2026-11-21T10:00:00Z"
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(queued)
        .mount(&server)
        .await;
    let dir = Dir::new(&server.uri());
    dir.append("flows/orders.csv", "A-4,,+380671112233\n");

    let run = dir.run(&["run", "order-sms"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("sent 3, failed 1"), "{run:?}");
    assert!(
        run.stdout
            .contains("failed  A-2  1002: Invalid MSISDN format (HTTP 400)"),
        "{run:?}"
    );

    let json = dir.run(&["run", "order-sms", "--json"]).await;
    assert_eq!(json.code, 0, "nothing new, nothing failed: {json:?}");
    assert_eq!(json.json()["run"]["counts"]["new"], 0);
}

#[tokio::test]
async fn run_of_an_invalid_or_unknown_flow_says_why() {
    let dir = Dir::new("http://127.0.0.1:9");
    let unknown = dir.run(&["run", "order-smss"]).await;
    assert_eq!(unknown.code, 1);
    assert!(
        unknown.stderr.contains("no flow named `order-smss`")
            && unknown.stderr.contains("did you mean `order-sms`?"),
        "{unknown:?}"
    );

    dir.write(
        "flows/order-sms.yaml",
        &FLOW.replace("{{name}}", "{{nmae}}"),
    );
    let invalid = dir.run(&["run", "order-sms"]).await;
    assert_eq!(invalid.code, 1, "{invalid:?}");
    assert!(
        invalid
            .stderr
            .contains("order-sms.yaml:15:3: template of `text` uses unknown field `nmae`"),
        "{invalid:?}"
    );
    assert!(
        invalid.stderr.contains("hint: did you mean `name`?"),
        "{invalid:?}"
    );
}

#[tokio::test]
async fn a_missing_environment_variable_stops_the_run_and_is_named() {
    let dir = Dir::new("http://127.0.0.1:9");
    dir.write("flows/accounts.yaml", "shop-8x8:\n  connector: 8x8\n  subaccount_id: shop_main\n  api_key: ${SWITCHBOARD_E2E_UNSET}\n");
    dir.private("flows/accounts.yaml");
    let run = dir.run(&["run", "order-sms"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("environment variable `SWITCHBOARD_E2E_UNSET` is not set"),
        "{run:?}"
    );
}

#[tokio::test]
async fn validate_reports_every_problem_in_the_directory_at_once() {
    let dir = Dir::new("http://127.0.0.1:9");
    let good = dir.run(&["validate"]).await;
    assert_eq!(
        (good.code, good.stdout.as_str()),
        (0, "1 flow valid\n"),
        "{good:?}"
    );

    dir.write(
        "flows/bad-tz.yaml",
        &FLOW.replace("Europe/Kyiv", "Europe/Kyivv"),
    );
    dir.write(
        "flows/bad-connector.yaml",
        &FLOW.replace("connector: 8x8", "connector: 8x9"),
    );
    dir.write("flows/broken.yaml", "source: [\n");
    let bad = dir.run(&["validate"]).await;
    assert_eq!(bad.code, 1, "{bad:?}");
    let expected = [
        "flows/bad-connector.yaml:9:14: unknown receiver connector `8x9`\n  hint: did you mean `8x8`?",
        "flows/bad-tz.yaml:2:11: unknown timezone `Europe/Kyivv`\n  hint: did you mean `Europe/Kyiv`?",
        "flows/broken.yaml:2:1: invalid YAML",
        "1 flow valid, 3 invalid; 3 problems",
    ];
    for e in expected {
        assert!(bad.stdout.contains(e), "missing {e:?} in {bad:?}");
    }
    let json = dir.run(&["validate", "--json"]).await.json();
    assert_eq!(
        json["invalid"],
        json!(["bad-connector", "bad-tz", "broken"])
    );
    assert_eq!(json["problems"][0]["line"], 9);
}

#[tokio::test]
async fn test_previews_exactly_what_would_be_sent_and_changes_nothing() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    let preview = dir.run(&["test", "order-sms", "--limit", "2"]).await;
    assert_eq!(preview.code, 0, "{preview:?}");
    assert!(
        preview
            .stdout
            .contains(&format!("POST {}{MESSAGES}", server.uri())),
        "{preview:?}"
    );
    assert!(
        preview
            .stdout
            .contains("\"text\": \"Hi Tom & Jerry <3, order A-2 is confirmed.\""),
        "{preview:?}"
    );
    assert!(
        preview
            .stdout
            .contains("(encoding: GSM-7, characters: 42, parts: 1)"),
        "{preview:?}"
    );
    assert!(!preview.stdout.contains("A-3"), "--limit 2: {preview:?}");
    assert!(bodies(&server).await.is_empty(), "a preview sends nothing");

    let json = dir
        .run(&["test", "order-sms", "--limit", "3", "--json"])
        .await
        .json();
    assert_eq!(json["previews"][2]["request"]["notes"]["encoding"], "UCS-2");

    let test_send = dir
        .run(&["test", "order-sms", "--send", "--to", "+447700900123"])
        .await;
    assert_eq!(test_send.code, 0, "{test_send:?}");
    assert!(
        test_send
            .stdout
            .contains("test send of `A-1`: sent (id umid-order-sms:test)"),
        "{test_send:?}"
    );
    let sent = bodies(&server).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["destination"], "+447700900123");

    // nothing was remembered: the real run still sends all three
    let run = dir.run(&["run", "order-sms"]).await;
    assert!(run.stdout.contains("new 3, sent 3"), "{run:?}");
}

#[tokio::test]
async fn history_lists_runs_and_each_rows_outcome() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    let none = dir.run(&["history", "order-sms"]).await;
    assert_eq!(none.stdout, "order-sms: no runs yet\n");
    dir.run(&["run", "order-sms"]).await;
    dir.run(&["run", "order-sms"]).await;

    let list = dir.run(&["history", "order-sms"]).await;
    assert_eq!(list.code, 0, "{list:?}");
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert!(
        lines[0].starts_with("order-sms run 2: fetched 3, new 0"),
        "{list:?}"
    );
    assert!(
        lines[1].starts_with("order-sms run 1: fetched 3, new 3, sent 3"),
        "{list:?}"
    );

    let rows = dir.run(&["history", "order-sms", "--run", "1"]).await;
    assert!(
        rows.stdout.contains("sent    A-2  id umid-order-sms:A-2"),
        "{rows:?}"
    );
    let json = dir
        .run(&["history", "order-sms", "--run", "1", "--json"])
        .await
        .json();
    assert_eq!(json["rows"].as_array().map(Vec::len), Some(3));
    assert_eq!(json["rows"][0]["record"]["name"], "Olena");

    let missing = dir.run(&["history", "order-sms", "--run", "9"]).await;
    assert_eq!(missing.code, 1);
}

#[tokio::test]
async fn the_api_key_never_reaches_output_logs_or_history() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    let mut seen = String::new();
    for args in [
        vec!["-vv", "run", "order-sms"],
        vec!["-vv", "test", "order-sms", "--json"],
        vec!["history", "order-sms", "--run", "1", "--json"],
        vec!["validate", "--json"],
    ] {
        let r = dir.run(&args).await;
        seen.push_str(&r.stdout);
        seen.push_str(&r.stderr);
    }
    assert!(seen.contains("order-sms"), "the commands ran: {seen}");
    assert!(!seen.contains(API_KEY), "the key leaked:\n{seen}");
}

#[tokio::test]
async fn quickstart_runs_the_bundled_example_offline() {
    let dir = Dir::new("http://127.0.0.1:9");
    let run = dir.run(&["quickstart"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("order-sms run 1: fetched 6, new 6, sent 6, failed 0"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("what the stand-in received (6):"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("Hi Tom & Jerry <3, order A-1003 is confirmed"),
        "{run:?}"
    );
    assert!(run.stdout.contains("[UCS-2, 1 part]: Hi 王芳"), "{run:?}");

    // Every directory of examples/ is bundled, with its flow's description.
    let list = dir.run(&["quickstart", "--list"]).await;
    assert_eq!(list.code, 0, "{list:?}");
    let names: Vec<&str> = list
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        names,
        [
            "quickstart",
            "aranda-solved-sms",
            "cinnox-contact-sheet",
            "cinnox-find-or-create",
            "cinnox-missed-case-sms",
            "cinnox-missed-enquiry",
            "cinnox-new-contact",
            "google-sheet-sms",
            "textrequest-paid-cinnox"
        ]
    );
    // Names in a column as wide as the longest, then what each shows.
    assert!(
        list.stdout
            .lines()
            .any(|l| l.starts_with("cinnox-missed-enquiry ")
                && l.ends_with("  a missed CINNOX enquiry opens an Aranda ticket")),
        "{list:?}"
    );
}

#[tokio::test]
async fn every_seed_scenario_runs_offline_against_the_stand_in() {
    let dir = Dir::new("http://127.0.0.1:9");
    let run = dir.run(&["quickstart", "all"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    for expected in [
        // CINNOX missed enquiry → Aranda ticket (both payload shapes; the closed one ignored)
        "missed-enquiry: 2 sample event(s) queued as the webhook would, 1 of other kinds ignored",
        "Missed enquiry 42 (Direct Call on Virtual Number to +85230001234 at 2026-11-21 12:08 went unanswered.)",
        "Missed enquiry 43 (Broadcast Call on CINNOX to Sales",
        // new CINNOX contact → Text Request welcome (the edit ignored)
        "Text Request to +380501234567 as Front desk: Welcome Olena Kovalenko!",
        "Text Request to +34612345678 as Front desk: Welcome María García!",
        // Google Sheet rows → 8x8 (the blank row skipped, not the end of the data)
        "sheet-sms run 1: fetched 3, new 3, sent 3, failed 0",
        "Hi María García, your order S-2003 is shipped.",
        // a solved Aranda case (seeded) → a Text Request text; the case in progress not
        "the stand-in holds 2 item(s) from sandbox.json before the flows run",
        "Text Request to +380501234567 as Help desk: Hello Olena, your request RF-1001 (Printer on fire) is solved.",
        "solved-sms run 1: fetched 1, new 1, sent 1, failed 0",
        // a Text Request payment paid (seeded) → its payer's CINNOX contact updated
        "paid-customer run 1: fetched 1, new 1, sent 1, failed 0",
        "CINNOX contact c-1 updated: group Paid INV-7, type Customer",
        // a new CINNOX contact → a Google Sheets row (a missing e-mail left empty)
        r#"Google Sheets row appended to Contacts!A:E: ["c-2","María García","+34612345678","","Lead"]"#,
        // steps: a missed call → an Aranda case → an SMS naming the case (the caller
        // CINNOX has no contact for gets a case and no text)
        "missed-case-sms run 1: fetched 2, new 2, sent 2, failed 0",
        "Missed call 43 from Ivan Franko",
        "Sorry we missed your call, Olena. Case RF-",
        // steps: find-or-create in a sheet, then a welcome either way
        r#"Google Sheets row appended to Sheet1: ["","Petro Shevchenko","+380931234567","new"]"#,
        "Welcome, Olena! You are on our list (2).",
        "Welcome, Petro! You are on our list (Sheet1!A6).",
    ] {
        assert!(run.stdout.contains(expected), "missing `{expected}`:\n{}", run.stdout);
    }
    let unknown = dir.run(&["quickstart", "cinox-missed-enquiry"]).await;
    assert_eq!(unknown.code, 2, "{unknown:?}");
    assert!(
        unknown
            .stderr
            .contains("did you mean `cinnox-missed-enquiry`?"),
        "{unknown:?}"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("it succeeds")
}

/// Kills the child when the test ends, pass or fail.
struct Child(tokio::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

#[tokio::test]
async fn sandbox_serves_the_8x8_stand_in_and_records_messages() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let _sandbox = Child(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args([
                "sandbox",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--smtp",
                "127.0.0.1:0",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the binary starts"),
    );
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if http.get(format!("{url}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(up, "the sandbox did not come up");

    let dir = Dir::new(&url);
    let run = dir.run(&["run", "order-sms"]).await;
    assert!(run.stdout.contains("sent 3"), "{run:?}");
    let messages: Value = http
        .get(format!("{url}/sandbox/messages"))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .expect("it succeeds")
        .json()
        .await
        .unwrap_or_default();
    assert_eq!(messages.as_array().map(Vec::len), Some(3));

    // an account can be seen active, and inactive, offline
    let check = dir.run(&["accounts", "check"]).await;
    assert_eq!(check.code, 0, "{check:?}");
    assert!(
        check
            .stdout
            .starts_with("shop-8x8 (8x8): active — the key was accepted"),
        "{check:?}"
    );
    let revoked = dir
        .run_with(
            &["accounts", "check"],
            &[("EIGHTX8_API_KEY", "invalid-or-revoked")],
        )
        .await;
    assert_eq!(revoked.code, 1, "{revoked:?}");
    assert!(
        revoked
            .stdout
            .starts_with("shop-8x8 (8x8): inactive — a message look-up was refused (HTTP 401)"),
        "{revoked:?}"
    );

    // it answers like 8x8: a bad MSISDN is a 400 with code 1002, a missing key a 401
    let bad = http
        .post(format!("{url}{MESSAGES}"))
        .bearer_auth("k")
        .json(&json!({"destination": "call me", "text": "hi"}))
        .send()
        .await
        .expect("the call is answered");
    assert_eq!(bad.status().as_u16(), 400);
    assert_eq!(bad.json::<Value>().await.unwrap_or_default()["code"], 1002);
    let anonymous = http
        .post(format!("{url}{MESSAGES}"))
        .json(&json!({"destination": "+380501234567", "text": "hi"}))
        .send()
        .await;
    assert_eq!(
        anonymous.map(|r| r.status().as_u16()).unwrap_or_default(),
        401
    );
}

#[tokio::test]
async fn next_prints_coming_run_times_as_if_armed_at_now() {
    let dir = Dir::new("http://127.0.0.1:9");
    dir.write(
        "flows/order-sms.yaml",
        &FLOW.replace("every: 15m", "at: [\"12:10\", \"12:20\"]"),
    );
    let at_12_08 = dir
        .run(&[
            "next",
            "order-sms",
            "--now",
            "2026-11-21T12:08:00+02:00",
            "--count",
            "3",
        ])
        .await;
    assert_eq!(at_12_08.code, 0, "{at_12_08:?}");
    assert_eq!(
        at_12_08.stdout,
        "order-sms: at 12:10, 12:20 (Europe/Kyiv)\n  2026-11-21T12:20:00+02:00\n  2026-11-22T12:10:00+02:00\n  2026-11-22T12:20:00+02:00\n"
    );
    let at_12_16 = dir
        .run(&[
            "next",
            "order-sms",
            "--now",
            "2026-11-21T12:16:00+02:00",
            "--count",
            "1",
            "--json",
        ])
        .await
        .json();
    assert_eq!(
        at_12_16["next"],
        json!(["2026-11-22T12:10:00+02:00"]),
        "12:20 is four minutes away: tomorrow"
    );

    dir.write(
        "flows/order-sms.yaml",
        &FLOW.replace("enabled: true", "enabled: false"),
    );
    let off = dir.run(&["next", "order-sms"]).await;
    assert!(
        off.stdout
            .contains("`enabled: false`: it runs only when forced"),
        "{off:?}"
    );
    let bad = dir.run(&["next", "order-sms", "--now", "noon"]).await;
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(
        bad.stderr.contains("--now `noon` is not an RFC 3339 time"),
        "{bad:?}"
    );
}

/// Start `switchboard daemon` in `dir` on a free loopback port.
fn spawn_daemon(dir: &Dir) -> Child {
    spawn_daemon_with(dir, &[])
}

/// [`spawn_daemon`] with more options (`--max-runs 1`).
fn spawn_daemon_with(dir: &Dir, extra: &[&str]) -> Child {
    Child(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["daemon", "--listen", "127.0.0.1:0"])
            .args(extra)
            .current_dir(dir.path())
            .env("EIGHTX8_API_KEY", API_KEY)
            .env_remove("SWITCHBOARD_TOKEN")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the binary starts"),
    )
}

/// The JSON bodies of the requests `server` got with this method and a path containing
/// `path_part`.
async fn requests_to(server: &MockServer, method_name: &str, path_part: &str) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.method.as_str() == method_name && r.url.path().contains(path_part))
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect()
}

/// The API URL of the daemon `child`, from the discovery file it writes (`daemon.json`,
/// or a cluster node's `daemon-<node>.json`), matched by pid, so a file left by a killed
/// daemon is not taken for it.
async fn api_of(dir: &Dir, child: &Child) -> String {
    let pid = child.0.id().unwrap_or_default();
    let state = dir.path().join("flows/.switchboard");
    for _ in 0..150 {
        let files = std::fs::read_dir(&state)
            .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_else(|_| Vec::new());
        for file in files {
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if !(name.starts_with("daemon") && name.ends_with(".json")) {
                continue;
            }
            if let Some(json) = std::fs::read_to_string(&file)
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            {
                if json["pid"] == pid {
                    if let Some(url) = json["url"].as_str() {
                        return url.to_string();
                    }
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("daemon {pid} did not write its discovery file");
}

/// Whether a group of tests can run here: `present` says if the machine has what it
/// needs. A group missing it is skipped, with one line saying so and how to run it —
/// unless `SWITCHBOARD_TEST_REQUIRE` names it (CI does), when it fails.
fn available(group: &str, present: impl FnOnce() -> bool, how: &str) -> bool {
    static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    if present() {
        return true;
    }
    let required = std::env::var("SWITCHBOARD_TEST_REQUIRE")
        .unwrap_or_default()
        .split([',', ' '])
        .any(|g| g == group);
    assert!(
        !required,
        "the {group} tests are required here (SWITCHBOARD_TEST_REQUIRE) but cannot run: {how}"
    );
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if !said.iter().any(|g| g == group) {
        said.push(group.to_string());
        // Straight to the terminal: a passing test's output is otherwise not shown.
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "skipped: the {group} tests: {how}");
    }
    false
}

#[path = "cli/browser.rs"]
mod browser;
#[path = "cli/catalogue.rs"]
mod catalogue;
#[path = "cli/cinnox.rs"]
mod cinnox;
#[path = "cli/cluster.rs"]
mod cluster;
#[path = "cli/console.rs"]
mod console;
#[path = "cli/corpus.rs"]
mod corpus;
#[path = "cli/crash.rs"]
mod crash;
#[path = "cli/daemon.rs"]
mod daemon;
#[path = "cli/daily.rs"]
mod daily;
#[path = "cli/faults.rs"]
mod faults;
#[path = "cli/hostile.rs"]
mod hostile;
#[path = "cli/months.rs"]
mod months;
#[path = "cli/postgres.rs"]
mod postgres;
#[path = "cli/round3.rs"]
mod round3;
#[path = "cli/secrets.rs"]
mod secrets;
#[path = "cli/state.rs"]
mod state;
#[path = "cli/steps.rs"]
mod steps;
#[path = "cli/textrequest.rs"]
mod textrequest;
#[path = "cli/webhook.rs"]
mod webhook;

#[tokio::test]
async fn validate_warns_about_an_accounts_file_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = Dir::new("http://127.0.0.1:9");
    let open_to_all = |dir: &Dir| {
        let _ = std::fs::set_permissions(
            dir.path().join("flows/accounts.yaml"),
            std::fs::Permissions::from_mode(0o644),
        );
    };
    open_to_all(&dir);
    let quiet = dir.run(&["validate"]).await;
    assert_eq!(
        (quiet.code, quiet.stdout.as_str(), quiet.stderr.as_str()),
        (0, "1 flow valid\n", ""),
        "keys taken from the environment (`${{VAR}}`) make a readable file harmless"
    );

    dir.write(
        "flows/accounts.yaml",
        "shop-8x8:\n  connector: 8x8\n  subaccount_id: shop_main\n  api_key: sk-live-written-out-0123\n  base_url: http://127.0.0.1:9\n",
    );
    open_to_all(&dir);
    let run = dir.run(&["validate"]).await;
    assert_eq!(run.code, 0, "a warning stops nothing: {run:?}");
    let warning = "flows/accounts.yaml:1:1: warning: the accounts file can be read by other users (mode 644)\n  hint: chmod 600 flows/accounts.yaml";
    assert!(run.stdout.contains(warning), "{run:?}");
    assert_eq!(
        format!("{}{}", run.stdout, run.stderr)
            .matches("can be read by other users")
            .count(),
        1,
        "said once: {run:?}"
    );
}

#[tokio::test]
async fn large_runs_use_the_batch_endpoint_when_the_flow_allows_it() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("{MESSAGES}/batch")))
        .and(header("authorization", format!("Bearer {API_KEY}").as_str()))
        .respond_with(|request: &Request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            let messages: Vec<Value> = body["messages"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|m| {
                    let id = m["clientMessageId"].as_str().unwrap_or_default();
                    let code = if id.ends_with("-bad") { "REJECTED" } else { "QUEUED" };
                    json!({"umid": format!("u-{id}"), "clientMessageId": id, "destination": m["destination"], "encoding": "GSM7", "status": {"code": code, "description": "Invalid MSISDN format"}})
                })
                .collect();
            ResponseTemplate::new(200).set_body_json(json!({"batchId": "b", "acceptedCount": messages.len(), "rejectedCount": 0, "messages": messages}))
        })
        .mount(&server)
        .await;
    let dir = Dir::new(&server.uri());
    let mut csv = String::from("order_id,name,phone\n");
    for i in 1..=249 {
        csv.push_str(&format!("B-{i},Name,+380501{i:06}\n"));
    }
    csv.push_str("B-250-bad,Name,+380501000250\n");
    dir.write("flows/orders.csv", &csv);
    dir.write(
        "flows/order-sms.yaml",
        &FLOW.replace(
            "  account: shop-8x8\n",
            "  account: shop-8x8\n  batch: 100\n",
        ),
    );
    let run = dir.run(&["run", "order-sms"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("new 250, sent 249, failed 1"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("failed  B-250-bad  REJECTED: Invalid MSISDN format"),
        "{run:?}"
    );
    let requests = server.received_requests().await.unwrap_or_default();
    assert_eq!(requests.len(), 3, "250 rows in batches of 100");
    let first: Value = serde_json::from_slice(&requests[0].body).unwrap_or(Value::Null);
    assert_eq!(first["messages"].as_array().map(Vec::len), Some(100));
    assert_eq!(first["includeMessagesInResponse"], true);
    let rows = dir
        .run(&["history", "order-sms", "--run", "1", "--json"])
        .await
        .json();
    assert_eq!(
        rows["rows"][0]["remote_id"], "u-order-sms:B-1",
        "an outcome per row"
    );
}

#[tokio::test]
async fn accounts_check_lists_each_account_as_active_or_inactive_with_the_reason() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(
            "/api/v1/subaccounts/shop_main/messages/00000000-0000-0000-0000-000000000000",
        ))
        .and(header(
            "authorization",
            format!("Bearer {API_KEY}").as_str(),
        ))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(json!({"code": 1404, "message": "Not found"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"code": 1200, "message": "Unauthorized"})),
        )
        .mount(&server)
        .await;
    let dir = Dir::new(&server.uri());
    dir.write(
        "flows/accounts.yaml",
        &format!(
            "shop-8x8:\n  connector: 8x8\n  subaccount_id: shop_main\n  api_key: ${{EIGHTX8_API_KEY}}\n  base_url: {0}\nold-8x8:\n  connector: 8x8\n  subaccount_id: shop_main\n  api_key: regenerated-long-ago\n  base_url: {0}\nbroken:\n  connector: 8x8\n",
            server.uri()
        ),
    );
    dir.private("flows/accounts.yaml");
    let run = dir.run(&["accounts", "check"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("shop-8x8 (8x8): active — the key was accepted (8x8 answered a look-up of a message that does not exist with 404, as it should)"),
        "{run:?}"
    );
    assert!(run.stdout.contains("old-8x8 (8x8): inactive — a message look-up was refused (HTTP 401): 1200: Unauthorized"), "{run:?}");
    assert!(
        run.stdout
            .contains("broken (?): inactive — invalid in accounts.yaml"),
        "{run:?}"
    );
    assert!(!run.stdout.contains(API_KEY));
}
