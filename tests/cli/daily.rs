//! Daily use, as a new user meets the CLI: a row fixed after it failed, an empty flows
//! directory, every problem at once, previews of the next run, quiet output, events
//! described as events, and messages that say what, where, what was expected, and how.

use super::*;

/// A row with bad data fails; fixed in the source, the next `run` sends it (and only
/// it); `replay` then has nothing to do and records no run.
#[tokio::test]
async fn a_row_fixed_in_the_source_after_it_failed_is_sent_by_the_next_run() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    dir.append("flows/orders.csv", "A-1009,Bad Phone,12345\n");

    let first = dir.run(&["run", "order-sms"]).await;
    assert_eq!(first.code, 1, "{first:?}");
    assert!(first.stdout.contains("sent 3, failed 1"), "{first:?}");
    assert!(first.stdout.contains("failed  A-1009"), "{first:?}");

    let unchanged = dir.run(&["run", "order-sms"]).await;
    assert!(
        unchanged
            .stdout
            .starts_with("order-sms run 2: fetched 4, new 0, sent 0, failed 0"),
        "a row that failed is not retried while its data is the same: {unchanged:?}"
    );

    dir.write(
        "flows/orders.csv",
        &format!("{ORDERS}A-1009,Bad Phone,+380991234567\n"),
    );
    let fixed = dir.run(&["run", "order-sms"]).await;
    assert_eq!(fixed.code, 0, "{fixed:?}");
    assert!(
        fixed
            .stdout
            .starts_with("order-sms run 3: fetched 4, new 1, sent 1, failed 0"),
        "{fixed:?}"
    );
    let sent = bodies(&server).await;
    assert_eq!(
        sent.iter()
            .filter(|b| b["clientMessageId"] == "order-sms:A-1009")
            .map(|b| b["destination"].clone())
            .collect::<Vec<_>>(),
        [json!("+380991234567")]
    );

    let again = dir.run(&["run", "order-sms"]).await;
    assert!(again.stdout.contains("new 0, sent 0"), "{again:?}");

    let replay = dir.run(&["replay", "order-sms"]).await;
    assert_eq!(replay.code, 0, "{replay:?}");
    assert_eq!(
        replay.stdout,
        "order-sms: nothing to replay — no failed row waits to be sent again; no run recorded\n"
    );
    let json = dir.run(&["replay", "order-sms", "--json"]).await;
    assert_eq!(json.json()["nothing_to_replay"], true, "{json:?}");
    let history = dir.run(&["history", "order-sms", "--json"]).await;
    assert_eq!(
        history.json().as_array().map(Vec::len),
        Some(4),
        "no run recorded for an empty replay: {history:?}"
    );
    assert_eq!(bodies(&server).await.len(), 4, "nothing sent twice");
}

