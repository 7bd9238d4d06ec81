//! Google Sheets look-up (`lookup:` in a flow): `find_row` reads the range and gives the
//! first row whose `key` column holds the query, as an object named by the header, with
//! `_row` its row number on the sheet; no such row is "not found". An API key reads
//! public sheets; a service account, sheets shared with it.

use std::time::Duration;

use async_trait::async_trait;
use engine::{Lookup, SendError};
use serde_json::Value;

use super::config::{Account, Keyed};
use super::{auth, range};
use crate::http::AccountClient;

/// One sheet whose rows are found by a key column.
pub struct FindRow {
    client: AccountClient,
    account: Account,
    keyed: Keyed,
    timeout: Duration,
}

impl FindRow {
    pub fn new(name: &str, account: &Account, keyed: &Keyed, timeout: Duration) -> FindRow {
        FindRow {
            client: account.client(name),
            account: account.clone(),
            keyed: keyed.clone(),
            timeout,
        }
    }
}

#[async_trait]
impl Lookup for FindRow {
    async fn find(&self, query: &str) -> Result<Option<Value>, SendError> {
        if query.trim().is_empty() {
            return Err(SendError::permanent("the look-up's query is empty"));
        }
        let (table, key) = range::keyed(
            &self.client,
            &self.account,
            &self.keyed,
            auth::READ,
            self.timeout,
        )
        .await?;
        Ok(table.find(key, query).map(|(i, _)| table.record(i)))
    }
}
