//! Secrets scrubbed from what services say. A service may echo the key it was sent in an
//! error body (8x8's 401 quotes it, a proxy prints the request's headers), and that text
//! becomes a record's reason, a log line, history on disk and API output. Every secret
//! the accounts file knows is replaced by `**REDACTED**` at the one place such text
//! enters a run: the connectors, wrapped here.

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::connector::{Chunks, Delivered, Fetched, Lookup, Prepared, Receiver, SendError, Source};
use crate::SourceError;

/// What a secret becomes.
pub const REDACTED: &str = "**REDACTED**";

/// Secrets shorter than this are not scrubbed: replacing every `ab` in a text would make
/// it unreadable and protect nothing (no service issues such keys).
const SHORTEST: usize = 6;

/// Replaces known secrets — as written, percent-encoded, JSON-escaped and in base64 (an
/// SMTP server quoting the `AUTH` line it refused; `Authorization: Basic …` echoed) —
/// in text; a secret that is itself base64 of `user:password` (a Basic header's token)
/// is scrubbed decoded too, and its password alone.
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    /// Longest first, so a secret containing another is replaced whole.
    needles: Vec<String>,
}

impl Scrubber {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Scrubber {
        let mut needles: Vec<String> = Vec::new();
        for secret in secrets {
            let secret = secret.trim().to_string();
            if secret.chars().count() < SHORTEST {
                continue;
            }
            let encoded = crate::encode_component(&secret);
            let escaped = serde_json::to_string(&secret)
                .map(|quoted| quoted[1..quoted.len() - 1].to_string())
                .unwrap_or_default();
            needles.extend(in_base64(&secret));
            needles.extend(decoded_basic(&secret));
            needles.extend([secret, encoded, escaped]);
        }
        needles.retain(|n| !n.is_empty());
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        needles.dedup();
        Scrubber { needles }
    }

    /// Whether there is anything to scrub.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `text` with every known secret replaced.
    pub fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = Cow::Owned(out.replace(needle.as_str(), REDACTED));
            }
        }
        out
    }

    /// An owned text, scrubbed.
    pub fn string(&self, text: String) -> String {
        match self.text(&text) {
            Cow::Borrowed(_) => text,
            Cow::Owned(scrubbed) => scrubbed,
        }
    }

    /// Every text in a JSON value, keys included, scrubbed in place.
    pub fn value(&self, value: &mut Value) {
        if self.is_empty() {
            return;
        }
        match value {
            Value::String(s) => {
                if let Cow::Owned(scrubbed) = self.text(s) {
                    *s = scrubbed;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.value(v)),
            Value::Object(map) => self.map(map),
            _ => {}
        }
    }

    /// Every text of a JSON object, keys included, scrubbed in place.
    pub fn map(&self, map: &mut Map<String, Value>) {
        if self.is_empty() {
            return;
        }
        let dirty = map.keys().any(|k| matches!(self.text(k), Cow::Owned(_)));
        if dirty {
            *map = std::mem::take(map)
                .into_iter()
                .map(|(k, v)| (self.string(k), v))
                .collect();
        }
        map.values_mut().for_each(|v| self.value(v));
    }

    /// A send error with its texts scrubbed.
    pub fn error(&self, error: SendError) -> SendError {
        if self.is_empty() {
            return error;
        }
        match error {
            SendError::Transient {
                reason,
                retry_after,
            } => SendError::Transient {
                reason: self.string(reason),
                retry_after,
            },
            SendError::Permanent { code, message } => SendError::Permanent {
                code: code.map(|c| self.string(c)),
                message: self.string(message),
            },
            SendError::Unauthorized { code, message } => SendError::Unauthorized {
                code: code.map(|c| self.string(c)),
                message: self.string(message),
            },
            SendError::Uncertain { reason } => SendError::Uncertain {
                reason: self.string(reason),
            },
        }
    }

    /// A stored run's texts scrubbed (history written before a secret was known as one).
    pub fn summary(&self, summary: &mut crate::RunSummary) {
        if let Some(error) = summary.error.take() {
            summary.error = Some(self.string(error));
        }
    }

    /// A step's outcome scrubbed: its reason, code, id, answer and what it sent.
    pub fn step(&self, step: &mut crate::StepOutcome) {
        for text in [&mut step.reason, &mut step.code, &mut step.remote_id] {
            if let Some(t) = text.take() {
                *text = Some(self.string(t));
            }
        }
        self.value(&mut step.answer);
        if let Some(sent) = &mut step.sent {
            self.value(sent);
        }
    }

    /// A prepared request scrubbed: its URL and body (a preview shows them).
    pub fn request(&self, request: &mut Prepared) {
        request.url = self.string(std::mem::take(&mut request.url));
        self.value(&mut request.body);
    }

    /// A stored outcome's texts scrubbed.
    pub fn outcome(&self, outcome: &mut crate::RowOutcome) {
        if self.is_empty() {
            return;
        }
        for text in [
            &mut outcome.reason,
            &mut outcome.code,
            &mut outcome.remote_id,
            &mut outcome.call,
        ] {
            if let Some(t) = text.take() {
                *text = Some(self.string(t));
            }
        }
        outcome.key = self.string(std::mem::take(&mut outcome.key));
        self.map(&mut outcome.record);
        if let Some(sent) = &mut outcome.sent {
            self.value(sent);
        }
        for step in &mut outcome.steps {
            self.step(step);
        }
    }

    fn delivered(&self, delivered: Delivered) -> Delivered {
        Delivered {
            remote_id: delivered.remote_id.map(|id| self.string(id)),
        }
    }

    fn fetched(&self, mut fetched: Fetched) -> Fetched {
        for reject in &mut fetched.rejects {
            reject.reason = self.string(std::mem::take(&mut reject.reason));
        }
        fetched
    }

    fn source_error(&self, error: SourceError) -> SourceError {
        SourceError(self.string(error.0))
    }
}

