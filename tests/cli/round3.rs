//! The promise, round three: what hostile testing, a fault campaign and a new user's hour
//! found (issue 28). Each test failed before its fix: configuration changes that resent
//! or dropped rows without a word, and the other defects of that round.

use super::*;

/// A flow that sends only the rows its filter admits.
fn filtered_flow(dir: &Dir, filter: &str) {
    dir.write(
        "flows/order-sms.yaml",
        &FLOW.replace(
            "schedule:\n  every: 15m\n",
            &format!("schedule:\n  every: 15m\nfilter: {filter}\n"),
        ),
    );
}

#[tokio::test]
async fn a_changed_filter_judges_again_the_rows_it_dropped() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    dir.write(
        "flows/orders.csv",
        "order_id,name,phone,status\nA-1,Olena,+380501234567,paid\nA-2,Tom,+12025550175,pending\nA-3,Fang,+8613800138000,pending\n",
    );
    filtered_flow(&dir, "{field: status, equals: paid}");
    let first = dir.run(&["run", "order-sms"]).await;
    assert!(
        first.stdout.contains("sent 1") && first.stdout.contains("filtered 2"),
        "{first:?}"
    );
    // Read again unchanged: nothing new (and the chunk is noted as holding nothing new).
    let again = dir.run(&["run", "order-sms"]).await;
    assert!(again.stdout.contains("new 0, sent 0"), "{again:?}");
    let again = dir.run(&["run", "order-sms"]).await;
    assert!(again.stdout.contains("new 0, sent 0"), "{again:?}");

    // The filter is fixed: the rows it dropped are judged again, and now sent; the row
    // sent before is not sent again.
    filtered_flow(&dir, "{field: status, in: [paid, pending]}");
    let fixed = dir.run(&["run", "order-sms"]).await;
    assert_eq!(fixed.code, 0, "{fixed:?}");
    assert!(fixed.stdout.contains("new 2, sent 2"), "{fixed:?}");
    assert_eq!(
        client_ids(&bodies(&server).await),
        ["order-sms:A-1", "order-sms:A-2", "order-sms:A-3"]
    );

    // Narrowed again: what was sent stays sent; nothing is judged into a resend.
    filtered_flow(&dir, "{field: status, equals: paid}");
    let narrowed = dir.run(&["run", "order-sms"]).await;
    assert!(narrowed.stdout.contains("sent 0"), "{narrowed:?}");
    assert_eq!(bodies(&server).await.len(), 3);
}

#[tokio::test]
async fn a_changed_key_is_refused_until_accepted_and_then_resends_nothing_handled() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    let first = dir.run(&["run", "order-sms"]).await;
    assert!(first.stdout.contains("sent 3"), "{first:?}");
    // A row arrives, and the key is changed before the next run.
    dir.append("flows/orders.csv", "A-4,Ivan,+380671112233\n");
    dir.write(
        "flows/order-sms.yaml",
        &FLOW.replace("key: order_id", "key: [order_id, phone]"),
    );
    for _ in 0..2 {
        let refused = dir.run(&["run", "order-sms"]).await;
        assert_eq!(refused.code, 1, "{refused:?}");
        assert!(
            refused.stdout.contains("`key: [order_id, phone]`")
                && refused.stdout.contains("`key: order_id`")
                && refused
                    .stdout
                    .contains("switchboard run order-sms --accept-key-change"),
            "{refused:?}"
        );
        assert_eq!(bodies(&server).await.len(), 3, "nothing sent: {refused:?}");
    }
    // Accepted: the rows sent before are known by their data; the new row goes.
    let accepted = dir
        .run(&["run", "order-sms", "--accept-key-change", "--json"])
        .await;
    assert_eq!(accepted.code, 0, "{accepted:?}");
    let counts = &accepted.json()["run"]["counts"];
    assert_eq!(
        (counts["sent"].as_u64(), counts["skipped"].as_u64()),
        (Some(1), Some(3)),
        "{accepted:?}"
    );
    assert_eq!(
        client_ids(&bodies(&server).await),
        [
            "order-sms:A-1",
            "order-sms:A-2",
            "order-sms:A-3",
            "order-sms:[\"A-4\",\"+380671112233\"]"
        ]
    );
    let history = dir.run(&["history", "order-sms", "--run", "4"]).await;
    assert!(
        history
            .stdout
            .contains("under the flow's earlier key (`key: order_id`)"),
        "{history:?}"
    );
    // From now on the new key is the flow's: nothing is refused, nothing resent.
    let after = dir.run(&["run", "order-sms"]).await;
    assert_eq!(after.code, 0, "{after:?}");
    assert!(after.stdout.contains("new 0, sent 0"), "{after:?}");
    assert_eq!(bodies(&server).await.len(), 4);
}

