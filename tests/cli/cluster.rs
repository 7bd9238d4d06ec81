//! Three daemons as one (`switchboard daemon --cluster`), on the machine's PostgreSQL,
//! each with a flows directory of its own holding the same files, against one mock 8x8:
//! a schedule fires once per period in the cluster; a node killed mid-run has its run
//! finished by another; a node paused past its lease cannot record what it sent late;
//! a database that drops every connection mid-run loses nothing; webhook events posted
//! to any node are each sent once; an `after:` chain from another node is left with the
//! node running the flow, and a force-run there still answers with its own run.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

use super::crash::{
    assert_every_row_arrived_repeats_bounded, assert_nothing_lost_and_repeats_marked, bulk_flow,
    received_counts, slow_mock, ROWS,
};
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
    /// `count` nodes `n1`…, each directory written by `setup`, `--lease` as given;
    /// `None` where no PostgreSQL server answers (the test is skipped).
    async fn start(
        count: usize,
        base_url: &str,
        lease: &str,
        setup: impl Fn(&Dir),
    ) -> Option<Nodes> {
        let schema = Schema::new()?;
        let mut nodes = Nodes {
            dirs: Vec::new(),
            children: Vec::new(),
            apis: Vec::new(),
            schema,
        };
        for i in 1..=count {
            let dir = Dir::new(base_url);
            std::fs::remove_file(dir.path().join("flows/order-sms.yaml"))
                .expect("the test removes the file");
            setup(&dir);
            nodes.dirs.push(dir);
            let child = nodes.spawn(i - 1, lease);
            let api = api_of(&nodes.dirs[i - 1], &child).await;
            nodes.children.push(Some(child));
            nodes.apis.push(api);
        }
        Some(nodes)
    }

    fn spawn(&self, i: usize, lease: &str) -> Child {
        let dir = &self.dirs[i];
        let log = std::fs::File::create(dir.path().join("daemon.log"))
            .expect("the test creates its file");
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
                .expect("the binary starts"),
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

    /// A node's answer, which must come within 10 s (a node stuck on the database
    /// fails the test, with the logs).
    async fn get(&self, url: &str) -> Value {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("it is built");
        match client.get(url).send().await {
            Ok(answer) => answer.json().await.unwrap_or_default(),
            Err(e) => panic!("{url}: {e}\n{}", self.logs()),
        }
    }

    /// The flow's runs (newest first), as a node's API lists them.
    async fn runs(&self, api: usize, flow: &str) -> Vec<Value> {
        let listed = self
            .get(&format!(
                "{}/api/flows/{flow}/runs?limit=1000",
                self.apis[api]
            ))
            .await;
        listed["runs"].as_array().cloned().unwrap_or_default()
    }

    /// A run's records.
    async fn rows(&self, api: usize, flow: &str, run: u64) -> Vec<Value> {
        let body = self
            .get(&format!("{}/api/flows/{flow}/runs/{run}", self.apis[api]))
            .await;
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

/// Start the bulk run on node `i` (not waiting for it) and wait until a third of it left;
/// the force-run's answer, to come.
async fn bulk_run_under_way(
    nodes: &Nodes,
    server: &MockServer,
    i: usize,
) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
    let run = tokio::spawn(
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
    // Every node's API says which node runs it.
    let other = (i + 1) % nodes.apis.len();
    let listed = nodes.get(&format!("{}/api/flows", nodes.apis[other])).await;
    let bulk = &listed["flows"][0];
    assert_eq!(bulk["running"], true, "{listed}");
    assert_eq!(bulk["node"], format!("n{}", i + 1), "{listed}");
    assert_eq!(listed["node"], format!("n{}", other + 1), "{listed}");
    let page = reqwest::get(format!("{}/", nodes.apis[other]))
        .await
        .expect("the GET is answered")
        .text()
        .await
        .unwrap_or_default();
    let running_on = format!("running</span> on <span class=\"node\">n{}</span>", i + 1);
    assert!(page.contains(&running_on), "{page}");
    run
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
    let Some(nodes) = Nodes::start(3, &server.uri(), "2s", |dir| {
        dir.write("flows/orders.csv", ORDERS);
        dir.write(
            "flows/tick.yaml",
            &FLOW.replace("every: 15m", "cron: \"*/2 * * * * *\""),
        );
    })
    .await
    else {
        return;
    };
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
    // A force-run through any node's CLI goes through its daemon and runs in the cluster.
    let state = nodes.schema.url();
    let forced = nodes.dirs[1]
        .run(&["run", "tick", "--state", &state, "--json"])
        .await;
    assert_eq!(forced.code, 0, "{forced:?}");
    assert_eq!(forced.json()["run"]["trigger"], "manual", "{forced:?}");
    let status = nodes.dirs[2].run(&["status", "--state", &state]).await;
    assert!(status.stdout.contains("tick: "), "{status:?}");
    let nodes_ran: std::collections::BTreeSet<&str> =
        runs.iter().filter_map(|r| r["node"].as_str()).collect();
    eprintln!(
        "runs of a fire every 2 s over 30 s: {}, on nodes {nodes_ran:?}",
        starts.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_left_during_a_force_run_runs_after_it_and_the_force_run_answers_with_its_own() {
    let server = slow_mock().await;
    let Some(nodes) = Nodes::start(2, &server.uri(), "2s", |dir| {
        bulk(dir);
        let bulk = std::fs::read_to_string(dir.path().join("flows/bulk.yaml"))
            .expect("the test reads the file");
        dir.write("flows/bulk.yaml", &format!("{bulk}schedule: {{after: starter}}\n"));
        dir.write("flows/starter.csv", "id,phone\nS-1,+380501234567\n");
        dir.write(
            "flows/starter.yaml",
            "source: {connector: csv, path: starter.csv, key: id, backlog: send}\nreceiver: {connector: 8x8, action: send_sms, account: shop-8x8}\nmap:\n  destination: \"{{phone}}\"\n  text: \"Start {{id}}\"\n",
        );
    })
    .await else {
        return;
    };
    // n1 sends the bulk rows for a person; meanwhile starter succeeds on n2, whose
    // `after:` trigger for bulk is left with n1.
    let forced = bulk_run_under_way(&nodes, &server, 0).await;
    let started = reqwest::Client::new()
        .post(format!("{}/api/flows/starter/run", nodes.apis[1]))
        .send()
        .await
        .expect("the call is answered");
    assert!(started.status().is_success(), "{started:?}");
    let answer: Value = forced
        .await
        .expect("it succeeds")
        .expect("it succeeds")
        .json()
        .await
        .expect("the answer is JSON");
    assert_eq!(
        answer["run"]["trigger"],
        "manual",
        "{answer:#}\n{}",
        nodes.logs()
    );
    assert_eq!(answer["run"]["counts"]["sent"], ROWS, "{answer:#}");
    // The trigger left ran after it, on the node that held the flow.
    let mut runs = nodes.runs(1, "bulk").await;
    for _ in 0..100 {
        if runs.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        runs = nodes.runs(1, "bulk").await;
    }
    let said: Vec<(&str, &str)> = runs
        .iter()
        .map(|r| {
            (
                r["trigger"].as_str().unwrap_or_default(),
                r["node"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        said,
        [("after", "n1"), ("manual", "n1")],
        "{}",
        nodes.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_run_has_its_run_finished_by_another() {
    let server = slow_mock().await;
    let Some(mut nodes) = Nodes::start(3, &server.uri(), "1s", bulk).await else {
        return;
    };
    bulk_run_under_way(&nodes, &server, 0).await;
    if let Some(mut child) = nodes.children[0].take() {
        child.0.start_kill().expect("the process is killed"); // SIGKILL
        let _ = child.0.wait().await;
    }
    let at_kill = server.received_requests().await.map_or(0, |r| r.len());
    assert!(at_kill < ROWS, "killed mid-run ({at_kill} of {ROWS} sent)");
    // Its lease lapses (1 s + the flow's 2 s max_time): another node takes the flow over.
    let took_over = nodes.succeeded(1, "bulk", 1, 60).await;
    assert_eq!(took_over["trigger"], "takeover", "{took_over}");
    assert!(
        ["n2", "n3"].contains(&took_over["node"].as_str().unwrap_or_default()),
        "{took_over}"
    );
    let first = nodes
        .runs(1, "bulk")
        .await
        .into_iter()
        .find(|r| r["id"] == 1);
    assert_eq!(
        first.as_ref().map(|r| r["status"].clone()),
        Some("interrupted".into()),
        "{first:?}"
    );
    assert_eq!(first.map(|r| r["node"].clone()), Some("n1".into()));

    // The console's run log says which node ran what.
    let log = reqwest::get(format!("{}/flows/bulk", nodes.apis[2]))
        .await
        .expect("the GET is answered")
        .text()
        .await
        .unwrap_or_default();
    let taker = took_over["node"].as_str().unwrap_or_default();
    assert!(
        log.contains(&format!("takeover on <span class=\"node\">{taker}</span>")),
        "{log}"
    );
    assert!(
        log.contains("manual on <span class=\"node\">n1</span>"),
        "{log}"
    );

    let rows = recorded_once(&nodes, 1).await;
    assert_nothing_lost_and_repeats_marked(&server, &rows).await;
    eprintln!(
        "node killed at {at_kill} of {ROWS} sent: run taken over by {}",
        took_over["node"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_paused_past_its_lease_cannot_record_what_it_sends_late() {
    let server = slow_mock().await;
    let Some(nodes) = Nodes::start(3, &server.uri(), "1s", bulk).await else {
        return;
    };
    bulk_run_under_way(&nodes, &server, 0).await;
    nodes.signal(0, "-STOP").await;
    let took_over = nodes.succeeded(1, "bulk", 1, 60).await;
    assert_eq!(took_over["trigger"], "takeover", "{took_over}");
    nodes.signal(0, "-CONT").await;
    // The woken node finds its lease gone: what it finishes is refused, it sends no more.
    // (Within 30 s: under a loaded machine the woken node's next renewal can be late.)
    let mut told = false;
    for _ in 0..300 {
        told = nodes.log(0).contains("another node took the flow over");
        if told {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(told, "{}", nodes.logs());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_every_row_arrived_repeats_bounded(&server).await;
    recorded_once(&nodes, 2).await;
    let first = nodes
        .runs(2, "bulk")
        .await
        .into_iter()
        .find(|r| r["id"] == 1);
    assert_eq!(
        first.map(|r| r["status"].clone()),
        Some("interrupted".into()),
        "the woken node could not overwrite its run as it ended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_dropping_every_connection_mid_run_loses_nothing() {
    let server = slow_mock().await;
    let Some(nodes) = Nodes::start(3, &server.uri(), "5s", bulk).await else {
        return;
    };
    bulk_run_under_way(&nodes, &server, 0).await;
    let cut = super::postgres::cut_connections(&nodes.schema);
    assert!(cut >= 3, "{cut} connections ended");
    let done = nodes.succeeded(0, "bulk", 0, 90).await;
    assert_eq!(done["id"], 1, "the run went on: {done}");
    let counts = assert_every_row_arrived_repeats_bounded(&server).await;
    assert!(counts.values().all(|n| *n == 1), "nothing sent twice");
    recorded_once(&nodes, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_events_posted_to_any_node_are_each_sent_once() {
    const EVENTS: usize = 10_000;
    let server = mock_8x8().await;
    let uri = server.uri();
    let Some(nodes) = Nodes::start(3, &uri, "5s", |dir| {
        dir.write(
            "flows/accounts.yaml",
            &format!(
                "shop-8x8:\n  connector: 8x8\n  subaccount_id: shop_main\n  api_key: ${{EIGHTX8_API_KEY}}\n  base_url: {uri}\nhook:\n  connector: webhook\n  secret: {}\n  signature: hmac\n",
                super::webhook::SECRET
            ),
        );
        dir.private("flows/accounts.yaml");
        dir.write(
            "flows/signup.yaml",
            "source: {connector: webhook, account: hook, key: id}\nreceiver: {connector: 8x8, action: send_sms, account: shop-8x8}\nmap:\n  destination: \"{{phone}}\"\n  text: \"Welcome {{name}}\"\ndelivery: {concurrency: 16}\n",
        );
    })
    .await else {
        return;
    };
    let http = reqwest::Client::new();
    let posts = futures::stream::iter(0..EVENTS).map(|i| {
        let (http, api) = (http.clone(), nodes.apis[i % 3].clone());
        async move {
            let body =
                json!({"id": format!("e-{i}"), "phone": format!("+38050{i:07}"), "name": "Olena"})
                    .to_string();
            http.post(format!("{api}/hooks/signup"))
                .header("content-type", "application/json")
                .header("x-signature-256", super::webhook::sign(body.as_bytes()))
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    });
    let statuses: Vec<u16> = posts.buffer_unordered(48).collect().await;
    let refused = statuses.iter().filter(|s| **s != 200).count();
    assert_eq!(refused, 0, "every post acknowledged\n{}", nodes.logs());
    let mut received = 0;
    for _ in 0..1200 {
        received = server.received_requests().await.map_or(0, |r| r.len());
        if received >= EVENTS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let counts = received_counts(&server).await;
    assert_eq!(
        counts.len(),
        EVENTS,
        "every event sent ({received} requests)\n{}",
        nodes.logs()
    );
    assert!(counts.values().all(|n| *n == 1), "each event sent once");
    let runs = nodes.runs(0, "signup").await;
    let by_node: std::collections::BTreeSet<&str> =
        runs.iter().filter_map(|r| r["node"].as_str()).collect();
    eprintln!(
        "{EVENTS} events over 3 nodes: {} runs, on nodes {by_node:?}",
        runs.len()
    );
}
