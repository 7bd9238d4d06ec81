//! The `lookup:` step: before a record is mapped, a service is asked about it (a CINNOX
//! contact by name, an enquiry by case number) and the answer joins the record under
//! `as`, so `map:` can use `{{contact.mobilePhone}}`. Look-ups only read, so they run
//! before the send ledger and may simply be asked again after a crash.

use std::sync::Arc;

use flows::Lookup as LookupConfig;
use handlebars::Handlebars;

use crate::connector::{Lookup, SendError};
use crate::delivery::{with_retry, RetryPolicy};
use crate::record::Record;

/// A flow's look-up, ready to run.
pub struct LookupStep {
    lookup: Arc<dyn Lookup>,
    query: Handlebars<'static>,
    as_name: String,
    required: bool,
    what: String,
}

/// Why a record's look-up failed, and whether a later run may cure it.
#[derive(Debug, Clone, PartialEq)]
pub struct LookupFailure {
    pub reason: String,
    pub code: Option<String>,
    /// Not remembered: the next run asks again (service down, refused credentials).
    pub retry_next_run: bool,
}

impl LookupStep {
    /// The field the answer is added under.
    pub fn as_name(&self) -> &str {
        &self.as_name
    }

    pub fn new(config: &LookupConfig, lookup: Arc<dyn Lookup>) -> Result<LookupStep, String> {
        let mut query = crate::template::registry();
        crate::template::register(&mut query, "query", &config.query)
            .map_err(|problem| format!("lookup: the query template {problem}"))?;
        Ok(LookupStep {
            lookup,
            query,
            as_name: config.as_name.clone(),
            required: config.required,
            what: format!("{} {}", config.connector, config.action),
        })
    }

    /// Find what the service knows about `record` and add it as `as`.
    pub async fn enrich(
        &self,
        record: &mut Record,
        policy: &RetryPolicy,
        stop: &crate::stop::Stop,
    ) -> Result<(), LookupFailure> {
        if let Some(value) = self.answer(&record.fields, policy, stop).await? {
            record.fields.insert(self.as_name.clone(), value);
        }
        Ok(())
    }

    /// What the service knows about the record whose fields are `fields`: `None` when it
    /// found nothing and the look-up is not required.
    pub async fn answer(
        &self,
        fields: &serde_json::Map<String, serde_json::Value>,
        policy: &RetryPolicy,
        stop: &crate::stop::Stop,
    ) -> Result<Option<serde_json::Value>, LookupFailure> {
        crate::helpers::reset_loop_budget();
        let query = self
            .query
            .render("query", fields)
            .map_err(|e| LookupFailure {
                reason: format!("lookup: the query cannot be made: {}", e.reason()),
                code: None,
                retry_next_run: false,
            })?;
        let (found, _) = with_retry(policy, stop, || self.lookup.find(&query)).await;
        match found {
            Ok(Some(value)) => Ok(Some(value)),
            Ok(None) if !self.required => Ok(None),
            Ok(None) => Err(LookupFailure {
                reason: format!(
                    "lookup: {} found nothing for `{query}` (set `required: false` to go on without it)",
                    self.what
                ),
                code: None,
                retry_next_run: false,
            }),
            Err(e) => Err(LookupFailure {
                reason: format!("lookup: {e}"),
                code: e.code().map(String::from),
                retry_next_run: !matches!(e, SendError::Permanent { .. }),
            }),
        }
    }
}