#[tokio::test]
async fn the_same_flows_pointed_at_another_state_are_refused_instead_of_resent() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    let first = dir.run(&["run", "order-sms"]).await;
    assert!(first.stdout.contains("sent 3"), "{first:?}");
    // Another state directory, new: it knows nothing of what was sent.
    let other = dir.path().join("elsewhere");
    let other = other.to_str().unwrap_or_default();
    for args in [
        vec!["run", "order-sms", "--state", other],
        vec!["daemon", "--listen", "127.0.0.1:0", "--state", other],
    ] {
        let refused = dir.run(&args).await;
        assert_eq!(refused.code, 2, "{args:?}: {refused:?}");
        assert!(
            refused.stderr.contains("were run with another state")
                || refused.stderr.contains("were run with the state in"),
            "{refused:?}"
        );
        assert!(
            refused.stderr.contains("--accept-state-loss"),
            "{refused:?}"
        );
    }
    assert_eq!(bodies(&server).await.len(), 3, "nothing resent");
    // Back on its own state, all is well.
    let own = dir.run(&["run", "order-sms"]).await;
    assert!(own.stdout.contains("new 0, sent 0"), "{own:?}");

    // The other state, once used knowingly, becomes the flows' state: from then on the
    // first one is the stranger.
    let accepted = dir
        .run(&["run", "order-sms", "--state", other, "--accept-state-loss"])
        .await;
    assert_eq!(accepted.code, 0, "{accepted:?}");
    assert!(
        accepted.stdout.contains("sent 3"),
        "it resends, as accepted: {accepted:?}"
    );
    let back = dir.run(&["run", "order-sms"]).await;
    assert_eq!(back.code, 2, "{back:?}");
    assert!(
        back.stderr.contains("were run with another state"),
        "{back:?}"
    );
    let again = dir.run(&["run", "order-sms", "--state", other]).await;
    assert!(again.stdout.contains("new 0, sent 0"), "{again:?}");

    // A state that serves another flows directory (still bound to it) is refused for a
    // second one: two projects would share one memory of what was sent.
    let second = Dir::new(&server.uri());
    let shared = second.run(&["run", "order-sms", "--state", other]).await;
    assert_eq!(shared.code, 2, "{shared:?}");
    assert!(shared.stderr.contains("serves the flows in"), "{shared:?}");
    assert_eq!(bodies(&server).await.len(), 6);

    // A flows directory moved with its state is the same pair.
    let moved = dir.path().join("moved");
    std::fs::rename(dir.path().join("flows"), &moved).expect("the test renames the file");
    let after_move = dir
        .run(&["run", "order-sms", "--flows", "moved", "--state", other])
        .await;
    assert_eq!(after_move.code, 0, "{after_move:?}");
    assert!(
        after_move.stdout.contains("new 0, sent 0"),
        "{after_move:?}"
    );
}

