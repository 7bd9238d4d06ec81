//! The state's behaviour, the same for every backend: each test runs against the SQLite
//! store in a temporary directory and against the PostgreSQL store in a schema of its own
//! (the machine's server at 127.0.0.1:5432, database `test`; `SWITCHBOARD_TEST_POSTGRES`
//! names another), dropped afterwards.

use chrono::Utc;
use serde_json::Map;

use super::*;

/// Where a test's state lives.
trait Place {
    fn open(&self) -> Result<Box<dyn Store>, StateError>;
}

struct SqlitePlace(tempfile::TempDir);

impl Place for SqlitePlace {
    fn open(&self) -> Result<Box<dyn Store>, StateError> {
        Ok(Box::new(SqliteStore::open(self.0.path())?))
    }
}

/// A schema of its own in the test database, dropped when the test ends.
struct PgPlace {
    server: String,
    schema: String,
}

fn postgres_server() -> String {
    std::env::var("SWITCHBOARD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

impl PgPlace {
    /// A schema of its own, or `None` where no server answers: the test is skipped, with
    /// one line saying so — unless `SWITCHBOARD_TEST_REQUIRE` names PostgreSQL (CI).
    fn new() -> Option<PgPlace> {
        static REACHABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        static SAID: std::sync::Once = std::sync::Once::new();
        let reachable = *REACHABLE.get_or_init(|| {
            ::postgres::Client::connect(&postgres_server(), ::postgres::NoTls).is_ok()
        });
        if !reachable {
            let required = std::env::var("SWITCHBOARD_TEST_REQUIRE")
                .unwrap_or_default()
                .split([',', ' '])
                .any(|g| g == "PostgreSQL");
            assert!(!required, "the PostgreSQL tests are required here (SWITCHBOARD_TEST_REQUIRE) but no server answers");
            SAID.call_once(|| {
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "skipped: the PostgreSQL state tests: no server answers at 127.0.0.1:5432 (user postgres, trust auth, database test); start one, or set SWITCHBOARD_TEST_POSTGRES=postgres://…"
                );
            });
            return None;
        }
        Some(PgPlace {
            server: postgres_server(),
            schema: format!("t_{}", hex_id()),
        })
    }
}

fn hex_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

impl Place for PgPlace {
    fn open(&self) -> Result<Box<dyn Store>, StateError> {
        Ok(Box::new(PgStore::open(&format!(
            "{}?schema={}",
            self.server, self.schema
        ))?))
    }
}

impl Drop for PgPlace {
    fn drop(&mut self) {
        if let Ok(mut client) = ::postgres::Client::connect(&self.server, ::postgres::NoTls) {
            let _ = client.batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                self.schema
            ));
        }
    }
}

/// Wait for a mark to be durable (SQLite's group commit runs on a thread of
/// its own; PostgreSQL's commit on the connection's thread).
fn until_durable(durable: Durable) -> Result<(), StateError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StateError::Io(e.to_string()))?
        .block_on(durable)
        .map_err(StateError::NotDurable)
}

/// One test, run against each backend.
macro_rules! both {
    (fn $name:ident($place:ident) $body:block) => {
        mod $name {
            use super::*;

            fn check($place: &dyn Place) -> Result<(), StateError> $body

            #[test]
            fn sqlite() -> Result<(), StateError> {
                let dir = tempfile::tempdir().map_err(|e| StateError::Io(e.to_string()))?;
                check(&SqlitePlace(dir))
            }

            #[test]
            fn postgres() -> Result<(), StateError> {
                match PgPlace::new() {
                    Some(place) => check(&place),
                    None => Ok(()),
                }
            }
        }
    };
}

/// What a sorted chunk remembers of its keys.
fn remembered(sorted: Sorted) -> Vec<Option<Handled>> {
    match sorted {
        Sorted::Keys { remembered, .. } => remembered,
        Sorted::Settled => panic!("a chunk without a print is never settled"),
    }
}

/// An outcome with nothing but its place, key and status.
pub(super) fn outcome(run: u64, seq: u64, key: &str, status: RowStatus) -> RowOutcome {
    RowOutcome {
        version: 1,
        run,
        seq,
        key: key.into(),
        status,
        reason: None,
        code: None,
        remote_id: None,
        attempts: 1,
        retry_next_run: false,
        repeat: false,
        uncertain: false,
        at: Utc::now(),
        record: Map::new(),
        sent: None,
        call: None,
        digest: None,
        steps: Vec::new(),
    }
}

