//! Aranda Service Management Suite (`connector: aranda`): `create_case`
//! (`POST /case`), `update_case` (`PUT /case/{ticketId}`) and `add_note`
//! (`POST /case/{ticketId}/note?message=…`), with the integration token in `TokenAsms`
//! and the customer's ASMS host in `UrlAsms`. Aranda's error code names come back with
//! the remedy from its connector documentation in the row's error.

mod client;

pub use client::{explain, Action, Aranda};

pub mod config;

#[cfg(test)]
mod tests;