#[tokio::test]
async fn quickstart_talks_only_to_the_stand_in_whatever_the_accounts_say() {
    // The directory's accounts point at a "real" service (this mock) with a real key.
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    let run = dir.run(&["quickstart", "--dir", "flows"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("quickstart talks only to the built-in stand-in"),
        "{run:?}"
    );
    assert!(
        bodies(&server).await.is_empty(),
        "nothing reached the service"
    );
    // The flows' own state was not touched either: a real run sends everything.
    let real = dir.run(&["run", "order-sms"]).await;
    assert!(real.stdout.contains("sent 3"), "{real:?}");
}

#[tokio::test]
async fn a_test_send_to_the_records_own_recipient_is_recorded_so_the_next_run_skips_it() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    let test = dir.run(&["test", "order-sms", "--send"]).await;
    assert_eq!(test.code, 0, "{test:?}");
    assert!(
        test.stdout.contains("test send of `A-1`: sent (id umid-order-sms:test) to the record's own recipient; recorded as sent (run 1), so the next run does not send it again"),
        "{test:?}"
    );
    let run = dir.run(&["run", "order-sms"]).await;
    assert!(run.stdout.contains("new 2, sent 2"), "{run:?}");
    let destinations: Vec<String> = bodies(&server)
        .await
        .iter()
        .map(|b| b["destination"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        destinations
            .iter()
            .filter(|d| *d == "+380501234567")
            .count(),
        1,
        "the customer got one message: {destinations:?}"
    );
    let history = dir.run(&["history", "order-sms", "--run", "1"]).await;
    assert!(history.stdout.contains("a test send"), "{history:?}");
}

/// The runs of flow `name` through the daemon's API, newest first, once `ready` holds.
async fn runs_until(api: &str, name: &str, ready: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut runs = Vec::new();
    for _ in 0..200 {
        runs = reqwest::get(format!("{api}/api/flows/{name}/runs?limit=50"))
            .await
            .expect("the GET is answered")
            .json::<Value>()
            .await
            .unwrap_or_default()["runs"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if ready(&runs) {
            return runs;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the runs never got there: {runs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_event_sent_again_corrected_is_sent_not_skipped_as_a_duplicate() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    std::fs::remove_file(dir.path().join("flows/order-sms.yaml"))
        .expect("the test removes the file");
    dir.write(
        "flows/signup.yaml",
        "source: {connector: webhook, key: id}\nreceiver: {connector: 8x8, action: send_sms, account: shop-8x8}\nmap:\n  destination: \"{{phone}}\"\n  text: \"Welcome {{name}}\"\n",
    );
    let daemon = spawn_daemon(&dir);
    let api = api_of(&dir, &daemon).await;
    let http = reqwest::Client::new();
    let post = |body: Value| http.post(format!("{api}/hooks/signup")).json(&body).send();
    let bad = post(json!({"id": "e-1", "phone": "call me", "name": "Olena"})).await;
    assert_eq!(bad.map(|r| r.status().as_u16()).ok(), Some(200));
    runs_until(&api, "signup", |runs| {
        runs.iter().any(|r| r["counts"]["failed"] == 1)
    })
    .await;
    // The sender fixes the phone number and posts the event again, under the same id.
    let fixed = post(json!({"id": "e-1", "phone": "+380501234567", "name": "Olena"})).await;
    assert_eq!(fixed.map(|r| r.status().as_u16()).ok(), Some(200));
    runs_until(&api, "signup", |runs| {
        runs.iter().any(|r| r["counts"]["sent"] == 1)
    })
    .await;
    assert_eq!(
        bodies(&server).await.len(),
        1,
        "the corrected event went out"
    );
    // The same corrected event once more is a repeat delivery: not sent again.
    let again = post(json!({"id": "e-1", "phone": "+380501234567", "name": "Olena"})).await;
    assert_eq!(again.map(|r| r.status().as_u16()).ok(), Some(200));
    runs_until(&api, "signup", |runs| {
        runs.iter().any(|r| r["counts"]["skipped"] == 1)
    })
    .await;
    assert_eq!(bodies(&server).await.len(), 1);
    // Its failure is behind it: nothing waits for a replay.
    let replay = http
        .post(format!("{api}/api/flows/signup/replay"))
        .send()
        .await
        .expect("the call is answered");
    let replay: Value = replay.json().await.unwrap_or_default();
    assert_eq!(replay["nothing_to_replay"], true, "{replay}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identical_event_without_an_id_is_a_repeat_only_within_the_redelivery_window() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    std::fs::remove_file(dir.path().join("flows/order-sms.yaml"))
        .expect("the test removes the file");
    // No `key:`: events are known by their payload.
    dir.write(
        "flows/edits.yaml",
        "source: {connector: webhook}\nreceiver: {connector: 8x8, action: send_sms, account: shop-8x8}\nmap:\n  destination: \"{{phone}}\"\n  text: \"Contact {{name}} was edited\"\nredelivery_window: 2s\n",
    );
    let daemon = spawn_daemon(&dir);
    let api = api_of(&dir, &daemon).await;
    let http = reqwest::Client::new();
    let edit = json!({"contactId": "c-7", "name": "Olena", "phone": "+380501234567"});
    let post = || http.post(format!("{api}/hooks/edits")).json(&edit).send();
    assert_eq!(post().await.map(|r| r.status().as_u16()).ok(), Some(200));
    runs_until(&api, "edits", |runs| {
        runs.iter().any(|r| r["counts"]["sent"] == 1)
    })
    .await;
    // Again at once: the sender's redelivery.
    assert_eq!(post().await.map(|r| r.status().as_u16()).ok(), Some(200));
    runs_until(&api, "edits", |runs| {
        runs.iter().any(|r| r["counts"]["skipped"] == 1)
    })
    .await;
    assert_eq!(bodies(&server).await.len(), 1);
    // The same payload past the window: another edit of the same contact.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(post().await.map(|r| r.status().as_u16()).ok(), Some(200));
    runs_until(&api, "edits", |runs| {
        runs.iter().filter(|r| r["counts"]["sent"] == 1).count() == 2
    })
    .await;
    assert_eq!(bodies(&server).await.len(), 2);
    // A pulled source has no such window.
    dir.write(
        "flows/order-sms.yaml",
        &format!("{FLOW}redelivery_window: 1m\n"),
    );
    let refused = dir.run(&["validate"]).await;
    assert!(
        refused
            .stdout
            .contains("order-sms.yaml:18:20: `redelivery_window` is for pushed events"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_cinnox_token_refused_shows_inactive_even_where_a_get_is_not_allowed() {
    let server = MockServer::start().await;
    // The event subscriptions take PATCH only: a GET is 405 whatever the token.
    Mock::given(method("GET"))
        .and(path("/v1/api/apps/app-1/inquiry-event-sub"))
        .respond_with(ResponseTemplate::new(405))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/api/apps/app-1/contacts/extcontact-list"))
        .and(header("authorization", "Bearer good-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"code": 0, "result": []})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/api/apps/app-1/contacts/extcontact-list"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"code": 6450401, "message": "invalid token"})),
        )
        .mount(&server)
        .await;
    let dir = Dir::new(&server.uri());
    for (token, active) in [("regenerated-token", false), ("good-token", true)] {
        dir.write(
            "flows/accounts.yaml",
            &format!(
                "cx:\n  connector: cinnox\n  app_id: app-1\n  app_token: {token}\n  base_url: {}\n",
                server.uri()
            ),
        );
        dir.private("flows/accounts.yaml");
        std::fs::remove_file(dir.path().join("flows/order-sms.yaml")).ok();
        let check = dir.run(&["accounts", "check", "--json"]).await;
        assert_eq!(check.code, if active { 0 } else { 1 }, "{check:?}");
        assert_eq!(check.json()[0]["active"], active, "{check:?}");
    }
}

#[tokio::test]
async fn validate_takes_a_block_over_a_list_look_up_and_find_row_answers_as_row() {
    let dir = Dir::new("http://127.0.0.1:9");
    dir.append(
        "flows/accounts.yaml",
        "asms:\n  connector: aranda\n  api_key: asms-token\n  instance_url: https://help.example.com/ASMS\n  base_url: http://127.0.0.1:9/asms\nsheets:\n  connector: google_sheets\n  api_key: sheets-key\n",
    );
    dir.private("flows/accounts.yaml");
    dir.write(
        "flows/cases.yaml",
        "source: {connector: csv, path: orders.csv, key: order_id}\nlookup: {connector: aranda, account: asms, action: search_cases, query: \"{{name}}\", field: ApplicantName}\nreceiver: {connector: 8x8, action: send_sms, account: shop-8x8}\nmap:\n  destination: \"{{phone}}\"\n  text: \"{{#each cases}}{{subject}} ({{stateName}}){{#unless @last}}, {{/unless}}{{/each}} for {{name}}\"\n",
    );
    dir.write(
        "flows/status.yaml",
        "source: {connector: csv, path: orders.csv, key: order_id}\nlookup: {connector: google_sheets, account: sheets, action: find_row, query: \"{{order_id}}\", spreadsheet_id: 1AbC, range: \"Orders!A1:D\", key: order_id}\nreceiver: {connector: 8x8, action: send_sms, account: shop-8x8}\nmap:\n  destination: \"{{phone}}\"\n  text: \"Order {{order_id}} is {{row.status}} (row {{row._row}})\"\n",
    );
    let validate = dir.run(&["validate"]).await;
    assert_eq!(validate.code, 0, "{validate:?}");
    // A misspelt source field is still found, outside the block.
    dir.write(
        "flows/cases.yaml",
        "source: {connector: csv, path: orders.csv, key: order_id}\nlookup: {connector: aranda, account: asms, action: search_cases, query: \"{{name}}\", field: ApplicantName}\nreceiver: {connector: 8x8, action: send_sms, account: shop-8x8}\nmap:\n  destination: \"{{phnoe}}\"\n  text: \"{{#each cases}}{{subject}}{{/each}}\"\n",
    );
    let typo = dir.run(&["validate"]).await;
    assert!(
        typo.stdout.contains("uses unknown field `phnoe`"),
        "{typo:?}"
    );
}

#[tokio::test]
async fn a_foreign_row_in_the_postgres_migration_table_is_an_error_not_a_panic() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    let Some(schema) = super::postgres::Schema::new() else {
        return;
    };
    let state = schema.url();
    let first = dir.run(&["history", "order-sms", "--state", &state]).await;
    assert_eq!(first.code, 0, "{first:?}");
    let (url, name) = state.split_once("?schema=").unwrap_or_default();
    let (url, name) = (url.to_string(), name.to_string());
    std::thread::spawn(move || {
        let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls)
            .expect("it connects");
        client
            .batch_execute(&format!(
                "INSERT INTO \"{name}\".refinery_schema_history VALUES (99, 'someone_elses', now()::text, '1')"
            ))
            .expect("batch_execute succeeds");
    })
    .join()
    .unwrap_or_else(|_| panic!("the insert failed"));
    let refused = dir
        .run_with(
            &["history", "order-sms", "--state", &state],
            &[("RUST_BACKTRACE", "1")],
        )
        .await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("holds a row this program did not write: version 99 `someone_elses`")
            && refused.stderr.contains("?schema=NAME"),
        "{refused:?}"
    );
    assert!(!refused.stderr.contains("panicked"), "{refused:?}");
}

/// A daemon started from a copy of the binary under another name.
fn renamed_daemon(dir: &Dir, extra: &[&str]) -> Child {
    let copy = dir.path().join("sb-daemon");
    std::fs::copy(env!("CARGO_BIN_EXE_switchboard"), &copy).expect("the test copies the file");
    Child(
        tokio::process::Command::new(&copy)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_trusts_the_daemon_that_wrote_the_file_whatever_its_name_and_no_one_else() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    // A daemon whose binary is not called switchboard: found, and its file left alone.
    let daemon = renamed_daemon(&dir, &[]);
    let api = api_of(&dir, &daemon).await;
    let status = dir.run(&["status"]).await;
    assert_eq!(status.code, 0, "{status:?}");
    assert!(status.stdout.contains("order-sms"), "{status:?}");
    let file = dir.path().join("flows/.switchboard/daemon.json");
    assert!(file.exists(), "a live daemon's file is kept");
    let run = dir.run(&["run", "order-sms"]).await;
    assert!(
        run.stdout.contains("sent 3"),
        "through the daemon at {api}: {run:?}"
    );
    drop(daemon);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    // A file naming a live process with "switchboard" in its command line, which is not
    // the daemon that wrote it (the daemon died, its pid went to another process).
    let mut other = tokio::process::Command::new("sh")
        .args(["-c", "sleep 30 # switchboard daemon"])
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let mut written: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap_or_default())
            .unwrap_or_default();
    written["pid"] = json!(other.id().unwrap_or_default());
    std::fs::write(&file, written.to_string()).expect("the test writes its file");
    let status = dir.run(&["status"]).await;
    assert_eq!(status.code, 1, "{status:?}");
    assert!(status.stderr.contains("no daemon is running"), "{status:?}");
    assert!(!file.exists(), "the stale file is removed");
    let _ = other.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_nodes_sharing_one_flows_directory_are_each_found() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    let Some(schema) = super::postgres::Schema::new() else {
        return;
    };
    let state = schema.url();
    let a = spawn_daemon_with(&dir, &["--cluster", "--node", "a", "--state", &state]);
    let _ = api_of(&dir, &a).await;
    let b = spawn_daemon_with(&dir, &["--cluster", "--node", "b", "--state", &state]);
    let _ = api_of(&dir, &b).await;
    // Node a stops cleanly (and removes its own file): node b is still found.
    let _ = tokio::process::Command::new("kill")
        .args(["-TERM", &a.0.id().unwrap_or_default().to_string()])
        .status()
        .await;
    let mut a = a;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(40), a.0.wait()).await;
    let status = dir.run(&["status", "--state", &state]).await;
    assert_eq!(status.code, 0, "{status:?}");
    assert!(status.stdout.contains("order-sms"), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_daemon_instead_of_ending_it() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    let mut daemon = spawn_daemon(&dir);
    let api = api_of(&dir, &daemon).await;
    let pid = daemon.0.id().unwrap_or_default().to_string();
    let _ = tokio::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        daemon.0.try_wait().ok().flatten().is_none(),
        "the daemon is still running after SIGHUP"
    );
    let flows = reqwest::get(format!("{api}/api/flows")).await;
    assert_eq!(flows.map(|r| r.status().as_u16()).ok(), Some(200));
}

#[tokio::test]
async fn escape_codes_in_records_are_printed_inert_by_run_and_history() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    dir.write(
        "flows/orders.csv",
        "order_id,name,phone\nA-\u{1b}[2J1,Olena,\u{1b}]0;pwned\u{7}\nA-2,\u{9b}31mTom,+12025550175\n",
    );
    let run = dir.run(&["run", "order-sms"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    let history = dir.run(&["history", "order-sms", "--run", "1"]).await;
    let json = dir
        .run(&["history", "order-sms", "--run", "1", "--json"])
        .await;
    for out in [&run.stdout, &history.stdout, &json.stdout] {
        assert!(
            !out.contains(['\u{1b}', '\u{7}', '\u{9b}']),
            "a control character reached the terminal: {out:?}"
        );
    }
    assert!(run.stdout.contains("A-\\u001b[2J1"), "{run:?}");
    // JSON output stays JSON, and says exactly what the record held.
    assert_eq!(json.json()["rows"][1]["record"]["name"], "\u{9b}31mTom");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_toggle_edits_a_symlinked_flow_where_it_points() {
    use super::console::{browser, csrf_of, get, post_form};
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    // The flow file lives elsewhere (a repository checkout); the flows directory links it.
    dir.write("shared/order-sms.yaml", FLOW);
    let link = dir.path().join("flows/order-sms.yaml");
    std::fs::remove_file(&link).expect("the test removes the file");
    std::os::unix::fs::symlink(dir.path().join("shared/order-sms.yaml"), &link)
        .expect("symlink succeeds");
    let daemon = spawn_daemon(&dir);
    let api = api_of(&dir, &daemon).await;
    let client = browser();
    let (_, page) = get(&client, &format!("{api}/")).await;
    let csrf = csrf_of(&page);
    let (status, _) = post_form(
        &client,
        &format!("{api}/flows/order-sms/enabled"),
        &[("enabled", "false"), ("csrf", &csrf)],
        Some(&api),
    )
    .await;
    assert_eq!(status, 303);
    let kind = std::fs::symlink_metadata(&link).expect("the file is there");
    assert!(kind.file_type().is_symlink(), "the link is still a link");
    let target =
        std::fs::read_to_string(dir.path().join("shared/order-sms.yaml")).unwrap_or_default();
    assert_eq!(target, FLOW.replace("enabled: true", "enabled: false"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_sent_before_a_crash_are_not_recorded_again_as_duplicates() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .respond_with(|r: &Request| queued(r).set_delay(std::time::Duration::from_millis(1500)))
        .mount(&server)
        .await;
    let dir = Dir::new(&server.uri());
    std::fs::remove_file(dir.path().join("flows/order-sms.yaml"))
        .expect("the test removes the file");
    dir.write(
        "flows/signup.yaml",
        "source: {connector: webhook, key: id}\nreceiver: {connector: 8x8, action: send_sms, account: shop-8x8}\nmap:\n  destination: \"{{phone}}\"\n  text: \"Welcome {{id}}\"\ndelivery: {concurrency: 1}\n",
    );
    let mut daemon = spawn_daemon(&dir);
    let api = api_of(&dir, &daemon).await;
    let events: Vec<Value> = (1..=3)
        .map(|i| json!({"id": format!("e-{i}"), "phone": "+380501234567"}))
        .collect();
    let posted = reqwest::Client::new()
        .post(format!("{api}/hooks/signup"))
        .json(&events)
        .send()
        .await;
    assert_eq!(posted.map(|r| r.status().as_u16()).ok(), Some(200));
    // The first event went out and its outcome is stored; the second is under way.
    for _ in 0..300 {
        if server
            .received_requests()
            .await
            .map(|r| r.len())
            .unwrap_or(0)
            >= 2
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    daemon.0.start_kill().expect("the process is killed");
    let _ = daemon.0.wait().await;
    let second = spawn_daemon(&dir);
    let api = api_of(&dir, &second).await;
    let runs = runs_until(&api, "signup", |runs| {
        runs.iter()
            .any(|r| r["status"] == "succeeded" && r["counts"]["sent"].as_u64() >= Some(1))
    })
    .await;
    for run in &runs {
        let id = run["id"].as_u64().unwrap_or_default();
        let rows: Value = reqwest::get(format!("{api}/api/flows/signup/runs/{id}"))
            .await
            .expect("the GET is answered")
            .json()
            .await
            .unwrap_or_default();
        for row in rows["rows"].as_array().cloned().unwrap_or_default() {
            assert!(
                !row["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("duplicate"),
                "an event sent before the crash was recorded again: {row}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_through_the_daemon_need_none_of_its_secrets() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    let daemon = spawn_daemon(&dir);
    let _api = api_of(&dir, &daemon).await;
    // This shell has no key: the daemon does.
    let no_key = [("EIGHTX8_API_KEY", "")];
    let run = dir.run_with(&["run", "order-sms"], &no_key).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("sent 3"), "{run:?}");
    let replay = dir.run_with(&["replay", "order-sms"], &no_key).await;
    assert_eq!(replay.code, 0, "{replay:?}");
    assert!(replay.stdout.contains("nothing to replay"), "{replay:?}");
    let resume = dir.run_with(&["resume", "order-sms"], &no_key).await;
    assert_eq!(resume.code, 0, "{resume:?}");
    assert!(resume.stdout.contains("not paused"), "{resume:?}");
    dir.append("flows/orders.csv", "A-4,Ivan,+380671112233\n");
    let test = dir.run_with(&["test", "order-sms"], &no_key).await;
    assert_eq!(test.code, 0, "{test:?}");
    assert!(test.stdout.contains("record A-4 (new)"), "{test:?}");
    assert!(!test.stdout.contains(API_KEY), "{test:?}");
    // Sending from this shell needs the key here: said, and nothing sent.
    let send = dir
        .run_with(
            &["test", "order-sms", "--send", "--to", "+447700900123"],
            &no_key,
        )
        .await;
    assert_eq!(send.code, 2, "{send:?}");
    assert!(
        send.stderr.contains("`--send` sends from this shell"),
        "{send:?}"
    );
    assert_eq!(bodies(&server).await.len(), 3);
}

#[tokio::test]
async fn validate_points_at_every_change_me_that_new_left() {
    let dir = Dir::new("http://127.0.0.1:9");
    let new = dir
        .run(&["new", "welcome", "--source", "webhook", "--receiver", "8x8"])
        .await;
    assert_eq!(new.code, 0, "{new:?}");
    let validate = dir
        .run_with(&["validate"], &[("MY_8X8_API_KEY", "k")])
        .await;
    assert_eq!(validate.code, 1, "{validate:?}");
    assert!(
        validate
            .stdout
            .contains("`subaccount_id` is still `CHANGE-ME`")
            && validate
                .stdout
                .contains("`destination` is still `{{CHANGE-ME}}`")
            && validate.stdout.contains("`text` is still `{{CHANGE-ME}}`"),
        "{validate:?}"
    );
}

#[tokio::test]
async fn next_says_when_a_switched_off_flow_would_run() {
    let dir = Dir::new("http://127.0.0.1:9");
    dir.write(
        "flows/order-sms.yaml",
        &FLOW.replace("enabled: true", "enabled: false"),
    );
    let next = dir
        .run(&[
            "next",
            "order-sms",
            "--count",
            "2",
            "--now",
            "2026-11-21T12:08:00+02:00",
        ])
        .await;
    assert_eq!(next.code, 0, "{next:?}");
    assert_eq!(
        next.stdout,
        "order-sms: every 15m (Europe/Kyiv), but `enabled: false`: it runs only when forced\n  switched on (`enabled: true`), it would run:\n    2026-11-21T12:23:00+02:00\n    2026-11-21T12:38:00+02:00\n"
    );
}

/// What a scripted SMTP server does.
#[derive(Clone, Copy)]
enum SmtpServer {
    /// Closes the connection once the message data is in, without answering.
    DropAfterData,
    /// Refuses the login, quoting the AUTH line it was sent.
    QuoteAuth,
}

/// A scripted SMTP server on a free port; how many messages reached it.
async fn smtp_server(kind: SmtpServer) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("the port is free");
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let messages = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = std::sync::Arc::clone(&messages);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let count = std::sync::Arc::clone(&count);
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut read = BufReader::new(read);
                let _ = write.write_all(b"220 scripted ESMTP\r\n").await;
                let mut line = String::new();
                loop {
                    line.clear();
                    if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let upper = line.to_ascii_uppercase();
                    let answer = if upper.starts_with("EHLO") {
                        "250-scripted\r\n250 AUTH PLAIN\r\n".to_string()
                    } else if upper.starts_with("AUTH") {
                        match kind {
                            SmtpServer::QuoteAuth => {
                                format!("535 5.7.8 Authentication failed for {}\r\n", line.trim())
                            }
                            SmtpServer::DropAfterData => "235 ok\r\n".to_string(),
                        }
                    } else if upper.starts_with("DATA") {
                        let _ = write.write_all(b"354 go on\r\n").await;
                        let mut data = Vec::new();
                        let mut byte = [0u8; 1];
                        while !data.ends_with(b"\r\n.\r\n") {
                            if read.read(&mut byte).await.unwrap_or(0) == 0 {
                                return;
                            }
                            data.push(byte[0]);
                        }
                        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        return;
                    } else {
                        "250 ok\r\n".to_string()
                    };
                    let _ = write.write_all(answer.as_bytes()).await;
                }
            });
        }
    });
    (port, messages)
}

/// A flows directory with an e-mail flow through the SMTP server on `port`.
fn mail_dir(port: u16) -> Dir {
    let dir = Dir::new("http://127.0.0.1:9");
    std::fs::remove_file(dir.path().join("flows/order-sms.yaml"))
        .expect("the test removes the file");
    dir.write(
        "flows/accounts.yaml",
        &format!("mail:\n  connector: smtp\n  host: 127.0.0.1\n  port: {port}\n  tls: none\n  username: alerts\n  password: app-password-0123\n  from: Switchboard <alerts@example.com>\n"),
    );
    dir.private("flows/accounts.yaml");
    dir.write(
        "flows/people.csv",
        "id,email,name\n1,olena@example.com,Olena\n",
    );
    dir.write(
        "flows/mail.yaml",
        "source: {connector: csv, path: people.csv, key: id, backlog: send}\nreceiver: {connector: smtp, action: send_email, account: mail}\nmap:\n  to: \"{{email}}\"\n  subject: \"Hello {{name}}\"\n  body: \"Your order is on its way.\"\ndelivery: {timeout: 2s, attempts: 3, backoff: 10ms}\n",
    );
    dir
}

#[tokio::test]
async fn an_e_mail_whose_answer_was_lost_is_parked_as_uncertain_not_sent_twice() {
    let (port, messages) = smtp_server(SmtpServer::DropAfterData).await;
    let dir = mail_dir(port);
    let run = dir.run(&["run", "mail", "--json"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    let failure = &run.json()["failures"][0];
    assert_eq!(failure["uncertain"], true, "{run:?}");
    assert!(
        failure["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("replay mail --uncertain"),
        "{run:?}"
    );
    assert_eq!(
        messages.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "sent once, not retried"
    );
    // The next run leaves it for a person; replay --uncertain sends it (once more).
    let next = dir.run(&["run", "mail"]).await;
    assert!(next.stdout.contains("new 0, sent 0"), "{next:?}");
    assert_eq!(messages.load(std::sync::atomic::Ordering::SeqCst), 1);
    let replay = dir.run(&["replay", "mail", "--uncertain"]).await;
    assert!(replay.stdout.contains("fetched 1"), "{replay:?}");
    assert_eq!(messages.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_smtp_refusal_quoting_the_auth_line_leaks_no_password() {
    use base64::Engine as _;
    let (port, _) = smtp_server(SmtpServer::QuoteAuth).await;
    let dir = mail_dir(port);
    let plain = base64::engine::general_purpose::STANDARD.encode("\0alerts\0app-password-0123");
    let run = dir.run(&["-vv", "run", "mail"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("535"), "the refusal is shown: {run:?}");
    let history = dir.run(&["history", "mail", "--run", "1", "--json"]).await;
    for out in [&run.stdout, &run.stderr, &history.stdout] {
        assert!(!out.contains(&plain), "the AUTH line leaked: {out}");
        assert!(
            !out.contains("app-password-0123"),
            "the password leaked: {out}"
        );
    }
    assert!(history.stdout.contains("**REDACTED**"), "{history:?}");
}

#[tokio::test]
async fn basic_credentials_echoed_decoded_by_a_service_leak_nowhere() {
    use base64::Engine as _;
    let server = MockServer::start().await;
    // A service that says who it thinks you are: the Basic credentials, decoded.
    Mock::given(method("POST"))
        .and(path("/notify"))
        .respond_with(|r: &Request| {
            let header = r
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .trim_start_matches("Basic ")
                .to_string();
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(header)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            ResponseTemplate::new(403)
                .set_body_json(json!({"error": format!("user {decoded} may not post here")}))
        })
        .mount(&server)
        .await;
    let dir = Dir::new(&server.uri());
    let token = base64::engine::general_purpose::STANDARD.encode("ops:hunter2-secret");
    dir.write(
        "flows/accounts.yaml",
        &format!("hook:\n  connector: http\n  base_url: {}\n  headers:\n    Authorization: \"Basic {token}\"\n", server.uri()),
    );
    dir.private("flows/accounts.yaml");
    dir.write(
        "flows/order-sms.yaml",
        "source: {connector: csv, path: orders.csv, key: order_id, backlog: send}\nreceiver: {connector: http, action: request, account: hook}\nmap:\n  url: /notify\n  body: {text: \"{{name}}\"}\n",
    );
    let run = dir.run(&["run", "order-sms"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    let history = dir
        .run(&["history", "order-sms", "--run", "1", "--json"])
        .await;
    for out in [&run.stdout, &history.stdout] {
        assert!(out.contains("may not post here"), "{out}");
        assert!(
            !out.contains("hunter2-secret") && !out.contains("ops:hunter2"),
            "{out}"
        );
    }
}

/// A small file system of its own (tmpfs), unmounted when dropped; `None` where this
/// process may not mount one (not root).
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: &std::path::Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(at).ok()?;
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?
            .success();
        mounted.then(|| SmallDisk(at.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_said_by_health_and_the_daemon_goes_on_once_there_is_room() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    std::fs::remove_file(dir.path().join("flows/order-sms.yaml"))
        .expect("the test removes the file");
    dir.write(
        "flows/signup.yaml",
        "source: {connector: webhook, key: id}\nreceiver: {connector: 8x8, action: send_sms, account: shop-8x8}\nmap:\n  destination: \"{{phone}}\"\n  text: \"Welcome {{id}}\"\n",
    );
    // The state directory is a small disk of its own.
    let mounted = SmallDisk::mount(&dir.path().join("flows/.switchboard"), "6m");
    if !available(
        "full-disk",
        || mounted.is_some(),
        "a full disk is a tmpfs of its own, which only root may mount: run the tests as root",
    ) {
        return;
    }
    let Some(disk) = mounted else {
        return;
    };
    let mut daemon = spawn_daemon(&dir);
    let api = api_of(&dir, &daemon).await;
    let http = reqwest::Client::new();
    let post = |id: &str| {
        http.post(format!("{api}/hooks/signup"))
            .json(&json!({"id": id, "phone": "+380501234567"}))
            .send()
    };
    assert_eq!(
        post("e-1").await.map(|r| r.status().as_u16()).ok(),
        Some(200)
    );
    runs_until(&api, "signup", |runs| {
        runs.iter().any(|r| r["counts"]["sent"] == 1)
    })
    .await;
    // The disk fills up.
    let filler = disk.0.join("filler");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&filler).expect("the test creates its file");
        let chunk = vec![0u8; 64 << 10];
        while file.write_all(&chunk).is_ok() {}
        let _ = file.sync_all();
    }
    let refused = post("e-2").await.map(|r| r.status().as_u16()).ok();
    assert_eq!(
        refused,
        Some(500),
        "an event that cannot be stored is not acknowledged"
    );
    let health = reqwest::get(format!("{api}/healthz"))
        .await
        .expect("the GET is answered");
    assert_eq!(health.status().as_u16(), 503);
    let said = health.text().await.unwrap_or_default();
    assert!(
        said.contains("the state cannot be written") && said.contains("no space left"),
        "{said}"
    );
    // Room again: health and webhooks come back by themselves.
    std::fs::remove_file(&filler).expect("the test removes the file");
    let mut healthy = false;
    for _ in 0..100 {
        let health = reqwest::get(format!("{api}/healthz")).await;
        if health.map(|r| r.status().as_u16()).ok() == Some(200) {
            healthy = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(healthy, "the daemon recovers once the disk has room");
    assert_eq!(
        post("e-2").await.map(|r| r.status().as_u16()).ok(),
        Some(200)
    );
    runs_until(&api, "signup", |runs| {
        runs.iter().filter(|r| r["counts"]["sent"] == 1).count() == 2
    })
    .await;
    assert_eq!(bodies(&server).await.len(), 2);
    let _ = tokio::process::Command::new("kill")
        .args(["-TERM", &daemon.0.id().unwrap_or_default().to_string()])
        .status()
        .await;
    let ended = tokio::time::timeout(std::time::Duration::from_secs(40), daemon.0.wait()).await;
    let code = ended.ok().and_then(Result::ok).and_then(|s| s.code());
    assert_eq!(code, Some(0), "a clean stop once the disk has room");
}