both!(fn queued_events_come_out_in_the_order_they_arrived_and_a_key_queued_again_replaces_it(place) {
    let store = place.open()?;
    let flow = store.flow("hooks")?;
    let event = |key: &str, n: u64| {
        let mut fields = Map::new();
        fields.insert("n".into(), n.into());
        Record::new(key, fields)
    };
    flow.enqueue(&[event("zz", 1), event("aa", 2)])?;
    flow.enqueue(&[event("mm", 3), event("zz", 4)])?;
    let queued = flow.queued()?;
    let order: Vec<(&str, u64)> = queued
        .iter()
        .map(|r| (r.key.as_str(), r.fields["n"].as_u64().unwrap_or(0)))
        .collect();
    assert_eq!(order, [("aa", 2), ("mm", 3), ("zz", 4)], "arrival, not key, order");
    assert!(flow.has_queued()? && !store.flow("other")?.has_queued()?);
    assert_eq!(flow.backlog()?, (3, 0));
    flow.begin_run(Trigger::Event, Utc::now())?;
    flow.record(&[(&outcome(1, 1, "mm", RowStatus::Sent), true)], &[])?;
    assert_eq!(flow.queued()?.len(), 2, "an event leaves the queue with its outcome");
    assert_eq!(flow.drop_handled_from_queue()?, 0, "nothing handled is left behind");
    Ok(())
});

both!(fn events_queued_durably_together_are_each_stored_once_in_their_own_flow(place) {
    // Webhook requests arriving together share one write and one flush (SQLite); each
    // still learns its own fate and finds its events in its own flow's queue.
    let store: std::sync::Arc<dyn Store> = place.open()?.into();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| StateError::Io(e.to_string()))?;
    runtime.block_on(async {
        let calls = (0..200u64).map(|i| {
            let store = std::sync::Arc::clone(&store);
            tokio::spawn(async move {
                let flow = store.flow(if i % 2 == 0 { "even" } else { "odd" })?;
                let mut fields = Map::new();
                fields.insert("n".into(), i.into());
                flow.enqueue_durably(&[Record::new(format!("e-{i}"), fields)])
                    .await
            })
        });
        for call in futures::future::join_all(calls).await {
            call.map_err(|e| StateError::Io(e.to_string()))??;
        }
        Ok::<_, StateError>(())
    })?;
    drop(store);
    let store = place.open()?;
    for (name, parity) in [("even", 0), ("odd", 1)] {
        let queued = store.flow(name)?.queued()?;
        assert_eq!(queued.len(), 100, "{name}: every event once");
        assert!(queued
            .iter()
            .all(|r| r.fields["n"].as_u64().is_some_and(|n| n % 2 == parity)));
    }
    Ok(())
});

both!(fn a_crash_leaves_in_the_ledger_exactly_the_sends_without_an_outcome(place) {
    let store = place.open()?;
    let flow = store.flow("orders")?;
    let run = flow.begin_run(Trigger::Manual, Utc::now())?;
    let entry = |key: &str| InFlight {
        version: 1,
        key: key.into(),
        run: run.id,
        since: Utc::now(),
        record: Map::new(),
        boot: None,
    };
    let (first, durable) = flow.mark_in_flight(run.id, 1, &[entry("A-1"), entry("A-2")])?;
    until_durable(durable)?;
    let (_second, _) = flow.mark_in_flight(run.id, 3, &[entry("A-3")])?;
    assert_eq!(flow.backlog()?, (0, 3));
    // A-1's outcome is stored (its mark not yet settled): only are unknown.
    flow.record(&[(&outcome(run.id, 1, "A-1", RowStatus::Sent), true)], &[])?;
    let ledger = flow.recover()?;
    let mut unknown: Vec<&str> = ledger.entries.iter().map(|e| e.key.as_str()).collect();
    unknown.sort_unstable();
    assert_eq!(unknown, ["A-2", "A-3"]);
    assert_eq!(ledger.marks.len(), 2);
    // Both outcomes stored with the first mark settled: one mark is left, for A-3.
    flow.record(&[(&outcome(run.id, 2, "A-2", RowStatus::Failed), true)], &[first])?;
    let ledger = flow.recover()?;
    assert_eq!(ledger.entries.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), ["A-3"]);
    assert_eq!(ledger.marks.len(), 1);
    // A stopped process's run is found and recorded as interrupted with its counts.
    drop(flow);
    drop(store);
    let store = place.open()?;
    let stale = store.interrupt_stale_runs(Utc::now())?;
    assert_eq!(stale, [("orders".to_string(), 1)]);
    let summary = store.flow("orders")?.run(1)?.unwrap_or_else(|| panic!("run 1"));
    assert_eq!(summary.status, RunStatus::Interrupted);
    assert_eq!((summary.counts.sent, summary.counts.failed), (1, 1));
    Ok(())
});

