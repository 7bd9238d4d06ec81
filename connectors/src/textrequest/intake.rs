//! Text Request at the daemon's door: a text sent or received on a dashboard arrives as
//! one event (the hook's event named in its URL), and the flow's hooks — one per event —
//! are registered with the dashboard and deleted when the flow goes. The hooks
//! registered are remembered with the flow, so a restart registers nothing twice.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::config::{Account, Source};
use super::trigger::{self, Hook};
use crate::push::{self, Push, Pushed, Remaining, Subscribed};

/// A Text Request flow at the daemon's door.
pub struct TextRequestIntake {
    /// The account's name (it keys the rate limit).
    name: String,
    account: Account,
    source: Source,
}

impl TextRequestIntake {
    pub fn new(name: &str, account: &Account, source: &Source) -> TextRequestIntake {
        TextRequestIntake {
            name: name.to_string(),
            account: account.clone(),
            source: source.clone(),
        }
    }

    /// The token of this account's hook URLs.
    fn token(&self) -> String {
        push::hook_token(self.account.api_key.expose(), "textrequest")
    }

    /// Bring the dashboard's hooks for this flow to `wanted` (dashboard, event, URL):
    /// delete the others registered for it, register the missing ones.
    async fn sync(
        &self,
        wanted: &[(u64, String, String)],
        remembered: Option<Value>,
    ) -> Subscribed {
        let mut out = Subscribed::default();
        let registered: Vec<Hook> = remembered
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        let mut kept = Vec::new();
        for hook in registered {
            // The account now points at another Text Request: its hooks there cannot be
            // reached with these credentials, so they are left for a person to delete.
            if !hook.base_url.is_empty() && hook.base_url != self.account.base_url {
                out.failed.push(format!(
                    "the Text Request hook {} ({}) stays registered at {}: the account now uses {}; delete it there by hand",
                    hook.id, hook.event, hook.base_url, self.account.base_url
                ));
                continue;
            }
            let still = wanted
                .iter()
                .any(|(d, e, u)| *d == hook.dashboard_id && *e == hook.event && *u == hook.url);
            if still {
                kept.push(hook);
                continue;
            }
            match trigger::unsubscribe(&self.name, &self.account, &hook).await {
                Ok(()) => out.done.push(format!(
                    "Text Request hook {} ({}) deleted",
                    hook.id, hook.event
                )),
                Err(e) => {
                    out.failed.push(format!(
                        "cannot delete the Text Request hook {}: {e}",
                        hook.id
                    ));
                    kept.push(hook);
                }
            }
        }
        for (dashboard, event, url) in wanted {
            if kept
                .iter()
                .any(|h| h.dashboard_id == *dashboard && &h.event == event && &h.url == url)
            {
                continue;
            }
            match trigger::subscribe(&self.name, &self.account, *dashboard, event, url).await {
                Ok(hook) => {
                    out.done.push(format!(
                        "Text Request hook {} registered for {event} at {url}",
                        hook.id
                    ));
                    kept.push(hook);
                }
                Err(e) => out.failed.push(format!(
                    "cannot register the Text Request hook for {event}: {e}"
                )),
            }
        }
        out.remember = serde_json::to_value(&kept).ok();
        out
    }
}

/// The most a Text Request body may hold.
const MAX_BODY: usize = 1024 * 1024;

#[async_trait]
impl Push for TextRequestIntake {
    fn max_body(&self) -> usize {
        MAX_BODY
    }

    fn verify_query(&self, query: &BTreeMap<String, String>) -> Result<(), String> {
        push::check_token(query, &self.token())
    }

    fn read(&self, body: &[u8], query: &BTreeMap<String, String>) -> Result<Vec<Pushed>, String> {
        let hinted = query.get("event").map(String::as_str);
        trigger::events_of(&push::json(body)?, hinted)
    }

    fn events(&self) -> Option<&[String]> {
        Some(&self.source.events)
    }

    fn public_url(&self) -> Option<&str> {
        self.source.public_url.as_deref()
    }

    fn answer(&self, queued: &[String], ignored: usize, flows: &[String]) -> Value {
        json!({"code": 0, "queued": queued.len(), "ignored": ignored, "flows": flows})
    }

    fn memory_key(&self) -> &'static str {
        "textrequest_hooks"
    }

    async fn subscribe(&self, url: &str, remembered: Option<Value>) -> Subscribed {
        let wanted: Vec<(u64, String, String)> = self
            .source
            .events
            .iter()
            .map(|e| {
                (
                    self.source.dashboard_id,
                    e.clone(),
                    push::with_token(&trigger::target_url(url, e), &self.token()),
                )
            })
            .collect();
        self.sync(&wanted, remembered).await
    }

    async fn unsubscribe(
        &self,
        _url: &str,
        _remaining: &[Remaining<'_>],
        remembered: Option<Value>,
    ) -> Subscribed {
        self.sync(&[], remembered).await
    }
}
