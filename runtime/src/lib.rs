//! Switchboard's service, beneath its three front-ends (the JSON API, the console and
//! the CLI): where the project and the state are ([`wiring`]), one run of a flow, the
//! daemon's life — the scheduler's runs, reloads, replays, alerts, pruning, a cluster's
//! leases and the HTTP server the front-ends' routes are served from ([`daemon`]) — its
//! typed operations ([`daemon::ops`]), who may use it ([`access`]), and the words people
//! read about runs ([`report`]). The front-ends render what it answers and do not
//! import each other.

/// `println!` that ends the process quietly when stdout is closed (`switchboard … | head`):
/// the reader has seen enough; that is not a failure, and never a panic. What it prints
/// is made inert for a terminal first ([`report::inert`]): record data carrying escape
/// codes is shown, not obeyed.
#[macro_export]
macro_rules! outln {
    () => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock()) {
            $crate::report::stdout_failed(&e);
        }
    }};
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let line = format!($($arg)*);
        if let Err(e) = writeln!(std::io::stdout().lock(), "{}", $crate::report::inert(&line)) {
            $crate::report::stdout_failed(&e);
        }
    }};
}

// The vocabulary the runtime answers in, for its front-ends (which depend on it alone).
pub use connectors;
pub use engine;
pub use flows;
pub use scheduler;

pub mod access;
pub mod daemon;
pub mod preview;
pub mod prune;
pub mod report;
pub mod scaffold;
pub mod signal;
pub mod wiring;

use std::path::PathBuf;

/// Where the project and its state are, and how the service treats them: what every
/// command and the daemon are given (the CLI's global options).
#[derive(Debug, Clone, Default)]
pub struct Global {
    /// The directory of flow files.
    pub flows: PathBuf,
    /// The accounts file (default: accounts.yaml in the flows directory).
    pub accounts: Option<PathBuf>,
    /// The state directory (default: .switchboard in the flows directory), or a
    /// PostgreSQL database's URL.
    pub state: Option<PathBuf>,
    /// Use a state whose database lost data as it is.
    pub accept_state_loss: bool,
    /// More log output (1 info, 2 debug).
    pub verbose: u8,
}

impl Global {
    /// How its flows directory is loaded: the directory and the accounts file, files
    /// parsed only (callers say what more they want: the connectors' checks, an edit's
    /// text, variables).
    pub fn load_options(&self) -> flows::LoadOptions {
        flows::LoadOptions {
            flows_dir: self.flows.clone(),
            accounts_file: self.accounts.clone(),
            ..flows::LoadOptions::default()
        }
    }
}
