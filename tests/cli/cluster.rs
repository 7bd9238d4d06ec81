//! Three daemons as one (`switchboard daemon --cluster`), on the machine's PostgreSQL,
//! each with a flows directory of its own holding the same files, against one mock 8x8:
//! a schedule fires once per period in the cluster; a node killed mid-run has its run
//! finished by another; a node paused past its lease cannot record what it sent late;
//! a database that drops every connection mid-run loses nothing; webhook events posted
//! to any node are each sent once.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use super::crash::{bulk_flow, received_counts, slow_mock, IN_FLIGHT, ROWS};
use super::postgres::Schema;
use super::*;

/// The daemons of one cluster, each in a directory of its own.
struct Nodes {
    dirs: Vec<Dir>,
    children: Vec<Option<Child>>,
    apis: Vec<String>,
    schema: Schema,
}

impl Nodes {
    /// `count` nodes `n1`…, each directory written by `setup`, `--lease` as given.
    async fn start(count: usize, base_url: &str, lease: &str, setup: impl Fn(&Dir)) -> Nodes {
        let schema = Schema::new();
        let mut nodes = Nodes {
            dirs: Vec::new(),
            children: Vec::new(),
            apis: Vec::new(),
            schema,
        };
        for i in 1..=count {
            let dir = Dir::new(base_url);
            std::fs::remove_file(dir.path().join("flows/order-sms.yaml"))
                .unwrap_or_else(|e| panic!("{e}"));
            setup(&dir);
            nodes.dirs.push(dir);
            let child = nodes.spawn(i - 1, lease);
            let api = api_of(&nodes.dirs[i - 1], &child).await;
            nodes.children.push(Some(child));
            nodes.apis.push(api);
        }
        nodes
    }

