//! Running it for months (issue 17) through the real binary against the stand-in:
//! `filter:` drops and passes records, and says why in `run`, `history` and `test`.

use super::*;

/// Orders with a status and an amount; the flow texts paid orders over 100 only.
const ORDERS_WITH_STATUS: &str = "order_id,name,phone,status,amount\nA-1,Olena,+380501234567,paid,250\nA-2,Tom,+12025550175,pending,300\nA-3,María,+34612345678,paid,40\n";

const FILTER: &str =
    "filter:\n  all:\n    - {field: status, equals: paid}\n    - {field: amount, gt: 100}\n";

/// A Slack-style webhook on `server` that takes what is posted to `/slack`, and the alert
/// flow `to-slack` posting each alert there as `{text: "<condition>: <message>"}` through
/// an `http` account `slack`.
async fn slack_alert_flow(server: &MockServer, dir: &Dir) {
    Mock::given(method("POST"))
        .and(path("/slack"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(server)
        .await;
    dir.append(
        "flows/accounts.yaml",
        &format!("slack:\n  connector: http\n  base_url: {}\n", server.uri()),
    );
    dir.write(
        "flows/to-slack.yaml",
        "source: {connector: alerts}\nreceiver: {connector: http, action: request, account: slack}\nmap:\n  url: /slack\n  body: {text: \"{{condition}}: {{message}}\"}\n",
    );
}

/// The text of the first alert the webhook got, waiting for one (`tries` × 50 ms).
async fn first_alert(server: &MockServer, tries: usize) -> String {
    let mut alerts = Vec::new();
    for _ in 0..tries {
        alerts = requests_to(server, "POST", "/slack").await;
        if !alerts.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    alerts
        .first()
        .map(|a| a["text"].to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_filter_drops_and_passes_records_and_a_changed_row_is_judged_again() {
    let (_sandbox, url) = daily::sandbox().await;
    let dir = Dir::new(&url);
    dir.write("flows/orders.csv", ORDERS_WITH_STATUS);
    dir.append("flows/order-sms.yaml", FILTER);
    // `test` shows which records the filter drops, and why, before anything is sent.
    let preview = dir.run(&["test", "order-sms"]).await;
    assert_eq!(preview.code, 0, "{preview:?}");
    assert!(
        preview.stdout.contains("record A-2 (new)\n  filtered out, not sent: filter: `status` is `pending`, and the filter wants `paid`"),
        "{preview:?}"
    );
    let run = dir.run(&["run", "order-sms"]).await;
    assert_eq!(run.code, 0, "filtered records are not failures: {run:?}");
    assert!(
        run.stdout
            .contains("fetched 3, new 3, sent 1, failed 0, skipped 0, filtered 2 (succeeded"),
        "{run:?}"
    );
    let rows = dir
        .run(&["history", "order-sms", "--run", "1", "--json"])
        .await
        .json();
    let statuses: Vec<(&str, &str)> = rows["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["key"].as_str().unwrap_or(""),
                r["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [("A-1", "sent"), ("A-2", "filtered"), ("A-3", "filtered")]
    );
    assert_eq!(
        rows["rows"][2]["reason"],
        "filter: `amount` is `40`, and the filter wants more than 100"
    );
    // Nothing changed: nothing is judged again (filtered: remember, the default).
    let again = dir.run(&["run", "order-sms"]).await;
    assert!(
        again
            .stdout
            .contains("fetched 3, new 0, sent 0, failed 0, skipped 0 (succeeded"),
        "{again:?}"
    );
    // A-2 is paid now: its row changed, so it is judged again, and sent.
    dir.write(
        "flows/orders.csv",
        &ORDERS_WITH_STATUS.replace("pending", "paid"),
    );
    let paid = dir.run(&["run", "order-sms"]).await;
    assert!(
        paid.stdout.contains("fetched 3, new 1, sent 1, failed 0"),
        "{paid:?}"
    );
    let received = daily::sandbox_messages(&url).await;
    assert!(
        received.contains("+12025550175") && !received.contains("+34612345678"),
        "{received}"
    );
}

#[tokio::test]
async fn filtered_retry_judges_again_every_run_and_a_record_it_cannot_judge_fails() {
    let (_sandbox, url) = daily::sandbox().await;
    let dir = Dir::new(&url);
    dir.write(
        "flows/orders.csv",
        &format!("{ORDERS_WITH_STATUS}A-4,Ann,+380671112233,paid,lots\n"),
    );
    dir.append(
        "flows/order-sms.yaml",
        &format!("{FILTER}filtered: retry\n"),
    );
    let first = dir.run(&["run", "order-sms"]).await;
    assert_eq!(first.code, 1, "A-4 cannot be judged: {first:?}");
    assert!(
        first
            .stdout
            .contains("sent 1, failed 1, skipped 0, filtered 2"),
        "{first:?}"
    );
    assert!(
        first
            .stdout
            .contains("failed  A-4  filter: `amount` is `lots`, not a number"),
        "{first:?}"
    );
    let second = dir.run(&["run", "order-sms"]).await;
    assert!(
        second
            .stdout
            .contains("fetched 4, new 2, sent 0, failed 0, skipped 0, filtered 2"),
        "the two filtered rows are judged again: {second:?}"
    );
}

#[tokio::test]
async fn filter_mistakes_are_pointed_at_by_validate() {
    let dir = Dir::new("http://127.0.0.1:9");
    dir.append(
        "flows/order-sms.yaml",
        "filter:\n  any:\n    - {field: total, gt: many}\n    - {field: name, matches: \"(\"}\n    - {field: phone, startswith: \"+380\"}\n",
    );
    // The filter's lines follow the flow's own.
    let at = |n: usize, col: usize| format!("order-sms.yaml:{}:{col}: ", FLOW.lines().count() + n);
    let run = dir.run(&["validate"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    for expected in [
        format!(
            "{}`gt` compares numbers or dates; `many` is neither",
            at(3, 26)
        ),
        format!("{}`matches`: `(` is not a regular expression", at(4, 30)),
        format!(
            "{}unknown filter operator `startswith`\n  hint: did you mean `starts_with`?",
            at(5, 22)
        ),
    ] {
        assert!(run.stdout.contains(&expected), "{expected}: {run:?}");
    }
    // Once it reads, the fields it tests are checked against the source's columns.
    dir.write(
        "flows/order-sms.yaml",
        &format!("{FLOW}filter: {{field: staus, equals: paid}}\n"),
    );
    let names = dir.run(&["validate"]).await;
    assert!(
        names.stdout.contains(&format!(
            "{}`filter` tests `staus`, which the source has no column for",
            at(1, 17)
        )),
        "{names:?}"
    );
}

/// A flow whose runs keep failing is paused by the daemon once the last N failed and the
/// grace period passed (here 3 and none): events that arrive meanwhile wait in its queue
/// (answered, not lost), `status` says why, and `resume` lifts it and sends them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_flow_is_paused_and_resumed_with_nothing_lost() {
    let server = MockServer::start().await;
    // Olena's number is refused; any other is taken.
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .and(wiremock::matchers::body_string_contains("+380501234567"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"code": 1002, "message": "Invalid MSISDN format"})),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"umid": "u-1", "status": {"code": "QUEUED"}})),
        )
        .mount(&server)
        .await;
    let dir = Dir::new(&server.uri());
    std::fs::remove_file(dir.path().join("flows/order-sms.yaml"))
        .expect("the test removes the file");
    dir.append(
        "flows/accounts.yaml",
        "hook:\n  connector: webhook\n  secret: hook-secret-0123456789\n",
    );
    dir.write(
        "flows/signup.yaml",
        "source: {connector: webhook, account: hook, key: id}\nreceiver: {connector: 8x8, action: send_sms, account: shop-8x8}\nmap:\n  destination: \"{{phone}}\"\n  text: \"Welcome {{name}}\"\nauto_pause: {after: 3, grace: 0s}\n",
    );
    let daemon = spawn_daemon(&dir);
    let api = api_of(&dir, &daemon).await;
    let http = reqwest::Client::new();
    let post = |id: &str, phone: &str| {
        http.post(format!("{api}/hooks/signup"))
            .bearer_auth("hook-secret-0123456789")
            .json(&json!({"id": id, "phone": phone, "name": "Olena"}))
            .send()
    };
    let runs = || async {
        reqwest::get(format!("{api}/api/flows/signup/runs"))
            .await
            .expect("the GET is answered")
            .json::<Value>()
            .await
            .unwrap_or_default()["runs"]
            .as_array()
            .map_or(0, |runs| {
                runs.iter().filter(|r| r["status"] != "running").count()
            })
    };
    let until_runs = |n: usize| async move {
        for _ in 0..100 {
            if runs().await >= n {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("{n} runs did not happen");
    };
    for (i, id) in ["e-1", "e-2", "e-3"].iter().enumerate() {
        assert_eq!(
            post(id, "+380501234567")
                .await
                .map(|r| r.status().as_u16())
                .ok(),
            Some(200)
        );
        until_runs(i + 1).await;
    }
    // The pause is recorded as the third run ends.
    let mut flows = Value::Null;
    for _ in 0..100 {
        flows = reqwest::get(format!("{api}/api/flows"))
            .await
            .expect("the GET is answered")
            .json::<Value>()
            .await
            .unwrap_or_default();
        if !flows["flows"][0]["paused"].is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let reason = flows["flows"][0]["paused"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        reason.starts_with("the last 3 runs failed, with no success for 0s (last: e-3: 1002: Invalid MSISDN format"),
        "{flows}"
    );
    // Paused: the event is answered and kept, and no run starts.
    assert_eq!(
        post("e-4", "+380671112233")
            .await
            .map(|r| r.status().as_u16())
            .ok(),
        Some(200)
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(runs().await, 3, "a paused flow does not run");
    let status = dir.run(&["status"]).await;
    assert!(
        status.stdout.contains("  paused since ")
            && status
                .stdout
                .contains("`switchboard resume signup` resumes it"),
        "{status:?}"
    );
    // The console says so where the next run would be, not a next run.
    let page = |path: &'static str| {
        let url = format!("{api}{path}");
        async move {
            reqwest::get(url)
                .await
                .expect("the GET is answered")
                .text()
                .await
                .unwrap_or_default()
        }
    };
    let flows_page = page("/").await;
    assert!(
        flows_page
            .contains("data-label=\"Next run\"><span class=\"badge uncertain\">paused</span>"),
        "{flows_page}"
    );
    assert!(page("/flows/signup").await.contains("none while paused"));
    let resume = dir.run(&["resume", "signup"]).await;
    assert_eq!(resume.code, 0, "{resume:?}");
    assert!(
        resume.stdout.starts_with("signup: resumed (paused since "),
        "{resume:?}"
    );
    // The event that waited is sent now.
    until_runs(4).await;
    let again = dir.run(&["resume", "signup"]).await;
    assert_eq!(
        again.stdout, "signup: not paused; nothing to do\n",
        "{again:?}"
    );
    let sent = requests_to(&server, "POST", MESSAGES).await;
    assert_eq!(
        sent.len(),
        4,
        "every event reached the service once: {sent:?}"
    );
}

/// Bounded history: `prune` drops the runs a flow's `history:` (or `switchboard.yaml`'s)
/// does not keep, with their records; the handled keys stay, so nothing is sent again;
/// through the daemon when it holds the state.
#[tokio::test]
async fn pruning_bounds_history_and_keeps_the_dedupe_promise() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    dir.append("flows/order-sms.yaml", "history: {keep_runs: 2}\n");
    dir.write(
        "flows/copy.yaml",
        &FLOW.replace("{{name}}", "{{name}} (copy)"),
    );
    dir.write("flows/switchboard.yaml", "history: {keep_runs: 1}\n");
    for i in 4..=7 {
        dir.append("flows/orders.csv", &format!("A-{i},Ann,+38050123456{i}\n"));
        assert_eq!(dir.run(&["run", "order-sms"]).await.code, 0);
        assert_eq!(dir.run(&["run", "copy"]).await.code, 0);
    }
    let runs = |flow: &'static str| {
        let dir = &dir;
        async move {
            dir.run(&["history", flow, "--json"])
                .await
                .json()
                .as_array()
                .map_or(0, Vec::len)
        }
    };
    assert_eq!((runs("order-sms").await, runs("copy").await), (4, 4));
    let dry = dir.run(&["prune", "--dry-run"]).await;
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(
        dry.stdout
            .contains("copy: keeps 1 runs; would drop 3 run(s) with 6 record(s)")
            && dry
                .stdout
                .contains("order-sms: keeps 2 runs; would drop 2 run(s) with 5 record(s)"),
        "{dry:?}"
    );
    assert_eq!(runs("order-sms").await, 4, "a dry run drops nothing");
    let pruned = dir.run(&["prune", "order-sms"]).await;
    assert_eq!(
        pruned.stdout, "order-sms: keeps 2 runs; dropped 2 run(s) with 5 record(s)\n",
        "{pruned:?}"
    );
    assert_eq!((runs("order-sms").await, runs("copy").await), (2, 4));
    // The rows of pruned runs are still handled: nothing is sent again.
    let again = dir.run(&["run", "order-sms"]).await;
    assert!(
        again.stdout.contains("fetched 7, new 0, sent 0"),
        "{again:?}"
    );
    // Through the daemon that holds the state.
    let daemon = spawn_daemon(&dir);
    api_of(&dir, &daemon).await;
    let through = dir.run(&["prune", "--json"]).await;
    assert_eq!(through.code, 0, "{through:?}");
    let copy = through.json()["pruned"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["flow"] == "copy")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (copy["runs"].as_u64(), copy["records"].as_u64()),
        (Some(3), Some(6)),
        "{through:?}"
    );
    // A mistake in switchboard.yaml is pointed at.
    dir.write(
        "flows/switchboard.yaml",
        "history: {keep: 5m}\nalert: yes\n",
    );
    let validate = dir.run(&["validate"]).await;
    assert!(
        validate
            .stdout
            .contains("switchboard.yaml:1:17: `history.keep` is under an hour")
            && validate
                .stdout
                .contains("switchboard.yaml:2:1: unknown key `alert` in `switchboard.yaml`"),
        "{validate:?}"
    );
}

/// `forget_handled: true`: the keys of pruned runs are forgotten, so rows still in the
/// source are sent again — even though reruns found the source unchanged and since pass
/// it over without asking the state about each row (a forgotten key makes it new again).
#[tokio::test]
async fn rows_whose_keys_pruning_forgot_are_sent_again_after_unchanged_reruns() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    dir.append(
        "flows/order-sms.yaml",
        "history: {keep_runs: 1, forget_handled: true}\n",
    );
    let first = dir.run(&["run", "order-sms"]).await;
    assert!(first.stdout.contains("new 3, sent 3"), "{first:?}");
    for _ in 0..2 {
        let unchanged = dir.run(&["run", "order-sms"]).await;
        assert!(
            unchanged.stdout.contains("fetched 3, new 0, sent 0"),
            "{unchanged:?}"
        );
    }
    let pruned = dir.run(&["prune", "order-sms", "--json"]).await;
    assert_eq!(pruned.code, 0, "{pruned:?}");
    assert_eq!(
        pruned.json()["pruned"][0]["keys"].as_u64(),
        Some(3),
        "the first run's keys are forgotten: {pruned:?}"
    );
    let again = dir.run(&["run", "order-sms"]).await;
    assert!(again.stdout.contains("new 3, sent 3"), "{again:?}");
    assert_eq!(requests_to(&server, "POST", MESSAGES).await.len(), 6);
    // And remembered again: the next run sends nothing.
    let after = dir.run(&["run", "order-sms"]).await;
    assert!(after.stdout.contains("new 0, sent 0"), "{after:?}");
}

/// Alerts reach people through an alert flow (here `http` to a Slack-style webhook): a
/// run whose records fail alerts once; the next within `every` is held back and counted;
/// the auto-pause that follows alerts too. A wrong `alerts.to` is a validation error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_go_through_an_alert_flow_debounced() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"code": 1002, "message": "Invalid MSISDN format"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/services/T0/B0/slack"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&server)
        .await;
    let dir = Dir::new(&server.uri());
    dir.append(
        "flows/accounts.yaml",
        &format!("slack:\n  connector: http\n  base_url: {}\n", server.uri()),
    );
    dir.write(
        "flows/to-slack.yaml",
        "source: {connector: alerts}\nreceiver: {connector: http, action: request, account: slack}\nmap:\n  url: /services/T0/B0/slack\n  body: {text: \"{{condition}} {{flow}}: {{message}}\"}\n",
    );
    dir.append(
        "flows/order-sms.yaml",
        "alerts: {to: to-slack, on: [records_failed, paused], every: 1h}\nauto_pause: {after: 2, grace: 0s}\n",
    );
    let validate = dir.run(&["validate"]).await;
    assert_eq!(validate.code, 0, "{validate:?}");
    let daemon = spawn_daemon(&dir);
    let api = api_of(&dir, &daemon).await;
    let texts = || async {
        requests_to(&server, "POST", "/slack")
            .await
            .iter()
            .map(|b| b["text"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    let until = |n: usize| async move {
        for _ in 0..100 {
            if texts().await.len() >= n {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("{n} alert(s) did not arrive: {:?}", texts().await);
    };
    // Run 1 (through the daemon): every record fails → one alert.
    assert_eq!(dir.run(&["run", "order-sms"]).await.code, 1);
    until(1).await;
    let first = texts().await;
    assert!(
        first[0].starts_with("records_failed order-sms: 3 of 3 records failed in run 1 of order-sms (first: A-1: 1002: Invalid MSISDN format"),
        "{first:?}"
    );
    // Run 2 fails the same way: held back (within `every`); the pause it causes alerts.
    assert_eq!(dir.run(&["replay", "order-sms"]).await.code, 1);
    until(2).await;
    let all = texts().await;
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(
        all[1].starts_with("paused order-sms: order-sms is paused: the last 2 runs failed"),
        "{all:?}"
    );
    let history = dir.run(&["history", "to-slack"]).await;
    assert!(
        history.stdout.contains("sent 1, failed 0"),
        "the alert flow's own history: {history:?}"
    );
    // What on-call alerts on, in /metrics (OpenMetrics, through prometheus-client).
    let metrics = reqwest::get(format!("{api}/metrics"))
        .await
        .expect("the GET is answered")
        .text()
        .await
        .unwrap_or_default();
    for line in [
        "switchboard_alerts_total{flow=\"order-sms\",condition=\"records_failed\"} 1",
        "switchboard_alerts_total{flow=\"order-sms\",condition=\"paused\"} 1",
        "switchboard_auto_pauses_total{flow=\"order-sms\"} 1",
        "switchboard_flow_paused{flow=\"order-sms\"} 1",
        "switchboard_flow_failing{flow=\"order-sms\"} 1",
        "switchboard_run_duration_seconds_count{flow=\"order-sms\"} 2",
        "switchboard_send_duration_seconds_count{flow=\"order-sms\",receiver=\"8x8 send_sms\"} 6",
        "switchboard_records_total{flow=\"order-sms\",outcome=\"failed\"} 6",
        "switchboard_queued_events{flow=\"to-slack\"} 0",
        "switchboard_in_flight_records{flow=\"order-sms\"} 0",
        "# EOF",
    ] {
        assert!(metrics.contains(line), "{line}:\n{metrics}");
    }
    // A wrong alert flow is pointed at.
    drop(daemon);
    dir.append(
        "flows/copy.yaml",
        &FLOW.replace("{{name}}", "{{name}} (copy)"),
    );
    dir.append("flows/copy.yaml", "alerts: {to: to-slak}\n");
    let wrong = dir.run(&["validate"]).await;
    assert!(
        wrong
            .stdout
            .contains("`alerts.to` names unknown flow `to-slak`\n  hint: did you mean `to-slack`?"),
        "{wrong:?}"
    );
}

/// The watchdog: a flow on a one-second schedule whose run hangs (the service takes 8 s
/// to answer) has not started anew for twice its interval: `overdue` reaches the alert
/// flow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdog_alerts_a_scheduled_flow_that_is_overdue() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"umid": "u", "status": {"code": "QUEUED"}}))
                .set_delay(std::time::Duration::from_secs(8)),
        )
        .mount(&server)
        .await;
    let dir = Dir::new(&server.uri());
    std::fs::remove_file(dir.path().join("flows/order-sms.yaml"))
        .expect("the test removes the file");
    slack_alert_flow(&server, &dir).await;
    dir.write(
        "flows/ticker.yaml",
        "source: {connector: csv, path: orders.csv, key: order_id, backlog: send}\nreceiver: {connector: 8x8, action: send_sms, account: shop-8x8}\nmap:\n  destination: \"{{phone}}\"\n  text: \"Hi {{name}}\"\nschedule: {cron: \"* * * * * *\"}\nalerts: {to: to-slack, on: [overdue]}\n",
    );
    let daemon = spawn_daemon_with(&dir, &["--watchdog-every", "1s"]);
    api_of(&dir, &daemon).await;
    let text = first_alert(&server, 150).await;
    assert!(
        text.contains("overdue: ticker is overdue: its run has been going since"),
        "{text}"
    );
}

/// An account the service refuses alerts as `account_inactive`, not as failed records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_account_alerts_as_inactive() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"code": 1200, "message": "Unauthorized"})),
        )
        .mount(&server)
        .await;
    let dir = Dir::new(&server.uri());
    slack_alert_flow(&server, &dir).await;
    dir.write("flows/switchboard.yaml", "alerts: {to: to-slack}\n");
    let daemon = spawn_daemon(&dir);
    api_of(&dir, &daemon).await;
    assert_eq!(dir.run(&["run", "order-sms"]).await.code, 1);
    let text = first_alert(&server, 100).await;
    assert!(
        text.contains("account_inactive: the account `shop-8x8` of order-sms was refused (1200: Unauthorized (HTTP 401)); 3 record(s) wait for it"),
        "{text}"
    );
    assert!(!text.contains(API_KEY), "no secret in an alert");
}

/// E-mail through the SMTP stand-in: a message per record (a refused recipient fails
/// alone, 550), and the alert that failure raises, e-mailed by an alert flow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e_mail_goes_through_smtp_records_and_alerts_alike() {
    let smtp_port = free_port();
    let (_sandbox, url) = daily::sandbox_with(&["--smtp", &format!("127.0.0.1:{smtp_port}")]).await;
    let dir = Dir::new(&url);
    dir.append(
        "flows/accounts.yaml",
        &format!("mail:\n  connector: smtp\n  host: 127.0.0.1\n  port: {smtp_port}\n  tls: none\n  username: alerts\n  password: app-password-0123\n  from: Switchboard <alerts@example.com>\n"),
    );
    dir.write(
        "flows/people.csv",
        "id,email,name\n1,olena@example.com,Olena\n2,invalid@example.com,Nobody\n",
    );
    dir.write(
        "flows/mailing.yaml",
        "source: {connector: csv, path: people.csv, key: id, backlog: send}\nreceiver: {connector: smtp, action: send_email, account: mail}\nmap:\n  to: \"{{email}}\"\n  subject: \"Hello {{name}}\"\n  body: \"Your order is on its way.\"\nalerts: {to: to-mail, on: [records_failed]}\n",
    );
    dir.write(
        "flows/to-mail.yaml",
        "source: {connector: alerts}\nreceiver: {connector: smtp, action: send_email, account: mail}\nmap:\n  to: ops@example.com\n  subject: \"[switchboard] {{condition}}: {{flow}}\"\n  body: \"{{message}}\"\n",
    );
    let daemon = spawn_daemon(&dir);
    api_of(&dir, &daemon).await;
    let run = dir.run(&["run", "mailing"]).await;
    assert!(run.stdout.contains("sent 1, failed 1"), "{run:?}");
    assert!(
        run.stdout.contains("failed  2  550: permanent error (550)"),
        "{run:?}"
    );
    let mut received = String::new();
    for _ in 0..100 {
        received = daily::sandbox_messages(&url).await;
        if received.contains("[switchboard] records_failed: mailing") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        received.contains(r#""subject":"Hello Olena""#)
            && received.contains(r#""to":["olena@example.com"]"#),
        "{received}"
    );
    assert!(
        received.contains(r#""subject":"[switchboard] records_failed: mailing""#)
            && received.contains("1 of 2 records failed in run 1 of mailing (first: 2: 550"),
        "{received}"
    );
    assert!(!run.stdout.contains("app-password") && !received.contains("app-password"));
}

/// `--max-runs 1`: a flow due while the one slot is taken waits, and `status` says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_run_slot_taken_a_flow_waits_and_status_says_why() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"umid": "u", "status": {"code": "QUEUED"}}))
                .set_delay(std::time::Duration::from_secs(2)),
        )
        .mount(&server)
        .await;
    let dir = Dir::new(&server.uri());
    dir.write("flows/urgent.yaml", &format!("{FLOW}priority: high\n"));
    let daemon = spawn_daemon_with(&dir, &["--max-runs", "1"]);
    let api = api_of(&dir, &daemon).await;
    let http = reqwest::Client::new();
    let first = tokio::spawn(http.post(format!("{api}/api/flows/order-sms/run")).send());
    let flows = || async {
        reqwest::get(format!("{api}/api/flows"))
            .await
            .expect("the GET is answered")
            .json::<Value>()
            .await
            .unwrap_or_default()
    };
    for _ in 0..100 {
        if flows().await["flows"][0]["running"] == true {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let second = tokio::spawn(http.post(format!("{api}/api/flows/urgent/run")).send());
    let mut status = dir.run(&["status"]).await;
    for _ in 0..50 {
        if status.stdout.contains("urgent: ") && status.stdout.contains("waiting since") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        status = dir.run(&["status"]).await;
    }
    assert!(
        status
            .stdout
            .contains("every run slot is taken (`--max-runs`); higher `priority` goes first"),
        "{status:?}"
    );
    let listed = flows().await;
    let urgent = listed["flows"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["name"] == "urgent")
        .cloned()
        .unwrap_or_default();
    assert_eq!(urgent["priority"], "high", "{listed}");
    // Both runs end, one after the other.
    assert!(first.await.is_ok() && second.await.is_ok());
    let runs = flows().await;
    assert!(
        runs["flows"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|f| f["last_run"]["status"] == "succeeded"),
        "{runs}"
    );
}

/// A run that fails as a whole (its source cannot be read) alerts as `run_failed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_fails_as_a_whole_alerts_as_run_failed() {
    let server = mock_8x8().await;
    // Text Request's payments list answers 503: the source cannot be read.
    Mock::given(method("GET"))
        .and(path("/dashboards/121/payments"))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({"message": "maintenance"})))
        .mount(&server)
        .await;
    let dir = Dir::new(&server.uri());
    slack_alert_flow(&server, &dir).await;
    dir.append(
        "flows/accounts.yaml",
        &format!(
            "tr:\n  connector: textrequest\n  api_key: tr-key-0123\n  base_url: {}\n",
            server.uri()
        ),
    );
    dir.write(
        "flows/paid.yaml",
        "source: {connector: textrequest, account: tr, dashboard_id: 121, reads: payments, backlog: send}\nreceiver: {connector: 8x8, action: send_sms, account: shop-8x8}\nmap:\n  destination: \"{{customer_phone}}\"\n  text: \"Thank you\"\n",
    );
    dir.write(
        "flows/switchboard.yaml",
        "alerts: {to: to-slack, on: [run_failed]}\n",
    );
    let daemon = spawn_daemon(&dir);
    api_of(&dir, &daemon).await;
    assert_eq!(dir.run(&["run", "paid"]).await.code, 1);
    let text = first_alert(&server, 100).await;
    assert!(
        text.contains("run_failed: run 1 of paid failed: source: "),
        "{text}"
    );
}
