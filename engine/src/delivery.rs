//! Delivery of one prepared request: tries it, and on a transient failure waits
//! (exponential backoff with jitter, or the service's `Retry-After`) and tries again,
//! up to the policy's limit. Permanent failures return at once.

use std::time::Duration;

use rand::Rng;

use crate::connector::{Delivered, Prepared, Receiver, SendError};

/// How often and how patiently to retry transient failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// The first retry's delay; doubled for each further retry.
    pub backoff: Duration,
    /// The longest single wait (also caps `Retry-After`).
    pub max_backoff: Duration,
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
) -> (Result<Delivered, SendError>, u32) {
    let mut tries = 0;
    loop {
        tries += 1;
        match receiver.send(request).await {
            Err(SendError::Transient {
                reason,
                retry_after,
            }) if tries < policy.attempts => {
                let wait = policy.delay(tries, retry_after);
                tracing::debug!(tries, ?wait, %reason, "transient failure, retrying");
                tokio::time::sleep(wait).await;
            }
            Err(SendError::Transient {
                reason,
                retry_after,
            }) => {
                let reason = format!("{reason} (gave up after {tries} tries)");
                return (
                    Err(SendError::Transient {
                        reason,
                        retry_after,
                    }),
                    tries,
                );
            }
            other => return (other, tries),
        }
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
