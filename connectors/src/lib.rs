//! Switchboard connectors: one folder per service, each with its config, client and
//! tests. Shared HTTP concerns (client settings, error classification, `Retry-After`)
//! live once in [`http`]. [`registry`] turns a flow's configuration into a live
//! [`engine::Source`] and [`engine::Receiver`]. Connectors never touch the engine's state.

pub mod aranda;
pub mod check;
pub mod cinnox;
pub mod csv;
pub mod eightxeight;
pub mod google_sheets;
pub mod http;
pub mod httpreq;
pub mod push;
pub mod registry;
pub mod rows;
pub mod sms;
pub mod textrequest;
pub mod xlsx;

pub use registry::{build_lookup, build_receiver, build_source, check_project};
