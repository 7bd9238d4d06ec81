//! The state in PostgreSQL (`--state postgres://…`), through the real binary, against the
//! machine's server (127.0.0.1:5432, database `test`; `SWITCHBOARD_TEST_POSTGRES` names
//! another), each test in a schema of its own, dropped afterwards: the same runs, history
//! and dedupe as on sled, the daemon holding the schema while other commands ask it,
//! and a SIGKILL mid-run that loses nothing.

use super::*;

/// A schema of its own in the test database; its `--state` URL.
pub(crate) struct Schema {
    server: String,
    name: String,
}

impl Schema {
    /// A schema of its own, or `None` (said once) where no PostgreSQL server answers.
    pub(crate) fn new() -> Option<Schema> {
        let server = std::env::var("SWITCHBOARD_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let reachable = || {
            static REACHABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
            let server = server.clone();
            *REACHABLE.get_or_init(move || {
                std::thread::spawn(move || {
                    ::postgres::Client::connect(&server, ::postgres::NoTls).is_ok()
                })
                .join()
                .unwrap_or(false)
            })
        };
        available(
            "PostgreSQL",
            reachable,
            "no server answers at 127.0.0.1:5432 (user postgres, trust auth, database test); start one, or set SWITCHBOARD_TEST_POSTGRES=postgres://…",
        )
        .then(|| Schema {
            server,
            name: format!("e2e_{:016x}", rand_id()),
        })
    }

    pub(crate) fn url(&self) -> String {
        format!("{}?schema={}", self.server, self.name)
    }
}

fn rand_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

impl Drop for Schema {
    fn drop(&mut self) {
        // Its own thread: a test's runtime must not be blocked by the sync client.
        let (server, name) = (self.server.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(mut client) = ::postgres::Client::connect(&server, ::postgres::NoTls) {
                let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"));
            }
        })
        .join();
    }
}

#[tokio::test]
async fn runs_history_and_dedupe_work_the_same_with_the_state_in_postgres() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    let Some(schema) = Schema::new() else {
        return;
    };
    let state = schema.url();

    let first = dir.run(&["run", "order-sms", "--state", &state]).await;
    assert_eq!(first.code, 0, "{first:?}");
    assert!(first.stdout.contains("new 3, sent 3"), "{first:?}");
    let again = dir.run(&["run", "order-sms", "--state", &state]).await;
    assert!(
        again.stdout.contains("new 0, sent 0"),
        "nothing sent twice: {again:?}"
    );
    assert_eq!(bodies(&server).await.len(), 3);
    // A source that now repeats a key handled in the first run (twice in one chunk) sends
    // nothing: the database is asked for the key twice and tells it twice.
    dir.append("flows/orders.csv", "A-2,Tom & Jerry <3,+12025550175\n");
    let repeated = dir.run(&["run", "order-sms", "--state", &state]).await;
    assert!(
        repeated.stdout.contains("new 0, sent 0"),
        "a repeated handled key is not sent again: {repeated:?}"
    );
    assert_eq!(bodies(&server).await.len(), 3);
    // Nothing of the state went to the directory beside the flows.
    assert!(!dir.path().join("flows/.switchboard/db").exists());

    let history = dir
        .run(&["history", "order-sms", "--state", &state, "--json"])
        .await;
    let runs = history.json();
    assert_eq!(runs.as_array().map(Vec::len), Some(3), "{history:?}");
    let rows = dir
        .run(&[
            "history",
            "order-sms",
            "--state",
            &state,
            "--run",
            "1",
            "--json",
        ])
        .await
        .json();
    assert_eq!(rows["rows"].as_array().map(Vec::len), Some(3), "{rows}");
    let test = dir.run(&["test", "order-sms", "--state", &state]).await;
    assert!(test.stdout.contains("4 already handled"), "{test:?}");

    // A daemon holds the schema: a second process is refused the lock and goes through
    // the daemon, as with a state directory.
    let daemon = spawn_daemon_with(&dir, &["--state", &state]);
    let api = api_of(&dir, &daemon).await;
    dir.append("flows/orders.csv", "A-4,Ann,+12025550199\n");
    let through = dir.run(&["run", "order-sms", "--state", &state]).await;
    assert_eq!(through.code, 0, "{through:?}");
    assert!(through.stdout.contains("new 1, sent 1"), "{through:?}");
    let listed: Value = reqwest::get(format!("{api}/api/flows/order-sms/runs"))
        .await
        .expect("the GET is answered")
        .json()
        .await
        .unwrap_or_default();
    assert_eq!(listed["runs"].as_array().map(Vec::len), Some(4));
    // The console finds the new record in the database's index.
    let found = reqwest::get(format!("{api}/search?q=%2B1%20202%20555%200199"))
        .await
        .expect("the GET is answered")
        .text()
        .await
        .unwrap_or_default();
    assert_eq!(found.matches("data-test=\"hit\"").count(), 1, "{found}");
}

