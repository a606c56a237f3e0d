//! When and how long to retry: 429, 5xx and connection failures are retried with exponential backoff and full
//! jitter, waiting what `Retry-After` says when the server says it; every other answer is final.

use std::time::Duration;

use rand::Rng;

/// How a client retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The backoff before the second attempt; it doubles with each retry, up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// The longest `Retry-After` honoured (a daily quota can say hours).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// 8 attempts, 0.5 s doubling to at most 30 s (about 2 minutes in all), `Retry-After` up to 5 minutes.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

/// Whether an answer with this status is worth another attempt.
pub fn is_retryable(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

impl RetryPolicy {
    /// No retries at all.
    pub fn never() -> RetryPolicy {
        RetryPolicy { max_attempts: 1, ..RetryPolicy::default() }
    }

    /// The wait before attempt `attempt + 1` (after `attempt` failures, from 1): `Retry-After` when given
    /// (within `max_retry_after`), otherwise a uniform draw in [0, min(max_delay, base × 2^(attempt−1))].
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max_retry_after);
        }
        let exponent = attempt.saturating_sub(1).min(30);
        let ceiling = self.base_delay.saturating_mul(1 << exponent).min(self.max_delay);
        let millis = ceiling.as_millis() as u64;
        Duration::from_millis(if millis == 0 { 0 } else { rand::rng().random_range(0..=millis) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_jittered_and_yields_to_retry_after() {
        let policy = RetryPolicy::default();
        for attempt in 1..20 {
            let ceiling = Duration::from_millis(500).saturating_mul(1 << (attempt - 1).min(30)).min(policy.max_delay);
            assert!(policy.delay(attempt, None) <= ceiling);
        }
        let draws: Vec<Duration> = (0..50).map(|_| policy.delay(6, None)).collect();
        assert!(draws.iter().any(|d| *d != draws[0]), "full jitter varies");
        assert_eq!(policy.delay(1, Some(Duration::from_secs(7))), Duration::from_secs(7));
        assert_eq!(policy.delay(1, Some(Duration::from_secs(86_400))), Duration::from_secs(300));
        assert!(is_retryable(429) && is_retryable(503) && !is_retryable(412) && !is_retryable(400));
    }
}
