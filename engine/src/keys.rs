//! A flow whose source's `key:` changed. Rows read again every run are told apart by
//! their key, so under another key every row looks new and would be sent again — silently,
//! to every customer. The state remembers how the flow's rows were keyed; a run under
//! another key is refused (recorded as failed, with the way on) until a person accepts
//! the change ([`accept`]). The accepted run knows the rows handled under the old key by
//! their data: a row whose data matches a row sent (or skipped) before is remembered under
//! its new key without being sent; the others are new and go.

use std::collections::HashSet;

use flows::Flow;
use serde::{Deserialize, Serialize};

use crate::record::Record;
use crate::state::{load_meta, save_meta, FlowState, RowStatus, StateError};

/// The meta key of how the flow's rows were keyed.
const KEYED_BY: &str = "keyed_by";

/// The meta key of a key change a person accepted, for the next run to carry out.
const ACCEPTED: &str = "keyed_by_accepted";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Keyed {
    keyed_by: String,
}

/// What a run is to do about the flow's key.
#[derive(Debug)]
pub(crate) enum KeyCheck {
    /// The key is the one the state knows (or the source's keys are the connector's).
    Same,
    /// The key changed: the run is refused with this message.
    Refused(String),
    /// The key changed and a person accepted it: the rows handled before, by their data.
    Rekey(Earlier),
}

/// The rows a flow handled under its earlier key, by the digest of their data.
#[derive(Debug)]
pub(crate) struct Earlier {
    pub was: String,
    digests: HashSet<u128>,
}

impl Earlier {
    /// Whether a row with this data was sent or skipped under the earlier key.
    pub fn holds(&self, record: &Record, skip: Option<&str>) -> bool {
        self.digests
            .contains(&short(&crate::record::digest(&record.fields, skip)))
    }
}

fn short(digest: &str) -> u128 {
    u128::from_str_radix(digest.get(..32).unwrap_or(digest), 16).unwrap_or_default()
}

/// Check the flow's key against the one its state remembers. A state that remembers
/// none (a first run, or a state older than this check) takes the flow's.
pub(crate) fn check(
    state: &dyn FlowState,
    flow: &Flow,
    skip: Option<&str>,
) -> Result<KeyCheck, StateError> {
    let Some(now) = flow.source.keyed_by.as_deref() else {
        return Ok(KeyCheck::Same);
    };
    let Some(was) = load_meta::<Option<Keyed>>(state, KEYED_BY)?.flatten() else {
        known_key(state, now)?;
        return Ok(KeyCheck::Same);
    };
    if was.keyed_by == now {
        return Ok(KeyCheck::Same);
    }
    let accepted = load_meta::<Option<Keyed>>(state, ACCEPTED)?.flatten();
    if accepted.is_some_and(|a| a.keyed_by == now) {
        let mut digests = HashSet::new();
        for row in state.all_rows() {
            let row = row?;
            if matches!(row.status, RowStatus::Sent | RowStatus::Skipped) && !row.record.is_empty()
            {
                digests.insert(short(&crate::record::digest(&row.record, skip)));
            }
        }
        return Ok(KeyCheck::Rekey(Earlier {
            was: was.keyed_by,
            digests,
        }));
    }
    let name = &flow.name;
    Ok(KeyCheck::Refused(format!(
        "the flow's rows are now told apart by {now}, but its earlier runs told them apart by {}: \
         under the new key every row looks new and would be sent again, so the run is refused\n  \
         hint: put `key:` back as it was; or, to go on with the new key, run `switchboard run {name} --accept-key-change` once: \
         rows handled before are known by their data and not sent again (a row whose data changed since is sent)",
        was.keyed_by
    )))
}

/// Accept the flow's new key: its next run carries the change out ([`KeyCheck::Rekey`]).
/// Whether there was a change to accept.
pub fn accept(state: &dyn FlowState, flow: &Flow) -> Result<bool, StateError> {
    let Some(now) = flow.source.keyed_by.as_deref() else {
        return Ok(false);
    };
    let was = load_meta::<Option<Keyed>>(state, KEYED_BY)?.flatten();
    if was.is_none_or(|was| was.keyed_by == now) {
        return Ok(false);
    }
    save_meta(
        state,
        ACCEPTED,
        &Keyed {
            keyed_by: now.to_string(),
        },
    )?;
    Ok(true)
}

/// After a run under an accepted key read its whole source: every row is remembered
/// under the new key, which the state now knows.
pub(crate) fn settle(state: &dyn FlowState, flow: &Flow) -> Result<(), StateError> {
    if let Some(now) = flow.source.keyed_by.as_deref() {
        known_key(state, now)?;
        save_meta::<Option<Keyed>>(state, ACCEPTED, &None)?;
    }
    Ok(())
}

/// The state knows the flow's records by `keyed_by` from now on.
fn known_key(state: &dyn FlowState, keyed_by: &str) -> Result<(), StateError> {
    save_meta(
        state,
        KEYED_BY,
        &Keyed {
            keyed_by: keyed_by.to_string(),
        },
    )
}