/// The default `--flows flows`, run where `flows/` holds no flow file (the repository's
/// own Rust crate), is said to be empty, not `0 flows valid`.
#[tokio::test]
async fn a_flows_directory_without_flow_files_is_an_error_with_a_hint() {
    let dir = Dir::new("http://127.0.0.1:9");
    for name in ["order-sms.yaml", "accounts.yaml"] {
        let _ = std::fs::remove_file(dir.path().join("flows").join(name));
    }
    dir.write("flows/Cargo.toml", "[package]\nname = \"flows\"\n");

    let validate = dir.run(&["validate"]).await;
    assert_eq!(validate.code, 1, "{validate:?}");
    assert_eq!(
        validate.stdout,
        "flows:1:1: no flow files in `flows`: a flow is a `*.yaml` file there (besides accounts.yaml)\n  hint: `flows` is a Rust crate, not a flows directory; pass yours with --flows DIR (or SWITCHBOARD_FLOWS), e.g. --flows examples/quickstart\n0 flows valid, 0 invalid; 1 problem\n"
    );

    let check = dir.run(&["accounts", "check"]).await;
    assert_eq!(check.code, 1, "{check:?}");
    assert_eq!(
        check.stderr,
        "error: no accounts file at `flows/accounts.yaml`\n  hint: `flows` is a Rust crate, not a flows directory; pass yours with --flows DIR (or SWITCHBOARD_FLOWS), e.g. --flows examples/quickstart\n"
    );

    let _ = std::fs::remove_file(dir.path().join("flows/Cargo.toml"));
    let run = dir.run(&["run", "order-sms"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("hint: the directory has no flow files; pass the directory of your flow files with --flows DIR (or SWITCHBOARD_FLOWS)"),
        "{run:?}"
    );
}

/// Logs and warnings reach files and pipes without colour codes, and each warning once.
#[tokio::test]
async fn output_to_a_pipe_has_no_colour_codes() {
    let dir = Dir::new("http://127.0.0.1:9");
    let run = dir.run(&["-vv", "validate"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        !run.stdout.contains('\u{1b}') && !run.stderr.contains('\u{1b}'),
        "{run:?}"
    );
}

/// A misspelt map field, a key column not in the file and an unknown account are all
/// reported by one `validate`, in file order.
#[tokio::test]
async fn validate_reports_every_problem_of_a_file_in_one_pass() {
    let dir = Dir::new("http://127.0.0.1:9");
    dir.write(
        "flows/order-sms.yaml",
        &FLOW
            .replace("  destination:", "  destnation:")
            .replace("key: order_id", "key: order_nr")
            .replace("account: shop-8x8", "account: nope"),
    );
    let run = dir.run(&["validate"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stdout,
        "flows/order-sms.yaml:4:12: key column `order_nr` not in the header of `flows/orders.csv` (columns: order_id, name, phone)
flows/order-sms.yaml:11:12: unknown account `nope`
  hint: add `nope:` to flows/accounts.yaml
flows/order-sms.yaml:13:3: `8x8 send_sms` has no field `destnation`
  hint: did you mean `destination`?
flows/order-sms.yaml:13:13: missing required field `destination` for `8x8 send_sms` in `map`
  hint: add `destination: \"{{…}}\"` under `map:` (the phone number, E.164 preferred)
0 flows valid, 1 invalid; 4 problems
"
    );
}

/// `test` previews what the next run would send: rows handled before are counted, not
/// shown (`--all` shows them) — also while a daemon holds the state; `--send --to`
/// previews the request as it will leave, with the number `--to` gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_previews_the_next_run_and_the_test_send_as_it_leaves() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    dir.run(&["run", "order-sms"]).await;
    dir.append("flows/orders.csv", "A-4,Ivan,+380671112233\n");

    let preview = dir.run(&["test", "order-sms"]).await;
    assert_eq!(preview.code, 0, "{preview:?}");
    assert!(
        preview.stdout.starts_with(
            "order-sms: 4 record(s) in the source, 3 already handled (not shown; --all shows them); previewing 1 the next run would send\n\nrecord A-4 (new)\n"
        ),
        "{preview:?}"
    );
    let all = dir
        .run(&["test", "order-sms", "--all", "--limit", "4"])
        .await;
    assert!(
        all.stdout
            .contains("record A-1 (already handled by an earlier run)")
            && all.stdout.contains("record A-4 (new)"),
        "{all:?}"
    );

    let to = dir
        .run(&["test", "order-sms", "--send", "--to", "+447700900123"])
        .await;
    assert_eq!(to.code, 0, "{to:?}");
    assert!(
        to.stdout
            .contains("  (what --send sends: the phone number replaced by --to +447700900123)\n")
            && to.stdout.contains("\"destination\": \"+447700900123\"")
            && !to.stdout.contains("+380671112233"),
        "the preview shows the number the message goes to: {to:?}"
    );
    assert!(
        to.stdout
            .ends_with("test send of `A-4`: sent (id umid-order-sms:test) to +447700900123; the record is not marked handled: the next run sends it to its own recipient\n"),
        "{to:?}"
    );

    // While the daemon holds the state, it is asked which rows are handled.
    let daemon = spawn_daemon(&dir);
    let _api = api_of(&dir, &daemon).await;
    let held = dir.run(&["test", "order-sms"]).await;
    assert_eq!(held.code, 0, "{held:?}");
    assert!(
        held.stdout
            .starts_with("order-sms: 4 record(s) in the source, 3 already handled"),
        "{held:?}"
    );
}

/// A webhook flow previews the events of `--events FILE`, the `events.json` beside it,
/// or the last events it received — not "no events queued".
#[tokio::test]
async fn test_of_a_push_flow_previews_sample_or_last_events() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    std::fs::remove_file(dir.path().join("flows/order-sms.yaml"))
        .expect("the test removes the file");
    dir.append(
        "flows/accounts.yaml",
        "hook:\n  connector: webhook\n  secret: ${HOOK_SECRET:-0123456789abcdef0123}\n  signature: token\n",
    );
    dir.write(
        "flows/signup.yaml",
        "source: {connector: webhook, account: hook, key: id}\nreceiver: {connector: 8x8, action: send_sms, account: shop-8x8}\nmap:\n  destination: \"{{phone}}\"\n  text: \"Welcome {{name}}\"\n",
    );
    let none = dir.run(&["test", "signup"]).await;
    assert_eq!(none.code, 0, "{none:?}");
    assert!(
        none.stdout.starts_with("signup: no events to preview: none queued, no events.json beside the flow, none received yet\n  hint: pass --events FILE"),
        "{none:?}"
    );

    dir.write(
        "sample.json",
        r#"{"id": "c-7", "phone": "+380501234567", "name": "Olena"}"#,
    );
    let given = dir
        .run(&["test", "signup", "--events", "sample.json"])
        .await;
    assert_eq!(given.code, 0, "{given:?}");
    assert!(
        given.stdout.starts_with("signup: 1 record(s) in sample.json; previewing 1 the next run would send\n\nrecord c-7 (new)\n")
            && given.stdout.contains("\"text\": \"Welcome Olena\""),
        "{given:?}"
    );

    dir.write(
        "flows/events.json",
        r#"[{"id": "c-8", "phone": "+380501234568", "name": "Taras"}]"#,
    );
    let beside = dir.run(&["test", "signup"]).await;
    assert!(
        beside
            .stdout
            .starts_with("signup: 1 record(s) in flows/events.json;")
            && beside.stdout.contains("Welcome Taras"),
        "{beside:?}"
    );

    let csv = dir
        .run(&["test", "signup", "--events", "sample.json", "--json"])
        .await;
    assert_eq!(csv.json()["from"], "in sample.json", "{csv:?}");
    assert!(bodies(&server).await.is_empty(), "a preview sends nothing");

    // Once events arrived, the last ones are the samples (asked of the daemon holding
    // the state).
    std::fs::remove_file(dir.path().join("flows/events.json")).expect("the test removes the file");
    let daemon = spawn_daemon(&dir);
    let api = api_of(&dir, &daemon).await;
    let posted = reqwest::Client::new()
        .post(format!("{api}/hooks/signup"))
        .bearer_auth("0123456789abcdef0123")
        .json(&json!({"id": "c-9", "phone": "+380501234569", "name": "Oksana"}))
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert_eq!(posted.ok(), Some(200));
    for _ in 0..100 {
        if !bodies(&server).await.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let last = dir.run(&["test", "signup"]).await;
    assert!(
        last.stdout
            .starts_with("signup: 1 record(s) received last (from history);")
            && last
                .stdout
                .contains("record c-9 (already handled by an earlier run)")
            && last.stdout.contains("Welcome Oksana"),
        "{last:?}"
    );

    // Event flows are described as such, and their runs are `event` runs.
    let history = dir.run(&["history", "signup"]).await;
    assert!(
        history
            .stdout
            .starts_with("signup run 1: fetched 1, new 1, sent 1")
            && history.stdout.trim_end().ends_with("  event"),
        "{history:?}"
    );
    let next = dir.run(&["next", "signup"]).await;
    assert_eq!(
        next.stdout,
        "signup: on each event pushed to /hooks/signup\n"
    );
    let status = dir.run(&["status"]).await;
    assert!(
        status
            .stdout
            .starts_with("signup: on each event pushed to /hooks/signup\n  last: signup run 1:"),
        "{status:?}"
    );
}

/// `switchboard flows` lists the directory without a daemon; a disabled flow keeps its
/// schedule in words; every time is in the flow's timezone, to the second.
#[tokio::test]
async fn flows_lists_the_directory_without_a_daemon_in_the_flows_timezone() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    dir.write(
        "flows/order-sms.yaml",
        &FLOW.replace("every: 15m", "at: [\"09:00\"]"),
    );
    dir.write(
        "flows/paused.yaml",
        &FLOW
            .replace("enabled: true", "enabled: false")
            .replace("every: 15m", "at: [\"10:30\"]"),
    );
    dir.run(&["run", "order-sms"]).await;

    let flows = dir.run(&["flows"]).await;
    assert_eq!(flows.code, 0, "{flows:?}");
    let lines: Vec<&str> = flows.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "(no daemon runs for this directory: next times are as one started now would run them)"
    );
    assert!(
        lines[1].starts_with("order-sms: at 09:00 (Europe/Kyiv), next 20")
            && (lines[1].ends_with("T09:00:00+02:00") || lines[1].ends_with("T09:00:00+03:00")),
        "{flows:?}"
    );
    assert!(
        lines[2].starts_with("  last: order-sms run 1: fetched 3, new 3, sent 3"),
        "{flows:?}"
    );
    assert_eq!(
        lines[3],
        "paused (disabled): at 10:30 (Europe/Kyiv), but `enabled: false`: it runs only when forced"
    );

    let history = dir.run(&["history", "order-sms"]).await;
    let line = history
        .stdout
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let (_, time_and_trigger) = line.split_once(")  ").unwrap_or_default();
    let (time, trigger) = time_and_trigger.split_once("  ").unwrap_or_default();
    assert_eq!(trigger, "manual", "{history:?}");
    assert!(
        chrono::DateTime::parse_from_rfc3339(time).is_ok()
            && (time.ends_with("+02:00") || time.ends_with("+03:00"))
            && !time.contains('.'),
        "Kyiv time, to the second: {history:?}"
    );
    let json = dir.run(&["flows", "--json"]).await.json();
    assert_eq!(json["flows"][1]["name"], "paused");
    assert_eq!(json["flows"][1]["enabled"], false);
}

/// A daemon stopped cleanly while `run` waits on it: the client says what happened, and
/// the next run resends nothing as if after a crash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_of_the_daemon_under_a_waiting_run_is_explained() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .respond_with(move |r: &Request| queued(r).set_delay(std::time::Duration::from_millis(300)))
        .mount(&server)
        .await;
    let dir = Dir::new(&server.uri());
    let rows: String = (1..=40)
        .map(|i| format!("B-{i},Name {i},+3805012345{i:02}\n"))
        .collect();
    dir.write("flows/orders.csv", &format!("order_id,name,phone\n{rows}"));
    dir.write(
        "flows/order-sms.yaml",
        &FLOW.replace("every: 15m", "every: 1d\ndelivery: {concurrency: 2}"),
    );
    // Runs get 1 s to finish after SIGTERM (the default is 30 s).
    let daemon = Child(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["daemon", "--listen", "127.0.0.1:0", "--stop-timeout", "1s"])
            .current_dir(dir.path())
            .env("EIGHTX8_API_KEY", API_KEY)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the binary starts"),
    );
    let _api = api_of(&dir, &daemon).await;

    let client = {
        let path = dir.path().to_path_buf();
        tokio::spawn(async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
                .args(["run", "order-sms"])
                .current_dir(path)
                .env("EIGHTX8_API_KEY", API_KEY)
                .output()
                .await
                .map(Run::from)
        })
    };
    for _ in 0..100 {
        if bodies(&server).await.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let pid = daemon.0.id().unwrap_or_default().to_string();
    let _ = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await;
    let mut daemon = daemon;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(40), daemon.0.wait()).await;

    let waited = client
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("the run client did not end"));
    assert!(
        !waited.stderr.contains("error sending request"),
        "no raw transport error: {waited:?}"
    );
    assert!(
        waited.code == 130 && waited.stdout.contains("(interrupted"),
        "the client reports the interrupted run: {waited:?}"
    );

    let next = dir.run(&["run", "order-sms"]).await;
    assert_eq!(next.code, 0, "{next:?}");
    assert!(!next.stdout.contains("crash"), "{next:?}");
    let sent = bodies(&server).await;
    let mut ids: Vec<String> = client_ids(&sent);
    let total = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!((ids.len(), total), (40, 40), "each row sent once");
}

