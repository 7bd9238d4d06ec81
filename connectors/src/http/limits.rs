//! Rate limits per account, shared by every flow (and every run) in the process that
//! uses the account: a token bucket (governor) per account name and limit, so a big run
//! waits for its turn instead of collecting 429s.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, OnceLock};

use flows::RateLimit;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// An account's limiter.
pub type Limiter = Arc<DefaultDirectRateLimiter>;

type Registry = Mutex<HashMap<(String, RateLimit), Limiter>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

/// The limiter shared by everything that sends as `account` with this limit
/// (`None` when the limit is off).
pub fn shared(account: &str, limit: RateLimit) -> Option<Limiter> {
    let RateLimit::Every { calls, per } = limit else {
        return None;
    };
    let calls = NonZeroU32::new(calls)?;
    let quota = Quota::with_period(per / calls.get())?.allow_burst(calls);
    let mut limiters = registry()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let limiter = limiters
        .entry((account.to_string(), limit))
        .or_insert_with(|| Arc::new(RateLimiter::direct(quota)));
    Some(Arc::clone(limiter))
}

/// Wait for the account's turn, when it has a limit.
pub async fn wait(limiter: &Option<Limiter>) {
    if let Some(limiter) = limiter {
        limiter.until_ready().await;
    }
}
