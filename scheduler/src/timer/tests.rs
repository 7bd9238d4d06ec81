//! The timer loop on tokio's paused clock: hours pass in microseconds, no real sleeps.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use chrono::NaiveTime;
use chrono_tz::Europe::Kyiv;
use flows::{After, CatchUp, Pos, RunResult, ScheduleRule};

use super::*;
use crate::clock::TokioClock;

fn t(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.with_timezone(&Utc))
        .expect("it succeeds")
}

fn every(minutes: u64) -> Spec {
    Spec {
        rule: ScheduleRule::Every(Duration::from_secs(minutes * 60)),
        timezone: Kyiv,
        catch_up: CatchUp::Last,
    }
}

fn at(time: &str) -> Spec {
    let time = NaiveTime::parse_from_str(time, "%H:%M").expect("the date parses");
    Spec {
        rule: ScheduleRule::At(vec![time]),
        timezone: Kyiv,
        catch_up: CatchUp::Last,
    }
}

fn after(flow: &str, on: &[RunResult]) -> After {
    After {
        flow: flow.into(),
        on: on.to_vec(),
        pos: Pos::default(),
    }
}

#[derive(Default)]
struct MemStore(Mutex<HashMap<String, Persisted>>);

impl ScheduleStore for MemStore {
    fn load(&self, flow: &str) -> Option<Persisted> {
        self.0.lock().ok()?.get(flow).cloned()
    }
    fn save(&self, flow: &str, state: &Persisted) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(flow.into(), state.clone());
        }
    }
}

/// Records every run start (flow, reason, clock time); runs take `duration` and end
/// with the next scripted result for their flow (success when none is left).
struct Recorder {
    clock: TokioClock,
    duration: Duration,
    log: Mutex<Vec<(String, Reason, DateTime<Utc>)>>,
    script: Mutex<HashMap<String, VecDeque<bool>>>,
}

impl Recorder {
    fn new(clock: TokioClock, duration: Duration) -> Arc<Recorder> {
        Arc::new(Recorder {
            clock,
            duration,
            log: Mutex::default(),
            script: Mutex::default(),
        })
    }

    fn launcher(self: &Arc<Self>) -> Launcher<String> {
        let me = Arc::clone(self);
        Arc::new(move |name: String, reason: Reason| {
            let me = Arc::clone(&me);
            Box::pin(async move {
                if let Ok(mut log) = me.log.lock() {
                    log.push((name.clone(), reason, me.clock.now()));
                }
                tokio::time::sleep(me.duration).await;
                let success = me
                    .script
                    .lock()
                    .ok()
                    .and_then(|mut s| s.get_mut(&name).and_then(VecDeque::pop_front))
                    .unwrap_or(true);
                let report = match reason {
                    Reason::Replay(id) => format!("{name} replay {id} done"),
                    _ => format!("{name} done"),
                };
                Outcome {
                    success,
                    report,
                    skipped: false,
                }
            }) as BoxFuture<Outcome<String>>
        })
    }

    fn runs(&self) -> Vec<(String, Reason, DateTime<Utc>)> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn times(&self, flow: &str) -> Vec<DateTime<Utc>> {
        self.runs()
            .into_iter()
            .filter(|(n, _, _)| n == flow)
            .map(|(_, _, t)| t)
            .collect()
    }
}

struct Running {
    tx: mpsc::UnboundedSender<Command<String>>,
    stop: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<()>,
}

fn start(clock: TokioClock, recorder: &Arc<Recorder>, store: Arc<dyn ScheduleStore>) -> Running {
    start_with(clock, recorder, store, usize::MAX)
}

fn start_with(
    clock: TokioClock,
    recorder: &Arc<Recorder>,
    store: Arc<dyn ScheduleStore>,
    max_runs: usize,
) -> Running {
    let timer = Timer::new(Arc::new(clock), recorder.launcher(), store).with_max_runs(max_runs);
    let tx = timer.sender();
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(timer.run(async {
        let _ = stopped.await;
    }));
    Running {
        tx,
        stop: Some(stop),
        handle,
    }
}

impl Running {
    fn set(&self, name: &str, spec: Option<Spec>, after: Option<After>) {
        self.set_with(name, spec, after, flows::Priority::Normal);
    }

