//! The boundary between the engine and connectors: what a source yields and what a
//! receiver is asked to do, with failures classified so delivery knows what to retry.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::record::Record;

/// What one fetch from a source produced.
#[derive(Debug, Default)]
pub struct Fetched {
    pub records: Vec<Record>,
    /// Rows that could not be read (a malformed CSV line): each fails alone.
    pub rejects: Vec<Reject>,
}

/// A row the source could not turn into a record.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    /// Where it was (`line 7`).
    pub key: String,
    pub reason: String,
}

/// A source failed as a whole (file missing, permission denied, remote error).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// A source's records in chunks, in order, as they are read (see [`Source::stream`]).
pub type Chunks = tokio::sync::mpsc::Receiver<Result<Fetched, SourceError>>;

/// Where records come from.
#[async_trait]
pub trait Source: Send + Sync {
    /// Read the records that are there now.
    async fn fetch(&self) -> Result<Fetched, SourceError>;

    /// Read the records in chunks of about `size`, so a run holds one chunk at a time
    /// rather than the whole source. An error ends the stream. By default: everything
    /// [`Source::fetch`] returns, as one chunk.
    async fn stream(&self, _size: usize) -> Chunks {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let _ = tx.send(self.fetch().await).await;
        rx
    }

    /// The field names records will have, when knowable without fetching (a CSV header).
    fn known_fields(&self) -> Option<Vec<String>> {
        None
    }
}

/// A look-up (`lookup:` in a flow): what a service knows about a record, found by a
/// query rendered from it. `Ok(None)` is "nothing found"; errors are classified like
/// sends (transient ones are retried).
#[async_trait]
pub trait Lookup: Send + Sync {
    async fn find(&self, query: &str) -> Result<Option<Value>, SendError>;
}

/// The source of a push flow: the events the daemon queued in the state.
pub struct Queued(pub std::sync::Arc<dyn crate::state::FlowState>);

#[async_trait]
impl Source for Queued {
    async fn fetch(&self) -> Result<Fetched, SourceError> {
        let records = self
            .0
            .queued()
            .map_err(|e| SourceError(format!("cannot read the event queue: {e}")))?;
        Ok(Fetched {
            records,
            rejects: Vec::new(),
        })
    }
}

/// How a prepared request travels: an HTTP method, or an e-mail's SMTP conversation.
/// Typed, so a misspelt method is a compile error in a connector and a clear error in
/// the one place a person writes it (the generic HTTP receiver's `method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    /// `MAIL FROM` / `RCPT TO` / `DATA`.
    Smtp,
}

impl Method {
    /// The HTTP methods, as people and services write them.
    pub const HTTP: [Method; 7] = [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
        Method::Options,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Smtp => "SMTP",
        }
    }

    /// An HTTP method as a person writes it (any case).
    pub fn http(name: &str) -> Option<Method> {
        let name = name.trim();
        Method::HTTP
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(name))
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Method {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A request ready to send: what a preview shows and what `send` transmits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prepared {
    pub method: Method,
    /// The URL, with no secret in it.
    pub url: String,
    /// The JSON body.
    pub body: Value,
    /// Facts worth showing in a preview (`encoding: GSM-7`, `parts: 1`).
    pub notes: Map<String, Value>,
}

/// What the receiver said when it accepted a record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delivered {
    /// The service's id for it (8x8's `umid`).
    pub remote_id: Option<String>,
}

/// Why a send did not succeed, classified for the retry policy.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again: timeouts, connection errors, 429, 5xx.
    #[error("{reason}")]
    Transient {
        reason: String,
        /// The service asked to wait this long (`Retry-After`).
        retry_after: Option<Duration>,
    },
    /// Will fail the same way again: the service refused this record.
    #[error("{}", with_code(code, message))]
    Permanent {
        code: Option<String>,
        message: String,
    },
    /// The account's credentials were refused; every record of the account will fail.
    #[error("{}", with_code(code, message))]
    Unauthorized {
        code: Option<String>,
        message: String,
    },
    /// The record may have been delivered: the connection ended (or went silent) after
    /// the whole request was sent and before the service answered. Sending it again could
    /// deliver it twice, so it is not retried: it is parked as uncertain, for a person to
    /// check and replay (`switchboard replay FLOW --uncertain`).
    #[error("{reason}")]
    Uncertain { reason: String },
}

impl SendError {
    pub fn permanent(message: impl Into<String>) -> Self {
        SendError::Permanent {
            code: None,
            message: message.into(),
        }
    }

    /// The service's own error code, if it gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            SendError::Transient { .. } | SendError::Uncertain { .. } => None,
            SendError::Permanent { code, .. } | SendError::Unauthorized { code, .. } => {
                code.as_deref()
            }
        }
    }
}

fn with_code(code: &Option<String>, message: &str) -> String {
    match code {
        Some(code) => format!("{code}: {message}"),
        None => message.to_string(),
    }
}

/// Where records go.
#[async_trait]
pub trait Receiver: Send + Sync {
    /// Check the mapped fields and build the request, without sending anything.
    /// `reference` identifies the flow and record (for the service's client reference).
    fn prepare(&self, fields: Map<String, Value>, reference: &str) -> Result<Prepared, SendError>;

    /// Send a prepared request once. Retries are the engine's business.
    async fn send(&self, request: &Prepared) -> Result<Delivered, SendError>;

    /// How many records one [`Receiver::send_batch`] call may carry (1: no batching).
    fn batch_size(&self) -> usize {
        1
    }

    /// Send several prepared requests as one, with one result per request, in order.
    /// A failure of the whole call is that failure for every request.
    async fn send_batch(&self, requests: &[Prepared]) -> Vec<Result<Delivered, SendError>> {
        let mut results = Vec::with_capacity(requests.len());
        for request in requests {
            results.push(self.send(request).await);
        }
        results
    }
}
