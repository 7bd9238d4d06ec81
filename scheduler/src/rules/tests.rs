use chrono::{DateTime, Utc};
use chrono_tz::Europe::Kyiv;
use flows::{CatchUp, ScheduleRule};

use super::*;

fn t(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|e| panic!("{rfc3339}: {e}"))
}

fn at(times: &[&str]) -> Spec {
    let times = times
        .iter()
        .map(|s| chrono::NaiveTime::parse_from_str(s, "%H:%M").expect("the date parses"))
        .collect();
    Spec {
        rule: ScheduleRule::At(times),
        timezone: Kyiv,
        catch_up: CatchUp::Last,
    }
}

fn cron(expr: &str) -> Spec {
    let schedule = flows::parse_cron(expr).expect("parse_cron succeeds");
    Spec {
        rule: ScheduleRule::Cron {
            expr: expr.into(),
            schedule: Box::new(schedule),
        },
        timezone: Kyiv,
        catch_up: CatchUp::Last,
    }
}

fn every(minutes: u64) -> Spec {
    Spec {
        rule: ScheduleRule::Every(Duration::from_secs(minutes * 60)),
        timezone: Kyiv,
        catch_up: CatchUp::Last,
    }
}

#[test]
fn a_time_less_than_five_minutes_away_moves_to_tomorrow() {
    assert_eq!(
        first_due(&at(&["12:10"]), t("2026-11-21T12:08:00+02:00"), None),
        Some(t("2026-11-22T12:10:00+02:00"))
    );
}

#[test]
fn a_time_more_than_five_minutes_away_runs_today() {
    assert_eq!(
        first_due(&at(&["12:20"]), t("2026-11-21T12:13:00+02:00"), None),
        Some(t("2026-11-21T12:20:00+02:00"))
    );
}

#[test]
fn exactly_five_minutes_away_is_not_more_than_five_so_it_moves_to_tomorrow() {
    assert_eq!(
        first_due(&at(&["12:15"]), t("2026-11-21T12:10:00+02:00"), None),
        Some(t("2026-11-22T12:15:00+02:00"))
    );
    assert_eq!(
        first_due(&at(&["12:15"]), t("2026-11-21T12:09:59+02:00"), None),
        Some(t("2026-11-21T12:15:00+02:00"))
    );
}

#[test]
fn daily_times_run_in_order_then_every_day() {
    let runs = upcoming(&at(&["09:00", "12:20"]), t("2026-11-21T12:13:00+02:00"), 4);
    assert_eq!(
        runs,
        [
            t("2026-11-21T12:20:00+02:00"),
            t("2026-11-22T09:00:00+02:00"),
            t("2026-11-22T12:20:00+02:00"),
            t("2026-11-23T09:00:00+02:00")
        ]
    );
}

#[test]
fn a_daily_time_in_the_spring_gap_runs_at_the_first_instant_after_it() {
    // Kyiv, 2026-03-29: 03:00 local jumps to 04:00; 03:30 does not exist that day.
    let runs = upcoming(&at(&["03:30"]), t("2026-03-28T12:00:00+02:00"), 3);
    assert_eq!(
        runs,
        [
            t("2026-03-29T04:00:00+03:00"),
            t("2026-03-30T03:30:00+03:00"),
            t("2026-03-31T03:30:00+03:00")
        ]
    );
}

#[test]
fn a_day_the_zone_skipped_has_no_run_and_the_next_day_runs_once() {
    // Samoa moved across the date line: 29 December 2011 23:59:59 (-10) was followed by
    // 31 December 00:00:00 (+14). A daily 12:00 runs on the 29th, then once on the 31st.
    let samoa = Spec {
        timezone: chrono_tz::Pacific::Apia,
        ..at(&["12:00"])
    };
    let runs = upcoming(&samoa, t("2011-12-29T08:00:00-10:00"), 3);
    assert_eq!(
        runs,
        [
            t("2011-12-29T12:00:00-10:00"),
            t("2011-12-31T12:00:00+14:00"),
            t("2012-01-01T12:00:00+14:00")
        ]
    );
}

#[test]
fn a_daily_time_that_happens_twice_in_autumn_runs_once() {
    // Kyiv, 2026-10-25: 04:00 local falls back to 03:00; 03:30 happens at +03 and at +02.
    let runs = upcoming(&at(&["03:30"]), t("2026-10-24T12:00:00+03:00"), 2);
    assert_eq!(
        runs,
        [
            t("2026-10-25T03:30:00+03:00"),
            t("2026-10-26T03:30:00+02:00")
        ]
    );
}

#[test]
fn an_interval_keeps_its_cadence_from_the_last_start() {
    let spec = every(15);
    assert_eq!(
        first_due(&spec, t("2026-11-21T12:00:00Z"), None),
        Some(t("2026-11-21T12:15:00Z"))
    );
    // restarted at 12:40 after a run that started at 12:31: due at 12:46, not 12:55
    assert_eq!(
        first_due(
            &spec,
            t("2026-11-21T12:40:00Z"),
            Some(t("2026-11-21T12:31:00Z"))
        ),
        Some(t("2026-11-21T12:46:00Z"))
    );
    assert_eq!(
        next_due(&spec, t("2026-11-21T12:15:00Z"), t("2026-11-21T12:15:02Z")),
        Some(t("2026-11-21T12:30:02Z"))
    );
}

#[test]
fn cron_runs_in_the_flows_timezone_with_standard_weekdays() {
    // Saturday 2026-11-21: the next weekday 09:00 in Kyiv is Monday.
    for expr in ["0 9 * * MON-FRI", "0 9 * * 1-5"] {
        assert_eq!(
            first_due(&cron(expr), t("2026-11-21T12:08:00+02:00"), None),
            Some(t("2026-11-23T09:00:00+02:00")),
            "{expr}"
        );
    }
    let every_two_seconds = upcoming(&cron("*/2 * * * * *"), t("2026-11-21T12:00:00.500Z"), 3);
    assert_eq!(
        every_two_seconds,
        [
            t("2026-11-21T12:00:02Z"),
            t("2026-11-21T12:00:04Z"),
            t("2026-11-21T12:00:06Z")
        ]
    );
}

#[test]
fn after_never_runs_by_time() {
    let spec = Spec {
        rule: ScheduleRule::After(flows::After {
            flow: "x".into(),
            on: vec![flows::RunResult::Success],
            pos: flows::Pos::default(),
        }),
        timezone: Kyiv,
        catch_up: CatchUp::Last,
    };
    assert_eq!(first_due(&spec, t("2026-11-21T12:00:00Z"), None), None);
    assert_eq!(describe(&spec.rule), "after x on success");
}

#[test]
fn an_interval_past_the_end_of_the_calendar_never_fires_instead_of_panicking() {
    let spec = Spec {
        rule: ScheduleRule::Every(std::time::Duration::from_secs(300_000 * 366 * 86_400)),
        timezone: Kyiv,
        catch_up: CatchUp::Last,
    };
    let now = t("2026-11-21T12:08:00+02:00");
    assert_eq!(first_due(&spec, now, None), None);
    assert_eq!(next_due(&spec, now, now), None);
    assert!(upcoming(&spec, now, 3).is_empty());
}