/// A secret in base64, with and without padding (standard and URL-safe alphabets).
fn in_base64(secret: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    let bytes = secret.as_bytes();
    vec![
        STANDARD.encode(bytes),
        STANDARD_NO_PAD.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
    ]
}

/// A secret that is base64 of `user:password` (a Basic header's token), decoded: the
/// pair, and the password alone when it is long enough to scrub.
fn decoded_basic(secret: &str) -> Vec<String> {
    use base64::Engine as _;
    let token = secret
        .strip_prefix("Basic ")
        .or_else(|| secret.strip_prefix("basic "))
        .unwrap_or(secret)
        .trim();
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(token) else {
        return Vec::new();
    };
    let Ok(pair) = String::from_utf8(bytes) else {
        return Vec::new();
    };
    let Some((_, password)) = pair.split_once(':') else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if password.chars().count() >= SHORTEST {
        out.push(password.to_string());
    }
    out.push(pair.clone());
    out
}

/// A receiver whose errors and ids are scrubbed.
pub fn receiver(inner: Arc<dyn Receiver>, scrubber: Arc<Scrubber>) -> Arc<dyn Receiver> {
    if scrubber.is_empty() {
        return inner;
    }
    Arc::new(Scrubbed { inner, scrubber })
}

/// A look-up whose answers and errors are scrubbed.
pub fn lookup(inner: Arc<dyn Lookup>, scrubber: Arc<Scrubber>) -> Arc<dyn Lookup> {
    if scrubber.is_empty() {
        return inner;
    }
    Arc::new(Scrubbed { inner, scrubber })
}

/// A source whose errors and rejects are scrubbed (its records are the user's data).
pub fn source(inner: Box<dyn Source>, scrubber: Arc<Scrubber>) -> Box<dyn Source> {
    if scrubber.is_empty() {
        return inner;
    }
    Box::new(Scrubbed {
        inner: Arc::from(inner),
        scrubber,
    })
}

struct Scrubbed<T: ?Sized> {
    inner: Arc<T>,
    scrubber: Arc<Scrubber>,
}

#[async_trait]
impl Receiver for Scrubbed<dyn Receiver> {
    fn prepare(&self, fields: Map<String, Value>, reference: &str) -> Result<Prepared, SendError> {
        self.inner
            .prepare(fields, reference)
            .map_err(|e| self.scrubber.error(e))
    }

    async fn send(&self, request: &Prepared) -> Result<Delivered, SendError> {
        self.inner
            .send(request)
            .await
            .map(|d| self.scrubber.delivered(d))
            .map_err(|e| self.scrubber.error(e))
    }

    fn batch_size(&self) -> usize {
        self.inner.batch_size()
    }

    async fn send_batch(&self, requests: &[Prepared]) -> Vec<Result<Delivered, SendError>> {
        self.inner
            .send_batch(requests)
            .await
            .into_iter()
            .map(|r| {
                r.map(|d| self.scrubber.delivered(d))
                    .map_err(|e| self.scrubber.error(e))
            })
            .collect()
    }
}

#[async_trait]
impl Lookup for Scrubbed<dyn Lookup> {
    async fn find(&self, query: &str) -> Result<Option<Value>, SendError> {
        match self.inner.find(query).await {
            Ok(Some(mut found)) => {
                self.scrubber.value(&mut found);
                Ok(Some(found))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(self.scrubber.error(e)),
        }
    }
}

#[async_trait]
impl Source for Scrubbed<dyn Source> {
    async fn fetch(&self) -> Result<Fetched, SourceError> {
        self.inner
            .fetch()
            .await
            .map(|f| self.scrubber.fetched(f))
            .map_err(|e| self.scrubber.source_error(e))
    }

    async fn stream(&self, size: usize) -> Chunks {
        let mut chunks = self.inner.stream(size).await;
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let scrubber = Arc::clone(&self.scrubber);
        tokio::spawn(async move {
            while let Some(chunk) = chunks.recv().await {
                let chunk = chunk
                    .map(|f| scrubber.fetched(f))
                    .map_err(|e| scrubber.source_error(e));
                if tx.send(chunk).await.is_err() {
                    return;
                }
            }
        });
        rx
    }

    fn known_fields(&self) -> Option<Vec<String>> {
        self.inner.known_fields()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_a_secret_is_replaced_and_short_ones_are_left() {
        let s = Scrubber::new(["sk+live/ABC\"123".to_string(), "abc".to_string()]);
        assert_eq!(
            s.text("bad key sk+live/ABC\"123 in url ?key=sk%2Blive%2FABC%22123 json \"sk+live/ABC\\\"123\""),
            "bad key **REDACTED** in url ?key=**REDACTED** json \"**REDACTED**\""
        );
        assert_eq!(s.text("abc stays"), "abc stays");
        let mut v = serde_json::json!({"echo": ["x sk+live/ABC\"123"], "sk+live/ABC\"123": 1});
        s.value(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"echo": ["x **REDACTED**"], "**REDACTED**": 1})
        );
        let e = s.error(SendError::Unauthorized {
            code: None,
            message: "key sk+live/ABC\"123 refused".into(),
        });
        assert_eq!(e.to_string(), "key **REDACTED** refused");
    }
}
