//! `steps:` end to end: a three-step flow of 3,000 records is killed (SIGKILL) mid-run
//! and resumed — every step of every record reaches the service once, but for the
//! marked repeats of the steps that were sending; a replay after a failed step is fixed
//! sends from that step on; `validate` points at a reference to a later step.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use super::*;

const ROWS: usize = 3000;
const IN_FLIGHT: usize = 8;

/// Three texts per row through 8x8: `a`, then `b` naming `a`'s id, then `c`.
fn three_steps(rows_file: &str, concurrency: usize) -> String {
    format!(
        r#"source: {{connector: csv, path: {rows_file}, key: id, backlog: send}}
steps:
  - name: a
    action: {{connector: 8x8, action: send_sms, account: shop-8x8}}
    map: {{destination: "{{{{phone}}}}", text: "a {{{{id}}}}"}}
  - name: b
    action: {{connector: 8x8, action: send_sms, account: shop-8x8}}
    map: {{destination: "{{{{phone}}}}", text: "b {{{{id}}}} after {{{{steps.a.id}}}}"}}
  - name: c
    action: {{connector: 8x8, action: send_sms, account: shop-8x8}}
    map: {{destination: "{{{{phone}}}}", text: "c {{{{id}}}}"}}
delivery: {{concurrency: {concurrency}, attempts: 1}}
"#
    )
}

