//! Push sources — services that send events to the daemon's `/hooks/<flow>` — behind one
//! trait, [`Push`]: how big a body may be, how a sender proves who it is (from its
//! headers before the body is read, or from the body), a handshake to answer instead of
//! events, how a body becomes events with keys, which events a flow takes, and how the
//! service is told where to push (and to stop). [`Door`] is what a POST to a flow's URL
//! reaches: the flows that take what arrives there, each event routed to those that want
//! it, with the answer the service expects. It does no I/O of its own: the daemon (and
//! `quickstart`, with sample events) stores what it accepts and starts the runs.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use engine::Record;
use flows::{Accounts, Flow, Project};
use reqwest::header::HeaderMap;
use serde_json::{Map, Value};

/// One pushed event: what happened, and the record it becomes.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub event: String,
    pub record: Record,
}

/// A flow of the same channel that stays when another goes, and its URL.
pub struct Remaining<'a> {
    pub push: &'a dyn Push,
    pub url: String,
}

/// What telling a service where to push did: lines for the log (`info`, `error`) and
/// what to remember for the flow (the ids of hooks registered, say) until the next time.
#[derive(Debug, Default)]
pub struct Subscribed {
    pub done: Vec<String>,
    pub failed: Vec<String>,
    /// Replaces what the flow remembered, when `Some`.
    pub remember: Option<Value>,
}

/// What a push source does at the daemon's door.
#[async_trait]
pub trait Push: Send + Sync {
    /// The largest body accepted, in bytes.
    fn max_body(&self) -> usize;

    /// Check the sender from its headers alone, before the body is read (a token).
    fn verify_headers(&self, _headers: &HeaderMap) -> Result<(), String> {
        Ok(())
    }

    /// Check the sender from the URL's query (a token in the URL the service was given).
    fn verify_query(&self, _query: &BTreeMap<String, String>) -> Result<(), String> {
        Ok(())
    }

    /// Check the sender with the body (a signature of it).
    fn verify_body(&self, _headers: &HeaderMap, _body: &[u8]) -> Result<(), String> {
        Ok(())
    }

    /// A handshake to answer instead of taking events (CINNOX's subscription challenge).
    fn handshake(&self, _body: &Value) -> Option<Value> {
        None
    }

    /// The body as events.
    fn read(&self, body: &[u8], query: &BTreeMap<String, String>) -> Result<Vec<Pushed>, String>;

    /// The events this flow takes (`None`: every event it is sent).
    fn events(&self) -> Option<&[String]> {
        None
    }

    /// Flows of the same channel share what is pushed to any of them (CINNOX keeps one
    /// URL per event family and app, so every CINNOX flow of an account gets its events
    /// whichever flow's URL it holds).
    fn channel(&self) -> Option<String> {
        None
    }

    /// The address the service can reach this flow's webhook at, when the flow gives one.
    fn public_url(&self) -> Option<&str> {
        None
    }

    /// The answer to a body taken: `queued` events for `flows`, `ignored` taken by none.
    fn answer(&self, queued: &[String], ignored: usize, flows: &[String]) -> Value;

    /// Where the flow keeps what [`Push::subscribe`] asks it to remember.
    fn memory_key(&self) -> &'static str {
        "push_subscriptions"
    }

    /// Tell the service to push this flow's events to `url` (nothing for a service that
    /// is told by hand). `remembered` is what the last call said to remember.
    async fn subscribe(&self, _url: &str, _remembered: Option<Value>) -> Subscribed {
        Subscribed::default()
    }

    /// Tell the service to stop pushing this flow's events to `url` (the flow is gone);
    /// what flows of the same channel that `remain` take goes on, to their URL.
    async fn unsubscribe(
        &self,
        _url: &str,
        _remaining: &[Remaining<'_>],
        _remembered: Option<Value>,
    ) -> Subscribed {
        Subscribed::default()
    }
}

/// The query parameter that carries a hook's token.
pub const TOKEN_PARAM: &str = "sb_token";