both!(fn many_keys_are_told_in_the_order_asked_whether_near_far_repeated_or_absent(place) {
    let store = place.open()?;
    // Keys of another flow, one whose name is this one's with more after it, sit around
    // this flow's in the store's order: none of them is this flow's.
    let other = store.flow("order")?;
    let longer = store.flow("orders-eu")?;
    let flow = store.flow("orders")?;
    for state in [&other, &longer, &flow] {
        state.begin_run(Trigger::Manual, Utc::now())?;
    }
    other.record(&[(&outcome(1, 1, "A-0005", RowStatus::Sent), true)], &[])?;
    longer.record(&[(&outcome(1, 1, "A-0500", RowStatus::Sent), true)], &[])?;
    // Every tenth key of a thousand, so that a look-up steps over entries (near) or is
    // further than a short walk (far).
    let kept: Vec<RowOutcome> = (0..1000)
        .step_by(10)
        .map(|n| outcome(1, n, &format!("A-{n:04}"), if n % 20 == 0 { RowStatus::Sent } else { RowStatus::Failed }))
        .collect();
    let rows: Vec<(&RowOutcome, bool)> = kept.iter().map(|o| (o, true)).collect();
    flow.record(&rows, &[])?;
    let asked = [
        "A-0990", "A-0000", "A-0005", "A-0010", "A-0010", "A-0011", "A-0500", "A-0020",
        "A-0990", "B-0000", "A-0700", "", "A-0999", "A-0030", "A-0980",
    ];
    let told = remembered(flow.sort_chunk(None, &asked, 1)?);
    let one_by_one = asked.iter().map(|k| flow.handled(k)).collect::<Result<Vec<_>, _>>()?;
    assert_eq!(told, one_by_one, "the same as asking one key at a time");
    let statuses: Vec<Option<RowStatus>> = told.iter().map(|h| h.as_ref().map(|h| h.status)).collect();
    use RowStatus::{Failed, Sent};
    assert_eq!(
        statuses,
        [
            Some(Failed), Some(Sent), None, Some(Failed), Some(Failed), None, Some(Sent),
            Some(Sent), Some(Failed), None, Some(Sent), None, None, Some(Failed), Some(Sent),
        ]
    );
    assert!(remembered(flow.sort_chunk(None, &[], 1)?).is_empty());
    Ok(())
});

both!(fn small_values_and_pages_of_history_are_kept(place) {
    let store = place.open()?;
    let flow = store.flow("orders")?;
    assert!(flow.load_meta("schedule")?.is_none());
    flow.save_meta("schedule", &serde_json::json!({"next": 5}))?;
    flow.save_meta("schedule", &serde_json::json!({"next": 6}))?;
    assert_eq!(flow.load_meta("schedule")?, Some(serde_json::json!({"next": 6})));
    let mut failed = outcome(1, 1, "F-1", RowStatus::Failed);
    failed.digest = Some("d1".into());
    flow.begin_run(Trigger::Manual, Utc::now())?;
    flow.record(&[(&failed, true)], &[])?;
    let handled = flow.handled("F-1")?.unwrap_or_else(|| panic!("remembered"));
    assert_eq!((handled.run, handled.status, handled.digest.as_deref()), (1, RowStatus::Failed, Some("d1")));
    assert!(!handled.covers(|| "d2".into(), None), "changed data is new again");
    assert!(handled.covers(|| "d1".into(), None), "the same data is not");
    let all: Vec<RowOutcome> = flow.all_rows().collect::<Result<_, _>>()?;
    assert_eq!(all.len(), 1);
    assert_eq!(flow.interrupt_unfinished_runs(Utc::now())?, 1);
    Ok(())
});

both!(fn remembers_keys_with_their_outcome_and_keeps_history(place) {
    let store = place.open()?;
    let flow = store.flow("orders")?;
    let run = flow.begin_run(Trigger::Manual, Utc::now())?;
    assert_eq!(run.id, 1);
    flow.record(&[(&outcome(1, 0, "A-1", RowStatus::Sent), true)], &[])?;
    flow.record(&[(&outcome(1, 1, "A-2", RowStatus::Failed), false)], &[])?;
    assert!(flow.handled("A-1")?.is_some());
    assert!(flow.handled("A-2")?.is_none());
    assert_eq!(flow.rows(1)?.len(), 2);
    assert_eq!(flow.begin_run(Trigger::Manual, Utc::now())?.id, 2);
    assert_eq!(
        flow.runs(10)?.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![2, 1]
    );
    Ok(())
});

