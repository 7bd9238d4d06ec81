//! Switchboard connectors: one folder per service, each with its sections (`config.rs`:
//! types, parsing with `file:line:col`, field specs, its [`card::Card`]), client,
//! stand-in and tests, and one [`Connector`] implementation. [`CONNECTORS`] is the
//! registry, one line per connector; the [`catalogue`] serves it to `flows` (parsing
//! connector sections) and builds live sources, receivers and look-ups through it.
//! Shared HTTP concerns (client settings, error classification, `Retry-After`) live once
//! in [`http`]. Connectors never touch the engine's state.

pub mod alerts;
pub mod aranda;
pub mod card;
pub mod catalogue;
pub mod check;
pub mod cinnox;
pub mod confine;
pub mod connector;
pub mod csv;
pub mod declared;
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
pub mod telegram;
pub mod textrequest;
pub mod webhook;
pub mod xlsx;

#[cfg(test)]
mod testkit;

pub use catalogue::{build_lookup, build_receiver, build_source, load_project, Catalogue};
pub use connector::Connector;

/// Every connector, in the order people see them: the registry. A new connector is its
/// folder, its `mod` line above and one line here.
pub static CONNECTORS: &[&dyn Connector] = &[
    &csv::CsvConnector,
    &xlsx::XlsxConnector,
    &google_sheets::GoogleSheetsConnector,
    &webhook::WebhookConnector,
    &cinnox::CinnoxConnector,
    &textrequest::TextRequestConnector,
    &eightxeight::EightXEightConnector,
    &aranda::ArandaConnector,
    &httpreq::HttpConnector,
    &smtp::SmtpConnector,
    &telegram::TelegramConnector,
    &alerts::AlertsConnector,
];
