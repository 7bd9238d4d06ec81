//! When flows run. Parsing of `schedule:` lives in the `flows` crate; this crate will
//! own the pure "next fire after t" computations and the timer loop over an injectable
//! clock. For now it answers the one question the run path needs: is a flow due to run
//! by itself at all.

use flows::Flow;

/// Whether the scheduler would ever start this flow on its own (the auto-update slider
/// is on and it has a schedule). Force-runs ignore this.
pub fn runs_by_itself(flow: &Flow) -> bool {
    flow.enabled && flow.schedule.is_some()
}
