//! Text Request contact groups as receiver actions: `create_group`
//! (`POST …/dashboards/{dashboard_id}/groups` `{name, notes}`), `update_group`
//! (`PUT …/groups/{group_id}`, the same body) and `delete_group`
//! (`DELETE …/groups/{group_id}`).

use std::time::Duration;

use async_trait::async_trait;
use engine::{Delivered, Prepared, Receiver, SendError};
use serde_json::{Map, Value};

use super::config::Account;
use crate::http::AccountClient;

/// What a groups receiver does with each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupAction {
    Create,
    Update,
    Delete,
}

/// The contact groups of one dashboard.
pub struct Groups {
    client: AccountClient,
    groups_url: String,
    timeout: Duration,
    action: GroupAction,
}

impl Groups {
    pub fn new(
        name: &str,
        account: &Account,
        dashboard_id: u64,
        action: GroupAction,
        timeout: Duration,
    ) -> Self {
        let client = account.client(name);
        Groups {
            groups_url: client.url(&format!("dashboards/{dashboard_id}/groups")),
            client,
            timeout,
            action,
        }
    }
}

/// A group's number from the record.
fn group_id(fields: &mut Map<String, Value>) -> Result<String, SendError> {
    super::client::take_number(fields, "group_id", "group")
}

#[async_trait]
impl Receiver for Groups {
    fn prepare(
        &self,
        mut fields: Map<String, Value>,
        _reference: &str,
    ) -> Result<Prepared, SendError> {
        let (method, url, body) = match self.action {
            GroupAction::Create => {
                let named = fields
                    .get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| !n.trim().is_empty());
                if !named {
                    return Err(SendError::permanent("a group needs a name"));
                }
                (
                    engine::Method::Post,
                    self.groups_url.clone(),
                    Value::Object(fields),
                )
            }
            GroupAction::Update => {
                let id = group_id(&mut fields)?;
                (
                    engine::Method::Put,
                    format!("{}/{id}", self.groups_url),
                    Value::Object(fields),
                )
            }
            GroupAction::Delete => {
                let id = group_id(&mut fields)?;
                (
                    engine::Method::Delete,
                    format!("{}/{id}", self.groups_url),
                    Value::Null,
                )
            }
        };
        Ok(Prepared {
            method,
            url,
            body,
            notes: Map::new(),
        })
    }

    async fn send(&self, request: &Prepared) -> Result<Delivered, SendError> {
        super::client::send(&self.client, request, self.timeout).await
    }
}