/// The token in the hook URL a service is given (CINNOX, Text Request: they sign
/// nothing and send no secret header, so the URL is the secret): an HMAC-SHA256 of
/// `label` under the account's secret — the same on every start, different for every
/// account, and new when the secret is regenerated (the daemon then re-registers).
pub fn hook_token(secret: &str, label: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(b"switchboard hook ");
    mac.update(label.as_bytes());
    mac.finalize().into_bytes()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `url` with the hook's token added to its query.
pub fn with_token(url: &str, token: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{TOKEN_PARAM}={token}")
}

/// Whether a request's query carries the hook's token (compared in constant time).
pub fn check_token(query: &BTreeMap<String, String>, token: &str) -> Result<(), String> {
    let given = query
        .get(TOKEN_PARAM)
        .map(String::as_str)
        .unwrap_or_default();
    if !token.is_empty()
        && bool::from(subtle::ConstantTimeEq::ct_eq(
            given.as_bytes(),
            token.as_bytes(),
        ))
    {
        Ok(())
    } else {
        Err(format!(
            "missing or wrong `{TOKEN_PARAM}`: only the URL the daemon registered with the service may post here"
        ))
    }
}

/// A webhook body — one event, or a list of them — read item by item with `read`
/// (event name, key, fields). One event that cannot be read fails the whole body.
pub fn read_events(
    body: &Value,
    mut read: impl FnMut(&Value) -> Result<(String, String, Map<String, Value>), String>,
) -> Result<Vec<Pushed>, String> {
    let items: Vec<&Value> = match body {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    items
        .into_iter()
        .map(|item| {
            let (event, key, fields) = read(item)?;
            Ok(Pushed {
                event,
                record: Record::new(key, fields),
            })
        })
        .collect()
}

/// The events named in `wanted`, as records, and how many others there were.
pub fn select(events: &[Pushed], wanted: &[String]) -> (Vec<Record>, usize) {
    let records: Vec<Record> = events
        .iter()
        .filter(|e| wanted.contains(&e.event))
        .map(|e| e.record.clone())
        .collect();
    let ignored = events.len() - records.len();
    (records, ignored)
}

/// The body as JSON, or why not.
pub fn json(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("the body is not valid JSON: {e}"))
}

/// A flow that takes what a door receives.
#[derive(Clone)]
pub struct Target {
    pub flow: String,
    pub push: Arc<dyn Push>,
    /// The flow runs on every event (it has no schedule).
    pub instant: bool,
    /// `enabled: false`: its events are answered and recorded as skipped, never sent.
    pub enabled: bool,
}

/// What a POST to a flow's `/hooks/<flow>` reaches.
pub struct Door {
    /// The flow the URL names.
    push: Arc<dyn Push>,
    targets: Vec<Target>,
}

/// What a door took from a body.
pub enum Taken {
    /// A handshake, answered so.
    Handshake(Value),
    /// Events for flows: each flow's records; the answer once they are stored.
    Events {
        /// How many events the body held.
        read: usize,
        queued: Vec<(Target, Vec<Record>)>,
        answer: Value,
    },
}

impl Door {
    /// The door of flow `name`: `Ok(None)` when it takes no pushed events, `Err` when it
    /// does but cannot (its account is unusable).
    pub fn of(project: &Project, name: &str) -> Result<Option<Door>, crate::connector::BuildError> {
        let Some(flow) = project.flows.get(name) else {
            return Ok(None);
        };
        let Some(push) = crate::catalogue::build_push(flow, &project.accounts)? else {
            return Ok(None);
        };
        let mut targets = vec![Target {
            flow: flow.name.clone(),
            push: Arc::clone(&push),
            instant: flow.schedule.is_none(),
            enabled: flow.enabled,
        }];
        if let Some(channel) = push.channel() {
            for other in project.flows.values().filter(|f| f.name != flow.name) {
                if let Ok(Some(other_push)) = crate::catalogue::build_push(other, &project.accounts)
                {
                    if other_push.channel().as_deref() == Some(channel.as_str()) {
                        targets.push(Target {
                            flow: other.name.clone(),
                            push: other_push,
                            instant: other.schedule.is_none(),
                            enabled: other.enabled,
                        });
                    }
                }
            }
            targets.sort_by(|a, b| a.flow.cmp(&b.flow));
        }
        Ok(Some(Door { push, targets }))
    }

    pub fn max_body(&self) -> usize {
        self.push.max_body()
    }

    pub fn verify_headers(&self, headers: &HeaderMap) -> Result<(), String> {
        self.push.verify_headers(headers)
    }

    pub fn verify_query(&self, query: &BTreeMap<String, String>) -> Result<(), String> {
        self.push.verify_query(query)
    }

    pub fn verify_body(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
        self.push.verify_body(headers, body)
    }

    /// Take a body: a handshake's answer, or each target flow's events and the answer to
    /// give once they are stored. `Err` is a bad request, with the reason.
    pub fn take(&self, body: &[u8], query: &BTreeMap<String, String>) -> Result<Taken, String> {
        if let Ok(value) = serde_json::from_slice::<Value>(body) {
            if let Some(answer) = self.push.handshake(&value) {
                return Ok(Taken::Handshake(answer));
            }
        }
        // The body is read once; each flow takes its events from it.
        let events = self.push.read(body, query)?;
        let mut taken_by_some = vec![false; events.len()];
        let mut queued = Vec::new();
        for target in &self.targets {
            let records: Vec<Record> = events
                .iter()
                .enumerate()
                .filter(|(_, e)| {
                    target
                        .push
                        .events()
                        .is_none_or(|want| want.contains(&e.event))
                })
                .map(|(i, e)| {
                    taken_by_some[i] = true;
                    e.record.clone()
                })
                .collect();
            if !records.is_empty() {
                queued.push((target.clone(), records));
            }
        }
        let ignored = taken_by_some.iter().filter(|t| !**t).count();
        let keys: Vec<String> = queued
            .iter()
            .flat_map(|(_, records)| records.iter().map(|r| r.key.clone()))
            .collect();
        let flows: Vec<String> = queued.iter().map(|(t, _)| t.flow.clone()).collect();
        let answer = self.push.answer(&keys, ignored, &flows);
        Ok(Taken::Events {
            read: events.len(),
            queued,
            answer,
        })
    }
}

/// A flow's push source, if it has one (for subscriptions).
pub fn push_of(flow: &Flow, accounts: &Accounts) -> Option<Arc<dyn Push>> {
    crate::catalogue::build_push(flow, accounts).ok().flatten()
}