/// Messages a new user meets, each saying what is wrong, where, what was expected and
/// how to fix it — in the user's terms, not the parser's.
#[tokio::test]
async fn messages_say_what_where_what_was_expected_and_a_hint() {
    let closed = format!("http://127.0.0.1:{}", free_port());
    // (what is changed, the command, what it must say, what it must not)
    type Case = (
        &'static str,
        Vec<(&'static str, String)>,
        Vec<&'static str>,
        &'static str,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "a template that does not parse",
            vec![("flows/order-sms.yaml", FLOW.replace("Hi {{name}}", "Hi {{~name}"))],
            vec!["validate"],
            "template of `text` does not parse: expected a field name, a value or `}}` (template line 1, column 11)",
            "trailing_tilde",
        ),
        (
            "an hour out of range in a cron",
            vec![("flows/order-sms.yaml", FLOW.replace("every: 15m", "cron: \"0 25 * * *\""))],
            vec!["validate"],
            "`0 25 * * *` is not a cron expression: `25` is out of range for the hour field, which takes 0 to 23",
            "less than 23",
        ),
        (
            "no accounts file",
            vec![("flows/accounts.yaml", String::new())],
            vec!["validate"],
            "unknown account `shop-8x8`: there is no accounts file (flows/accounts.yaml)\n  hint: create flows/accounts.yaml with `shop-8x8:` and `connector: 8x8`",
            "\u{0}",
        ),
        (
            "an account of the wrong connector",
            vec![("flows/accounts.yaml", "shop-8x8:\n  connector: textrequest\n  subaccount_id: shop_main\n  api_key: k\n".to_string())],
            vec!["validate"],
            "unknown key `subaccount_id` in `shop-8x8`: `subaccount_id` belongs to a `8x8` account, and this one says `connector: textrequest`",
            "\u{0}",
        ),
        (
            "each over a text field",
            vec![("flows/order-sms.yaml", FLOW.replace("Hi {{name}}", "Hi {{#each name}}x{{/each}}"))],
            vec!["validate"],
            "template of `text` uses field `name` as something it is not\n  hint: `{{#each}}` and `{{#with}}` need a list or a map",
            "did you mean `name`",
        ),
        (
            "an empty CSV",
            vec![("flows/orders.csv", String::new())],
            vec!["validate"],
            "key column `order_id` not in the header of `flows/orders.csv`: the file is empty (no header row)",
            "(columns: )",
        ),
        (
            "--now without a date",
            vec![],
            vec!["next", "order-sms", "--now", "12:08"],
            "--now `12:08` is not an RFC 3339 time\n  hint: give the date, the time and the offset, e.g. 2026-11-21T12:08:00+02:00",
            "premature end of input",
        ),
        (
            "a service that is not listening",
            vec![("flows/order-sms.yaml", FLOW.replace("schedule:", "delivery: {attempts: 1}\nschedule:"))],
            vec!["run", "order-sms"],
            "cannot connect to http://127.0.0.1:",
            "\u{0}",
        ),
    ];
    for (what, files, args, says, not) in cases {
        let dir = Dir::new(&closed);
        for (name, text) in &files {
            if text.is_empty() && name.ends_with("accounts.yaml") {
                let _ = std::fs::remove_file(dir.path().join(name));
            } else {
                dir.write(name, text);
            }
        }
        let run = dir.run(&args).await;
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(run.code != 0, "{what}: {run:?}");
        assert!(all.contains(says), "{what}: {run:?}");
        assert!(!all.contains(not), "{what}: {run:?}");
        if what == "a service that is not listening" {
            assert!(all.contains("(is the service — or `switchboard sandbox` — reachable there? check the account's base_url)"), "{run:?}");
        }
    }
}

/// The daemon answers for an invalid flow as such: a webhook gets 503 (so the service
/// retries once the file is fixed), not "no webhook flow"; an unknown flow's runs 404.
#[tokio::test]
async fn the_daemon_tells_an_invalid_flow_from_an_unknown_one() {
    let dir = Dir::new("http://127.0.0.1:9");
    dir.append(
        "flows/accounts.yaml",
        "hook:\n  connector: webhook\n  secret: ${HOOK_SECRET:-0123456789abcdef0123}\n  signature: token\n",
    );
    dir.write(
        "flows/signup.yaml",
        "source: {connector: webhook, account: hook, key: id}\nreceiver: {connector: 8x8, action: send_sms, account: shop-8x8}\nmap:\n  destination: \"{{phone}}\"\n  text: \"Welcome {{#if}}\"\n",
    );
    let daemon = spawn_daemon(&dir);
    let api = api_of(&dir, &daemon).await;
    let http = reqwest::Client::new();
    let hook = http
        .post(format!("{api}/hooks/signup"))
        .bearer_auth("0123456789abcdef0123")
        .json(&json!({"id": "1"}))
        .send()
        .await
        .expect("the call is answered");
    assert_eq!(hook.status().as_u16(), 503);
    let text = hook.text().await.unwrap_or_default();
    assert!(text.contains("flow `signup` is invalid"), "{text}");
    let runs = http
        .get(format!("{api}/api/flows/nope/runs"))
        .send()
        .await
        .expect("the call is answered");
    assert_eq!(runs.status().as_u16(), 404);
    assert!(runs
        .text()
        .await
        .unwrap_or_default()
        .contains("no flow named `nope`"));
}

/// `history --run` shows what went out for each record, as ApiX-Drive's log does —
/// for a failed send too.
#[tokio::test]
async fn history_of_a_run_shows_the_message_as_sent() {
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
    dir.run(&["run", "order-sms"]).await;
    let rows = dir.run(&["history", "order-sms", "--run", "1"]).await;
    assert!(
        rows.stdout.contains(
            "  sent    A-1  id umid-order-sms:A-1\n          body {\"destination\":\"+380501234567\",\"source\":\"MyShop\",\"text\":\"Hi Olena, order A-1 is confirmed.\",\"clientMessageId\":\"order-sms:A-1\"}\n"
        ),
        "{rows:?}"
    );
    assert!(
        rows.stdout.contains("  failed  A-2  1002: Invalid MSISDN format (HTTP 400)\n          body {\"destination\":\"+12025550175\""),
        "the failed send's text too: {rows:?}"
    );
    let json = dir
        .run(&["history", "order-sms", "--run", "1", "--json"])
        .await
        .json();
    assert_eq!(
        json["rows"][0]["sent"]["text"],
        "Hi Olena, order A-1 is confirmed."
    );
}

