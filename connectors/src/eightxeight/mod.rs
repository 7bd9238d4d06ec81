//! 8x8 SMS (`connector: 8x8`): `send_sms` through
//! `POST {base_url}/api/v1/subaccounts/{subaccount_id}/messages` with a bearer key.
//!
//! Before sending it checks what it can locally (the destination is an MSISDN as the
//! spec's pattern has it, the text is not empty; lengths come from the field specs) and
//! works out the SMS encoding and part count for previews. Responses are told apart:
//! 200 `QUEUED` is sent, 200 `REJECTED` and 4xx fail the row with 8x8's code and message,
//! 401 marks the account refused, 429/5xx/timeouts are transient.

mod client;
pub mod config;

pub use client::EightXEight;

#[cfg(test)]
mod tests;