    fn spawn(&self, i: usize, lease: &str) -> Child {
        let dir = &self.dirs[i];
        let log =
            std::fs::File::create(dir.path().join("daemon.log")).unwrap_or_else(|e| panic!("{e}"));
        Child(
            tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
                .args(["daemon", "--listen", "127.0.0.1:0", "--cluster"])
                .args(["--node", &format!("n{}", i + 1), "--lease", lease])
                .args(["--state", &self.schema.url()])
                .current_dir(dir.path())
                .env("EIGHTX8_API_KEY", API_KEY)
                .env("RUST_LOG", "info")
                .env_remove("SWITCHBOARD_TOKEN")
                .env_remove("SWITCHBOARD_STATE")
                .stdout(std::process::Stdio::null())
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|e| panic!("{e}")),
        )
    }

    fn pid(&self, i: usize) -> String {
        self.children[i]
            .as_ref()
            .and_then(|c| c.0.id())
            .unwrap_or_default()
            .to_string()
    }

    async fn signal(&self, i: usize, signal: &str) {
        let _ = tokio::process::Command::new("kill")
            .args([signal, &self.pid(i)])
            .status()
            .await;
    }

    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dirs[i].path().join("daemon.log")).unwrap_or_default()
    }

    fn logs(&self) -> String {
        (0..self.dirs.len())
            .map(|i| format!("--- n{} ---\n{}", i + 1, self.log(i)))
            .collect()
    }

    /// The flow's runs (newest first), as a node's API lists them.
    async fn runs(&self, api: usize, flow: &str) -> Vec<Value> {
        let listed: Value = reqwest::get(format!(
            "{}/api/flows/{flow}/runs?limit=1000",
            self.apis[api]
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_default();
        listed["runs"].as_array().cloned().unwrap_or_default()
    }

    /// A run's records.
    async fn rows(&self, api: usize, flow: &str, run: u64) -> Vec<Value> {
        let body: Value = reqwest::get(format!("{}/api/flows/{flow}/runs/{run}", self.apis[api]))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .json()
            .await
            .unwrap_or_default();
        body["rows"].as_array().cloned().unwrap_or_default()
    }

    /// Wait (up to `seconds`) until a run of `flow` other than `not` ended as succeeded.
    async fn succeeded(&self, api: usize, flow: &str, not: u64, seconds: u64) -> Value {
        for _ in 0..seconds * 10 {
            if let Some(run) = self
                .runs(api, flow)
                .await
                .into_iter()
                .find(|r| r["status"] == "succeeded" && r["id"].as_u64() != Some(not))
            {
                return run;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no run of {flow} succeeded in {seconds}s\n{}", self.logs());
    }
}

/// The bulk flow of the crash tests, a send taking at most 2 s.
fn bulk(dir: &Dir) {
    let mut csv = String::from("id,phone\n");
    for i in 1..=ROWS {
        csv.push_str(&format!("R-{i},+38050{:07}\n", i));
    }
    dir.write("flows/bulk.csv", &csv);
    dir.write(
        "flows/bulk.yaml",
        &bulk_flow(true).replace("attempts: 1}", "attempts: 1, max_time: 2s}"),
    );
}

/// Start the bulk run on node `i` (not waiting for it) and wait until a third of it left.
async fn bulk_run_under_way(nodes: &Nodes, server: &MockServer, i: usize) {
    let _run = tokio::spawn(
        reqwest::Client::new()
            .post(format!("{}/api/flows/bulk/run", nodes.apis[i]))
            .send(),
    );
    let mut waited = 0;
    while server.received_requests().await.map_or(0, |r| r.len()) < ROWS / 3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
        assert!(waited < 3000, "the run did not get going\n{}", nodes.logs());
    }
}

/// Every row arrived; repeats are no more than were in flight.
async fn every_row_once_or_a_repeat(server: &MockServer) -> HashMap<String, usize> {
    let counts = received_counts(server).await;
    for i in 1..=ROWS {
        assert!(
            counts.contains_key(&format!("bulk:R-{i}")),
            "row R-{i} never arrived"
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

/// Every key's outcome is recorded by one run only.
async fn recorded_once(nodes: &Nodes, api: usize) -> Vec<Value> {
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut all = Vec::new();
    for run in nodes.runs(api, "bulk").await {
        let id = run["id"].as_u64().unwrap_or_default();
        for row in nodes.rows(api, "bulk", id).await {
            let key = row["key"].as_str().unwrap_or_default().to_string();
            if let Some(other) = seen.insert(key.clone(), id) {
                panic!(
                    "{key} recorded by run {other} and run {id}\n{}",
                    nodes.logs()
                );
            }
            all.push(row);
        }
    }
    assert_eq!(seen.len(), ROWS, "every row recorded");
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_fires_once_per_period_in_a_cluster_of_three() {
    let server = mock_8x8().await;
    let nodes = Nodes::start(3, &server.uri(), "2s", |dir| {
        dir.write("flows/orders.csv", ORDERS);
        dir.write(
            "flows/tick.yaml",
            &FLOW.replace("every: 15m", "cron: \"*/2 * * * * *\""),
        );
    })
    .await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    let mut runs = nodes.runs(0, "tick").await;
    runs.reverse();
    let starts: Vec<chrono::DateTime<chrono::Utc>> = runs
        .iter()
        .filter_map(|r| r["started_at"].as_str()?.parse().ok())
        .collect();
    assert!(
        (12..=16).contains(&starts.len()),
        "{} runs in 30 s of a fire every 2 s\n{runs:#?}\n{}",
        starts.len(),
        nodes.logs()
    );
    for pair in starts.windows(2) {
        let gap = (pair[1] - pair[0]).num_milliseconds();
        assert!(
            gap >= 1500,
            "two runs {gap} ms apart: a fire ran twice\n{runs:#?}"
        );
    }
    assert!(runs
        .iter()
        .all(|r| r["trigger"] == "schedule" && r["node"].is_string()));
    // The orders went once, by whichever node ran first.
    assert_eq!(bodies(&server).await.len(), 3);
    let nodes_ran: std::collections::BTreeSet<&str> =
        runs.iter().filter_map(|r| r["node"].as_str()).collect();
    eprintln!(
        "runs of `every: 2s` over 30 s: {}, on nodes {nodes_ran:?}",
        starts.len()
    );
}
