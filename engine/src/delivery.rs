//! Delivery of one prepared request: tries it, and on a transient failure waits
//! (exponential backoff with jitter, or the service's `Retry-After`) and tries again,
//! up to the policy's limit. Permanent failures return at once.

use std::time::Duration;

use rand::Rng;

use crate::connector::{Delivered, Prepared, Receiver, SendError};
use crate::stop::Stop;

/// How often and how patiently to retry transient failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// The first retry's delay; doubled for each further retry.
    pub backoff: Duration,
    /// The longest single wait (also caps `Retry-After`).
    pub max_backoff: Duration,
    /// The most time one record may spend on tries and waits.
    pub max_time: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::from(&flows::Delivery::default())
    }
}

impl From<&flows::Delivery> for RetryPolicy {
    fn from(d: &flows::Delivery) -> Self {
        RetryPolicy {
            attempts: d.attempts,
            backoff: d.backoff,
            max_backoff: d.max_backoff,
            max_time: d.max_time,
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the first retry).
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max_backoff);
        }
        let exponential = self
            .backoff
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
            .min(self.max_backoff);
        // "Equal jitter": half fixed, half random, so retries of many rows spread out.
        let half = exponential / 2;
        let jitter = rand::rng().random_range(0..=half.as_millis().max(1) as u64);
        half + Duration::from_millis(jitter)
    }
}

/// Send with retries. Returns the result and how many tries were made.
pub(crate) async fn send_with_retry(
    receiver: &dyn Receiver,
    request: &Prepared,
    policy: &RetryPolicy,
    stop: &Stop,
) -> (Result<Delivered, SendError>, u32) {
    with_retry(policy, stop, || receiver.send(request)).await
}

/// Wait between tries, unless the run is asked to stop (then `false`: no more tries).
async fn wait_to_retry(wait: Duration, stop: &Stop) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(wait) => true,
        _ = stop.wait() => false,
    }
}

/// Call `attempt` until it succeeds, fails for good, or the policy's tries or time run
/// out; transient failures wait between tries. Returns the result and the tries made.
pub(crate) async fn with_retry<T, F, Fut>(
    policy: &RetryPolicy,
    stop: &Stop,
    mut attempt: F,
) -> (Result<T, SendError>, u32)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SendError>>,
{
    let started = tokio::time::Instant::now();
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Err(SendError::Transient {
                reason,
                retry_after,
            }) => {
                let wait = policy.delay(tries, retry_after);
                let out_of_time = started.elapsed() + wait > policy.max_time;
                if tries >= policy.attempts || out_of_time {
                    let why = if tries < policy.attempts {
                        format!(
                            "gave up after {tries} tries: the next wait would pass the {}s limit",
                            policy.max_time.as_secs()
                        )
                    } else {
                        format!("gave up after {tries} tries")
                    };
                    let reason = format!("{reason} ({why})");
                    return (
                        Err(SendError::Transient {
                            reason,
                            retry_after,
                        }),
                        tries,
                    );
                }
                tracing::debug!(tries, ?wait, %reason, "transient failure, retrying");
                if !wait_to_retry(wait, stop).await {
                    return (
                        Err(SendError::Transient {
                            reason: format!("{reason} (the run was stopped before another try)"),
                            retry_after,
                        }),
                        tries,
                    );
                }
            }
            other => return (other, tries),
        }
    }
}

/// Send a batch with retries: while every request of it failed transiently (the call as
/// a whole failed), wait and try the whole batch again. Returns the results and tries.
pub(crate) async fn send_batch_with_retry(
    receiver: &dyn Receiver,
    requests: &[Prepared],
    policy: &RetryPolicy,
    stop: &Stop,
) -> (Vec<Result<Delivered, SendError>>, u32) {
    let started = tokio::time::Instant::now();
    let mut tries = 0;
    loop {
        tries += 1;
        let results = receiver.send_batch(requests).await;
        let whole_call_failed = results
            .iter()
            .all(|r| matches!(r, Err(SendError::Transient { .. })));
        let retry_after = results.iter().find_map(|r| match r {
            Err(SendError::Transient { retry_after, .. }) => *retry_after,
            _ => None,
        });
        let wait = policy.delay(tries, retry_after);
        if !whole_call_failed
            || tries >= policy.attempts
            || started.elapsed() + wait > policy.max_time
            || stop.is_stopped()
        {
            let results = results
                .into_iter()
                .map(|r| match r {
                    Err(SendError::Transient {
                        reason,
                        retry_after,
                    }) if whole_call_failed => Err(SendError::Transient {
                        reason: format!("{reason} (gave up after {tries} tries)"),
                        retry_after,
                    }),
                    other => other,
                })
                .collect();
            return (results, tries);
        }
        tracing::debug!(tries, ?wait, "batch failed transiently, retrying");
        // Stopped while waiting: the loop gives up at the check above.
        let _ = wait_to_retry(wait, stop).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_bounds_and_honours_retry_after() {
        let policy = RetryPolicy {
            attempts: 5,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            max_time: Duration::from_secs(60),
        };
        for _ in 0..50 {
            let first = policy.delay(1, None);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = policy.delay(3, None);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            assert!(policy.delay(10, None) <= Duration::from_secs(1));
        }
        assert_eq!(
            policy.delay(1, Some(Duration::from_millis(700))),
            Duration::from_millis(700)
        );
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(60))),
            Duration::from_secs(1)
        );
    }
}