both!(fn records_are_found_by_their_values_across_flows_and_pages_of_a_run_are_read(place) {
    let store = place.open()?;
    let orders = store.flow("orders")?;
    let leads = store.flow("leads")?;
    let with_phone = |run, seq, key: &str, phone: &str| {
        let mut row = outcome(run, seq, key, RowStatus::Sent);
        row.record.insert("phone".into(), phone.into());
        row
    };
    let rows: Vec<RowOutcome> = (1..=200)
        .map(|i| with_phone(1, i, &format!("order-{i}"), &format!("+1 555 010 {i:04}")))
        .collect();
    let refs: Vec<(&RowOutcome, bool)> = rows.iter().map(|r| (r, true)).collect();
    let mut first = orders.begin_run(Trigger::Manual, Utc::now())?;
    orders.record(&refs, &[])?;
    first.status = RunStatus::Succeeded;
    orders.save_run(&first)?;
    leads.begin_run(Trigger::Manual, Utc::now())?;
    let lead = with_phone(1, 1, "lead-9", "(555) 010-0042");
    leads.record(&[(&lead, true)], &[])?;

    assert!(
        store.search("+15550100042", 10)?.is_empty(),
        "not indexed yet"
    );
    assert_eq!(orders.index_runs()?, 200);
    assert_eq!(leads.index_runs()?, 0, "its run is under way");
    let mut run = leads.run(1)?.unwrap_or_else(|| panic!("run 1"));
    run.status = RunStatus::Succeeded;
    leads.save_run(&run)?;
    assert_eq!(leads.index_runs()?, 1);
    assert_eq!(leads.index_runs()?, 0, "each run once");
    let mut hits = store.search("+15550100042", 10)?;
    hits.sort_by(|a, b| a.flow.cmp(&b.flow));
    assert_eq!(
        hits,
        [
            Found {
                flow: "leads".into(),
                run: 1,
                seq: 1
            },
            Found {
                flow: "orders".into(),
                run: 1,
                seq: 42
            },
        ]
    );
    assert_eq!(
        store.search("ORDER-7", 1)?,
        [Found {
            flow: "orders".into(),
            run: 1,
            seq: 7
        }]
    );
    // Longer terms match the start of a value; a limit holds.
    assert_eq!(store.search("order-1", 5)?.len(), 5);
    assert!(store.search("nobody", 5)?.is_empty());

    // A page starts inside a chunk and crosses into the next one.
    let page = orders.rows_from(1, 60, 10)?;
    assert_eq!(
        page.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (60..70).collect::<Vec<_>>()
    );
    assert_eq!(orders.rows_from(1, 195, 10)?.len(), 6);
    assert!(orders.rows_from(2, 1, 10)?.is_empty());

    // Pruned records are no longer found.
    let mut run = orders.begin_run(Trigger::Manual, Utc::now())?;
    run.status = RunStatus::Succeeded;
    orders.save_run(&run)?;
    let all = Retention {
        keep_runs: Some(1),
        ..Retention::default()
    };
    orders.prune(&all, false)?;
    assert_eq!(
        store.search("555-010-0042", 10)?,
        [Found {
            flow: "leads".into(),
            run: 1,
            seq: 1
        }]
    );
    Ok(())
});

both!(fn pruning_drops_old_runs_and_their_records_but_keeps_the_handled_keys(place) {
    let store = place.open()?;
    let flow = store.flow("orders")?;
    let other = store.flow("orders-2")?;
    let day = |d: i64| Utc::now() - chrono::Duration::days(d);
    // Runs 1..=5, one a day from 5 days ago; 70 records each (two chunks).
    for (id, d) in (1..=5u64).zip([5, 4, 3, 2, 1]) {
        let mut run = flow.begin_run(Trigger::Schedule, day(d))?;
        let rows: Vec<RowOutcome> = (0..70)
            .map(|i| outcome(id, i, &format!("R{id}-{i}"), RowStatus::Sent))
            .collect();
        let refs: Vec<(&RowOutcome, bool)> = rows.iter().map(|r| (r, true)).collect();
        flow.record(&refs, &[])?;
        run.status = RunStatus::Succeeded;
        run.finished_at = Some(day(d));
        flow.save_run(&run)?;
    }
    other.begin_run(Trigger::Manual, day(9))?;
    let keep_3_days = Retention {
        before: Some(day(3) + chrono::Duration::hours(1)),
        ..Retention::default()
    };
    let counted = flow.prune(&keep_3_days, true)?;
    assert_eq!(
        counted,
        Pruned {
            runs: 3,
            records: 210,
            keys: 0
        }
    );
    assert_eq!(flow.runs(10)?.len(), 5, "a dry run drops nothing");
    assert_eq!(flow.prune(&keep_3_days, false)?, counted);
    assert_eq!(
        flow.runs(10)?.iter().map(|r| r.id).collect::<Vec<_>>(),
        [5, 4]
    );
    assert!(flow.rows(1)?.is_empty() && flow.rows(4)?.len() == 70);
    // The dedupe promise holds: a pruned run's records are still handled.
    assert!(flow.handled("R1-0")?.is_some());
    // Another flow's history is its own.
    assert_eq!(other.runs(10)?.len(), 1);
    // keep_runs: 1 keeps the newest; forget_handled drops the keys of what it prunes.
    let newest_only = Retention {
        keep_runs: Some(1),
        forget_handled: true,
        ..Retention::default()
    };
    assert_eq!(
        flow.prune(&newest_only, false)?,
        Pruned {
            runs: 1,
            records: 70,
            keys: 70
        }
    );
    assert!(flow.handled("R4-0")?.is_none() && flow.handled("R5-0")?.is_some());
    // The newest run stays whatever the rule.
    let everything = Retention {
        before: Some(Utc::now()),
        ..Retention::default()
    };
    assert_eq!(flow.prune(&everything, false)?.runs, 0);
    assert_eq!(flow.runs(10)?.len(), 1);
    Ok(())
});