/// `switchboard new` writes a commented flow and its account stub from the catalogue;
/// `validate` then points at what is left to fill in, and once filled in, it is valid.
#[tokio::test]
async fn new_writes_a_commented_flow_and_its_account_ready_for_validate() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
        command
            .args(args)
            .current_dir(dir.path())
            .env_remove("SWITCHBOARD_FLOWS")
            .env_remove("SWITCHBOARD_ACCOUNTS")
            .env_remove("MY_8X8_API_KEY")
            .envs(env.iter().copied());
        Run::from(command.output().expect("the binary runs"))
    };
    let new = run(
        &["new", "order-sms", "--source", "csv", "--receiver", "8x8"],
        &[],
    );
    assert_eq!(new.code, 0, "{new:?}");
    assert_eq!(
        new.stdout,
        "wrote flows/order-sms.yaml\nadded the account `my-8x8` to flows/accounts.yaml (its secrets come from the environment)\nnext: replace each CHANGE-ME (`switchboard validate` points at what is left), preview with `switchboard test order-sms`, then set `enabled: true`\n"
    );
    let flow = std::fs::read_to_string(dir.path().join("flows/order-sms.yaml")).unwrap_or_default();
    for line in [
        "  # path (string, required): The file, relative to the flow file.\n  path: CHANGE-ME\n",
        "  action: send_sms",
        "  account: my-8x8\n",
        "  # destination (phone number, required): the phone number, E.164 preferred\n  destination: \"{{CHANGE-ME}}\"\n",
        "  # max_parts (integer, default 10):",
        "enabled: false",
    ] {
        assert!(flow.contains(line), "{line:?} in\n{flow}");
    }
    let accounts = dir.path().join("flows/accounts.yaml");
    let stub = std::fs::read_to_string(&accounts).unwrap_or_default();
    assert!(stub.contains("  api_key: ${MY_8X8_API_KEY}\n"), "{stub}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&accounts)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or_default();
    assert_eq!(mode, 0o600, "the accounts file is its owner's only");

    let todo = run(&["validate"], &[]);
    assert_eq!(todo.code, 1, "{todo:?}");
    assert!(
        todo.stdout
            .contains("environment variable `MY_8X8_API_KEY` is not set")
            && todo
                .stdout
                .contains("flows/order-sms.yaml:8:12: cannot open `flows/CHANGE-ME`"),
        "{todo:?}"
    );

    std::fs::write(
        dir.path().join("flows/orders.csv"),
        "order_id,name,phone\nA-1,Olena,+380501234567\n",
    )
    .expect("the test writes its file");
    let filled = flow
        .replace("path: CHANGE-ME", "path: orders.csv")
        .replace(
            "destination: \"{{CHANGE-ME}}\"",
            "destination: \"{{phone}}\"",
        )
        .replace("text: \"{{CHANGE-ME}}\"", "text: \"Hi {{name}}\"");
    std::fs::write(dir.path().join("flows/order-sms.yaml"), filled)
        .expect("the test writes its file");
    std::fs::write(
        &accounts,
        stub.replace("subaccount_id: CHANGE-ME", "subaccount_id: shop_main"),
    )
    .expect("the test writes its file");
    let valid = run(&["validate"], &[("MY_8X8_API_KEY", "k-1")]);
    assert_eq!(
        (valid.code, valid.stdout.as_str()),
        (0, "1 flow valid\n"),
        "{valid:?}"
    );

    let again = run(
        &["new", "order-sms", "--source", "csv", "--receiver", "8x8"],
        &[],
    );
    assert_eq!(again.code, 2, "{again:?}");
    assert!(
        again
            .stderr
            .contains("`flows/order-sms.yaml` exists already"),
        "{again:?}"
    );
    let wrong = run(&["new", "x", "--source", "8x8", "--receiver", "8x8"], &[]);
    assert!(
        wrong
            .stderr
            .contains("`8x8` cannot be a source\n  hint: sources: csv"),
        "{wrong:?}"
    );
    let typo = run(&["new", "x", "--source", "cvs", "--receiver", "8x8"], &[]);
    assert!(
        typo.stderr
            .contains("unknown connector `cvs`\n  hint: did you mean `csv`?"),
        "{typo:?}"
    );
}

/// Every command's help, as a reviewed snapshot: it names what the command does, its
/// options, and an example.
#[tokio::test]
async fn every_commands_help_is_as_reviewed() {
    let dir = Dir::new("http://127.0.0.1:9");
    let top = dir.run(&["--help"]).await;
    insta::assert_snapshot!("help", top.stdout);
    for command in commands_in_help(&top.stdout) {
        let mut args: Vec<&str> = command.split(' ').collect();
        args.push("--help");
        let help = dir.run(&args).await;
        assert_eq!(help.code, 0, "{help:?}");
        assert!(
            help.stdout.contains("Example:"),
            "`{command}` has an example: {help:?}"
        );
        insta::assert_snapshot!(format!("help-{}", command.replace(' ', "-")), help.stdout);
    }
}

/// The subcommands `--help` lists (and those of `accounts` and `state`).
fn commands_in_help(help: &str) -> Vec<String> {
    let mut commands: Vec<String> = help
        .split("Commands:\n")
        .nth(1)
        .unwrap_or_default()
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(String::from)
        .collect();
    if let Some(accounts) = commands.iter().position(|c| c == "accounts") {
        commands[accounts] = "accounts check".into();
    }
    if let Some(state) = commands.iter().position(|c| c == "state") {
        commands.splice(
            state..=state,
            [
                "state migrate",
                "state check",
                "state backup",
                "state vacuum",
            ]
            .map(String::from),
        );
    }
    commands
}

/// README's commands table and `--help` agree: every command has a row, every row is a
/// command, and every option a row names is one the command takes.
#[tokio::test]
async fn the_readme_commands_table_matches_the_help() {
    let dir = Dir::new("http://127.0.0.1:9");
    let top = dir.run(&["--help"]).await;
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .unwrap_or_default();
    let table = readme
        .split("## Commands\n")
        .nth(1)
        .map(|rest| rest.trim_start())
        .and_then(|rest| rest.split("\n\n").next())
        .unwrap_or_default();
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("| `switchboard "))
        .collect();
    let mut in_readme: Vec<String> = Vec::new();
    for row in &rows {
        let usage = row
            .trim_start_matches("| `switchboard ")
            .split('`')
            .next()
            .unwrap_or_default();
        let words: Vec<&str> = usage
            .split(' ')
            .take_while(|w| w.chars().all(|c| c.is_ascii_lowercase()) && !w.is_empty())
            .collect();
        let command = words.join(" ");
        let mut args: Vec<&str> = words.clone();
        args.push("--help");
        let help = dir.run(&args).await;
        assert_eq!(
            help.code, 0,
            "README row `{command}` is not a command: {help:?}"
        );
        for flag in usage
            .split(['[', ']', ' ', '|', '\\'])
            .filter(|w| w.starts_with("--"))
        {
            let flag = flag.split('=').next().unwrap_or(flag);
            assert!(
                help.stdout.contains(&format!("{flag} "))
                    || help.stdout.contains(&format!("{flag}\n")),
                "README says `switchboard {command}` takes `{flag}`; its help does not: {help:?}"
            );
        }
        in_readme.push(command);
    }
    for command in commands_in_help(&top.stdout) {
        assert!(
            in_readme.contains(&command),
            "`switchboard {command}` has no row in README's commands table"
        );
    }
}

/// The daemon says a warning once, not on every force-run or reload; its log lines
/// carry counts as fields, not Rust structs; completions come out for a shell.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_warns_once_and_logs_for_people() {
    use std::os::unix::fs::PermissionsExt;
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    dir.write(
        "flows/accounts.yaml",
        &format!("shop-8x8:\n  connector: 8x8\n  subaccount_id: shop_main\n  api_key: {API_KEY}\n  base_url: {}\n", server.uri()),
    );
    let _ = std::fs::set_permissions(
        dir.path().join("flows/accounts.yaml"),
        std::fs::Permissions::from_mode(0o644),
    );
    let log = dir.path().join("daemon.log");
    let daemon = Child(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["-v", "daemon", "--listen", "127.0.0.1:0"])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("the test creates its file"))
            .kill_on_drop(true)
            .spawn()
            .expect("the binary starts"),
    );
    let api = api_of(&dir, &daemon).await;
    let http = reqwest::Client::new();
    for _ in 0..2 {
        let forced = http
            .post(format!("{api}/api/flows/order-sms/run"))
            .send()
            .await
            .map(|r| r.status().as_u16());
        assert_eq!(forced.ok(), Some(200));
    }
    // A reload of an unchanged directory (a flow file touched).
    dir.write("flows/order-sms.yaml", &format!("{FLOW}\n"));
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        text.matches("can be read by other users").count(),
        1,
        "{text}"
    );
    assert!(
        text.contains("run finished") && text.contains("fetched=3"),
        "{text}"
    );
    assert!(
        !text.contains("Counts {") && !text.contains('\u{1b}'),
        "{text}"
    );
    assert!(!text.contains(API_KEY), "{text}");

    let completions = dir.run(&["completions", "bash"]).await;
    assert!(
        completions.code == 0 && completions.stdout.contains("_switchboard()"),
        "{completions:?}"
    );
}

