//! The flow-file format of Switchboard.
//!
//! This crate owns everything a user writes by hand: one flow per `*.yaml` file in a
//! directory, the `accounts.yaml` beside them (with `${VAR}` secrets read from the
//! environment), and whole-directory validation. Every problem is reported at once as
//! `path:line:col: message` with a hint where one helps. It reads files and nothing else:
//! no network, no state, no knowledge of HTTP.

mod accounts;
pub mod alerts;
mod diag;
pub mod edit;
mod fields;
pub mod filter;
mod flow;
mod project;
mod schedule;
pub mod schema;
mod secret;
mod section;
pub mod settings;
pub mod steps;
mod suggest;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod yaml;

pub use accounts::{Account, Accounts, RateLimit};
pub use alerts::Alerts;
pub use diag::{Diagnostic, Pos};
pub use fields::{FieldKind, FieldSpec};
pub use filter::{Filter, Filtered, Verdict};
pub use flow::{
    AutoPause, Backlog, Delivery, Flow, Lookup, MapEntry, MapValue, OneOrMany, Priority, Receiver,
    Source, TOP_LEVEL_KEYS,
};
pub use project::{load_project, LoadOptions, Project};
pub use schedule::{parse_cron, After, CatchUp, RunResult, Schedule, ScheduleRule};
pub use secret::Secret;
pub use section::{
    check_url, AccountSpec, Catalogue, Cx, LookupSpec, ReceiverSpec, Role, Section, SourceSpec,
};
pub use settings::{History, Settings, SETTINGS_FILE};
pub use suggest::{backticked, did_you_mean, hint};

/// Parse one flow file's text on its own (no accounts, no other flows): the flow, or
/// every problem in it with its place.
pub fn parse_flow(
    file: &std::path::Path,
    text: &str,
    catalogue: &dyn Catalogue,
) -> Result<Flow, Vec<Diagnostic>> {
    flow::parse(file, text, catalogue).map(|parsed| parsed.flow)
}

/// The message a caught panic carried, for a report.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// The file name of the accounts file that sits beside the flows.
pub const ACCOUNTS_FILE: &str = "accounts.yaml";

#[cfg(test)]
mod tests;
