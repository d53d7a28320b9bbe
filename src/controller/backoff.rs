//! Per-object exponential backoff with jitter for transient failures, so a
//! throttled or flapping AWS is not hammered and objects do not retry in
//! lockstep.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const BASE: Duration = Duration::from_secs(1);
pub const CAP: Duration = Duration::from_secs(300);

#[derive(Default)]
pub struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// Records a failure of `key` and returns how long to wait before the
    /// next attempt.
    pub fn next_delay(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let count = failures.entry(key.to_string()).or_insert(0);
        *count = count.saturating_add(1);
        delay_for(*count, jitter_fraction())
    }

    pub fn reset(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// `BASE * 2^(failures-1)`, capped, scaled into `[50%, 100%]` by `jitter`
/// (in `[0, 1)`).
pub fn delay_for(failures: u32, jitter: f64) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    let full = BASE.saturating_mul(1u32 << exponent).min(CAP);
    full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// Randomness good enough to spread retries; not for anything secret.
fn jitter_fraction() -> f64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    f64::from(nanos % 1_000_000) / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_then_cap() {
        assert_eq!(delay_for(1, 1.0), Duration::from_secs(1));
        assert_eq!(delay_for(2, 1.0), Duration::from_secs(2));
        assert_eq!(delay_for(5, 1.0), Duration::from_secs(16));
        assert_eq!(delay_for(20, 1.0), CAP);
        assert_eq!(delay_for(u32::MAX, 1.0), CAP);
    }

    #[test]
    fn jitter_stays_within_half_and_full() {
        assert_eq!(delay_for(3, 0.0), Duration::from_secs(2));
        assert_eq!(delay_for(3, 0.5), Duration::from_secs(3));
    }

    #[test]
    fn failures_accumulate_per_object_and_reset() {
        let backoff = Backoff::default();
        let first = backoff.next_delay("a");
        let second = backoff.next_delay("a");
        assert!(first <= Duration::from_secs(1));
        assert!(second >= Duration::from_secs(1) && second <= Duration::from_secs(2));
        assert!(backoff.next_delay("b") <= Duration::from_secs(1));
        backoff.reset("a");
        assert!(backoff.next_delay("a") <= Duration::from_secs(1));
    }
}