/// Aranda's reads and attachments work offline against the stand-in: a case created,
/// then found by `get_case` and `search_cases`, and a file attached to it.
#[tokio::test]
async fn aranda_cases_are_found_and_get_files_against_the_stand_in() {
    let (_sandbox, url) = sandbox().await;
    let http = reqwest::Client::new();
    let dir = with_accounts(&url, &format!("asms:\n  connector: aranda\n  api_key: sandbox-token\n  instance_url: https://help.example.com/ASMS\n  base_url: {url}/asms\n"));
    let id = open_case(&dir).await;

    dir.write(
        "flows/followups.csv",
        &format!("code,state\n{id},Registered\n"),
    );
    dir.write("flows/form.txt", "vacation approved");
    dir.write(
        "flows/attach.yaml",
        "source: {connector: csv, path: followups.csv, key: code, backlog: send}\nlookup: {connector: aranda, account: asms, action: get_case, query: \"{{code}}\"}\nreceiver: {connector: aranda, action: attach_file, account: asms}\nmap:\n  ticketId: \"{{case.idByProject}}\"\n  fileName: \"{{case.subject}}.txt\"\n  path: flows/form.txt\n",
    );
    let attach = dir.run(&["run", "attach"]).await;
    assert!(attach.stdout.contains("sent 1, failed 0"), "{attach:?}");
    dir.write(
        "flows/search.yaml",
        "source: {connector: csv, path: followups.csv, key: code, backlog: send}\nlookup: {connector: aranda, account: asms, action: search_cases, field: StateName, query: \"{{state}}\"}\nreceiver: {connector: aranda, action: add_note, account: asms}\nmap:\n  ticketId: \"{{code}}\"\n  message: \"{{cases.0.subject}} is still open\"\n",
    );
    let search = dir.run(&["run", "search"]).await;
    assert!(search.stdout.contains("sent 1, failed 0"), "{search:?}");
    let received: Value = http
        .get(format!("{url}/sandbox/messages"))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .expect("it succeeds")
        .json()
        .await
        .unwrap_or_default();
    let received = received.to_string();
    assert!(
        received.contains("\"attachment\":\"Printer on fire.txt\"")
            && received.contains("Printer on fire is still open"),
        "{received}"
    );
}

/// `switchboard sandbox` on a free port, once it answers; its URL.
pub(crate) async fn sandbox() -> (Child, String) {
    sandbox_with(&[]).await
}

