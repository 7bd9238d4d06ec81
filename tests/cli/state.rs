//! The embedded state on SQLite as a person operates it: an old sled directory met and
//! moved (`state migrate`), the state checked, backed up while the daemon runs, moved to
//! PostgreSQL and back, and its file shrinking once history is pruned.

use super::*;

/// A state directory as the last sled release left it (`tests/fixtures/sled-state`,
/// made by that release's store): one run that sent A-1…A-3, their keys remembered.
fn old_sled_state(dir: &Dir) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sled-state/order-sms");
    let state = dir.path().join("flows/.switchboard");
    std::fs::create_dir_all(&state).expect("the test makes its directory");
    for entry in std::fs::read_dir(&from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.expect("it succeeds");
        std::fs::copy(entry.path(), state.join(entry.file_name()))
            .expect("the test copies the file");
    }
}

#[tokio::test]
async fn an_old_sled_directory_is_refused_then_migrated_with_nothing_lost() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    old_sled_state(&dir);
    // Every command that meets it says the one command to run.
    let refused = dir.run(&["run", "order-sms"]).await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused.stderr.contains("old format (sled)")
            && refused.stderr.contains("switchboard state migrate"),
        "{refused:?}"
    );
    assert!(bodies(&server).await.is_empty());

    let migrate = dir.run(&["state", "migrate"]).await;
    assert_eq!(migrate.code, 0, "{migrate:?}");
    assert!(
        migrate
            .stdout
            .contains("order-sms: 1 run(s), 3 record(s), 3 handled key(s)")
            && migrate.stdout.contains("the old directory is kept as")
            && migrate.stdout.contains(".switchboard/state.db:")
            && !migrate.stdout.contains("migrating"),
        "the report names where the state now is: {migrate:?}"
    );
    let kept: Vec<String> = std::fs::read_dir(dir.path().join("flows"))
        .map(|e| {
            e.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        kept.iter().any(|n| n.starts_with(".switchboard.sled-")),
        "{kept:?}"
    );
    assert!(dir.path().join("flows/.switchboard/state.db").exists());

    // The next run sends only the row it never sent; history shows the old run.
    dir.append("flows/orders.csv", "A-4,Ivan,+380671112233\n");
    let run = dir.run(&["run", "order-sms"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("new 1, sent 1"), "{run:?}");
    assert_eq!(client_ids(&bodies(&server).await), ["order-sms:A-4"]);
    let history = dir.run(&["history", "order-sms", "--run", "1"]).await;
    assert!(history.stdout.contains("umid-A-2"), "{history:?}");
    let check = dir.run(&["state", "check"]).await;
    assert_eq!(check.code, 0, "{check:?}");
    assert!(check.stdout.contains(": ok"), "{check:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_is_backed_up_while_the_daemon_runs_and_the_copy_checks_ok() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    let daemon = spawn_daemon(&dir);
    let api = api_of(&dir, &daemon).await;
    let run = reqwest::Client::new()
        .post(format!("{api}/api/flows/order-sms/run"))
        .send()
        .await
        .expect("the call is answered");
    assert_eq!(run.status().as_u16(), 200);
    let backup = dir.run(&["state", "backup", "backup.db"]).await;
    assert_eq!(backup.code, 0, "{backup:?}");
    let check = dir.run(&["state", "check", "backup.db"]).await;
    assert_eq!(check.code, 0, "{check:?}");
    assert!(check.stdout.contains("backup.db: ok"), "{check:?}");
    let again = dir.run(&["state", "backup", "backup.db"]).await;
    assert_eq!(again.code, 2, "a backup never overwrites: {again:?}");
    // The copy is a state: it opens, and knows what was sent.
    drop(daemon);
    let restored = dir.path().join("restored");
    std::fs::create_dir_all(&restored).expect("the test makes its directory");
    std::fs::copy(dir.path().join("backup.db"), restored.join("state.db"))
        .expect("the test copies the file");
    let from_copy = dir
        .run(&["history", "order-sms", "--state", "restored", "--json"])
        .await;
    assert_eq!(from_copy.code, 0, "{from_copy:?}");
    assert_eq!(from_copy.json()[0]["counts"]["sent"], 3, "{from_copy:?}");
}

#[tokio::test]
async fn the_state_moves_to_postgres_and_back_and_the_old_copy_is_retired() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    let first = dir.run(&["run", "order-sms"]).await;
    assert!(first.stdout.contains("sent 3"), "{first:?}");
    let Some(schema) = super::postgres::Schema::new() else {
        return;
    };
    let url = schema.url();
    let moved = dir.run(&["state", "migrate", "--to", &url]).await;
    assert_eq!(moved.code, 0, "{moved:?}");
    assert!(moved.stdout.contains("3 handled key(s)"), "{moved:?}");
    // On PostgreSQL: nothing is sent again; a new row goes.
    dir.append("flows/orders.csv", "A-4,Ivan,+380671112233\n");
    let there = dir.run(&["run", "order-sms", "--state", &url]).await;
    assert!(there.stdout.contains("new 1, sent 1"), "{there:?}");
    // The embedded copy was set aside: a command pointed at it is told where it went.
    let old = dir.run(&["run", "order-sms"]).await;
    assert_eq!(old.code, 2, "{old:?}");
    assert!(
        old.stderr.contains("was moved to postgres://") && old.stderr.contains("--state"),
        "{old:?}"
    );
    // And back.
    let back = dir
        .run(&[
            "state",
            "migrate",
            "--state",
            &url,
            "--to",
            "flows/.switchboard-back",
        ])
        .await;
    assert_eq!(back.code, 0, "{back:?}");
    dir.append("flows/orders.csv", "A-5,Olga,+380671112234\n");
    let home = dir
        .run(&["run", "order-sms", "--state", "flows/.switchboard-back"])
        .await;
    assert!(home.stdout.contains("new 1, sent 1"), "{home:?}");
    assert_eq!(bodies(&server).await.len(), 5);
}

#[tokio::test]
async fn pruning_gives_the_space_back_and_vacuum_reports_the_file() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    let mut csv = String::from("order_id,name,phone\n");
    for i in 1..=2000 {
        csv.push_str(&format!(
            "A-{i},A customer with a name long enough to weigh,+38050{i:07}\n"
        ));
    }
    dir.write("flows/orders.csv", &csv);
    dir.write(
        "flows/order-sms.yaml",
        &format!("{FLOW}history: {{keep_runs: 1, forget_handled: true}}\n"),
    );
    let first = dir.run(&["run", "order-sms"]).await;
    assert!(first.stdout.contains("sent 2000"), "{first:?}");
    dir.write(
        "flows/orders.csv",
        "order_id,name,phone\nB-1,Late,+380509999999\n",
    );
    let second = dir.run(&["run", "order-sms"]).await;
    assert!(second.stdout.contains("sent 1"), "{second:?}");
    let db = dir.path().join("flows/.switchboard/state.db");
    let before = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    let prune = dir.run(&["prune", "order-sms"]).await;
    assert_eq!(prune.code, 0, "{prune:?}");
    let after = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    assert!(
        after < before / 2,
        "the file shrinks after a prune: {before} -> {after} bytes"
    );
    let vacuum = dir.run(&["state", "vacuum"]).await;
    assert_eq!(vacuum.code, 0, "{vacuum:?}");
    assert!(vacuum.stdout.contains("bytes before"), "{vacuum:?}");
}