    fn set_with(
        &self,
        name: &str,
        spec: Option<Spec>,
        after: Option<After>,
        priority: flows::Priority,
    ) {
        let _ = self.tx.send(Command::Set {
            name: name.into(),
            spec,
            after,
            priority,
        });
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = self.handle.await;
    }
}

async fn pass(d: Duration) {
    tokio::time::sleep(d).await;
}

const MIN: Duration = Duration::from_secs(60);

#[tokio::test(start_paused = true)]
async fn an_interval_fires_on_its_cadence() {
    let clock = TokioClock::starting_at(t("2026-11-21T12:00:00Z"));
    let rec = Recorder::new(clock, Duration::from_secs(1));
    let timer = start(clock, &rec, Arc::new(MemStore::default()));
    timer.set("f", Some(every(10)), None);
    pass(35 * MIN).await;
    assert_eq!(
        rec.times("f"),
        [
            t("2026-11-21T12:10:00Z"),
            t("2026-11-21T12:20:00Z"),
            t("2026-11-21T12:30:00Z")
        ]
    );
    timer.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_five_minute_rule_holds_on_the_running_loop() {
    let clock = TokioClock::starting_at(t("2026-11-21T12:08:00+02:00"));
    let rec = Recorder::new(clock, Duration::from_secs(1));
    let timer = start(clock, &rec, Arc::new(MemStore::default()));
    timer.set("soon", Some(at("12:10")), None);
    timer.set("later", Some(at("12:20")), None);
    pass(25 * 60 * MIN).await;
    assert_eq!(rec.times("soon"), [t("2026-11-22T12:10:00+02:00")]);
    assert_eq!(
        rec.times("later"),
        [
            t("2026-11-21T12:20:00+02:00"),
            t("2026-11-22T12:20:00+02:00")
        ]
    );
    timer.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_restart_does_not_re_arm_an_unchanged_schedule() {
    let store: Arc<MemStore> = Arc::new(MemStore::default());
    // Armed at 12:04: 12:10 is six minutes away, so it runs today.
    let first = TokioClock::starting_at(t("2026-11-21T12:04:00+02:00"));
    let rec = Recorder::new(first, Duration::from_secs(1));
    let timer = start(first, &rec, store.clone());
    timer.set("f", Some(at("12:10")), None);
    pass(MIN).await;
    timer.stop().await;
    // Restarted at 12:06: re-arming would move 12:10 to tomorrow; an unchanged schedule keeps today.
    let second = TokioClock::starting_at(t("2026-11-21T12:06:00+02:00"));
    let rec = Recorder::new(second, Duration::from_secs(1));
    let timer = start(second, &rec, store.clone());
    timer.set("f", Some(at("12:10")), None);
    pass(10 * MIN).await;
    assert_eq!(rec.times("f"), [t("2026-11-21T12:10:00+02:00")]);
    // A changed schedule is re-armed, with the five-minute rule applied at 12:16.
    timer.set("f", Some(at("12:30")), None);
    pass(MIN).await;
    assert_eq!(
        store.load("f").and_then(|p| p.next_due),
        Some(t("2026-11-21T12:30:00+02:00"))
    );
    timer.set("f", Some(at("12:19")), None);
    pass(MIN).await;
    assert_eq!(
        store.load("f").and_then(|p| p.next_due),
        Some(t("2026-11-22T12:19:00+02:00")),
        "12:19 is two minutes from 12:17"
    );
    timer.stop().await;
}

#[tokio::test(start_paused = true)]
async fn switching_a_flow_back_on_arms_it_afresh() {
    let store: Arc<MemStore> = Arc::new(MemStore::default());
    let clock = TokioClock::starting_at(t("2026-11-21T12:04:00+02:00"));
    let rec = Recorder::new(clock, Duration::from_secs(1));
    let timer = start(clock, &rec, store.clone());
    timer.set("f", Some(at("12:10")), None); // six minutes away: today
    pass(MIN).await;
    timer.set("f", None, None); // the slider off at 12:05
    pass(2 * MIN).await;
    timer.set("f", Some(at("12:10")), None); // on again at 12:07: three minutes away
    pass(10 * MIN).await;
    assert!(
        rec.times("f").is_empty(),
        "re-armed at 12:07, 12:10 moved to tomorrow"
    );
    assert_eq!(
        store.load("f").and_then(|p| p.next_due),
        Some(t("2026-11-22T12:10:00+02:00"))
    );
    timer.stop().await;
}

#[tokio::test(start_paused = true)]
async fn missed_runs_catch_up_once_or_not_at_all() {
    let store: Arc<MemStore> = Arc::new(MemStore::default());
    let hourly = Spec {
        rule: ScheduleRule::Every(Duration::from_secs(3600)),
        timezone: Kyiv,
        catch_up: CatchUp::Last,
    };
    let missed = Persisted {
        fingerprint: hourly.fingerprint(),
        next_due: Some(t("2026-11-18T09:00:00Z")),
        last_start: Some(t("2026-11-18T08:00:00Z")),
    };
    store.save("last", &missed);
    store.save("none", &missed);
    let clock = TokioClock::starting_at(t("2026-11-21T12:00:00Z"));
    let rec = Recorder::new(clock, Duration::from_secs(1));
    let timer = start(clock, &rec, store.clone());
    timer.set("last", Some(hourly.clone()), None);
    timer.set(
        "none",
        Some(Spec {
            catch_up: CatchUp::None,
            ..hourly.clone()
        }),
        None,
    );
    pass(30 * MIN).await;
    assert_eq!(
        rec.times("last"),
        [t("2026-11-21T12:00:00Z")],
        "three days missed: one run on start-up"
    );
    assert!(
        rec.times("none").is_empty(),
        "catch_up: none waits for the next due time"
    );
    pass(60 * MIN).await;
    assert_eq!(
        rec.times("last"),
        [t("2026-11-21T12:00:00Z"), t("2026-11-21T13:00:00Z")]
    );
    assert_eq!(
        rec.times("none"),
        [t("2026-11-21T12:00:00Z") + chrono::Duration::hours(1)]
    );
    timer.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_fire_missed_by_a_timer_starting_as_it_falls_due_is_that_fire_not_a_new_one() {
    // Another node of a cluster armed 12:00 and is firing it; this timer starts a few
    // milliseconds later. Its catch-up is the 12:00 fire (which the cluster lets one node
    // claim), not a fire of its own at 12:00:00.005 that would run the flow again.
    let store: Arc<MemStore> = Arc::new(MemStore::default());
    let hourly = every(60);
    store.save(
        "tick",
        &Persisted {
            fingerprint: hourly.fingerprint(),
            next_due: Some(t("2026-11-21T12:00:00Z")),
            last_start: None,
        },
    );
    let clock = TokioClock::starting_at(t("2026-11-21T12:00:00.005Z"));
    let rec = Recorder::new(clock, Duration::from_secs(1));
    let timer = start(clock, &rec, store.clone());
    timer.set("tick", Some(hourly), None);
    pass(MIN).await;
    let reasons: Vec<Reason> = rec
        .log
        .lock()
        .map(|log| log.iter().map(|(_, reason, _)| *reason).collect())
        .unwrap_or_default();
    assert_eq!(reasons, [Reason::Schedule(t("2026-11-21T12:00:00Z"))]);
    timer.stop().await;
}

#[tokio::test(start_paused = true)]
async fn triggers_while_running_coalesce_into_one_follow_up_run() {
    let clock = TokioClock::starting_at(t("2026-11-21T12:00:00Z"));
    let rec = Recorder::new(clock, 10 * MIN);
    let timer = start(clock, &rec, Arc::new(MemStore::default()));
    timer.set("slow", None, None);
    let (reply_first, first) = oneshot::channel();
    let _ = timer.tx.send(Command::RunNow {
        name: "slow".into(),
        reason: Reason::Manual,
        reply: Some(reply_first),
    });
    pass(MIN).await;
    let mut followers = Vec::new();
    for _ in 0..3 {
        let (reply, wait) = oneshot::channel();
        let _ = timer.tx.send(Command::RunNow {
            name: "slow".into(),
            reason: Reason::Manual,
            reply: Some(reply),
        });
        followers.push(wait);
    }
    pass(30 * MIN).await;
    assert_eq!(
        rec.times("slow"),
        [t("2026-11-21T12:00:00Z"), t("2026-11-21T12:10:00Z")],
        "never twice at once; one follow-up"
    );
    assert_eq!(
        first.await.map(|o| o.report).ok(),
        Some("slow done".to_string())
    );
    for wait in followers {
        assert!(
            wait.await.is_ok(),
            "every caller hears of the follow-up run"
        );
    }
    timer.stop().await;
}

#[tokio::test(start_paused = true)]
async fn after_flows_run_when_their_leader_completes() {
    let clock = TokioClock::starting_at(t("2026-11-21T12:00:00Z"));
    let rec = Recorder::new(clock, Duration::from_secs(5));
    if let Ok(mut s) = rec.script.lock() {
        s.insert("import".into(), VecDeque::from([true, false]));
    }
    let timer = start(clock, &rec, Arc::new(MemStore::default()));
    timer.set("import", Some(every(10)), None);
    timer.set(
        "on-success",
        None,
        Some(after("import", &[RunResult::Success])),
    );
    timer.set(
        "on-failure",
        None,
        Some(after("import", &[RunResult::Failure])),
    );
    timer.set(
        "on-both",
        None,
        Some(after("import", &[RunResult::Success, RunResult::Failure])),
    );
    timer.set(
        "chained",
        None,
        Some(after("on-success", &[RunResult::Success])),
    );
    pass(25 * MIN).await;
    let at = |m: i64, s: i64| {
        t("2026-11-21T12:00:00Z") + chrono::Duration::minutes(m) + chrono::Duration::seconds(s)
    };
    assert_eq!(rec.times("import"), [at(10, 0), at(20, 0)]);
    assert_eq!(
        rec.times("on-success"),
        [at(10, 5)],
        "only after the successful run"
    );
    assert_eq!(
        rec.times("on-failure"),
        [at(20, 5)],
        "only after the failed run"
    );
    assert_eq!(rec.times("on-both"), [at(10, 5), at(20, 5)]);
    assert_eq!(rec.times("chained"), [at(10, 10)], "chains follow in order");
    assert!(rec
        .runs()
        .iter()
        .filter(|(n, _, _)| n != "import")
        .all(|(_, r, _)| *r == Reason::After));
    timer.stop().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_starts_nothing_new_and_waits_for_runs_in_flight() {
    let clock = TokioClock::starting_at(t("2026-11-21T12:00:00Z"));
    let rec = Recorder::new(clock, 3 * MIN);
    let mut timer = start(clock, &rec, Arc::new(MemStore::default()));
    timer.set("f", Some(every(1)), None);
    pass(MIN + Duration::from_secs(10)).await;
    assert_eq!(rec.times("f").len(), 1);
    if let Some(stop) = timer.stop.take() {
        let _ = stop.send(());
    }
    let started = tokio::time::Instant::now();
    let _ = (&mut timer.handle).await;
    let waited = tokio::time::Instant::now() - started;
    assert!(
        waited >= Duration::from_secs(165) && waited <= Duration::from_secs(175),
        "waited {waited:?} for the run in flight"
    );
    assert_eq!(rec.times("f").len(), 1, "no run started after the signal");
}

#[tokio::test(start_paused = true)]
async fn a_disabled_or_removed_flow_never_fires() {
    let clock = TokioClock::starting_at(t("2026-11-21T12:00:00Z"));
    let rec = Recorder::new(clock, Duration::from_secs(1));
    let timer = start(clock, &rec, Arc::new(MemStore::default()));
    timer.set("off", None, None);
    timer.set("gone", Some(every(10)), None);
    let _ = timer.tx.send(Command::Remove {
        name: "gone".into(),
    });
    pass(60 * MIN).await;
    assert!(rec.runs().is_empty());
    timer.stop().await;
}

#[tokio::test(start_paused = true)]
async fn removing_and_restoring_a_running_flow_does_not_run_it_twice_at_once() {
    // `git checkout` or `rsync --delete` remove a flow file and put it back while it runs.
    let clock = TokioClock::starting_at(t("2026-11-21T12:00:00Z"));
    let rec = Recorder::new(clock, 10 * MIN);
    let timer = start(clock, &rec, Arc::new(MemStore::default()));
    timer.set("f", Some(every(60)), None);
    let (reply, first) = oneshot::channel();
    let _ = timer.tx.send(Command::RunNow {
        name: "f".into(),
        reason: Reason::Manual,
        reply: Some(reply),
    });
    pass(MIN).await;
    let _ = timer.tx.send(Command::Remove { name: "f".into() });
    pass(MIN).await;
    timer.set("f", Some(every(60)), None);
    let (reply, second) = oneshot::channel();
    let _ = timer.tx.send(Command::RunNow {
        name: "f".into(),
        reason: Reason::Manual,
        reply: Some(reply),
    });
    pass(30 * MIN).await;
    assert_eq!(
        rec.times("f"),
        [t("2026-11-21T12:00:00Z"), t("2026-11-21T12:10:00Z")],
        "the run in flight stays the flow's; the new trigger waits for it"
    );
    assert_eq!(
        first.await.map(|o| o.report).ok(),
        Some("f done".to_string()),
        "the first caller hears of the run it started, not \"did not start\""
    );
    assert!(second.await.is_ok());
    timer.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_flow_removed_while_running_is_forgotten_when_its_run_ends() {
    let clock = TokioClock::starting_at(t("2026-11-21T12:00:00Z"));
    let rec = Recorder::new(clock, 10 * MIN);
    let timer = start(clock, &rec, Arc::new(MemStore::default()));
    timer.set("f", Some(every(15)), None);
    pass(15 * MIN + Duration::from_secs(1)).await;
    let _ = timer.tx.send(Command::Remove { name: "f".into() });
    pass(120 * MIN).await;
    assert_eq!(rec.times("f"), [t("2026-11-21T12:15:00Z")]);
    timer.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_replay_and_events_during_a_run_all_happen_each_answered_with_its_own_run() {
    let clock = TokioClock::starting_at(t("2026-11-21T12:00:00Z"));
    let rec = Recorder::new(clock, 10 * MIN);
    let timer = start(clock, &rec, Arc::new(MemStore::default()));
    timer.set("f", None, None);
    let _ = timer.tx.send(Command::RunNow {
        name: "f".into(),
        reason: Reason::Manual,
        reply: None,
    });
    pass(MIN).await;
    let (reply, replay) = oneshot::channel();
    let _ = timer.tx.send(Command::RunNow {
        name: "f".into(),
        reason: Reason::Replay(7),
        reply: Some(reply),
    });
    for _ in 0..3 {
        let _ = timer.tx.send(Command::RunNow {
            name: "f".into(),
            reason: Reason::Event,
            reply: None,
        });
    }
    let (reply, other_replay) = oneshot::channel();
    let _ = timer.tx.send(Command::RunNow {
        name: "f".into(),
        reason: Reason::Replay(8),
        reply: Some(reply),
    });
    pass(60 * MIN).await;
    let reasons: Vec<Reason> = rec.runs().into_iter().map(|(_, r, _)| r).collect();
    assert_eq!(
        reasons,
        [
            Reason::Manual,
            Reason::Replay(7),
            Reason::Event,
            Reason::Replay(8)
        ],
        "events coalesce into one run; each replay is its own, in order of arrival"
    );
    assert_eq!(
        replay.await.map(|o| o.report).ok(),
        Some("f replay 7 done".to_string())
    );
    assert_eq!(
        other_replay.await.map(|o| o.report).ok(),
        Some("f replay 8 done".to_string())
    );
    timer.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_launcher_that_panics_ends_its_run_and_the_loop_goes_on() {
    let clock = TokioClock::starting_at(t("2026-11-21T12:00:00Z"));
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let launcher: Launcher<String> = Arc::new(move |_name: String, _reason: Reason| {
        let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async move {
            if n == 0 {
                panic!("a bug in a run");
            }
            Outcome {
                success: true,
                skipped: false,
                report: "fine".to_string(),
            }
        }) as BoxFuture<Outcome<String>>
    });
    let timer = Timer::new(Arc::new(clock), launcher, Arc::new(NoStore));
    let tx = timer.sender();
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(timer.run(async {
        let _ = stopped.await;
    }));
    let _ = tx.send(Command::Set {
        name: "f".into(),
        spec: None,
        after: None,
        priority: flows::Priority::Normal,
    });
    let (reply, first) = oneshot::channel();
    let _ = tx.send(Command::RunNow {
        name: "f".into(),
        reason: Reason::Manual,
        reply: Some(reply),
    });
    let first = first.await.ok();
    assert_eq!(first.map(|o| o.success), Some(false));
    let (reply, second) = oneshot::channel();
    let _ = tx.send(Command::RunNow {
        name: "f".into(),
        reason: Reason::Manual,
        reply: Some(reply),
    });
    assert_eq!(
        second.await.map(|o| o.report).ok(),
        Some("fine".to_string())
    );
    let (reply, pong) = oneshot::channel();
    let _ = tx.send(Command::Ping { reply });
    assert!(pong.await.is_ok(), "the loop answers a health check");
    let _ = stop.send(());
    let _ = handle.await;
}

/// `--max-runs 1`: flows due together start one at a time, the higher priority first,
/// then the one waiting longest; a follow-up waits its turn like the others.
#[tokio::test(start_paused = true)]
async fn when_slots_are_full_priority_then_lateness_decides() {
    let clock = TokioClock::starting_at(t("2026-11-21T12:00:00Z"));
    let rec = Recorder::new(clock, Duration::from_secs(60));
    let timer = start_with(clock, &rec, Arc::new(MemStore::default()), 1);
    timer.set_with("low", Some(every(10)), None, flows::Priority::Low);
    timer.set_with("normal", Some(every(10)), None, flows::Priority::Normal);
    timer.set_with("high", Some(every(10)), None, flows::Priority::High);
    // A force-run takes the one slot first; the three due at 12:10 wait for it.
    let _ = timer.tx.send(Command::RunNow {
        name: "normal-first".into(),
        reason: Reason::Manual,
        reply: None,
    });
    pass(9 * MIN + Duration::from_secs(30)).await;
    let _ = timer.tx.send(Command::RunNow {
        name: "busy".into(),
        reason: Reason::Manual,
        reply: None,
    });
    pass(4 * MIN).await;
    let order: Vec<String> = rec.runs().into_iter().map(|(n, _, _)| n).collect();
    // `busy` (12:09:30) took the slot; at 12:10 the three wait; `high` goes first even
    // though it was set last, then `normal`, then `low`.
    assert_eq!(order, ["normal-first", "busy", "high", "normal", "low"]);
    let started: Vec<DateTime<Utc>> = rec.runs().into_iter().map(|(_, _, at)| at).collect();
    assert_eq!(started[2], t("2026-11-21T12:10:30Z"), "when `busy` ended");
    timer.stop().await;
}

#[test]
fn timers_sharing_a_store_keep_the_schedule_the_first_armed() {
    let at = |due: &str| Persisted {
        fingerprint: "every 10m".into(),
        next_due: Some(t(due)),
        last_start: None,
    };
    let fired = at("2026-11-21T12:10:00Z");
    // The first to fire at 12:10 armed 12:20; another, late by 30 ms, keeps it.
    let theirs = at("2026-11-21T12:20:00Z");
    let mine = at("2026-11-21T12:20:00.030Z");
    assert_eq!(
        armed_by_another(Some(&theirs), Some(&fired), &mine),
        Some(theirs.clone())
    );
    // Nobody armed since: this timer's proposal stands.
    assert_eq!(armed_by_another(Some(&fired), Some(&fired), &mine), None);
    assert_eq!(armed_by_another(None, None, &mine), None);
    // Two timers arming a new flow at once: the second keeps the first's.
    assert_eq!(
        armed_by_another(Some(&theirs), None, &mine),
        Some(theirs.clone())
    );
    // A changed schedule is armed afresh, whatever is stored.
    let changed = Persisted {
        fingerprint: "every 5m".into(),
        ..mine.clone()
    };
    assert_eq!(
        armed_by_another(Some(&theirs), Some(&fired), &changed),
        None
    );
}
