//! CINNOX at the daemon's door: the subscription challenge answered, bodies in either
//! documented shape read into events, and the event subscription of each family the flow
//! takes pointed at its URL. CINNOX keeps one URL per event family and app, so the CINNOX
//! flows of an account form one channel: whichever flow's URL CINNOX holds, each flow
//! gets the events it takes; a flow that goes hands its families to one that stays.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::config::{Account, Source};
use crate::push::{self, Push, Pushed, Remaining, Subscribed};

/// A CINNOX flow at the daemon's door.
pub struct CinnoxIntake {
    /// The account's name (it keys the rate limit).
    name: String,
    account: Account,
    source: Source,
}

impl CinnoxIntake {
    pub fn new(name: &str, account: &Account, source: &Source) -> CinnoxIntake {
        CinnoxIntake {
            name: name.to_string(),
            account: account.clone(),
            source: source.clone(),
        }
    }

    /// The token of this account's hook URLs (one for every flow of the channel).
    fn token(&self) -> String {
        push::hook_token(
            self.account.app_token.expose(),
            &format!("cinnox {}", self.account.app_id),
        )
    }

    /// The subscription families of `events`, each once, in order.
    fn families(events: &[String]) -> Vec<&'static str> {
        let mut families: Vec<&'static str> =
            events.iter().filter_map(|e| super::family_of(e)).collect();
        families.sort();
        families.dedup();
        families
    }

    async fn point(&self, family: &str, url: &str, enabled: bool, out: &mut Subscribed) {
        let url = &push::with_token(url, &self.token());
        match super::subscribe(&self.name, &self.account, family, url, enabled).await {
            Ok(()) => out.done.push(format!(
                "CINNOX event subscription {family} {} {url}",
                if enabled {
                    "points at"
                } else {
                    "switched off for"
                }
            )),
            Err(e) => out
                .failed
                .push(format!("cannot update the CINNOX event subscription: {e}")),
        }
    }
}

/// The most a CINNOX body may hold.
const MAX_BODY: usize = 1024 * 1024;

#[async_trait]
impl Push for CinnoxIntake {
    fn max_body(&self) -> usize {
        MAX_BODY
    }

    fn verify_query(&self, query: &BTreeMap<String, String>) -> Result<(), String> {
        push::check_token(query, &self.token())
    }

    fn handshake(&self, body: &Value) -> Option<Value> {
        super::challenge(body)
            .map(|challenge| json!({"code": 0, "result": {"challenge": challenge}}))
    }

    fn read(&self, body: &[u8], _query: &BTreeMap<String, String>) -> Result<Vec<Pushed>, String> {
        super::events_of(&push::json(body)?)
    }

    fn events(&self) -> Option<&[String]> {
        Some(&self.source.events)
    }

    fn channel(&self) -> Option<String> {
        Some(format!("cinnox:{}", self.source.account))
    }

    fn public_url(&self) -> Option<&str> {
        self.source.public_url.as_deref()
    }

    fn answer(&self, queued: &[String], ignored: usize, flows: &[String]) -> Value {
        json!({"code": 0, "queued": queued.len(), "ignored": ignored, "flows": flows})
    }

    async fn subscribe(&self, url: &str, _remembered: Option<Value>) -> Subscribed {
        let mut out = Subscribed::default();
        for family in Self::families(&self.source.events) {
            self.point(family, url, true, &mut out).await;
        }
        out
    }

    async fn unsubscribe(
        &self,
        url: &str,
        remaining: &[Remaining<'_>],
        _remembered: Option<Value>,
    ) -> Subscribed {
        let mut out = Subscribed::default();
        for family in Self::families(&self.source.events) {
            let heir = remaining.iter().find(|other| {
                other.push.events().is_some_and(|events| {
                    events.iter().any(|e| super::family_of(e) == Some(family))
                })
            });
            match heir {
                Some(heir) => self.point(family, &heir.url, true, &mut out).await,
                None => self.point(family, url, false, &mut out).await,
            }
        }
        out
    }
}
