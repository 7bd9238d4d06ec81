//! Text Request dashboards (phone lines) as receiver actions: `create_dashboard`
//! (`POST …/dashboards` `{name, phone}`), `rename_dashboard` (`PUT …/dashboards/{id}`
//! `{name}`) and `delete_dashboard` (`DELETE …/dashboards/{id}`), the dashboard's id taken
//! from the record (these act on the account's dashboards, not on the flow's).

use std::time::Duration;

use async_trait::async_trait;
use engine::{Delivered, Prepared, Receiver, SendError};
use serde_json::{Map, Value};

use super::config::Account;
use crate::http::AccountClient;

/// What a dashboards receiver does with each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DashboardAction {
    Create,
    Rename,
    Delete,
}

/// An account's dashboards.
pub struct Dashboards {
    client: AccountClient,
    timeout: Duration,
    action: DashboardAction,
}

impl Dashboards {
    pub fn new(name: &str, account: &Account, action: DashboardAction, timeout: Duration) -> Self {
        Dashboards {
            client: account.client(name),
            timeout,
            action,
        }
    }
}

#[async_trait]
impl Receiver for Dashboards {
    fn prepare(
        &self,
        mut fields: Map<String, Value>,
        _reference: &str,
    ) -> Result<Prepared, SendError> {
        let mut id = || super::client::take_number(&mut fields, "dashboard", "dashboard");
        let (method, path, body) = match self.action {
            DashboardAction::Create => {
                let named = fields
                    .get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| !n.trim().is_empty());
                if !named {
                    return Err(SendError::permanent("a dashboard needs a name"));
                }
                (
                    engine::Method::Post,
                    "dashboards".to_string(),
                    Value::Object(fields),
                )
            }
            DashboardAction::Rename => {
                let id = id()?;
                (
                    engine::Method::Put,
                    format!("dashboards/{id}"),
                    Value::Object(fields),
                )
            }
            DashboardAction::Delete => {
                let id = id()?;
                (
                    engine::Method::Delete,
                    format!("dashboards/{id}"),
                    Value::Null,
                )
            }
        };
        Ok(Prepared {
            method,
            url: self.client.url(&path),
            body,
            notes: Map::new(),
        })
    }

    async fn send(&self, request: &Prepared) -> Result<Delivered, SendError> {
        super::client::send(&self.client, request, self.timeout).await
    }
}
