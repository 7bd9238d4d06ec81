//! Fault injection against a mock 8x8: 500 for the first requests, 429 with
//! `Retry-After` every few requests, 400 for some rows, timeouts for another. Every row
//! must end in the right state, retries must respect `Retry-After`, and nothing may be
//! retried forever.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::*;

const FIRST_500S: usize = 3;
const EVERY_429: usize = 5;

#[derive(Default)]
struct Log(Mutex<Vec<(String, Instant, u16)>>);

impl Log {
    fn push(&self, key: &str, status: u16) {
        if let Ok(mut log) = self.0.lock() {
            log.push((key.to_string(), Instant::now(), status));
        }
    }

    fn by_key(&self) -> HashMap<String, Vec<(Instant, u16)>> {
        let mut map: HashMap<String, Vec<(Instant, u16)>> = HashMap::new();
        for (key, at, status) in self.0.lock().map(|l| l.clone()).unwrap_or_default() {
            map.entry(key).or_default().push((at, status));
        }
        map
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_ends_each_row_in_the_right_state() {
    let log = Arc::new(Log::default());
    let count = Arc::new(AtomicUsize::new(0));
    let server = MockServer::start().await;
    let (log2, count2) = (Arc::clone(&log), Arc::clone(&count));
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .respond_with(move |request: &Request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            let key = body["clientMessageId"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let n = count2.fetch_add(1, Ordering::SeqCst) + 1;
            let response = if key.ends_with("-slow") {
                (0, queued(request).set_delay(Duration::from_secs(2)))
            } else if n <= FIRST_500S {
                (
                    500,
                    ResponseTemplate::new(500)
                        .set_body_json(json!({"code": 2000, "message": "Internal error"})),
                )
            } else if n % EVERY_429 == 0 {
                (
                    429,
                    ResponseTemplate::new(429).insert_header("Retry-After", "1"),
                )
            } else if key.ends_with("-bad") {
                (
                    400,
                    ResponseTemplate::new(400)
                        .set_body_json(json!({"code": 1002, "message": "Invalid MSISDN format"})),
                )
            } else {
                (200, queued(request))
            };
            log2.push(&key, response.0);
            response.1
        })
        .mount(&server)
        .await;

    let dir = Dir::new(&server.uri());
    let mut csv = String::from("order_id,name,phone\n");
    for i in 1..=12 {
        csv.push_str(&format!("ok{i},Name {i},+3805012345{i:02}\n"));
    }
    csv.push_str(
        "x1-bad,Bad,+380501234599\nx2-bad,Bad,+380501234598\nx3-slow,Slow,+380501234597\n",
    );
    dir.write("flows/orders.csv", &csv);
    dir.write(
        "flows/order-sms.yaml",
        &FLOW.replace("schedule:\n  every: 15m\n", "delivery: {concurrency: 2, attempts: 4, backoff: 50ms, max_backoff: 5s, timeout: 300ms}\n"),
    );

    let run = dir.run(&["run", "order-sms", "--json"]).await;
    assert_eq!(run.code, 1, "failed rows make the run fail: {run:?}");
    let report = run.json();
    assert_eq!(report["run"]["counts"]["sent"], 12, "{report:#}");
    assert_eq!(report["run"]["counts"]["failed"], 3, "{report:#}");

    let rows = dir
        .run(&["history", "order-sms", "--run", "1", "--json"])
        .await
        .json();
    let rows: HashMap<String, Value> = rows["rows"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|r| (r["key"].as_str().unwrap_or_default().to_string(), r))
        .collect();
    for i in 1..=12 {
        assert_eq!(
            rows[&format!("ok{i}")]["status"],
            "sent",
            "ok{i}: {:#}",
            rows[&format!("ok{i}")]
        );
    }
    for bad in ["x1-bad", "x2-bad"] {
        let row = &rows[bad];
        assert_eq!(
            (row["status"].as_str(), row["code"].as_str()),
            (Some("failed"), Some("1002")),
            "{row:#}"
        );
        assert_eq!(row["retry_next_run"], false, "a 400 is permanent: {row:#}");
    }
    let slow = &rows["x3-slow"];
    assert_eq!(slow["status"], "failed");
    assert_eq!(
        slow["attempts"], 4,
        "timeouts are retried up to the limit, no further: {slow:#}"
    );
    assert_eq!(slow["retry_next_run"], true, "{slow:#}");
    assert!(
        slow["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("timed out after 300ms (gave up after 4 tries)"),
        "{slow:#}"
    );

    let by_key = log.by_key();
    assert_eq!(
        by_key["order-sms:x3-slow"].len(),
        4,
        "nothing is retried forever"
    );
    assert!(by_key.values().all(|tries| tries.len() <= 4));
    let mut honoured = 0;
    for tries in by_key.values() {
        for pair in tries.windows(2) {
            if pair[0].1 == 429 {
                let waited = pair[1].0 - pair[0].0;
                assert!(
                    waited >= Duration::from_millis(990),
                    "retried {waited:?} after a 429 asking for 1 s"
                );
                honoured += 1;
            }
        }
    }
    assert!(honoured >= 1, "the mock sent 429s and they were retried");
    assert!(by_key.values().flatten().filter(|(_, s)| *s == 500).count() == FIRST_500S);
}