/// A daemon that cannot write its discovery file (`.switchboard` is a file here; a
/// read-only flows directory is the same) stops with the reason before its scheduler
/// starts anything — here a run missed while it was down, due the moment it starts:
/// none begins, no message goes out to be cut off by the exit.
#[tokio::test]
async fn a_daemon_that_cannot_announce_itself_stops_before_any_run_starts() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    let Some(schema) = Schema::new() else {
        return;
    };
    let state = schema.url();
    // A first daemon arms the schedule; it is then made an hour overdue.
    let first = spawn_daemon_with(&dir, &["--state", &state]);
    api_of(&dir, &first).await;
    drop(first);
    let (server_url, name) = (schema.server.clone(), schema.name.clone());
    let overdue = std::thread::spawn(move || {
        let mut client =
            ::postgres::Client::connect(&server_url, ::postgres::NoTls).expect("it connects");
        client
            .execute(
                &format!(
                    "UPDATE \"{name}\".meta SET value = jsonb_set(value, '{{next_due}}', \
                     to_jsonb(now() - interval '1 hour')) \
                     WHERE flow = 'order-sms' AND name = 'schedule'"
                ),
                &[],
            )
            .expect("execute succeeds")
    })
    .join()
    .unwrap_or_else(|_| panic!("the update panicked"));
    assert_eq!(overdue, 1, "the armed schedule was not found");

    std::fs::remove_dir_all(dir.path().join("flows/.switchboard"))
        .expect("the test removes the directory");
    dir.write("flows/.switchboard", "not a directory");
    let started = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        dir.run(&["daemon", "--listen", "127.0.0.1:0", "--state", &state]),
    )
    .await
    .unwrap_or_else(|_| panic!("the daemon kept running without its discovery file"));
    assert_ne!(started.code, 0, "{started:?}");
    assert!(!started.stderr.contains("API on"), "{started:?}");
    // Long enough for a run the scheduler had started to have sent its rows.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(bodies(&server).await.is_empty(), "{started:?}");
    let history = dir.run(&["history", "order-sms", "--state", &state]).await;
    assert!(
        history.stdout.contains("no runs yet"),
        "no run began: {history:?}"
    );
}

#[tokio::test]
async fn a_database_that_cannot_be_reached_is_named_without_its_password() {
    let dir = Dir::new("http://127.0.0.1:9");
    let run = dir
        .run(&[
            "run",
            "order-sms",
            "--state",
            "postgres://shop:hunter2-secret@127.0.0.1:1/shop",
        ])
        .await;
    assert_ne!(run.code, 0);
    assert!(
        run.stderr
            .contains("state database postgres://shop:***@127.0.0.1:1/shop"),
        "{run:?}"
    );
    assert!(!run.stderr.contains("hunter2"), "{run:?}");
    let bad = dir
        .run(&[
            "run",
            "order-sms",
            "--state",
            "postgres://127.0.0.1/test?schema=Robert'); DROP",
        ])
        .await;
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("is not a schema name"), "{bad:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_run_on_postgres_loses_nothing_and_marks_its_repeats() {
    let Some(schema) = Schema::new() else {
        return;
    };
    let state = schema.url();
    let (server, rows, _dir) =
        super::crash::kill_and_recover_with(true, &["--state", &state]).await;
    super::crash::assert_nothing_lost_and_repeats_marked(&server, &rows).await;
}

/// End the connections the switchboard processes on `schema` hold, as a restart of the
/// server would.
pub(crate) fn cut_connections(schema: &Schema) -> u64 {
    let (server, app) = (
        schema.server.clone(),
        format!("switchboard:{}", schema.name),
    );
    std::thread::spawn(move || {
        let mut client = ::postgres::Client::connect(&server, ::postgres::NoTls)
            .expect("it connects");
        client
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                &[&app],
            )
            .map(|rows| rows.len() as u64)
            .unwrap_or(0)
    })
    .join()
    .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_database_connection_pauses_the_run_which_goes_on_and_loses_nothing() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .respond_with(|request: &Request| {
            queued(request).set_delay(std::time::Duration::from_millis(3))
        })
        .mount(&server)
        .await;
    let dir = Dir::new(&server.uri());
    let mut csv = String::from("order_id,name,phone\n");
    for i in 1..=2000 {
        csv.push_str(&format!("A-{i},Ann,+1202{i:07}\n"));
    }
    dir.write("flows/orders.csv", &csv);
    dir.write(
        "flows/order-sms.yaml",
        &format!("{FLOW}delivery:\n  concurrency: 4\n  attempts: 1\n"),
    );
    let Some(schema) = Schema::new() else {
        return;
    };
    let state = schema.url();
    let daemon = spawn_daemon_with(&dir, &["--state", &state]);
    let api = api_of(&dir, &daemon).await;
    let run = tokio::spawn(
        reqwest::Client::new()
            .post(format!("{api}/api/flows/order-sms/run"))
            .send(),
    );
    for waited in 0.. {
        if bodies(&server).await.len() >= 500 {
            break;
        }
        assert!(waited < 1500, "the run did not get going");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        cut_connections(&schema) >= 1,
        "the daemon's connection was found and cut"
    );
    let report: Value = run
        .await
        .expect("it succeeds")
        .expect("it succeeds")
        .json()
        .await
        .unwrap_or_default();
    assert_eq!(report["run"]["status"], "succeeded", "{report}");
    assert_eq!(report["run"]["counts"]["sent"], 2000, "{report}");
    let sent = bodies(&server).await;
    let mut ids = client_ids(&sent);
    ids.dedup();
    assert_eq!((sent.len(), ids.len()), (2000, 2000), "every row once");
    // And the state says so: a rerun finds nothing new.
    let again: Value = reqwest::Client::new()
        .post(format!("{api}/api/flows/order-sms/run"))
        .send()
        .await
        .expect("the call is answered")
        .json()
        .await
        .unwrap_or_default();
    assert_eq!(again["run"]["counts"]["new"], 0, "{again}");
}
