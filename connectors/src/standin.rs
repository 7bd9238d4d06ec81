//! Stand-ins: each connector with a remote service can serve a local copy of it for
//! `switchboard sandbox` and `quickstart` — the real API's paths, headers, answers and
//! error shapes, enough for the examples to run with no network and no credentials —
//! declared in its folder as a [`Standin`]. This module holds what they share: the
//! [`Recorder`] of accepted requests, the checks of credentials, and the [`router`]
//! serving every stand-in the catalogue lists.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value};

/// One service's stand-in.
pub struct Standin {
    /// The service, as people name it.
    pub service: &'static str,
    /// What accepted requests are recorded as (`service` in each message).
    pub tag: &'static str,
    /// Where its API sits on the stand-in (`""`, or a prefix such as `/asms`): what an
    /// account's `base_url` ends with.
    pub mount: &'static str,
    /// The environment variables the bundled examples' accounts read their `base_url`
    /// from; `quickstart` sets them to the stand-in's URL and mount.
    pub env: &'static [&'static str],
    pub routes: fn() -> Router<Recorder>,
    /// One recorded message as a line for people (`None`: its JSON).
    pub describe: Option<fn(&Value) -> String>,
    /// Data the service holds before any request (`sandbox.json`'s entry for its tag):
    /// how many items it took, or what is wrong with the entry. `None`: it takes none.
    pub seed: Option<Seed>,
}

/// A stand-in's taker of seed data: how many items it took, or what is wrong.
pub type Seed = fn(&Recorder, &Value) -> Result<usize, String>;

/// Give the stand-ins the data of a `sandbox.json` — `{"<tag>": {...}, …}`, each entry
/// as its stand-in documents it (Aranda `{"cases": [...]}`, Text Request
/// `{"payments": [...]}`) — so an example can start from cases or payments that exist
/// already. Returns how many items were seeded.
pub fn seed(recorder: &Recorder, data: &Value) -> Result<usize, String> {
    let Value::Object(entries) = data else {
        return Err(
            "it must be an object of stand-ins, e.g. {\"aranda\": {\"cases\": [...]}}".into(),
        );
    };
    let mut seeded = 0;
    for (tag, entry) in entries {
        let standin = crate::catalogue::standins().find(|s| s.tag == tag);
        let Some(seed) = standin.and_then(|s| s.seed) else {
            let takers: Vec<&str> = crate::catalogue::standins()
                .filter(|s| s.seed.is_some())
                .map(|s| s.tag)
                .collect();
            return Err(format!(
                "`{tag}`: no stand-in takes seed data under that name (these do: {})",
                takers.join(", ")
            ));
        };
        seeded += seed(recorder, entry).map_err(|e| format!("`{tag}`: {e}"))?;
    }
    Ok(seeded)
}

/// The list under `key` of a seed entry, each item an object; or what is wrong.
pub fn seed_items<'a>(entry: &'a Value, key: &str) -> Result<Vec<&'a Map<String, Value>>, String> {
    let items = entry
        .get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("expected {{\"{key}\": [...]}}"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item.as_object()
                .ok_or_else(|| format!("{key}[{i}] is not an object"))
        })
        .collect()
}

/// Called with each message accepted (its service's tag and the message).
pub type Echo = Arc<dyn Fn(&str, &Value) + Send + Sync>;

/// What the stand-ins received, shared with their handlers.
#[derive(Clone, Default)]
pub struct Recorder {
    messages: Arc<Mutex<Vec<Value>>>,
    echo: Option<Echo>,
}

impl Recorder {
    /// A recorder that also hands each message to `echo` (`sandbox` prints them).
    pub fn with_echo(echo: Echo) -> Recorder {
        Recorder {
            echo: Some(echo),
            ..Recorder::default()
        }
    }

    /// Record a message `tag` accepted.
    pub fn push(&self, tag: &str, message: Value) {
        if let Some(echo) = &self.echo {
            echo(tag, &message);
        }
        self.seed(tag, message);
    }

    /// Hold a message as data the service had before (seeded): like [`Recorder::push`],
    /// but not echoed as received.
    pub fn seed(&self, tag: &str, message: Value) {
        let message = match message {
            Value::Object(mut map) => {
                map.insert("service".into(), Value::String(tag.to_string()));
                Value::Object(map)
            }
            other => other,
        };
        if let Ok(mut messages) = self.messages.lock() {
            messages.push(message);
        }
    }

    /// Forget what was received; how many messages that was.
    pub fn clear(&self) -> usize {
        self.messages
            .lock()
            .map(|mut m| m.drain(..).count())
            .unwrap_or(0)
    }

    /// Every message accepted so far.
    pub fn messages(&self) -> Vec<Value> {
        self.messages.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// Every stand-in of the catalogue, with `GET`/`DELETE /sandbox/messages` (what was
/// received) and `/healthz`.
pub fn router(recorder: Recorder) -> Router {
    let mut router = Router::new();
    for standin in crate::catalogue::standins() {
        let routes = (standin.routes)();
        router = if standin.mount.is_empty() {
            router.merge(routes)
        } else {
            router.nest(standin.mount, routes)
        };
    }
    router
        .route("/sandbox/messages", get(list).delete(clear))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(recorder)
}

async fn list(State(recorder): State<Recorder>) -> Json<Vec<Value>> {
    Json(recorder.messages())
}

async fn clear(State(recorder): State<Recorder>) -> Json<Value> {
    Json(serde_json::json!({"cleared": recorder.clear()}))
}

/// One recorded message as a line: its stand-in's description, or its JSON.
pub fn describe(message: &Value) -> String {
    let tag = message
        .get("service")
        .and_then(Value::as_str)
        .unwrap_or("?");
    match crate::catalogue::standins()
        .find(|s| s.tag == tag)
        .and_then(|s| s.describe)
    {
        Some(describe) => describe(message),
        None => format!(
            "{tag}: {}",
            serde_json::to_string(message).unwrap_or_default()
        ),
    }
}

/// A field of a recorded message as text (`-` when absent).
pub fn field(message: &Value, name: &str) -> String {
    match message.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(900);

/// A fresh id for something a stand-in creates.
pub fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// The body as a JSON object, if it is one.
pub fn body_object(body: &Bytes) -> Option<Map<String, Value>> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// Whether a stand-in takes a credential: any that is not empty and does not begin with
/// `invalid` — so a revoked or mistyped key can be seen as inactive offline
/// (`EIGHTX8_API_KEY=invalid switchboard accounts check`).
pub fn accepts(credential: &str) -> bool {
    let credential = credential.trim();
    !credential.is_empty() && !credential.starts_with(REFUSED_PREFIX)
}

/// What a credential the stand-ins refuse begins with.
pub const REFUSED_PREFIX: &str = "invalid";

/// A header `name` holding a credential the stand-in takes.
pub fn accepted(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(accepts)
}

/// A bearer token in `Authorization` the stand-in takes.
pub fn accepted_bearer(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(accepts)
}
