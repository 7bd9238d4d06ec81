//! The delivery promise under SIGKILL: a 5,000-row run against a slow mock is killed
//! mid-run; after a restart every row has reached the mock, repeats are no more than
//! the in-flight limit and each is marked in history — and with `resend_uncertain:
//! false` there are none at all.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use super::*;

pub(crate) const ROWS: usize = 5000;
pub(crate) const IN_FLIGHT: usize = 8;

pub(crate) fn bulk_flow(resend_uncertain: bool) -> String {
    format!(
        "resend_uncertain: {resend_uncertain}\nsource: {{connector: csv, path: bulk.csv, key: id, backlog: send}}\nreceiver: {{connector: 8x8, action: send_sms, account: shop-8x8}}\nmap:\n  destination: \"{{{{phone}}}}\"\n  text: \"Row {{{{id}}}}\"\ndelivery: {{concurrency: {IN_FLIGHT}, attempts: 1}}\n"
    )
}

pub(crate) async fn slow_mock() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .respond_with(|request: &Request| queued(request).set_delay(Duration::from_millis(4)))
        .mount(&server)
        .await;
    server
}

pub(crate) async fn received_counts(server: &MockServer) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for body in bodies(server).await {
        *counts
            .entry(
                body["clientMessageId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
            .or_default() += 1;
    }
    counts
}

/// Run the bulk flow in a daemon, SIGKILL it mid-run, restart it and run again.
/// Returns the mock and the history rows of the recovery run.
async fn kill_and_recover(resend_uncertain: bool) -> (MockServer, Vec<Value>, Dir) {
    kill_and_recover_with(resend_uncertain, &[]).await
}

/// [`kill_and_recover`] with more daemon options (`--state postgres://…`).
pub(crate) async fn kill_and_recover_with(
    resend_uncertain: bool,
    extra: &[&str],
) -> (MockServer, Vec<Value>, Dir) {
    let server = slow_mock().await;
    let dir = Dir::new(&server.uri());
    std::fs::remove_file(dir.path().join("flows/order-sms.yaml"))
        .expect("the test removes the file");
    let mut csv = String::from("id,phone\n");
    for i in 1..=ROWS {
        csv.push_str(&format!("R-{i},+38050{:07}\n", i));
    }
    dir.write("flows/bulk.csv", &csv);
    dir.write("flows/bulk.yaml", &bulk_flow(resend_uncertain));

    let mut first = spawn_daemon_with(&dir, extra);
    let api = api_of(&dir, &first).await;
    let run = tokio::spawn(
        reqwest::Client::new()
            .post(format!("{api}/api/flows/bulk/run"))
            .send(),
    );
    let mut waited = 0;
    while server
        .received_requests()
        .await
        .map(|r| r.len())
        .unwrap_or(0)
        < ROWS / 3
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
        assert!(waited < 3000, "the run did not get going");
    }
    first.0.start_kill().expect("the process is killed"); // SIGKILL
    let _ = first.0.wait().await;
    let _ = run.await;
    let at_kill = server
        .received_requests()
        .await
        .map(|r| r.len())
        .unwrap_or(0);
    assert!(at_kill < ROWS, "killed mid-run ({at_kill} of {ROWS} sent)");

    let mut second = spawn_daemon_with(&dir, extra);
    let api = api_of(&dir, &second).await;
    let answer = reqwest::Client::new()
        .post(format!("{api}/api/flows/bulk/run"))
        .send()
        .await
        .expect("the call is answered");
    // 422: the run ran and failed (rows parked as uncertain are failures to look at).
    let code = answer.status().as_u16();
    assert!(
        code == 200 || (code == 422 && !resend_uncertain),
        "HTTP {code}"
    );
    let report: Value = answer.json().await.expect("the answer is JSON");
    let id = report["run"]["id"].as_u64().unwrap_or_default();
    let rows: Value = reqwest::get(format!("{api}/api/flows/bulk/runs/{id}"))
        .await
        .expect("the GET is answered")
        .json()
        .await
        .expect("the answer is JSON");
    let interrupted: Value = reqwest::get(format!("{api}/api/flows/bulk/runs/1"))
        .await
        .expect("the GET is answered")
        .json()
        .await
        .unwrap_or_default();
    assert_eq!(
        interrupted["run"]["status"], "interrupted",
        "the killed run is recorded as interrupted"
    );
    let _ = tokio::process::Command::new("kill")
        .args(["-TERM", &second.0.id().unwrap_or_default().to_string()])
        .status()
        .await;
    let _ = tokio::time::timeout(Duration::from_secs(40), second.0.wait()).await;
    (
        server,
        rows["rows"].as_array().cloned().unwrap_or_default(),
        dir,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_run_loses_nothing_and_repeats_only_in_flight_sends_marked_in_history() {
    let (server, rows, _dir) = kill_and_recover(true).await;
    assert_nothing_lost_and_repeats_marked(&server, &rows).await;
}

/// Every row arrived, no more of them twice than were in flight, none three times: how
/// many times each arrived.
pub(crate) async fn assert_every_row_arrived_repeats_bounded(
    server: &MockServer,
) -> HashMap<String, usize> {
    let counts = received_counts(server).await;
    for i in 1..=ROWS {
        assert!(
            counts.contains_key(&format!("bulk:R-{i}")),
            "row R-{i} never reached the receiver"
        );
    }
    let repeated = counts.values().filter(|n| **n > 1).count();
    assert!(
        repeated <= IN_FLIGHT,
        "{repeated} repeats, more than the {IN_FLIGHT} in flight"
    );
    assert!(
        counts.values().all(|n| *n <= 2),
        "nothing is sent three times"
    );
    counts
}

/// Every row arrived; no more repeats than were in flight, none three times, each one
/// marked in the recovery run's history.
pub(crate) async fn assert_nothing_lost_and_repeats_marked(server: &MockServer, rows: &[Value]) {
    let counts = assert_every_row_arrived_repeats_bounded(server).await;
    let repeated: Vec<&String> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k)
        .collect();
    let marked: Vec<String> = rows
        .iter()
        .filter(|r| r["repeat"] == true)
        .map(|r| format!("bulk:{}", r["key"].as_str().unwrap_or_default()))
        .collect();
    assert!(
        marked.len() <= IN_FLIGHT,
        "{} marked as repeats",
        marked.len()
    );
    eprintln!(
        "after SIGKILL: {} row(s) arrived twice, {} resent and marked as possible repeats",
        repeated.len(),
        marked.len()
    );
    for key in repeated {
        assert!(
            marked.contains(key),
            "{key} arrived twice but history does not say so"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_resend_uncertain_off_a_sigkill_causes_zero_repeats() {
    let (server, rows, dir) = kill_and_recover(false).await;
    let counts = received_counts(&server).await;
    assert!(counts.values().all(|n| *n == 1), "a row arrived twice");
    let parked: Vec<String> = rows
        .iter()
        .filter(|r| r["uncertain"] == true)
        .map(|r| format!("bulk:{}", r["key"].as_str().unwrap_or_default()))
        .collect();
    assert!(
        !parked.is_empty() && parked.len() <= IN_FLIGHT,
        "{} parked",
        parked.len()
    );
    eprintln!(
        "after SIGKILL with resend_uncertain: false: 0 repeats, {} row(s) parked as uncertain",
        parked.len()
    );
    for i in 1..=ROWS {
        let key = format!("bulk:R-{i}");
        assert!(
            counts.contains_key(&key) || parked.contains(&key),
            "{key} neither arrived nor is parked for a person"
        );
    }
    // A person replays the parked rows that did not arrive (here: all parked ones).
    let replay = dir.run(&["replay", "bulk", "--uncertain"]).await;
    assert_eq!(replay.code, 0, "{replay:?}");
    assert!(
        replay.stdout.contains(&format!("sent {}", parked.len())),
        "{replay:?}"
    );
}