both!(fn flows_share_trees_but_not_keys(place) {
    let store = place.open()?;
    let (a, ab) = (store.flow("a")?, store.flow("ab")?);
    a.begin_run(Trigger::Manual, Utc::now())?;
    a.record(&[(&outcome(1, 0, "K", RowStatus::Sent), true)], &[])?;
    assert!(a.handled("K")?.is_some() && ab.handled("K")?.is_none());
    assert_eq!(
        ab.begin_run(Trigger::Manual, Utc::now())?.id,
        1,
        "run ids count per flow"
    );
    assert_eq!((a.runs(10)?.len(), ab.runs(10)?.len()), (1, 1));
    assert!(ab.rows(1)?.is_empty());
    a.read_to_end(1, true)?;
    assert!(a.primed()? && !ab.primed()?);
    Ok(())
});

both!(fn a_second_process_is_told_the_directory_is_in_use(place) {
    let _first = place.open()?;
    // SQLite's lock file is held per open, PostgreSQL's lock per connection: a second
    // open in the same process fails to lock, which is what a second process sees.
    match place.open() {
        Err(StateError::Locked(_)) => Ok(()),
        Err(other) => panic!("expected Locked, got {other}"),
        Ok(_) => panic!("a second open of a held state directory succeeded"),
    }
});

both!(fn a_page_of_a_run_holds_its_records_whatever_order_they_ended_in(place) {
    let store = place.open()?;
    let flow = store.flow("orders")?;
    flow.begin_run(Trigger::Manual, Utc::now())?;
    // Sends end out of order: the odd records first (two chunks), then the even ones.
    for parity in [1, 0] {
        let rows: Vec<RowOutcome> = (1..=200u64)
            .filter(|seq| seq % 2 == parity)
            .map(|seq| outcome(1, seq, &format!("R-{seq}"), RowStatus::Sent))
            .collect();
        let refs: Vec<(&RowOutcome, bool)> = rows.iter().map(|r| (r, true)).collect();
        flow.record(&refs, &[])?;
    }
    let seqs = |rows: Vec<RowOutcome>| rows.into_iter().map(|r| r.seq).collect::<Vec<_>>();
    assert_eq!(seqs(flow.rows_from(1, 101, 10)?), (101..111).collect::<Vec<_>>());
    assert_eq!(seqs(flow.rows_from(1, 1, 3)?), [1, 2, 3]);
    assert_eq!(seqs(flow.rows_from(1, 195, 100)?), (195..=200).collect::<Vec<_>>());
    let mut paged = Vec::new();
    let mut from = 1;
    loop {
        let page = seqs(flow.rows_from(1, from, 64)?);
        let Some(last) = page.last().copied() else { break };
        paged.extend(page);
        from = last + 1;
    }
    assert_eq!(paged, (1..=200).collect::<Vec<_>>(), "every record once, in order");
    Ok(())
});

/// Two nodes of a cluster on one schema.
type Node = (PgStore, Arc<dyn Cluster>);

fn two_nodes(place: &PgPlace) -> Result<(Node, Node), StateError> {
    let url = format!("{}?schema={}", place.server, place.schema);
    let node = |name: &str| -> Result<Node, StateError> {
        let store = PgStore::open_cluster(&url, name)?;
        let cluster = store
            .cluster()
            .ok_or_else(|| StateError::Io("no cluster".into()))?;
        Ok((store, cluster))
    };
    Ok((node("node-a")?, node("node-b")?))
}

fn terms(ttl_ms: u64) -> LeaseTerms {
    LeaseTerms {
        send_for: std::time::Duration::from_millis(ttl_ms),
        ttl: std::time::Duration::from_millis(ttl_ms),
    }
}

fn taken(claim: Claim) -> Lease {
    match claim {
        Claim::Taken(lease) => lease,
        Claim::Busy { node } => panic!("the lease is held by {node}"),
    }
}

#[test]
fn a_flow_is_leased_to_one_node_and_a_trigger_left_meanwhile_runs_once_more(
) -> Result<(), StateError> {
    let Some(place) = PgPlace::new() else {
        return Ok(());
    };
    let ((_a, ca), (_b, cb)) = two_nodes(&place)?;
    // A store opened alone is refused while a cluster holds the schema.
    assert!(matches!(
        PgStore::open(&format!("{}?schema={}", place.server, place.schema)),
        Err(StateError::Locked(_))
    ));
    let lease = taken(ca.lease("f", terms(60_000))?);
    match cb.lease("f", terms(60_000))? {
        Claim::Busy { node } => assert_eq!(node, "node-a"),
        Claim::Taken(_) => panic!("two nodes hold one flow"),
    }
    assert_eq!(cb.holders()?.get("f").map(String::as_str), Some("node-a"));
    // Two triggers left while it runs: one more run.
    assert!(cb.leave_pending("f", "schedule")?);
    assert!(cb.leave_pending("f", "event")?);
    assert_eq!(ca.release(&lease)?.as_deref(), Some("schedule"));
    assert!(matches!(cb.lease("f", terms(60_000))?, Claim::Busy { .. }));
    assert_eq!(ca.release(&lease)?, None);
    // Given back: nobody to leave a trigger with; the other node takes it.
    assert!(!cb.leave_pending("f", "schedule")?);
    let theirs = taken(cb.lease("f", terms(60_000))?);
    assert!(theirs.fence > lease.fence);
    let run = theirs.state.begin_run(Trigger::Manual, Utc::now())?;
    assert_eq!(run.node.as_deref(), Some("node-b"));
    Ok(())
}

