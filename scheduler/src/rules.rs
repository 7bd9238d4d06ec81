//! The pure core: given a schedule rule, a timezone and an instant, when is the next
//! run. No clocks, no I/O.
//!
//! - `every`: one interval after the last run started (cadence survives restarts).
//! - `at`: daily local times. When the schedule is *armed*, a time not more than five
//!   minutes away first runs the next day. A local time that does not exist (clocks go
//!   forward) runs at the first instant after the gap; one that happens twice (clocks go
//!   back) runs once, at its first occurrence.
//! - `cron`: the expression in the flow's timezone.
//! - `after`: never by time; another flow's completion triggers it.

use std::time::Duration;

use chrono::{DateTime, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use flows::{Flow, ScheduleRule};

/// How far away a daily time must be, when a schedule is armed, to run the same day.
pub const ARMING_MARGIN: Duration = Duration::from_secs(5 * 60);

/// What the scheduler needs to know about a flow.
#[derive(Debug, Clone)]
pub struct Spec {
    pub rule: ScheduleRule,
    pub timezone: Tz,
    pub catch_up: flows::CatchUp,
}

impl Spec {
    /// The flow's time-based schedule, if it runs by itself on time (`after` flows are
    /// started by their leader instead).
    pub fn of(flow: &Flow) -> Option<Spec> {
        Spec::if_enabled(flow).filter(|_| flow.enabled)
    }

    /// The flow's time-based schedule as it would run were it switched on (what `next`
    /// shows for a flow that is off).
    pub fn if_enabled(flow: &Flow) -> Option<Spec> {
        let schedule = flow.schedule.as_ref()?;
        let timed = !matches!(schedule.rule, ScheduleRule::After(_));
        timed.then(|| Spec {
            rule: schedule.rule.clone(),
            timezone: flow.timezone,
            catch_up: schedule.catch_up,
        })
    }

    /// Identifies the schedule: a change of it re-arms the flow.
    pub fn fingerprint(&self) -> String {
        format!("{} | {}", describe(&self.rule), self.timezone)
    }
}

/// The rule in words, as `next` and the API show it.
pub fn describe(rule: &ScheduleRule) -> String {
    match rule {
        ScheduleRule::Every(d) => format!("every {}", humanize(*d)),
        ScheduleRule::At(times) => {
            let times: Vec<String> = times
                .iter()
                .map(|t| t.format("%H:%M").to_string())
                .collect();
            format!("at {}", times.join(", "))
        }
        ScheduleRule::Cron { expr, .. } => format!("cron {expr}"),
        ScheduleRule::After(after) => {
            let on: Vec<&str> = after
                .on
                .iter()
                .map(|r| match r {
                    flows::RunResult::Success => "success",
                    flows::RunResult::Failure => "failure",
                })
                .collect();
            format!("after {} on {}", after.flow, on.join(", "))
        }
    }
}

fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// The first run of a schedule armed at `armed_at`. `last_start` is when the flow last
/// started (it keeps an interval's cadence across restarts).
pub fn first_due(
    spec: &Spec,
    armed_at: DateTime<Utc>,
    last_start: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    match &spec.rule {
        ScheduleRule::Every(d) => after_interval(last_start.unwrap_or(armed_at), *d),
        ScheduleRule::At(times) => next_daily(times, spec.timezone, armed_at, Some(ARMING_MARGIN)),
        ScheduleRule::Cron { schedule, .. } => next_cron(schedule, spec.timezone, armed_at),
        ScheduleRule::After(_) => None,
    }
}

/// The run after one that was due at `due` and started at `started`.
pub fn next_due(spec: &Spec, due: DateTime<Utc>, started: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match &spec.rule {
        ScheduleRule::Every(d) => after_interval(started, *d),
        ScheduleRule::At(times) => next_daily(times, spec.timezone, due.max(started), None),
        ScheduleRule::Cron { schedule, .. } => next_cron(schedule, spec.timezone, due.max(started)),
        ScheduleRule::After(_) => None,
    }
}

/// The next `count` runs of a schedule armed at `armed_at`, if every run started on time.
pub fn upcoming(spec: &Spec, armed_at: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
    let mut out = Vec::with_capacity(count);
    let mut next = first_due(spec, armed_at, None);
    while let Some(due) = next {
        if out.len() >= count {
            break;
        }
        out.push(due);
        next = next_due(spec, due, due);
    }
    out
}

/// `start` plus an interval, or `None` (never) when that passes the end of the calendar:
/// every sum of a time and a user's duration is checked.
fn after_interval(start: DateTime<Utc>, interval: Duration) -> Option<DateTime<Utc>> {
    start.checked_add_signed(chrono::Duration::from_std(interval).ok()?)
}

/// The first daily time after `after` (more than `margin` after, when given).
fn next_daily(
    times: &[NaiveTime],
    tz: Tz,
    after: DateTime<Utc>,
    margin: Option<Duration>,
) -> Option<DateTime<Utc>> {
    let today = after.with_timezone(&tz).date_naive();
    let earliest = match margin {
        Some(m) => after_interval(after, m)?,
        None => after,
    };
    (0..=2)
        .filter_map(|offset| today.checked_add_days(chrono::Days::new(offset)))
        .flat_map(|date| {
            times
                .iter()
                .filter_map(move |t| local_instant(tz, date, *t))
        })
        .find(|instant| *instant > earliest)
}

/// A local date and time as an instant: a time in a DST gap becomes the first instant
/// after the gap, that day; a time that occurs twice becomes its first occurrence. A day
/// the zone skipped whole (Samoa, 30 December 2011) has no times: `None`.
pub fn local_instant(tz: Tz, date: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
    let mut local = date.and_time(time);
    for _ in 0..=(4 * 60) {
        if local.date() != date {
            return None;
        }
        match tz.from_local_datetime(&local) {
            LocalResult::Single(t) => return Some(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(first, _) => return Some(first.with_timezone(&Utc)),
            // In the gap: walk forward to the first local minute that exists again.
            LocalResult::None => local = local.checked_add_signed(chrono::Duration::minutes(1))?,
        }
    }
    None
}

fn next_cron(schedule: &cron::Schedule, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    schedule
        .after(&after.with_timezone(&tz))
        .next()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests;
