//! Which state serves which flows directory. A state knows what was sent only for the
//! flows it ran: the same flows directory pointed at another state (another `--state`, a
//! fresh database) would send every row again, silently. So each side remembers the
//! other — the state its flows directory, the directory (`.switchboard/state.json`
//! beside the flows) its state's identity — and a state that is not the one the
//! directory was run with is refused until a person accepts it (`--accept-state-loss`),
//! as for a state that lost data. Moving a flows directory along with its state, or a
//! state with its directory, is not a change: the identities still match.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{load_meta, save_meta, StateError, Store};

/// The file beside the flows (in `.switchboard/`) naming the state they were run with.
pub const FILE: &str = "state.json";

/// The state-wide meta of the binding (kept under the empty flow name, which no flow has).
const META: &str = "binding";

/// What the state remembers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct InState {
    /// The state's identity.
    id: String,
    /// The flows directory it serves (canonical).
    flows: PathBuf,
}

/// What the flows directory remembers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct InFlows {
    #[serde(default)]
    version: u32,
    /// The identity of the state the flows were run with.
    state_id: String,
    /// Where that state is (a directory, or a database URL without its password).
    state: String,
}

/// Where a state is, for the binding's checks and messages.
#[derive(Debug, Clone)]
pub struct StatePlace<'a> {
    /// How a person names it: a directory, or a database URL without its password.
    pub label: &'a str,
    /// The state directory, for a state kept in one.
    pub dir: Option<&'a Path>,
}

/// Check that `store` is the state the flows in `flows_dir` were run with, and remember
/// the pair. A state the directory was not run with — or, unless the state is a
/// cluster's (`shared`: each node has its copy of the flows), one that serves another
/// directory still bound to it — is refused ([`StateError::Unbound`]) unless `accept`.
pub fn bind(
    store: &dyn Store,
    flows_dir: &Path,
    place: &StatePlace<'_>,
    shared: bool,
    accept: bool,
) -> Result<(), StateError> {
    let meta = store.flow("")?;
    let known: Option<InState> = load_meta(&*meta, META)?;
    let here = std::fs::canonicalize(flows_dir).unwrap_or_else(|_| flows_dir.to_path_buf());
    let id = match &known {
        Some(known) => known.id.clone(),
        None => format!(
            "{:016x}{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>()
        ),
    };
    let file = here.join(".switchboard").join(FILE);
    let flows_say = read(&file);
    let dir = here.display();
    let problem = match &flows_say {
        Some(said) if said.state_id != id => Some(format!(
            "the flows in `{dir}` were run with another state (`{}`), not this one (`{}`): this state does not know which of their rows were sent, so a run would send them again",
            said.state, place.label
        )),
        Some(_) => None,
        None => match &known {
            // A state serving another directory that is still bound to it: two projects
            // would share one memory of what was sent.
            Some(known) if !shared && known.flows != here && bound_to(&known.flows, &id) => Some(format!(
                "this state (`{}`) serves the flows in `{}`, not those in `{dir}`: rows of flows with the same names would be taken for theirs",
                place.label,
                known.flows.display()
            )),
            Some(_) => None,
            // A new state beside a directory whose own state (made before the flows
            // remembered their state) holds runs.
            None => legacy_state(&here, place).map(|other| format!(
                "the flows in `{dir}` were run with the state in `{}`, not this one (`{}`): this state does not know which of their rows were sent, so a run would send them again",
                other.display(),
                place.label
            )),
        },
    };
    if let Some(detail) = problem {
        if !accept {
            return Err(StateError::Unbound { detail });
        }
        tracing::warn!("{detail}; accepted (--accept-state-loss): rows this state does not know may be sent again");
    }
    if known
        .as_ref()
        .is_none_or(|k| (k.flows != here && !shared) || k.id != id)
    {
        save_meta(
            &*meta,
            META,
            &InState {
                id: id.clone(),
                flows: here.clone(),
            },
        )?;
    }
    let says = InFlows {
        version: 1,
        state_id: id,
        state: place.label.to_string(),
    };
    if flows_say.as_ref() != Some(&says) {
        if let Err(e) = write(&file, &says) {
            tracing::warn!(file = %file.display(), "cannot remember which state the flows are run with: {e}");
        }
    }
    Ok(())
}

fn read(file: &Path) -> Option<InFlows> {
    serde_json::from_slice(&std::fs::read(file).ok()?).ok()
}

fn write(file: &Path, says: &InFlows) -> std::io::Result<()> {
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let temporary = file.with_extension("json.tmp");
    std::fs::write(&temporary, serde_json::to_vec_pretty(says)?)?;
    std::fs::rename(&temporary, file)
}

/// Whether the flows directory `flows` exists and names state `id` as its own.
fn bound_to(flows: &Path, id: &str) -> bool {
    read(&flows.join(".switchboard").join(FILE)).is_some_and(|said| said.state_id == id)
}

/// The default state directory beside the flows, when it is not `place` and holds runs
/// (its marker counts them): the state the flows were run with before they named it.
fn legacy_state(flows: &Path, place: &StatePlace<'_>) -> Option<PathBuf> {
    let default = flows.join(".switchboard");
    let same = place.dir.is_some_and(|dir| {
        std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()) == default
    });
    if same {
        return None;
    }
    let marker: serde_json::Value =
        serde_json::from_slice(&std::fs::read(default.join(super::sqlite::guard::MARKER)).ok()?)
            .ok()?;
    (marker["runs"].as_u64().unwrap_or(0) > 0).then_some(default)
}
