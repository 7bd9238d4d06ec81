//! The promise under hostile use of the running daemon and of `switchboard run`: a flow
//! file removed and restored mid-run, events acknowledged before a restart, repeated and
//! look-alike events, oversize and trickling requests, idle connections by the hundred,
//! and runs stopped by a signal or killed outright.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::*;

/// `switchboard daemon` with extra arguments, its log in `daemon.log`.
fn daemon_with(dir: &Dir, extra: &[&str]) -> Child {
    let log =
        std::fs::File::create(dir.path().join("daemon.log")).expect("the test creates its file");
    Child(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["daemon", "--listen", "127.0.0.1:0"])
            .args(extra)
            .current_dir(dir.path())
            .env("EIGHTX8_API_KEY", API_KEY)
            .env_remove("SWITCHBOARD_TOKEN")
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("the binary starts"),
    )
}

fn daemon_log(dir: &Dir) -> String {
    std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default()
}

/// A mock 8x8 answering after `delay`.
async fn slow_8x8(delay: Duration) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .respond_with(move |request: &Request| queued(request).set_delay(delay))
        .mount(&server)
        .await;
    server
}

/// How many times each clientMessageId reached the mock.
async fn received(server: &MockServer) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for body in bodies(server).await {
        let id = body["clientMessageId"].as_str().unwrap_or_default();
        *counts.entry(id.to_string()).or_default() += 1;
    }
    counts
}

