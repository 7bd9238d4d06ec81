//! The Switchboard run: what happens to records between a source and a receiver.
//!
//! This crate owns the [`Source`] and [`Receiver`] traits, the record type, the
//! Handlebars [`Mapper`] and its helpers, deduplication, delivery (retries, outcomes)
//! and the sled-backed [`Store`] (seen keys, run history). It knows no particular
//! service: connectors implement the traits.

mod connector;
mod delivery;
mod helpers;
mod integrity;
mod lookup;
mod mapper;
mod record;
mod run;
pub mod scrub;
mod state;
mod stop;
pub mod template;

pub use connector::{
    Chunks, Delivered, Fetched, Lookup, Prepared, Queued, Receiver, Reject, SendError, Source,
    SourceError,
};
pub use delivery::RetryPolicy;
pub use lookup::{LookupFailure, LookupStep};
pub use mapper::{MapError, Mapper, SystemVars};
pub use record::Record;
pub use run::{replay, run_flow, Progress, ReplayFilter, RunContext, RunReport};
pub use state::{
    Counts, FlowState, InFlight, RowOutcome, RowStatus, RunStatus, RunSummary, StateError, Store,
    Ticket, Trigger,
};
pub use stop::{Stop, StopHandle, GRACE as STOP_GRACE};

#[cfg(test)]
mod tests;
