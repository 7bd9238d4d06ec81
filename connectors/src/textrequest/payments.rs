//! Text Request payments as receiver actions: `create_payment`
//! (`POST …/dashboards/{dashboard_id}/payments`, the request texted to the contact with a
//! payment link), and `mark_payment_paid`, `send_payment_reminder` and `cancel_payment`
//! (`POST …/payments/{payment_id}/mark_as_paid`, `/resend`, `/cancel`, no body).

use std::time::Duration;

use async_trait::async_trait;
use engine::{Delivered, Prepared, Receiver, SendError};
use serde_json::{Map, Value};

use super::config::Account;
use crate::http::AccountClient;

/// What a payments receiver does with each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentAction {
    Create,
    MarkPaid,
    Remind,
    Cancel,
}

/// Text Request payments of one dashboard.
pub struct Payments {
    client: AccountClient,
    payments_url: String,
    timeout: Duration,
    action: PaymentAction,
}

impl Payments {
    pub fn new(
        name: &str,
        account: &Account,
        dashboard_id: u64,
        action: PaymentAction,
        timeout: Duration,
    ) -> Self {
        let client = account.client(name);
        Payments {
            payments_url: client.url(&format!("dashboards/{dashboard_id}/payments")),
            client,
            timeout,
            action,
        }
    }
}

#[async_trait]
impl Receiver for Payments {
    fn prepare(
        &self,
        mut fields: Map<String, Value>,
        _reference: &str,
    ) -> Result<Prepared, SendError> {
        let (url, body) = match self.action {
            PaymentAction::Create => {
                let phone = match fields.get("customer_phone") {
                    Some(Value::String(p)) => {
                        super::client::phone(p).map_err(SendError::permanent)?
                    }
                    _ => return Err(SendError::permanent("customer_phone is empty")),
                };
                fields.insert("customer_phone".into(), Value::String(phone));
                if !fields
                    .get("amount_requested")
                    .and_then(Value::as_f64)
                    .is_some_and(|a| a > 0.0)
                {
                    return Err(SendError::permanent("amount_requested must be more than 0"));
                }
                (self.payments_url.clone(), Value::Object(fields))
            }
            action => {
                let id = super::client::take_number(&mut fields, "payment_id", "payment")?;
                let verb = match action {
                    PaymentAction::MarkPaid => "mark_as_paid",
                    PaymentAction::Remind => "resend",
                    _ => "cancel",
                };
                (format!("{}/{id}/{verb}", self.payments_url), Value::Null)
            }
        };
        Ok(Prepared {
            method: engine::Method::Post,
            url,
            body,
            notes: Map::new(),
        })
    }

    async fn send(&self, request: &Prepared) -> Result<Delivered, SendError> {
        super::client::send(&self.client, request, self.timeout).await
    }
}