async fn wait_for_requests(server: &MockServer, at_least: usize) {
    for _ in 0..1500 {
        if server
            .received_requests()
            .await
            .map(|r| r.len())
            .unwrap_or(0)
            >= at_least
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the mock never got {at_least} requests");
}

fn bulk(dir: &Dir, rows: usize, concurrency: usize) {
    std::fs::remove_file(dir.path().join("flows/order-sms.yaml"))
        .expect("the test removes the file");
    let mut csv = String::from("id,phone\n");
    for i in 1..=rows {
        csv.push_str(&format!("R-{i},+38050{i:07}\n"));
    }
    dir.write("flows/bulk.csv", &csv);
    dir.write(
        "flows/bulk.yaml",
        &format!("source: {{connector: csv, path: bulk.csv, key: id, backlog: send}}\nreceiver: {{connector: 8x8, action: send_sms, account: shop-8x8}}\nmap:\n  destination: \"{{{{phone}}}}\"\n  text: \"Row {{{{id}}}}\"\ndelivery: {{concurrency: {concurrency}, attempts: 1}}\n"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_file_removed_and_restored_mid_run_never_runs_twice_at_once() {
    let server = slow_8x8(Duration::from_millis(5)).await;
    let dir = Dir::new(&server.uri());
    bulk(&dir, 600, 4);
    let daemon = daemon_with(&dir, &[]);
    let api = api_of(&dir, &daemon).await;
    let http = reqwest::Client::new();
    let first = tokio::spawn(http.post(format!("{api}/api/flows/bulk/run")).send());
    wait_for_requests(&server, 50).await;
    // `git checkout`, `rsync --delete`: the file goes and comes back while the flow runs.
    let text = std::fs::read_to_string(dir.path().join("flows/bulk.yaml")).unwrap_or_default();
    std::fs::remove_file(dir.path().join("flows/bulk.yaml")).expect("the test removes the file");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    dir.write("flows/bulk.yaml", &text);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second = http
        .post(format!("{api}/api/flows/bulk/run"))
        .send()
        .await
        .expect("the call is answered");
    let first: Value = first
        .await
        .expect("it succeeds")
        .expect("it succeeds")
        .json()
        .await
        .unwrap_or_default();
    assert_eq!(
        first["run"]["counts"]["sent"], 600,
        "the first caller hears of the run it started: {first}"
    );
    let second: Value = second.json().await.unwrap_or_default();
    assert_eq!(second["run"]["counts"]["new"], 0, "{second}");
    let counts = received(&server).await;
    assert_eq!(counts.len(), 600);
    let twice: Vec<&String> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k)
        .collect();
    assert!(twice.is_empty(), "sent twice: {twice:?}");
}

fn webhook_flow(dir: &Dir, key: &str) {
    std::fs::remove_file(dir.path().join("flows/order-sms.yaml"))
        .expect("the test removes the file");
    dir.write(
        "flows/signup.yaml",
        &format!("source: {{connector: webhook, key: {key}}}\nreceiver: {{connector: 8x8, action: send_sms, account: shop-8x8}}\nmap:\n  destination: \"{{{{phone}}}}\"\n  text: \"Welcome {{{{name}}}}\"\ndelivery: {{attempts: 1}}\n"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_acknowledged_before_a_crash_are_sent_at_start_up_without_a_new_event() {
    let server = slow_8x8(Duration::from_secs(3)).await;
    let dir = Dir::new(&server.uri());
    webhook_flow(&dir, "id");
    let mut daemon = daemon_with(&dir, &[]);
    let api = api_of(&dir, &daemon).await;
    let http = reqwest::Client::new();
    for i in 1..=5 {
        let ok = http
            .post(format!("{api}/hooks/signup"))
            .json(&json!([{"id": format!("e-{i}a"), "phone": "+380501234567", "name": "A"}, {"id": format!("e-{i}b"), "phone": "+380501234567", "name": "B"}]))
            .send()
            .await
            .expect("the call is answered");
        assert_eq!(ok.status().as_u16(), 200);
    }
    wait_for_requests(&server, 1).await;
    daemon.0.start_kill().expect("the process is killed");
    let _ = daemon.0.wait().await;
    let second = daemon_with(&dir, &[]);
    let _api = api_of(&dir, &second).await;
    // No new event arrives: the queue is drained at start-up all the same.
    for _ in 0..300 {
        if received(&server).await.len() == 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let counts = received(&server).await;
    assert_eq!(
        counts.len(),
        10,
        "every acknowledged event was sent: {counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_and_look_alike_events_are_told_apart_and_each_repeat_is_in_history() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    webhook_flow(&dir, "[a, b]");
    let daemon = daemon_with(&dir, &[]);
    let api = api_of(&dir, &daemon).await;
    let http = reqwest::Client::new();
    let post = |body: Value| http.post(format!("{api}/hooks/signup")).json(&body).send();
    let keys = |v: Value| v["keys"].clone();
    let one = post(json!({"a": "x/y", "b": "z", "phone": "+380501234567", "name": "One"}))
        .await
        .expect("the POST is answered");
    let one = keys(one.json().await.unwrap_or_default());
    let two = post(json!({"a": "x", "b": "y/z", "phone": "+380501234567", "name": "Two"}))
        .await
        .expect("the POST is answered");
    let two = keys(two.json().await.unwrap_or_default());
    assert_ne!(one, two, "the parts of a key are encoded, not joined");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The first event again: acknowledged, not sent, and recorded as a duplicate.
    let again = post(json!({"a": "x/y", "b": "z", "phone": "+380501234567", "name": "One"}))
        .await
        .expect("the POST is answered");
    assert_eq!(again.status().as_u16(), 200);
    let mut history = Vec::new();
    for _ in 0..100 {
        history = reqwest::get(format!("{api}/api/flows/signup/runs?limit=10"))
            .await
            .expect("the GET is answered")
            .json::<Value>()
            .await
            .unwrap_or_default()["runs"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if history.iter().any(|r| r["counts"]["skipped"] == 1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let texts: Vec<String> = bodies(&server)
        .await
        .iter()
        .map(|b| b["text"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(texts.len(), 2, "two events, two messages: {texts:?}");
    let skipped = history
        .iter()
        .find(|r| r["counts"]["skipped"] == 1)
        .unwrap_or_else(|| panic!("no run recorded the repeat: {history:?}"));
    assert_eq!(skipped["trigger"], "event");
    let id = skipped["id"].as_u64().unwrap_or_default();
    let rows: Value = reqwest::get(format!("{api}/api/flows/signup/runs/{id}"))
        .await
        .expect("the GET is answered")
        .json()
        .await
        .unwrap_or_default();
    assert!(
        rows["rows"][0]["reason"]
            .as_str()
            .unwrap_or_default()
            .starts_with("duplicate: an event with this key was handled in run"),
        "{rows}"
    );
}

/// A page on a name that rebinds to 127.0.0.1 is same-origin with the daemon in a
/// browser: the daemon answers only its addresses, `localhost` and names given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_rebinds_to_the_daemon_is_refused() {
    let dir = Dir::new("http://127.0.0.1:9");
    let daemon = daemon_with(&dir, &[]);
    let api = api_of(&dir, &daemon).await;
    let port = api.rsplit(':').next().unwrap_or_default().to_string();
    let client = reqwest::Client::new();
    let ask = |method: reqwest::Method, path: &str, host: String| {
        client
            .request(method, format!("{api}{path}"))
            .header("host", host)
            .send()
    };
    let evil = format!("rebind.evil.example:{port}");
    // Reading the records, the console, and switching a flow off are all refused.
    for (method, path) in [
        (reqwest::Method::GET, "/api/flows"),
        (reqwest::Method::GET, "/api/flows/order-sms/runs"),
        (reqwest::Method::GET, "/"),
        (reqwest::Method::POST, "/flows/order-sms/enabled"),
        (reqwest::Method::POST, "/api/flows/order-sms/run"),
    ] {
        let answer = ask(method.clone(), path, evil.clone())
            .await
            .expect("the daemon answers");
        assert_eq!(answer.status().as_u16(), 421, "{method} {path}");
        let body = answer.text().await.unwrap_or_default();
        assert!(body.contains("--allow-host"), "{body}");
    }
    // Its addresses and localhost are answered; a webhook answers any name (its own
    // secret decides; this flow takes none, so it is not found).
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        let answer = ask(reqwest::Method::GET, "/api/flows", host.clone())
            .await
            .expect("the daemon answers");
        assert_eq!(answer.status().as_u16(), 200, "{host}");
    }
    let hook = ask(reqwest::Method::POST, "/hooks/order-sms", evil.clone())
        .await
        .expect("the daemon answers");
    assert_ne!(hook.status().as_u16(), 421);
    drop(daemon);

    // A name given with --allow-host is answered.
    let dir = Dir::new("http://127.0.0.1:9");
    let daemon = daemon_with(&dir, &["--allow-host", "rebind.evil.example"]);
    let api = api_of(&dir, &daemon).await;
    let port = api.rsplit(':').next().unwrap_or_default().to_string();
    let answer = reqwest::Client::new()
        .get(format!("{api}/api/flows"))
        .header("host", format!("rebind.evil.example:{port}"))
        .send()
        .await
        .expect("the daemon answers");
    assert_eq!(answer.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_door_reads_no_more_than_it_must_and_nobody_can_hold_it() {
    let dir = Dir::new("http://127.0.0.1:9");
    std::fs::remove_file(dir.path().join("flows/order-sms.yaml"))
        .expect("the test removes the file");
    dir.write(
        "flows/accounts.yaml",
        "shop-8x8:\n  connector: 8x8\n  subaccount_id: shop_main\n  api_key: ${EIGHTX8_API_KEY}\n  base_url: http://127.0.0.1:9\nhook:\n  connector: webhook\n  secret: hook-secret-0123456789abcdef\n",
    );
    dir.private("flows/accounts.yaml");
    dir.write(
        "flows/guarded.yaml",
        "source: {connector: webhook, account: hook, key: id, max_body: 1000}\nreceiver: {connector: 8x8, action: send_sms, account: shop-8x8}\nmap:\n  destination: \"{{phone}}\"\n  text: \"Hi\"\n",
    );
    let daemon = daemon_with(
        &dir,
        &[
            "--max-connections",
            "20",
            "--header-timeout",
            "1s",
            "--body-timeout",
            "1s",
        ],
    );
    let api = api_of(&dir, &daemon).await;
    let addr = api.trim_start_matches("http://").to_string();

    // A raw request: its status line, or "" when the connection was closed.
    async fn raw(addr: &str, head: &str, body: &[u8], then_wait: Duration) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .expect("it connects");
        let _ = stream.write_all(head.as_bytes()).await;
        let _ = stream.write_all(body).await;
        let mut answer = Vec::new();
        let read = async {
            use tokio::io::AsyncReadExt;
            let mut buf = [0u8; 1024];
            while let Ok(n) = stream.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                answer.extend_from_slice(&buf[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(then_wait, read).await;
        String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    }

    // An oversize body is refused on its declared length, before a byte is read …
    let started = std::time::Instant::now();
    let status = raw(
        &addr,
        "POST /hooks/guarded HTTP/1.1\r\nhost: x\r\nauthorization: Bearer hook-secret-0123456789abcdef\r\ncontent-type: application/json\r\ncontent-length: 60000000\r\n\r\n",
        b"",
        Duration::from_secs(5),
    )
    .await;
    assert!(status.contains(" 413 "), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "answered without waiting for the body"
    );
    // … and a sender without the secret is refused before its body is read.
    let status = raw(
        &addr,
        "POST /hooks/guarded HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n",
        b"",
        Duration::from_secs(5),
    )
    .await;
    assert!(status.contains(" 401 "), "{status}");
    // A chunked body that grows past the limit is cut off at the limit.
    let mut chunked = Vec::new();
    for _ in 0..10 {
        chunked.extend_from_slice(format!("{:x}\r\n{}\r\n", 500, "x".repeat(500)).as_bytes());
    }
    let status = raw(
        &addr,
        "POST /hooks/guarded HTTP/1.1\r\nhost: x\r\nauthorization: Bearer hook-secret-0123456789abcdef\r\ntransfer-encoding: chunked\r\n\r\n",
        &chunked,
        Duration::from_secs(5),
    )
    .await;
    assert!(status.contains(" 413 "), "{status}");
    // A body that trickles is cut off at the body timeout …
    let status = raw(
        &addr,
        "POST /hooks/guarded HTTP/1.1\r\nhost: x\r\nauthorization: Bearer hook-secret-0123456789abcdef\r\ncontent-length: 100\r\n\r\n{\"id\":",
        b"",
        Duration::from_secs(5),
    )
    .await;
    assert!(status.contains(" 408 "), "{status}");
    // … and half-sent headers at the header timeout.
    let status = raw(
        &addr,
        "POST /hooks/guarded HTTP/1.1\r\nhost: x\r\n",
        b"",
        Duration::from_secs(5),
    )
    .await;
    assert!(!status.contains(" 200 "), "{status}");

    // Idle connections past the cap: the cap is logged, and once the idle ones are
    // dropped at the header timeout, the API answers again.
    let mut idle = Vec::new();
    for _ in 0..60 {
        if let Ok(stream) = tokio::net::TcpStream::connect(&addr).await {
            idle.push(stream);
        }
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let flows = reqwest::get(format!("{api}/api/flows"))
        .await
        .unwrap_or_else(|e| panic!("the API does not answer: {e}"));
    assert_eq!(flows.status().as_u16(), 200);
    let health = reqwest::get(format!("{api}/healthz"))
        .await
        .expect("the GET is answered");
    assert_eq!(health.text().await.unwrap_or_default(), "ok");
    drop(idle);
    assert!(
        daemon_log(&dir).contains("the connection cap is reached"),
        "{}",
        daemon_log(&dir)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_on_a_run_records_it_interrupted_with_the_counts_of_what_went_out() {
    let server = slow_8x8(Duration::from_millis(100)).await;
    let dir = Dir::new(&server.uri());
    bulk(&dir, 200, 2);
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["run", "bulk", "--json"])
        .current_dir(dir.path())
        .env("EIGHTX8_API_KEY", API_KEY)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    wait_for_requests(&server, 10).await;
    let _ = tokio::process::Command::new("kill")
        .args(["-INT", &child.id().unwrap_or_default().to_string()])
        .status()
        .await;
    let out = Run::from(
        child
            .wait_with_output()
            .await
            .expect("wait_with_output succeeds"),
    );
    assert_eq!(out.code, 130, "{out:?}");
    let report = out.json();
    assert_eq!(report["run"]["status"], "interrupted", "{out:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let went_out = server
        .received_requests()
        .await
        .map(|r| r.len())
        .unwrap_or(0) as u64;
    assert!(went_out < 200, "stopped early ({went_out} sent)");
    assert_eq!(
        report["run"]["counts"]["sent"].as_u64(),
        Some(went_out),
        "the summary counts what went out"
    );
    let history = dir.run(&["history", "bulk", "--json"]).await.json();
    assert_eq!(history[0]["status"], "interrupted");
    assert_eq!(history[0]["counts"]["sent"].as_u64(), Some(went_out));
    // The next run sends the rest, nothing twice.
    let rest = dir.run(&["run", "bulk"]).await;
    assert_eq!(rest.code, 0, "{rest:?}");
    let counts = received(&server).await;
    assert_eq!(counts.len(), 200);
    assert!(counts.values().all(|n| *n == 1), "nothing twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_outright_is_recorded_interrupted_by_the_next_one() {
    let server = slow_8x8(Duration::from_millis(50)).await;
    let dir = Dir::new(&server.uri());
    bulk(&dir, 200, 2);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["run", "bulk"])
        .current_dir(dir.path())
        .env("EIGHTX8_API_KEY", API_KEY)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    wait_for_requests(&server, 20).await;
    child.start_kill().expect("the process is killed");
    let _ = child.wait().await;
    let next = dir.run(&["run", "bulk"]).await;
    assert_eq!(next.code, 0, "{next:?}");
    let history = dir.run(&["history", "bulk", "--json"]).await.json();
    let first = &history[1];
    assert_eq!(first["status"], "interrupted", "{history}");
    assert!(
        first["counts"]["sent"].as_u64().unwrap_or_default() >= 1,
        "its counts come from its recorded rows: {history}"
    );
}

/// Every way a state database loses data, each refused instead of resending what was
/// sent: deleted, emptied, garbled, 8 KB of random bytes written inside it, truncated to
/// half, restored from an older copy, and its write-ahead log lost after a crash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_state_directory_is_refused_instead_of_resending_everything() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    // Enough rows for a database of many pages.
    let mut csv = String::from("order_id,name,phone\n");
    for i in 1..=300 {
        csv.push_str(&format!(
            "A-{i},Customer number {i} with a longer name,+38050{i:07}\n"
        ));
    }
    dir.write("flows/orders.csv", &csv);
    let first = dir.run(&["run", "order-sms"]).await;
    assert!(first.stdout.contains("sent 300"), "{first:?}");
    let state = dir.path().join("flows/.switchboard");
    let db = state.join("state.db");
    let older = dir.path().join("older.db");
    std::fs::copy(&db, &older).expect("the test copies the file");
    let random = |n: usize| -> Vec<u8> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    };
    for damage in [
        "deleted",
        "emptied",
        "garbled",
        "random inside",
        "truncated",
        "rolled back",
    ] {
        if damage == "rolled back" {
            // A newer run, then the database of before it put back.
            dir.append("flows/orders.csv", "A-301,Late,+380509999999\n");
            let newer = dir.run(&["run", "order-sms"]).await;
            assert!(newer.stdout.contains("sent 1"), "{newer:?}");
        }
        let before = bodies(&server).await.len();
        let len = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
        match damage {
            "deleted" => std::fs::remove_file(&db).expect("the test removes the file"),
            "emptied" => std::fs::write(&db, b"").expect("the test writes its file"),
            "garbled" => std::fs::write(&db, random(8192)).expect("the test writes its file"),
            "random inside" => {
                use std::io::{Seek, Write};
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&db)
                    .expect("the store opens");
                file.seek(std::io::SeekFrom::Start(len / 3))
                    .expect("seek succeeds");
                file.write_all(&random(8192)).expect("the test writes it");
            }
            "truncated" => std::fs::OpenOptions::new()
                .write(true)
                .open(&db)
                .and_then(|f| f.set_len(len / 2))
                .expect("it succeeds"),
            _ => {
                std::fs::copy(&older, &db).expect("the test copies the file");
            }
        }
        let refused = dir.run(&["run", "order-sms"]).await;
        assert_eq!(refused.code, 2, "{damage}: {refused:?}");
        assert!(
            refused.stderr.contains("has lost data")
                && refused.stderr.contains("--accept-state-loss"),
            "{damage}: {refused:?}"
        );
        assert_eq!(
            bodies(&server).await.len(),
            before,
            "{damage}: nothing resent"
        );
        // A new state for the next kind of damage (a first use sends the rows again).
        std::fs::remove_dir_all(&state).expect("the test removes the directory");
        let fresh = dir.run(&["run", "order-sms"]).await;
        assert_eq!(fresh.code, 0, "{fresh:?}");
        std::fs::copy(&db, &older).expect("the test copies the file");
    }
    // Knowingly accepted: it runs (and may resend what the lost database knew); a
    // database that cannot be read is set aside.
    std::fs::write(&db, random(8192)).expect("the test writes its file");
    let accepted = dir.run(&["run", "order-sms", "--accept-state-loss"]).await;
    assert_eq!(accepted.code, 0, "{accepted:?}");
    assert!(accepted.stderr.contains("accept"), "{accepted:?}");
    let aside = std::fs::read_dir(&state)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().starts_with("damaged-"))
        })
        .unwrap_or(false);
    assert!(aside, "the unreadable database was kept aside");
    let after = dir.run(&["run", "order-sms"]).await;
    assert_eq!(
        after.code, 0,
        "the directory follows the accepted database: {after:?}"
    );
}

/// A crash leaves the last writes in the database's write-ahead log (`state.db-wal`);
/// a log lost then (deleted, not copied with a backup) is lost data, and refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_ahead_log_lost_after_a_crash_is_refused() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    // A first run, closed cleanly: its writes are in the database file itself.
    let first = dir.run(&["run", "order-sms"]).await;
    assert!(first.stdout.contains("sent 3"), "{first:?}");
    dir.append("flows/orders.csv", "A-4,Ivan,+380671112233\n");
    let mut daemon = daemon_with(&dir, &[]);
    let api = api_of(&dir, &daemon).await;
    let run = reqwest::Client::new()
        .post(format!("{api}/api/flows/order-sms/run"))
        .send()
        .await
        .expect("the call is answered");
    assert_eq!(run.status().as_u16(), 200);
    daemon.0.start_kill().expect("the process is killed");
    let _ = daemon.0.wait().await;
    let wal = dir.path().join("flows/.switchboard/state.db-wal");
    assert!(wal.exists(), "a killed process leaves its log");
    std::fs::remove_file(&wal).expect("the test removes the file");
    let refused = dir.run(&["run", "order-sms"]).await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused.stderr.contains("has lost data") && refused.stderr.contains("`-wal` file was lost"),
        "{refused:?}"
    );
    assert_eq!(bodies(&server).await.len(), 4, "nothing resent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_does_not_trust_a_discovery_file_left_by_a_dead_or_foreign_daemon() {
    // A stand-in API that would show flows that are not ours.
    let foreign = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/flows"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"flows": [{"name": "someone-elses"}]})),
        )
        .mount(&foreign)
        .await;
    let dir = Dir::new("http://127.0.0.1:9");
    let state = dir.path().join("flows/.switchboard");
    std::fs::create_dir_all(&state).expect("the test makes its directory");
    // A process that has ended.
    let mut gone = tokio::process::Command::new("true")
        .spawn()
        .expect("the binary starts");
    let pid = gone.id().unwrap_or_default();
    let _ = gone.wait().await;
    let file = state.join("daemon.json");
    std::fs::write(
        &file,
        json!({"pid": pid, "url": foreign.uri(), "token_required": false}).to_string(),
    )
    .expect("the test writes its file");
    let status = dir.run(&["status"]).await;
    assert_eq!(status.code, 1, "{status:?}");
    assert!(!status.stdout.contains("someone-elses"), "{status:?}");
    assert!(status.stderr.contains("no daemon is running"), "{status:?}");
    assert!(!file.exists(), "the stale file is removed");

    // A live switchboard serving another flows directory.
    let other = tempfile::tempdir().expect("a temporary directory");
    let port = free_port();
    let live = Child(
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
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::write(
        &file,
        json!({"pid": live.0.id(), "url": foreign.uri(), "flows": other.path()}).to_string(),
    )
    .expect("the test writes its file");
    let status = dir.run(&["status"]).await;
    assert_eq!(status.code, 1, "{status:?}");
    assert!(status.stderr.contains("serves the flows in"), "{status:?}");
    assert!(!status.stdout.contains("someone-elses"), "{status:?}");
}
