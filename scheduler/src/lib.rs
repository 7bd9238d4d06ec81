//! When flows run. Parsing of `schedule:` lives in the `flows` crate; this crate owns
//! the pure "when is the next run" computations ([`rules`]) — intervals with cadence,
//! daily times with the 5-minute rule, cron, time zones and DST — and the single timer
//! loop ([`timer`]) that fires due flows over an injectable [`Clock`], coalesces
//! triggers and follows `after` chains. It knows nothing of what a flow does: runs are
//! started through a [`timer::Launcher`] the caller provides.

pub mod clock;
pub mod rules;
pub mod timer;

pub use clock::{Clock, SystemClock, TokioClock};
pub use rules::{describe, first_due, next_due, upcoming, Spec};
pub use timer::{
    armed_by_another, BoxFuture, Command, FlowStatus, Launcher, NoStore, Outcome, Persisted,
    Reason, ScheduleStore, StatusBoard, Timer,
};

use flows::Flow;

/// Whether the scheduler would ever start this flow on its own (the auto-update slider
/// is on and it has a schedule). Force-runs ignore this.
pub fn runs_by_itself(flow: &Flow) -> bool {
    flow.enabled && flow.schedule.is_some()
}

/// The `after:` rule of an enabled flow (like every schedule, it applies only when the
/// auto-update slider is on).
pub fn after_of(flow: &Flow) -> Option<flows::After> {
    match &flow.schedule.as_ref()?.rule {
        flows::ScheduleRule::After(after) if flow.enabled => Some(after.clone()),
        _ => None,
    }
}