#[test]
fn a_scheduled_fire_is_won_by_one_node() -> Result<(), StateError> {
    let Some(place) = PgPlace::new() else {
        return Ok(());
    };
    let ((a, ca), (b, cb)) = two_nodes(&place)?;
    let due = Utc::now();
    assert!(ca.claim_fire("f", due)?);
    assert!(!cb.claim_fire("f", due)?);
    assert!(!ca.claim_fire("f", due)?);
    assert!(cb.claim_fire("f", due + chrono::Duration::seconds(2))?);
    assert!(cb.claim_fire("g", due)?);
    // Arming a schedule: the first to replace what both read wins; the other sees it.
    let (fa, fb) = (a.flow("f")?, b.flow("f")?);
    let (one, two) = (
        serde_json::json!({"next": 1}),
        serde_json::json!({"next": 2}),
    );
    assert!(fa.replace_meta("schedule", None, &one)?);
    assert!(!fb.replace_meta("schedule", None, &two)?);
    assert!(fb.replace_meta("schedule", Some(&one), &two)?);
    assert!(!fa.replace_meta("schedule", Some(&one), &one)?);
    assert_eq!(fa.load_meta("schedule")?, Some(two));
    Ok(())
}

#[test]
fn a_node_whose_lease_was_taken_over_cannot_write_for_the_flow() -> Result<(), StateError> {
    let Some(place) = PgPlace::new() else {
        return Ok(());
    };
    let ((a, ca), (_b, cb)) = two_nodes(&place)?;
    let old = taken(ca.lease("f", terms(300))?);
    let run = old.state.begin_run(Trigger::Manual, Utc::now())?;
    let entry = InFlight {
        version: 1,
        key: "k1".into(),
        run: run.id,
        since: Utc::now(),
        record: Map::new(),
        boot: None,
    };
    let (mark, durable) = old.state.mark_in_flight(run.id, 1, &[entry])?;
    until_durable(durable)?;
    // Node a stops renewing (it is paused); past the lease, node b takes the flow over.
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert_eq!(cb.abandoned()?, vec!["f".to_string()]);
    let new = taken(cb.lease("f", terms(60_000))?);
    assert!(cb.abandoned()?.is_empty());
    let ledger = new.state.recover()?;
    assert_eq!(
        ledger.entries.len(),
        1,
        "the send a left in flight is b's to settle"
    );
    // Node a wakes up: its late writes are refused by the database (the fencing number
    // it holds is not the lease's) — the outcomes it sent before it knew, then, once it
    // knows, by itself; its renewal fails.
    let mut late = outcome(run.id, 1, "k1", RowStatus::Sent);
    late.remote_id = Some("late".into());
    old.state.record(&[(&late, true)], &[mark])?; // submitted; refused when it runs
    let _ = old.state.handled("k1")?; // after it, on the same connection
    assert!(matches!(
        old.state.mark_in_flight(run.id, 2, &[]),
        Err(StateError::Fenced(_))
    ));
    assert!(matches!(
        old.state.record(&[(&late, true)], &[]),
        Err(StateError::Fenced(_))
    ));
    assert!(matches!(
        old.state.save_run(&run),
        Err(StateError::Fenced(_))
    ));
    assert!(!ca.renew(&old)?);
    assert_eq!(
        new.state.handled("k1")?,
        None,
        "nothing of a's was recorded"
    );
    assert_eq!(new.state.recover()?.entries.len(), 1);
    // Other flows of node a are not affected.
    a.flow("g")?.save_meta("x", &serde_json::json!(1))?;
    assert!(a.flow("g")?.load_meta("x")?.is_some());
    Ok(())
}

