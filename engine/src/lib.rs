//! The Switchboard run: what happens to records between a source and a receiver.
//!
//! This crate owns the [`Source`] and [`Receiver`] traits, the record type, the
//! Handlebars [`Mapper`] and its helpers, deduplication, delivery (retries, outcomes)
//! and the state of runs behind the [`Store`] and [`FlowState`] traits (seen keys, the
//! send ledger, the event queue, run history), embedded in SQLite by [`SqliteStore`]. It
//! knows no particular service: connectors implement the traits.

mod connector;
mod delivery;
mod formatters;
mod helpers;
pub mod keys;
mod lookup;
mod mapper;
pub mod pause;
mod record;
mod run;
pub mod scrub;
pub mod stages;
mod state;
pub mod steps;
mod stop;
pub mod template;

pub use connector::{
    Chunks, Delivered, Fetched, Lookup, Method, Prepared, Queued, Receiver, Reject, SendError,
    Source, SourceError,
};
pub use delivery::RetryPolicy;
pub use lookup::{LookupFailure, LookupStep};
pub use mapper::{MapError, Mapper, SystemVars};
pub use record::{digest, is_payload_keyed, payload_key, ChunkPrint, Record};
pub use run::{
    handled_before, record_skipped, record_test_send, replay, run_flow, Progress, ReplayFilter,
    RunContext, RunReport,
};
pub use state::binding;
pub use state::migrate;
pub use state::postgres::{is_postgres_url, redact as redact_url};
pub use state::sled_import;
pub use state::sqlite;
pub use state::{
    fail_unfinished_runs, load_meta, progress_key, save_meta, ChunkNote, Claim, Cluster, Counts,
    Durable, FlowState, Handled, InFlight, Lease, LeaseTerms, Ledger, LedgerMark, PgStore, Pruned,
    Retention, RowOutcome, RowStatus, RunStatus, RunSummary, Sorted, SqliteStore, StateError,
    StepOutcome, StepStatus, Store, Trigger,
};
pub use steps::{Attempt, Chain, ChainStep, StepPreview};
pub use stop::{Stop, StopHandle, GRACE as STOP_GRACE};

#[cfg(test)]
mod tests;

/// The characters a URL component keeps as they are: RFC 3986's unreserved ones.
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encode a URL path segment or query value (everything but unreserved
/// characters), so `+380…` travels as `%2B380…` and `Called back & solved` stays one
/// value — and a secret is recognised as it travels in a query a service may echo.
pub fn encode_component(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, UNRESERVED).to_string()
}

/// This boot of the machine (Linux's `boot_id`), if it can be told: a state written
/// without a flush survives the process's death, not the machine's. `None` elsewhere.
pub fn boot_id() -> Option<&'static str> {
    static BOOT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    BOOT.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .map(|id| id.trim().to_string())
            .filter(|id| !id.is_empty())
    })
    .as_deref()
}
