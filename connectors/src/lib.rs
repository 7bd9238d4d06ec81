//! Switchboard connectors: one folder per service, each with its sections (`config.rs`:
//! types, parsing with `file:line:col`, field specs), client and tests. The
//! [`catalogue`] is the registry — one closed enum per role — through which `flows`
//! parses connector sections and from which live sources, receivers and look-ups are
//! built. Shared HTTP concerns (client settings, error classification, `Retry-After`)
//! live once in [`http`]. Connectors never touch the engine's state.

pub mod alerts;
pub mod aranda;
pub mod catalogue;
pub mod check;
pub mod cinnox;
pub mod confine;
pub mod csv;
pub mod eightxeight;
pub mod google_sheets;
pub mod http;
pub mod httpreq;
pub mod push;
pub mod rows;
pub mod sections;
pub mod sms;
pub mod smtp;
pub mod standin;
pub mod textrequest;
pub mod webhook;
pub mod xlsx;

pub use catalogue::{build_lookup, build_receiver, build_source, load_project, Catalogue};