both!(fn a_settled_chunk_is_told_until_one_of_its_keys_may_be_new_again(place) {
    let store = place.open()?;
    let flow = store.flow("orders")?;
    let other = store.flow("orders-eu")?;
    let print = |n: &str| {
        ChunkPrint::of(
            &[Record::new(n, Map::new())],
            None,
            None,
        )
    };
    let run = flow.begin_run(Trigger::Manual, Utc::now())?.id;
    let sent: Vec<RowOutcome> = ["A", "B", "C"]
        .iter()
        .enumerate()
        .map(|(i, key)| outcome(run, i as u64, key, RowStatus::Sent))
        .collect();
    flow.record(&sent.iter().map(|o| (o, true)).collect::<Vec<_>>(), &[])?;

    // Sorting a chunk tells whether it is settled (and notes it seen by the run), or
    // gives the note that settles it once its records are remembered.
    let sort = |flow: &dyn FlowState, n: &str, run: u64| -> Result<Option<ChunkNote>, StateError> {
        Ok(match flow.sort_chunk(Some(print(n)), &[], run)? {
            Sorted::Settled => None,
            Sorted::Keys { note, .. } => Some(note.unwrap_or_else(|| panic!("a chunk with a print gets a note"))),
        })
    };
    let settled = |flow: &dyn FlowState, n: &str, run: u64| Ok::<_, StateError>(sort(flow, n, run)?.is_none());

    let note = sort(&*flow, "1", run)?.unwrap_or_else(|| panic!("nothing noted yet"));
    flow.settle(note, run)?;
    assert!(settled(&*flow, "1", run)?);
    assert!(!settled(&*other, "1", run)?, "a flow's notes are its own");

    // Neither a new key that fails nor a handled key sent again makes a key new again:
    // a note taken before them is still good after.
    let before_them = sort(&*flow, "1b", run)?.unwrap_or_else(|| panic!("not noted"));
    let failed_new = outcome(run, 3, "D", RowStatus::Failed);
    let sent_again = outcome(run, 4, "A", RowStatus::Sent);
    flow.record(&[(&failed_new, true), (&sent_again, true)], &[])?;
    assert!(settled(&*flow, "1", run)?);
    flow.settle(before_them, run)?;
    assert!(settled(&*flow, "1b", run)?);

    // A handled key judged again (failed now) may be: no note is taken as it was.
    let before_judged = sort(&*flow, "1c", run)?.unwrap_or_else(|| panic!("not noted"));
    let judged = outcome(run, 5, "B", RowStatus::Failed);
    flow.record(&[(&judged, true)], &[])?;
    assert!(!settled(&*flow, "1", run)?);
    flow.settle(before_judged, run)?;
    assert!(!settled(&*flow, "1c", run)?, "a note older than the judgement is not taken");

    // A note made from answers given before keys were forgotten is not taken.
    let before = sort(&*flow, "2", run)?.unwrap_or_else(|| panic!("not noted"));
    let mut summary = flow.run(run)?.ok_or(StateError::Io("no run".into()))?;
    summary.status = RunStatus::Succeeded;
    summary.finished_at = Some(Utc::now());
    flow.save_run(&summary)?;
    flow.begin_run(Trigger::Manual, Utc::now())?;
    let forget = Retention {
        keep_runs: Some(1),
        forget_handled: true,
        ..Retention::default()
    };
    assert!(flow.prune(&forget, false)?.keys > 0);
    flow.settle(before, run)?;
    assert!(!settled(&*flow, "2", run)?);

    // A run that read the whole source keeps the notes of the chunks it saw; one that
    // was pushed its events (it read no whole source) keeps every note.
    for n in ["3", "4"] {
        let note = sort(&*flow, n, 7)?.unwrap_or_else(|| panic!("not noted"));
        flow.settle(note, 7)?;
    }
    assert!(settled(&*flow, "3", 8)?);
    flow.read_to_end(8, false)?;
    assert!(settled(&*flow, "4", 7)?);
    flow.read_to_end(8, true)?;
    assert!(settled(&*flow, "3", 8)?);
    assert!(!settled(&*flow, "4", 8)?);
    Ok(())
});

both!(fn an_interrupted_run_ends_with_its_last_outcome_not_when_it_was_found(place) {
    let store = place.open()?;
    let flow = store.flow("orders")?;
    let began = Utc::now() - chrono::Duration::hours(3);
    let run = flow.begin_run(Trigger::Manual, began)?;
    let mut sent = outcome(run.id, 1, "A-1", RowStatus::Sent);
    sent.at = began + chrono::Duration::seconds(5);
    flow.record(&[(&sent, true)], &[])?;
    // Found by the next process three hours on: the downtime is not the run's.
    assert_eq!(flow.interrupt_unfinished_runs(Utc::now())?, 1);
    let stored = flow.run(run.id)?.unwrap_or_else(|| panic!("the run"));
    assert_eq!(stored.status, RunStatus::Interrupted);
    assert_eq!(stored.finished_at, Some(began + chrono::Duration::seconds(5)));
    assert_eq!(stored.counts.sent, 1);
    Ok(())
});

/// What a state with something of every kind says, the same before and after a move.
fn told(store: &dyn Store) -> Result<serde_json::Value, StateError> {
    let flow = store.flow("orders")?;
    let hooks = store.flow("hooks")?;
    let ledger = flow.recover()?;
    Ok(serde_json::json!({
        "runs": flow.runs(10)?.iter().map(|r| (r.id, r.status)).collect::<Vec<_>>(),
        "rows": flow.rows(1)?.iter().map(|r| r.key.clone()).collect::<Vec<_>>(),
        "a1": flow.handled("A-1")?.map(|h| (h.run, h.status)),
        "a2": flow.handled("A-2")?.map(|h| h.digest),
        "in_flight": ledger.entries.iter().map(|e| e.key.clone()).collect::<Vec<_>>(),
        "primed": flow.primed()?,
        "paused": flow.load_meta("paused")?,
        "queued": hooks.queued()?.iter().map(|r| r.key.clone()).collect::<Vec<_>>(),
        "binding": store.flow("")?.load_meta("binding")?,
    }))
}

