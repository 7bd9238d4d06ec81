//! The real daemon, end to end: a 6-field cron flow every 2 seconds and an `after` flow
//! chained to it against a local mock 8x8; file edits, a broken file, a force-run
//! through `switchboard run`, and SIGTERM.

use std::time::Duration;

use serde_json::Value;

use super::*;

const TICK: &str = r#"timezone: Europe/Kyiv
source: {connector: csv, path: orders.csv, key: order_id, backlog: send}
receiver: {connector: 8x8, action: send_sms, account: shop-8x8}
map:
  destination: "{{phone}}"
  text: "Hi {{name}}"
schedule:
  cron: "*/2 * * * * *"
"#;

const FOLLOW: &str = r#"source: {connector: csv, path: orders.csv, key: order_id, backlog: send}
receiver: {connector: 8x8, action: send_sms, account: shop-8x8}
map:
  destination: "{{phone}}"
  text: "Follow-up for {{name}}"
schedule:
  after: tick
"#;

async fn eventually<T>(what: &str, seconds: u64, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn get(url: &str) -> Option<Value> {
    reqwest::get(url).await.ok()?.json().await.ok()
}

async fn runs(api: &str, flow: &str) -> Vec<Value> {
    get(&format!("{api}/api/flows/{flow}/runs?limit=100"))
        .await
        .and_then(|v| v["runs"].as_array().cloned())
        .unwrap_or_default()
}

async fn text_sent_for(server: &MockServer, client_id: &str) -> Option<String> {
    bodies(server)
        .await
        .iter()
        .find(|b| b["clientMessageId"] == client_id)
        .and_then(|b| b["text"].as_str().map(String::from))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_runs_chained_flows_reloads_keeps_last_good_and_stops_cleanly() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    std::fs::remove_file(dir.path().join("flows/order-sms.yaml"))
        .expect("the test removes the file");
    dir.write("flows/tick.yaml", TICK);
    dir.write("flows/follow.yaml", FOLLOW);

    let log =
        std::fs::File::create(dir.path().join("daemon.log")).expect("the test creates its file");
    let mut daemon = Child(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["-v", "daemon", "--listen", "127.0.0.1:0"])
            .current_dir(dir.path())
            .env("EIGHTX8_API_KEY", API_KEY)
            .env_remove("SWITCHBOARD_TOKEN")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("the binary starts"),
    );
    let discovery = dir.path().join("flows/.switchboard/daemon.json");
    let api = eventually("the daemon's discovery file", 15, async || {
        let text = std::fs::read_to_string(&discovery).ok()?;
        let json: Value = serde_json::from_str(&text).ok()?;
        json["url"].as_str().map(String::from)
    })
    .await;

    // Both run, in order: the follower starts after its leader's run has finished.
    let (tick_runs, follow_runs) =
        eventually("tick to run twice and follow once", 20, async || {
            let (t, f) = (runs(&api, "tick").await, runs(&api, "follow").await);
            (t.len() >= 2 && !f.is_empty()).then_some((t, f))
        })
        .await;
    let first_tick = &tick_runs[tick_runs.len() - 1];
    let first_follow = &follow_runs[follow_runs.len() - 1];
    assert_eq!(first_tick["trigger"], "schedule");
    assert_eq!(first_follow["trigger"], "after");
    let tick_end = first_tick["finished_at"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let follow_start = first_follow["started_at"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        follow_start >= tick_end,
        "follow started {follow_start}, before tick finished {tick_end}"
    );
    assert_eq!(
        text_sent_for(&server, "tick:A-1").await.as_deref(),
        Some("Hi Olena")
    );
    assert_eq!(
        text_sent_for(&server, "follow:A-1").await.as_deref(),
        Some("Follow-up for Olena")
    );

    // An edited file takes effect.
    dir.write(
        "flows/follow.yaml",
        &FOLLOW.replace("Follow-up for", "Changed for"),
    );
    eventually("the edit to be loaded", 10, async || {
        let flows = get(&format!("{api}/api/flows")).await?;
        let follow = flows["flows"]
            .as_array()?
            .iter()
            .find(|f| f["name"] == "follow")?
            .clone();
        // the reload re-sent the flow to the scheduler; wait a beat past the debounce
        (follow["error"].is_null()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    dir.append("flows/orders.csv", "A-4,Ivan,+380671112233\n");
    let changed = eventually(
        "the edited follow flow to send the new row",
        20,
        async || text_sent_for(&server, "follow:A-4").await,
    )
    .await;
    assert_eq!(changed, "Changed for Ivan");

    // A broken file keeps its last good version running, and says why.
    let before = runs(&api, "tick").await.len();
    dir.write("flows/tick.yaml", "source: [\n");
    let error = eventually("the broken file to be reported", 10, async || {
        let flows = get(&format!("{api}/api/flows")).await?;
        let tick = flows["flows"]
            .as_array()?
            .iter()
            .find(|f| f["name"] == "tick")?
            .clone();
        tick["error"][0].as_str().map(String::from)
    })
    .await;
    assert!(error.contains("tick.yaml:2:1: invalid YAML"), "{error}");
    eventually(
        "tick to keep running its last good version",
        15,
        async || (runs(&api, "tick").await.len() >= before + 2).then_some(()),
    )
    .await;

    // Force-run through the CLI while the daemon holds the state: same output as in-process.
    let forced = dir.run(&["run", "follow"]).await;
    assert_eq!(forced.code, 0, "{forced:?}");
    assert!(forced.stdout.starts_with("follow run "), "{forced:?}");
    assert!(
        forced
            .stdout
            .contains(": fetched 4, new 0, sent 0, failed 0, skipped 0 (succeeded"),
        "{forced:?}"
    );
    let history = dir.run(&["history", "follow"]).await;
    assert!(
        history.stdout.lines().count() >= 2 && history.stdout.contains("  manual"),
        "{history:?}"
    );
    let api_flows = reqwest::get(format!("{api}/api/flows"))
        .await
        .expect("the GET is answered")
        .text()
        .await
        .unwrap_or_default();
    let status = dir.run(&["status"]).await;
    assert!(
        status.stdout.contains("tick: cron */2 * * * * *"),
        "{status:?}"
    );
    assert!(
        status.stdout.contains("follow: after tick on success"),
        "{status:?}"
    );
    assert!(status.stdout.contains("error: "), "{status:?}");
    let metrics = reqwest::get(format!("{api}/metrics"))
        .await
        .expect("the GET is answered")
        .text()
        .await
        .unwrap_or_default();
    assert!(
        metrics.contains("switchboard_runs_total{flow=\"tick\",status=\"succeeded\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("switchboard_records_total{flow=\"follow\",outcome=\"sent\"} 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("switchboard_next_run_timestamp_seconds{flow=\"tick\"}"),
        "{metrics}"
    );

    // SIGTERM: a clean stop with exit code 0, and the discovery file is gone.
    let pid = daemon.0.id().unwrap_or_default().to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await;
    assert!(killed.map(|s| s.success()).unwrap_or(false));
    let exit = tokio::time::timeout(Duration::from_secs(40), daemon.0.wait()).await;
    let code = exit.ok().and_then(|r| r.ok()).and_then(|s| s.code());
    let log = std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default();
    assert_eq!(code, Some(0), "daemon log:\n{log}");
    assert!(
        !discovery.exists(),
        "daemon.json is removed on a clean stop"
    );
    assert!(log.contains("switchboard daemon: stopped"), "{log}");
    assert!(
        !log.contains(API_KEY) && !api_flows.contains(API_KEY) && !metrics.contains(API_KEY),
        "the API key leaked"
    );
    // the state is free again for in-process commands
    let after = dir.run(&["history", "tick", "--limit", "1"]).await;
    assert_eq!(after.code, 0, "{after:?}");
}