/// How many times each (row, step) reached the mock: `R-7 b` → 1.
async fn step_counts(server: &MockServer) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for body in bodies(server).await {
        let text = body["text"].as_str().unwrap_or_default();
        let mut words = text.split(' ');
        let (step, row) = (
            words.next().unwrap_or_default(),
            words.next().unwrap_or_default(),
        );
        *counts.entry(format!("{row} {step}")).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_three_step_run_does_each_step_once_but_marked_in_flight_repeats() {
    let server = crate::crash::slow_mock().await;
    let dir = Dir::new(&server.uri());
    std::fs::remove_file(dir.path().join("flows/order-sms.yaml")).expect("the test removes it");
    let mut csv = String::from("id,phone\n");
    for i in 1..=ROWS {
        csv.push_str(&format!("R-{i},+38050{i:07}\n"));
    }
    dir.write("flows/bulk.csv", &csv);
    dir.write("flows/bulk.yaml", &three_steps("bulk.csv", IN_FLIGHT));

    let mut first = spawn_daemon(&dir);
    let api = api_of(&dir, &first).await;
    let run = tokio::spawn(
        reqwest::Client::new()
            .post(format!("{api}/api/flows/bulk/run"))
            .send(),
    );
    let mut waited = 0;
    while server.received_requests().await.map_or(0, |r| r.len()) < ROWS {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
        assert!(waited < 3000, "the run did not get going");
    }
    first.0.start_kill().expect("the process is killed"); // SIGKILL
    let _ = first.0.wait().await;
    let _ = run.await;
    let at_kill = server.received_requests().await.map_or(0, |r| r.len());
    assert!(
        at_kill < 3 * ROWS,
        "killed mid-run ({at_kill} of {} sent)",
        3 * ROWS
    );

    let mut second = spawn_daemon(&dir);
    let api = api_of(&dir, &second).await;
    let answer = reqwest::Client::new()
        .post(format!("{api}/api/flows/bulk/run"))
        .send()
        .await
        .expect("the call is answered");
    assert_eq!(answer.status().as_u16(), 200);
    let report: Value = answer.json().await.expect("the answer is JSON");
    let id = report["run"]["id"].as_u64().unwrap_or_default();
    let rows: Value = reqwest::get(format!("{api}/api/flows/bulk/runs/{id}"))
        .await
        .expect("the GET is answered")
        .json()
        .await
        .expect("the answer is JSON");
    let _ = tokio::process::Command::new("kill")
        .args(["-TERM", &second.0.id().unwrap_or_default().to_string()])
        .status()
        .await;
    let _ = tokio::time::timeout(Duration::from_secs(40), second.0.wait()).await;

    let counts = step_counts(&server).await;
    for i in 1..=ROWS {
        for step in ["a", "b", "c"] {
            assert!(
                counts.contains_key(&format!("R-{i} {step}")),
                "step {step} of R-{i} never reached the service"
            );
        }
    }
    let repeated: Vec<&String> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k)
        .collect();
    assert!(
        repeated.len() <= IN_FLIGHT,
        "{} step sends repeated, more than the {IN_FLIGHT} in flight",
        repeated.len()
    );
    assert!(
        counts.values().all(|n| *n <= 2),
        "a step was sent three times"
    );
    // Each repeat is marked on its step in the recovery run's history.
    let marked: Vec<String> = rows["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| {
            let key = row["key"].as_str().unwrap_or_default().to_string();
            row["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|s| s["repeat"] == true)
                .map(move |s| format!("{key} {}", s["step"].as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(marked.len() <= IN_FLIGHT, "{} marked", marked.len());
    for key in &repeated {
        assert!(
            marked.contains(key),
            "{key} arrived twice but history does not say so"
        );
    }
    // A resumed record's later step still names what its earlier step was answered.
    let bodies = bodies(&server).await;
    assert!(bodies
        .iter()
        .any(|b| b["text"] == "b R-2999 after umid-bulk:R-2999"));
    eprintln!(
        "after SIGKILL mid three-step run: killed at {at_kill} of {} step sends; {} repeated, {} marked",
        3 * ROWS,
        repeated.len(),
        marked.len()
    );
}

#[tokio::test]
async fn replay_after_a_failed_step_is_fixed_sends_from_that_step_on() {
    let server = MockServer::start().await;
    // Step b is refused (a permanent 400) until the service is fixed.
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .and(wiremock::matchers::body_string_contains("\"text\":\"b "))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "code": 1002, "message": "Invalid MSISDN format", "errorId": "e1", "timestamp": "2026-11-21T10:00:00Z"
        })))
        .up_to_n_times(3)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .respond_with(queued)
        .with_priority(2)
        .mount(&server)
        .await;
    let dir = Dir::new(&server.uri());
    std::fs::remove_file(dir.path().join("flows/order-sms.yaml")).expect("the test removes it");
    dir.write(
        "flows/few.csv",
        "id,phone\nR-1,+380501000001\nR-2,+380501000002\nR-3,+380501000003\n",
    );
    dir.write("flows/few.yaml", &three_steps("few.csv", 2));

    let run = dir.run(&["run", "few"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("step `b` (8x8 send_sms): 1002: Invalid MSISDN format"),
        "{run:?}"
    );
    let before = step_counts(&server).await;
    assert_eq!(before.len(), 6, "a and b of each row: {before:?}");

    let history = dir.run(&["history", "few", "--run", "1"]).await;
    assert!(
        history.stdout.contains("step a sent  id umid-few:R-1"),
        "{history:?}"
    );
    assert!(
        history
            .stdout
            .contains("step b failed  1002: Invalid MSISDN format"),
        "{history:?}"
    );

    // Fixed: the replay sends b and c, never a again.
    let replay = dir.run(&["replay", "few"]).await;
    assert_eq!(replay.code, 0, "{replay:?}");
    let after = step_counts(&server).await;
    for i in 1..=3 {
        assert_eq!(after[&format!("R-{i} a")], 1, "a of R-{i} was sent again");
        assert_eq!(
            after[&format!("R-{i} b")],
            2,
            "b of R-{i}: refused, then replayed"
        );
        assert_eq!(after[&format!("R-{i} c")], 1, "c of R-{i}");
    }
    // And b names the id a was given in the first run.
    assert!(bodies(&server)
        .await
        .iter()
        .any(|b| b["text"] == "b R-1 after umid-few:R-1"));
    // Nothing more to do: a run sends nothing.
    let again = dir.run(&["run", "few"]).await;
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(step_counts(&server).await, after);
}

#[tokio::test]
async fn validate_points_at_a_step_that_reads_a_later_or_unknown_step() {
    let dir = Dir::new("http://127.0.0.1:9");
    dir.write(
        "flows/order-sms.yaml",
        r#"source: {connector: csv, path: orders.csv, key: order_id}
steps:
  - name: first
    action: {connector: 8x8, action: send_sms, account: shop-8x8}
    map: {destination: "{{phone}}", text: "after {{steps.second.id}}"}
  - name: second
    when: {field: steps.frist.id, not_empty: true}
    action: {connector: 8x8, action: send_sms, account: shop-8x8}
    map: {destination: "{{phone}}", text: "{{steps.first.body}}"}
"#,
    );
    let run = dir.run(&["validate"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    for expected in [
        "order-sms.yaml:5:37: step `first` reads `steps.second`, which runs after it",
        "order-sms.yaml:7:19: step `second` names a step `frist` the flow does not have",
        "did you mean `first`?",
        "order-sms.yaml:9:37: `steps.first.body`: an action step answers `id`, `status` only",
    ] {
        assert!(
            run.stdout.contains(expected),
            "missing `{expected}`:\n{run:?}"
        );
    }
}

#[tokio::test]
async fn test_previews_each_step_and_send_sends_the_whole_chain_for_one_record() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .respond_with(queued)
        .mount(&server)
        .await;
    let dir = Dir::new(&server.uri());
    std::fs::remove_file(dir.path().join("flows/order-sms.yaml")).expect("the test removes it");
    dir.write(
        "flows/few.csv",
        "id,phone\nR-1,+380501000001\nR-2,+380501000002\n",
    );
    dir.write("flows/few.yaml", &three_steps("few.csv", 2));

    let preview = dir.run(&["test", "few"]).await;
    assert_eq!(preview.code, 0, "{preview:?}");
    assert!(
        preview.stdout.contains("step a: would send POST"),
        "{preview:?}"
    );
    assert!(
        preview
            .stdout
            .contains(r#""text": "b R-1 after [the id step `a` gets]""#),
        "{preview:?}"
    );
    assert!(bodies(&server).await.is_empty(), "a preview sends nothing");

    let send = dir.run(&["test", "few", "--send"]).await;
    assert_eq!(send.code, 0, "{send:?}");
    assert!(
        send.stdout.contains("step c sent  id umid-few:R-1"),
        "{send:?}"
    );
    let texts: Vec<String> = bodies(&server)
        .await
        .iter()
        .map(|b| b["text"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(texts, ["a R-1", "b R-1 after umid-few:R-1", "c R-1"]);

    // The run sends the other record only.
    let run = dir.run(&["run", "few"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let counts = step_counts(&server).await;
    assert_eq!(counts.len(), 6, "{counts:?}");
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_a_flows_steps_and_each_records_steps() {
    use crate::console::{browser, get};
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .respond_with(queued)
        .mount(&server)
        .await;
    let dir = Dir::new(&server.uri());
    std::fs::remove_file(dir.path().join("flows/order-sms.yaml")).expect("the test removes it");
    dir.write("flows/few.csv", "id,phone\nR-1,+380501000001\n");
    dir.write("flows/few.yaml", &three_steps("few.csv", 2));
    let daemon = spawn_daemon(&dir);
    let api = api_of(&dir, &daemon).await;
    let ran: Value = reqwest::Client::new()
        .post(format!("{api}/api/flows/few/run"))
        .send()
        .await
        .expect("the call is answered")
        .json()
        .await
        .expect("the answer is JSON");
    assert_eq!(ran["run"]["counts"]["sent"], 1, "{ran}");
    let client = browser();

    let (_, flow_page) = get(&client, &format!("{api}/flows/few")).await;
    assert!(
        flow_page.contains("csv → a → b → c, in 3 steps"),
        "{flow_page}"
    );
    assert!(
        flow_page.contains("<code>b {{id}} after {{steps.a.id}}</code>"),
        "each step's map: {flow_page}"
    );

    let (_, run_page) = get(&client, &format!("{api}/flows/few/runs/1")).await;
    let steps = run_page
        .split("data-test=\"steps\"")
        .nth(1)
        .and_then(|rest| rest.split("</ol>").next())
        .unwrap_or_default();
    for expected in ["<b>a</b>", "<b>b</b>", "<b>c</b>", "umid-few:R-1"] {
        assert!(steps.contains(expected), "missing {expected}: {steps}");
    }
    assert_eq!(steps.matches("badge sent").count(), 3, "{steps}");
    assert!(run_page.contains("step b, as sent:"), "each step's request");

    let api_rows: Value = reqwest::get(format!("{api}/api/flows/few/runs/1"))
        .await
        .expect("the GET is answered")
        .json()
        .await
        .expect("the answer is JSON");
    assert_eq!(
        api_rows["rows"][0]["steps"][1]["answer"]["id"],
        "umid-few:R-1"
    );

    // Each step's sends are a series of their own.
    let metrics = reqwest::get(format!("{api}/metrics"))
        .await
        .expect("the GET is answered")
        .text()
        .await
        .unwrap_or_default();
    for step in ["a", "b", "c"] {
        let line = format!(
            "switchboard_send_duration_seconds_count{{flow=\"few\",receiver=\"8x8 send_sms\",step=\"{step}\"}} 1"
        );
        assert!(metrics.contains(&line), "{line}:\n{metrics}");
    }
}