#[test]
fn an_old_sled_state_moves_into_sqlite_and_on_to_postgres_and_back_with_nothing_lost(
) -> Result<(), StateError> {
    use super::migrate::{copy, Export};
    // Made by the last sled release: two runs with records (a sent and a failed one), a
    // send left in flight, queued events, a pause, the state's own binding.
    let old_dir = super::sled_import::tests::fixture("every-kind");
    let old = super::sled_import::SledState::open(old_dir.path(), false)?;

    let sqlite_dir = tempfile::tempdir().map_err(|e| StateError::Io(e.to_string()))?;
    let sqlite = SqliteStore::open(sqlite_dir.path())?;
    let moved = copy(&old, &sqlite)?;
    assert_eq!(
        (
            moved.total.runs,
            moved.total.records,
            moved.total.handled,
            moved.total.in_flight,
            moved.total.queued
        ),
        (2, 2, 2, 1, 2)
    );
    let expected = serde_json::json!({
        "runs": [[2, "running"], [1, "succeeded"]],
        "rows": ["A-1", "A-2"],
        "a1": [1, "sent"],
        "a2": "d2",
        "in_flight": ["A-3"],
        "primed": true,
        "paused": {"reason": "x", "at": "2026-12-01T00:00:00Z"},
        "queued": ["e-2", "e-1"],
        "binding": {"id": "abc", "flows": "/srv/flows"},
    });
    assert_eq!(told(&sqlite)?, expected);
    let rows = sqlite.flow("orders")?.rows(1)?;
    assert_eq!(rows[0].remote_id.as_deref(), Some("umid-1"));
    assert_eq!(rows[1].reason.as_deref(), Some("400 bad number"));

    let back_dir = tempfile::tempdir().map_err(|e| StateError::Io(e.to_string()))?;
    let back = SqliteStore::open(back_dir.path())?;
    match PgPlace::new() {
        Some(pg) => {
            let postgres = PgStore::open(&format!("{}?schema={}", pg.server, pg.schema))?;
            copy(&sqlite, &postgres)?;
            assert_eq!(told(&postgres)?, expected);
            copy(&postgres, &back)?;
        }
        None => {
            copy(&sqlite, &back)?;
        }
    }
    assert_eq!(told(&back)?, expected);

    // A target that holds a state already is refused: nothing is mixed.
    let refused = copy(&old, &back);
    assert!(
        matches!(&refused, Err(StateError::Io(e)) if e.contains("already holds a state")),
        "{refused:?}"
    );
    assert!(!back.flow_names()?.is_empty());
    Ok(())
}

both!(fn a_run_the_state_could_not_record_is_failed_with_the_cause_once_it_can(place) {
    let store = place.open()?;
    let flow = store.flow("orders")?;
    let run = flow.begin_run(Trigger::Manual, Utc::now())?;
    let sent = outcome(run.id, 1, "A-1", RowStatus::Sent);
    flow.record(&[(&sent, true)], &[])?;
    // The disk filled up: the run ended without its summary; room again, it is failed
    // with the cause.
    assert_eq!(super::fail_unfinished_runs(&*flow, Utc::now(), "the state could not be written (no space left)")?, 1);
    let stored = flow.run(run.id)?.unwrap_or_else(|| panic!("the run"));
    assert_eq!(stored.status, RunStatus::Failed);
    assert_eq!(stored.error.as_deref(), Some("the state could not be written (no space left)"));
    assert_eq!(stored.counts.sent, 1);
    assert_eq!(super::fail_unfinished_runs(&*flow, Utc::now(), "again")?, 0);
    Ok(())
});

both!(fn failed_since_counts_each_remembered_failure_once_and_none_sent_later(place) {
    let store = place.open()?;
    let flow = store.flow("f")?;
    let first = flow.begin_run(Trigger::Manual, Utc::now())?;
    flow.record(
        &[
            (&outcome(first.id, 1, "A-1", RowStatus::Failed), true),
            (&outcome(first.id, 2, "A-2", RowStatus::Failed), true),
            (&outcome(first.id, 3, "A-3", RowStatus::Sent), true),
        ],
        &[],
    )?;
    // A replay: A-1 fails again, A-2 goes out.
    let replay = flow.begin_run(Trigger::Replay, Utc::now())?;
    flow.record(
        &[
            (&outcome(replay.id, 1, "A-1", RowStatus::Failed), true),
            (&outcome(replay.id, 2, "A-2", RowStatus::Sent), true),
        ],
        &[],
    )?;
    assert_eq!(flow.failed_since(first.id)?, 1, "A-1 once, A-2 sent since");
    assert_eq!(flow.failed_since(replay.id)?, 1);
    assert_eq!(flow.failed_since(replay.id + 1)?, 0);
    Ok(())
});