/// The stand-in started with extra arguments (`--seed FILE`).
pub(crate) async fn sandbox_with(extra: &[&str]) -> (Child, String) {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let child = Child(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["sandbox", "--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            // Tests run side by side: each SMTP stand-in on a port of its own.
            .args(if extra.contains(&"--smtp") {
                &[][..]
            } else {
                &["--smtp", "127.0.0.1:0"][..]
            })
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the binary starts"),
    );
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http.get(format!("{url}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    (child, url)
}

/// `sandbox --seed`: the stand-in starts with an example's cases and payments, which
/// the services' own reads then find; a seed file it cannot take is refused, saying why.
#[tokio::test]
async fn the_stand_in_starts_from_seed_data() {
    let seed = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/aranda-solved-sms/sandbox.json"
    );
    let (_sandbox, url) = sandbox_with(&["--seed", seed]).await;
    let case: Value = reqwest::Client::new()
        .get(format!("{url}/asms/case/RF-1001"))
        .header("TokenAsms", "sandbox-token")
        .header("UrlAsms", "https://help.example.com/ASMS")
        .send()
        .await
        .expect("the call is answered")
        .json()
        .await
        .unwrap_or_default();
    assert_eq!(case["subject"], "Printer on fire", "{case}");
    assert_eq!(sandbox_messages(&url).await.matches("RF-100").count(), 2);
    let dir = Dir::new("http://127.0.0.1:9");
    for (text, expected) in [
        (
            "{\"aranda\": {\"cases\": [{\"stateName\": \"Solved\"}]}}",
            "`aranda`: cases[0] needs a `subject`",
        ),
        (
            "{\"8x8\": {}}",
            "`8x8`: no stand-in takes seed data under that name (these do: textrequest, aranda)",
        ),
        ("{\"aranda\": [1,\n", "seed.json:2:0: not JSON"),
    ] {
        dir.write("seed.json", text);
        let run = dir
            .run(&[
                "sandbox",
                "--listen",
                "127.0.0.1:0",
                "--seed",
                &dir.path().join("seed.json").display().to_string(),
            ])
            .await;
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stderr.contains(expected), "{expected}: {run:?}");
    }
}

/// Text Request's contact operations offline: a contact upserted with custom fields is
/// found by `get_contact` and texted by name; its conversation archived and brought
/// back; deleting it is refused once it has message history.
#[tokio::test]
async fn text_request_contacts_are_read_archived_and_deleted_against_the_stand_in() {
    let (_sandbox, url) = sandbox().await;
    let dir = textrequest_dir(&url);
    dir.write("flows/people.csv", "phone,name\n+14239876543,Olena\n");
    let flow = |action: &str, extra: &str| {
        format!("source: {{connector: csv, path: people.csv, key: phone, backlog: send}}\n{extra}receiver: {{connector: textrequest, action: {action}, account: tr, dashboard_id: 121}}\nmap:\n  phone_number: \"{{{{phone}}}}\"\n")
    };
    dir.write(
        "flows/upsert.yaml",
        &format!(
            "{}  first_name: \"{{{{name}}}}\"\n  custom_fields: [{{id: f-1, value: gold}}]\n",
            flow("upsert_contact", "")
        ),
    );
    dir.write(
        "flows/greet.yaml",
        &format!(
            "{}  body: \"Hi {{{{contact.first_name}}}}, you are {{{{contact.custom_fields.0.value}}}}\"\n",
            flow("send_message", "lookup: {connector: textrequest, account: tr, action: get_contact, dashboard_id: 121, query: \"{{phone}}\"}\n")
        ),
    );
    dir.write("flows/archive.yaml", &flow("archive_conversation", ""));
    dir.write("flows/unarchive.yaml", &flow("unarchive_conversation", ""));
    dir.write("flows/forget.yaml", &flow("delete_contact", ""));
    for (name, says) in [
        ("upsert", "sent 1, failed 0"),
        ("greet", "sent 1, failed 0"),
        ("archive", "sent 1, failed 0"),
        ("unarchive", "sent 1, failed 0"),
        ("forget", "sent 0, failed 1"),
    ] {
        let run = dir.run(&["run", name]).await;
        assert!(run.stdout.contains(says), "{name}: {run:?}");
    }
    let forget = dir.run(&["history", "forget", "--run", "1"]).await;
    assert!(
        forget.stdout.contains("message history cannot be deleted"),
        "{forget:?}"
    );
    let received = sandbox_messages(&url).await;
    assert!(received.contains("Hi Olena, you are gold"), "{received}");
    assert!(received.contains("\"archived\":false"), "{received}");
}

/// Rows appended to a Google sheet, offline: a service account's token from the stand-in,
/// one row per record, in column order.
#[tokio::test]
async fn rows_are_appended_to_a_sheet_against_the_stand_in() {
    let (_sandbox, url) = sandbox().await;
    let dir = Dir::new(&url);
    std::fs::remove_file(dir.path().join("flows/order-sms.yaml"))
        .expect("the test removes the file");
    with_sheets(&dir, &url);
    dir.write(
        "flows/to-sheet.yaml",
        "source: {connector: csv, path: orders.csv, key: order_id, backlog: send}\nreceiver: {connector: google_sheets, action: append_row, account: sheets, spreadsheet_id: s-1, range: \"Contacts!A:C\"}\nmap:\n  values: [\"{{order_id}}\", \"{{name}}\", \"{{phone}}\"]\n",
    );
    let run = dir.run(&["run", "to-sheet"]).await;
    assert!(run.stdout.contains("sent 3, failed 0"), "{run:?}");
    let received = sandbox_messages(&url).await;
    assert!(
        received.contains(r#""row":["A-1","Olena","+380501234567"]"#)
            && received.contains(r#""range":"Contacts!A:C""#),
        "{received}"
    );
}

/// A Google Sheets account `sheets` (a service account with the stand-in's token URL)
/// beside the accounts `dir` has.
fn with_sheets(dir: &Dir, url: &str) {
    let key = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/connectors/src/google_sheets/test-key.pem"
    ))
    .unwrap_or_default();
    dir.write(
        "flows/sa.json",
        &json!({"type": "service_account", "client_email": "flows@sandbox.iam.gserviceaccount.com", "private_key": key}).to_string(),
    );
    dir.append(
        "flows/accounts.yaml",
        &format!("sheets:\n  connector: google_sheets\n  service_account_file: sa.json\n  token_url: {url}/token\n  base_url: {url}\n"),
    );
    dir.private("flows/accounts.yaml");
}

/// A sheet's row found by its key column and changed, offline: `find_row` reads it,
/// `update_row` changes only the cells named, and the sheet reads back changed.
#[tokio::test]
async fn a_sheet_row_is_found_and_updated_by_its_key() {
    let (_sandbox, url) = sandbox().await;
    let dir = Dir::new(&url);
    std::fs::remove_file(dir.path().join("flows/order-sms.yaml"))
        .expect("the test removes the file");
    with_sheets(&dir, &url);
    dir.write("flows/refunds.csv", "order_id,status\nS-2002,refunded\n");
    dir.write(
        "flows/refund.yaml",
        "source: {connector: csv, path: refunds.csv, key: order_id, backlog: send}\nlookup: {connector: google_sheets, account: sheets, action: find_row, spreadsheet_id: s-1, range: Sheet1, key: order_id, query: \"{{order_id}}\", as: row}\nreceiver: {connector: google_sheets, action: update_row, account: sheets, spreadsheet_id: s-1, range: Sheet1, key: order_id}\nmap:\n  find: \"{{order_id}}\"\n  values: {status: \"{{status}}\", name: \"{{row.name}} (row {{row._row}})\"}\n",
    );
    let (row, _) = sent_once(&dir, "refund").await;
    assert_eq!(
        row, "Sheet1!A3",
        "the row's first cell is its id in history"
    );
    let sheet = reqwest::get(format!(
        "{url}/v4/spreadsheets/s-1/values/Sheet1?key=sandbox-key"
    ))
    .await
    .expect("the GET is answered")
    .text()
    .await
    .unwrap_or_default();
    assert!(
        sheet.contains(r#"["S-2002","Taras Shevchenko (row 3)","+380671112233","refunded"]"#),
        "{sheet}"
    );
    // A key no row has fails the record, saying so.
    dir.write(
        "flows/refunds.csv",
        "order_id,status\nS-2002,refunded\nS-9999,refunded\n",
    );
    dir.write(
        "flows/refund.yaml",
        "source: {connector: csv, path: refunds.csv, key: order_id, backlog: send}\nreceiver: {connector: google_sheets, action: update_row, account: sheets, spreadsheet_id: s-1, range: Sheet1, key: order_id}\nmap:\n  find: \"{{order_id}}\"\n  values: {status: \"{{status}}\"}\n",
    );
    let missing = dir.run(&["run", "refund"]).await;
    assert!(
        missing
            .stdout
            .contains("not_found: no row of Sheet1 has order_id `S-9999`"),
        "{missing:?}"
    );
}

/// 8x8's delivery status read back, offline: a sent message's umid finds it as delivered.
#[tokio::test]
async fn a_sent_sms_is_looked_up_by_its_umid() {
    let (_sandbox, url) = sandbox().await;
    let dir = Dir::new(&url);
    with_sheets(&dir, &url);
    dir.run(&["run", "order-sms"]).await;
    let history = dir
        .run(&["history", "order-sms", "--run", "1", "--json"])
        .await
        .json();
    let umid = history["rows"][0]["remote_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!umid.is_empty(), "{history}");
    dir.write(
        "flows/sent.csv",
        &format!("umid\n{umid}\n00000000-0000-0000-0000-000000000000\n"),
    );
    dir.write(
        "flows/status.yaml",
        "source: {connector: csv, path: sent.csv, key: umid, backlog: send}\nlookup: {connector: 8x8, account: shop-8x8, action: get_message, query: \"{{umid}}\", as: sms, required: false}\nreceiver: {connector: google_sheets, action: append_row, account: sheets, spreadsheet_id: s-1}\nmap:\n  values: [\"{{umid}}\", \"{{#if sms}}{{sms.status.state}} to {{sms.msisdn}}{{else}}unknown{{/if}}\"]\n",
    );
    let run = dir.run(&["run", "status"]).await;
    assert!(run.stdout.contains("sent 2, failed 0"), "{run:?}");
    let received = sandbox_messages(&url).await;
    assert!(
        received.contains(&format!(r#""row":["{umid}","delivered to +380501234567"]"#))
            && received.contains(r#""row":["00000000-0000-0000-0000-000000000000","unknown"]"#),
        "{received}"
    );
}

/// A Text Request payment, offline: requested from a CSV row, then marked paid by its
/// number; `get_payment` reads it back as paid.
#[tokio::test]
async fn text_request_payments_are_requested_and_marked_paid_against_the_stand_in() {
    let (_sandbox, url) = sandbox().await;
    let dir = textrequest_dir(&url);
    dir.write(
        "flows/invoices.csv",
        "invoice,phone,amount\nI-1,+14239876543,12.50\n",
    );
    dir.write(
        "flows/request.yaml",
        "source: {connector: csv, path: invoices.csv, key: invoice, backlog: send}\nreceiver: {connector: textrequest, action: create_payment, account: tr, dashboard_id: 121}\nmap:\n  customer_phone: \"{{phone}}\"\n  amount_requested: \"{{amount}}\"\n  reference_number: \"{{invoice}}\"\n",
    );
    let (payment, history) = sent_once(&dir, "request").await;
    assert_eq!(
        history["rows"][0]["sent"]["amount_requested"], 12.5,
        "a number, not text"
    );
    dir.write("flows/paid.csv", &format!("payment\n{payment}\n"));
    dir.write(
        "flows/paid.yaml",
        "source: {connector: csv, path: paid.csv, key: payment, backlog: send}\nreceiver: {connector: textrequest, action: mark_payment_paid, account: tr, dashboard_id: 121}\nmap: {payment_id: \"{{payment}}\"}\n",
    );
    let paid = dir.run(&["run", "paid"]).await;
    assert!(paid.stdout.contains("sent 1, failed 0"), "{paid:?}");
    dir.write(
        "flows/check.yaml",
        "source: {connector: csv, path: paid.csv, key: payment, backlog: send}\nlookup: {connector: textrequest, account: tr, action: get_payment, dashboard_id: 121, query: \"{{payment}}\", as: found}\nreceiver: {connector: textrequest, action: send_message, account: tr, dashboard_id: 121}\nmap:\n  phone_number: \"{{found.customer_phone}}\"\n  body: \"Thank you: payment {{found.reference_number}} is {{found.status}}\"\n",
    );
    let check = dir.run(&["run", "check"]).await;
    assert!(check.stdout.contains("sent 1, failed 0"), "{check:?}");
    let received = sandbox_messages(&url).await;
    assert!(
        received.contains("Thank you: payment I-1 is paid"),
        "{received}"
    );
}

/// Aranda cases as a source: the cases a search finds, new or changed since the last run
/// — an unchanged case is not sent again, a changed one is.
#[tokio::test]
async fn aranda_cases_new_or_changed_since_the_last_run_are_records() {
    let (_sandbox, url) = sandbox().await;
    let dir = with_accounts(&url, &format!("asms:\n  connector: aranda\n  api_key: sandbox-token\n  instance_url: https://help.example.com/ASMS\n  base_url: {url}/asms\n"));
    let id = open_case(&dir).await;
    dir.write(
        "flows/follow.yaml",
        "source:\n  connector: aranda\n  account: asms\n  filters: [{field: Subject, operator: Like, value: printer}]\n  backlog: send\nreceiver: {connector: aranda, action: add_note, account: asms}\nmap:\n  ticketId: \"{{idByProject}}\"\n  message: \"{{subject}} is {{stateName}}\"\n",
    );
    let first = dir.run(&["run", "follow"]).await;
    assert!(
        first.stdout.contains("fetched 1, new 1, sent 1"),
        "{first:?}"
    );
    let again = dir.run(&["run", "follow"]).await;
    assert!(
        again.stdout.contains("fetched 1, new 0, sent 0"),
        "unchanged: {again:?}"
    );

    dir.write("flows/solved.csv", &format!("case\n{id}\n"));
    dir.write(
        "flows/solve.yaml",
        "source: {connector: csv, path: solved.csv, key: case, backlog: send}\nreceiver: {connector: aranda, action: update_case, account: asms}\nmap: {ticketId: \"{{case}}\", stateId: 3}\n",
    );
    assert!(dir.run(&["run", "solve"]).await.stdout.contains("sent 1"));
    let changed = dir.run(&["run", "follow"]).await;
    assert!(
        changed.stdout.contains("fetched 1, new 1, sent 1"),
        "changed: {changed:?}"
    );
    let received = sandbox_messages(&url).await;
    assert!(
        received.contains("Printer on fire is Registered")
            && received.contains("Printer on fire is Solved"),
        "{received}"
    );
}

/// A look-up whose answer would take a column's name is refused by `validate`, at the
/// look-up, with the way out.
#[tokio::test]
async fn a_lookup_named_like_a_column_is_refused() {
    let dir = Dir::new("http://127.0.0.1:9");
    dir.append(
        "flows/accounts.yaml",
        "tr:\n  connector: textrequest\n  api_key: ${TR_KEY:-k}\n",
    );
    dir.write(
        "flows/order-sms.yaml",
        &FLOW.replace(
            "receiver:",
            "lookup: {connector: textrequest, account: tr, action: get_contact, dashboard_id: 121, query: \"{{phone}}\", as: name}\nreceiver:",
        ),
    );
    let run = dir.run(&["validate"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("flows/order-sms.yaml:8:9: the look-up's answer goes under `name`, which is also a column of the source: the column would be hidden\n  hint: give the answer another name with `as:`"),
        "{run:?}"
    );
}

/// A flows directory whose accounts file holds `accounts` (readable by its owner only)
/// and no flow yet.
fn with_accounts(url: &str, accounts: &str) -> Dir {
    let dir = Dir::new(url);
    std::fs::remove_file(dir.path().join("flows/order-sms.yaml"))
        .expect("the test removes the file");
    dir.write("flows/accounts.yaml", accounts);
    dir.private("flows/accounts.yaml");
    dir
}

/// A case "Printer on fire" opened in the stand-in's ASMS through a flow; its code.
async fn open_case(dir: &Dir) -> String {
    dir.write("flows/new.csv", "ref,subject\nN-1,Printer on fire\n");
    dir.write(
        "flows/open.yaml",
        "source: {connector: csv, path: new.csv, key: ref, backlog: send}\nreceiver: {connector: aranda, action: create_case, account: asms}\nmap: {itemType: 1, projectId: 4, serviceId: 7, categoryId: 3, subject: \"{{subject}}\"}\n",
    );
    let (id, _) = sent_once(dir, "open").await;
    assert!(id.starts_with("RF-"), "{id}");
    id
}

/// Run `flow`, whose source holds one record, and expect it sent: the service's id for
/// it, and the run's history.
async fn sent_once(dir: &Dir, flow: &str) -> (String, Value) {
    let run = dir.run(&["run", flow]).await;
    assert!(run.stdout.contains("sent 1, failed 0"), "{run:?}");
    let history = dir
        .run(&["history", flow, "--run", "1", "--json"])
        .await
        .json();
    let id = history["rows"][0]["remote_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (id, history)
}

/// Text Request payments read on each run: a payment newly paid is a record once; it is
/// not sent again while its status stays.
#[tokio::test]
async fn payments_newly_paid_are_records_once() {
    let (_sandbox, url) = sandbox().await;
    let dir = textrequest_dir(&url);
    dir.write(
        "flows/invoices.csv",
        "invoice,phone,amount\nI-7,+14239876543,30\n",
    );
    dir.write(
        "flows/request.yaml",
        "source: {connector: csv, path: invoices.csv, key: invoice, backlog: send}\nreceiver: {connector: textrequest, action: create_payment, account: tr, dashboard_id: 121}\nmap: {customer_phone: \"{{phone}}\", amount_requested: \"{{amount}}\", reference_number: \"{{invoice}}\"}\n",
    );
    let (payment, _) = sent_once(&dir, "request").await;
    dir.write(
        "flows/thanks.yaml",
        "source: {connector: textrequest, account: tr, dashboard_id: 121, reads: payments, status: paid, backlog: send}\nreceiver: {connector: textrequest, action: send_message, account: tr, dashboard_id: 121}\nmap:\n  phone_number: \"{{customer_phone}}\"\n  body: \"Thank you for paying {{reference_number}}\"\n",
    );
    let before = dir.run(&["run", "thanks"]).await;
    assert!(
        before.stdout.contains("fetched 0, new 0"),
        "not paid yet: {before:?}"
    );
    dir.write("flows/paid.csv", &format!("payment\n{payment}\n"));
    dir.write(
        "flows/paid.yaml",
        "source: {connector: csv, path: paid.csv, key: payment, backlog: send}\nreceiver: {connector: textrequest, action: mark_payment_paid, account: tr, dashboard_id: 121}\nmap: {payment_id: \"{{payment}}\"}\n",
    );
    sent_once(&dir, "paid").await;
    let after = dir.run(&["run", "thanks"]).await;
    assert!(
        after.stdout.contains("fetched 1, new 1, sent 1"),
        "{after:?}"
    );
    let again = dir.run(&["run", "thanks"]).await;
    assert!(
        again.stdout.contains("fetched 1, new 0, sent 0"),
        "{again:?}"
    );
    let received = sandbox_messages(&url).await;
    assert_eq!(
        received.matches("Thank you for paying I-7").count(),
        1,
        "{received}"
    );
}

/// Text Request contact groups offline: created, found by number, renamed, deleted.
#[tokio::test]
async fn text_request_groups_are_created_renamed_and_deleted_against_the_stand_in() {
    let (_sandbox, url) = sandbox().await;
    let dir = textrequest_dir(&url);
    dir.write("flows/new-groups.csv", "slug,name\nvip,VIP\n");
    dir.write(
        "flows/make.yaml",
        "source: {connector: csv, path: new-groups.csv, key: slug, backlog: send}\nreceiver: {connector: textrequest, action: create_group, account: tr, dashboard_id: 121}\nmap: {name: \"{{name}}\", notes: \"made by a flow\"}\n",
    );
    let (group, _) = sent_once(&dir, "make").await;
    dir.write("flows/known.csv", &format!("number\n{group}\n"));
    dir.write(
        "flows/rename.yaml",
        "source: {connector: csv, path: known.csv, key: number, backlog: send}\nlookup: {connector: textrequest, account: tr, action: get_group, dashboard_id: 121, query: \"{{number}}\"}\nreceiver: {connector: textrequest, action: update_group, account: tr, dashboard_id: 121}\nmap: {group_id: \"{{number}}\", name: \"{{group.name}} (2026)\"}\n",
    );
    sent_once(&dir, "rename").await;
    dir.write(
        "flows/drop.yaml",
        "source: {connector: csv, path: known.csv, key: number, backlog: send}\nreceiver: {connector: textrequest, action: delete_group, account: tr, dashboard_id: 121}\nmap: {group_id: \"{{number}}\"}\n",
    );
    sent_once(&dir, "drop").await;
    let received = sandbox_messages(&url).await;
    assert!(
        received.contains("\"name\":\"VIP (2026)\"") && received.contains("\"deleted\":true"),
        "{received}"
    );
}

/// Text Request contacts read on each run: new or changed contacts are records; an
/// unchanged one is not sent again.
#[tokio::test]
async fn contacts_new_or_changed_are_records() {
    let (_sandbox, url) = sandbox().await;
    let dir = textrequest_dir(&url);
    dir.write("flows/people.csv", "phone,name\n+14239876543,Olena\n");
    dir.write(
        "flows/upsert.yaml",
        // No key: a row whose content changes is a new row (the edit reaches Text Request).
        "source: {connector: csv, path: people.csv, backlog: send}\nreceiver: {connector: textrequest, action: upsert_contact, account: tr, dashboard_id: 121}\nmap: {phone_number: \"{{phone}}\", first_name: \"{{name}}\"}\n",
    );
    sent_once(&dir, "upsert").await;
    dir.write(
        "flows/watch.yaml",
        "source: {connector: textrequest, account: tr, dashboard_id: 121, reads: contacts, backlog: send}\nreceiver: {connector: textrequest, action: send_message, account: tr, dashboard_id: 121}\nmap: {phone_number: \"{{phone_number}}\", body: \"Hi {{first_name}}, your details are saved\"}\n",
    );
    let first = dir.run(&["run", "watch"]).await;
    assert!(
        first.stdout.contains("fetched 1, new 1, sent 1"),
        "{first:?}"
    );
    let same = dir.run(&["run", "watch"]).await;
    assert!(same.stdout.contains("fetched 1, new 0, sent 0"), "{same:?}");
    dir.write("flows/people.csv", "phone,name\n+14239876543,Olena K.\n");
    dir.run(&["run", "upsert"]).await;
    let changed = dir.run(&["run", "watch"]).await;
    assert!(
        changed.stdout.contains("fetched 1, new 1, sent 1"),
        "{changed:?}"
    );
    let received = sandbox_messages(&url).await;
    assert!(
        received.contains("Hi Olena K., your details are saved"),
        "{received}"
    );
}

/// Text Request's bulk update offline: 45 contacts with `batch: 20` go as three calls,
/// each contact with its own outcome; the contacts source then reads all 45.
#[tokio::test]
async fn contacts_go_through_the_bulk_update_in_runs() {
    let (_sandbox, url) = sandbox().await;
    let dir = textrequest_dir(&url);
    let mut csv = String::from("phone,name\n");
    for i in 0..45 {
        csv.push_str(&format!("+1423555{i:04},Name {i}\n"));
    }
    dir.write("flows/people.csv", &csv);
    dir.write(
        "flows/bulk.yaml",
        "source: {connector: csv, path: people.csv, key: phone, backlog: send}\nreceiver: {connector: textrequest, action: upsert_contact, account: tr, dashboard_id: 121, batch: 20}\nmap: {phone_number: \"{{phone}}\", first_name: \"{{name}}\"}\n",
    );
    let run = dir.run(&["run", "bulk"]).await;
    assert!(run.stdout.contains("new 45, sent 45, failed 0"), "{run:?}");
    let rows = dir
        .run(&["history", "bulk", "--run", "1", "--json"])
        .await
        .json();
    // The bulk update's answer lists each contact: its number is the service's id.
    assert_eq!(rows["rows"][44]["remote_id"], "+14235550044", "{rows}");
    dir.write(
        "flows/watch.yaml",
        "source: {connector: textrequest, account: tr, dashboard_id: 121, reads: contacts, backlog: skip}\nreceiver: {connector: textrequest, action: send_message, account: tr, dashboard_id: 121}\nmap: {phone_number: \"{{phone_number}}\", body: \"Hi {{first_name}}\"}\n",
    );
    let watch = dir.run(&["run", "watch"]).await;
    assert!(watch.stdout.contains("fetched 45"), "{watch:?}");
}

/// The account's dashboards offline: created, found by number, renamed, deleted.
#[tokio::test]
async fn text_request_dashboards_are_created_renamed_and_deleted_against_the_stand_in() {
    let (_sandbox, url) = sandbox().await;
    let dir = textrequest_dir(&url);
    dir.write("flows/lines.csv", "line,name\nl-1,Front desk\n");
    dir.write(
        "flows/open-line.yaml",
        "source: {connector: csv, path: lines.csv, key: line, backlog: send}\nreceiver: {connector: textrequest, action: create_dashboard, account: tr}\nmap: {name: \"{{name}}\"}\n",
    );
    let (dashboard, _) = sent_once(&dir, "open-line").await;
    dir.write("flows/known.csv", &format!("number\n{dashboard}\n"));
    dir.write(
        "flows/rename-line.yaml",
        "source: {connector: csv, path: known.csv, key: number, backlog: send}\nlookup: {connector: textrequest, account: tr, action: get_dashboard, query: \"{{number}}\"}\nreceiver: {connector: textrequest, action: rename_dashboard, account: tr}\nmap: {dashboard: \"{{number}}\", name: \"{{dashboard.name}} (main)\"}\n",
    );
    sent_once(&dir, "rename-line").await;
    dir.write(
        "flows/close-line.yaml",
        "source: {connector: csv, path: known.csv, key: number, backlog: send}\nreceiver: {connector: textrequest, action: delete_dashboard, account: tr}\nmap: {dashboard: \"{{number}}\"}\n",
    );
    sent_once(&dir, "close-line").await;
    let received = sandbox_messages(&url).await;
    assert!(
        received.contains("\"name\":\"Front desk (main)\""),
        "{received}"
    );
}

/// A list look-up offline: the custom field named "tier" gives its id to the contact's
/// `custom_fields`.
#[tokio::test]
async fn a_custom_field_is_found_by_name_for_the_contacts_it_fills() {
    let (_sandbox, url) = sandbox().await;
    let dir = textrequest_dir(&url);
    dir.write("flows/people.csv", "phone,tier\n+14239876543,gold\n");
    dir.write(
        "flows/tiers.yaml",
        "source: {connector: csv, path: people.csv, key: phone, backlog: send}\nlookup: {connector: textrequest, account: tr, action: list_custom_fields, dashboard_id: 121, query: tier, as: fields}\nreceiver: {connector: textrequest, action: upsert_contact, account: tr, dashboard_id: 121}\nmap:\n  phone_number: \"{{phone}}\"\n  custom_fields: [{id: \"{{fields.0.id}}\", value: \"{{tier}}\"}]\n",
    );
    sent_once(&dir, "tiers").await;
    let received = sandbox_messages(&url).await;
    assert!(
        received.contains(r#""custom_fields":[{"id":"f-1","value":"gold"}]"#),
        "{received}"
    );
}

/// A flows directory with a Text Request account `tr` on the stand-in at `url`.
fn textrequest_dir(url: &str) -> Dir {
    with_accounts(
        url,
        &format!(
            "tr:\n  connector: textrequest\n  api_key: sandbox-key\n  base_url: {url}/api/v3\n"
        ),
    )
}

/// What the stand-in at `url` has received, as its JSON text.
pub(crate) async fn sandbox_messages(url: &str) -> String {
    reqwest::get(format!("{url}/sandbox/messages"))
        .await
        .expect("the GET is answered")
        .text()
        .await
        .unwrap_or_default()
}
