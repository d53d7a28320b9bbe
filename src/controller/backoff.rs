//! Per-object exponential backoff with jitter, so a throttled or flapping AWS
//! is not hammered, objects do not retry in lockstep, and an object whose
//! error only a person can fix costs a few AWS calls an hour, not one round
//! every few minutes forever.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::policy::refusal::Retry;

/// Transient failures (throttling, 5xx, conflicts): quick first retry.
pub const TRANSIENT: Schedule = Schedule {
    base: Duration::from_secs(1),
    cap: Duration::from_secs(300),
    jitter: 0.5,
};

/// Errors only a person can fix: the first wait is `base` (10 minutes by
/// default), so the first hour holds three attempts at most; jittered by
/// a tenth only, which still spreads objects refused together.
pub const TERMINAL_JITTER: f64 = 0.1;

/// Where a series of waits starts, where it stops growing, and how much of
/// each wait chance may take off, so objects failing together do not retry
/// in lockstep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    pub base: Duration,
    pub cap: Duration,
    /// In `[0, 1)`.
    pub jitter: f64,
}

impl Schedule {
    /// The schedule of a refusal or a terminal error: one that clears by
    /// itself keeps its own short first wait and grows only up to the
    /// terminal first wait; one only a person can fix starts there and
    /// grows to `terminal.cap`.
    pub fn for_retry(retry: Retry, terminal: Schedule) -> Schedule {
        match retry {
            Retry::Terminal => terminal,
            Retry::Soon(wait) => Schedule {
                base: wait,
                cap: terminal.base.max(wait),
                jitter: TRANSIENT.jitter,
            },
        }
    }
}

#[derive(Default)]
pub struct Backoff {
    failures: Mutex<HashMap<String, Failures>>,
}

struct Failures {
    /// The spec generation and the first wait of the schedule the count is
    /// for: a new spec, or a problem of another kind (waiting after
    /// terminal), is counted from one again.
    series: (Option<i64>, Duration),
    count: u32,
}

impl Backoff {
    /// Records a failure of `key` at `generation` and returns how long to
    /// wait before the next attempt.
    pub fn next_delay(&self, key: &str, generation: Option<i64>, schedule: Schedule) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let series = (generation, schedule.base);
        let entry = failures
            .entry(key.to_string())
            .or_insert(Failures { series, count: 0 });
        if entry.series != series {
            *entry = Failures { series, count: 0 };
        }
        entry.count = entry.count.saturating_add(1);
        delay_for(schedule, entry.count, jitter_fraction())
    }

    /// Failures of `key` in a row so far.
    pub fn failures(&self, key: &str) -> u32 {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .map_or(0, |f| f.count)
    }

    pub fn reset(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// `base * 2^(failures-1)`, capped, less up to `schedule.jitter` of it as
/// `chance` (in `[0, 1)`) says.
pub fn delay_for(schedule: Schedule, failures: u32, chance: f64) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    let full = schedule
        .base
        .saturating_mul(1u32 << exponent)
        .min(schedule.cap.max(schedule.base));
    let jitter = schedule.jitter.clamp(0.0, 1.0);
    full.mul_f64(1.0 - jitter + jitter * chance.clamp(0.0, 1.0))
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

    const TERMINAL: Schedule = Schedule {
        base: Duration::from_secs(600),
        cap: Duration::from_secs(3600),
        jitter: TERMINAL_JITTER,
    };

    #[test]
    fn delays_double_then_cap() {
        assert_eq!(delay_for(TRANSIENT, 1, 1.0), Duration::from_secs(1));
        assert_eq!(delay_for(TRANSIENT, 2, 1.0), Duration::from_secs(2));
        assert_eq!(delay_for(TRANSIENT, 5, 1.0), Duration::from_secs(16));
        assert_eq!(delay_for(TRANSIENT, 20, 1.0), TRANSIENT.cap);
        assert_eq!(delay_for(TRANSIENT, u32::MAX, 1.0), TRANSIENT.cap);
    }

    #[test]
    fn jitter_stays_within_half_and_full() {
        assert_eq!(delay_for(TRANSIENT, 3, 0.0), Duration::from_secs(2));
        assert_eq!(delay_for(TRANSIENT, 3, 0.5), Duration::from_secs(3));
    }

    #[test]
    fn each_key_counts_alone_and_a_success_starts_it_again() {
        let backoff = Backoff::default();
        let first = backoff.next_delay("a", Some(1), TRANSIENT);
        let second = backoff.next_delay("a", Some(1), TRANSIENT);
        assert!(first <= Duration::from_secs(1));
        assert!(second >= Duration::from_secs(1) && second <= Duration::from_secs(2));
        assert!(backoff.next_delay("b", Some(1), TRANSIENT) <= Duration::from_secs(1));
        assert_eq!(backoff.failures("a"), 2);
        backoff.reset("a");
        assert_eq!(backoff.failures("a"), 0);
        assert!(backoff.next_delay("a", Some(1), TRANSIENT) <= Duration::from_secs(1));
    }

    #[test]
    fn a_new_generation_counts_from_one_again() {
        let backoff = Backoff::default();
        for _ in 0..5 {
            backoff.next_delay("a", Some(1), TERMINAL);
        }
        assert!(backoff.next_delay("a", Some(1), TERMINAL) >= Duration::from_secs(1800));
        assert!(backoff.next_delay("a", Some(2), TERMINAL) <= TERMINAL.base);
    }

    /// The point of the terminal schedule: attempts in the first hour of an
    /// error only a person can fix, and in every hour after, whatever the
    /// jitter draws.
    #[test]
    fn a_terminal_error_is_tried_three_times_in_its_first_hour_then_hourly() {
        let attempts_in = |from: Duration, to: Duration, chance: f64| {
            let mut at = Duration::ZERO;
            let mut count = 0;
            for failures in 1.. {
                if at >= to {
                    break;
                }
                if at >= from {
                    count += 1;
                }
                at += delay_for(TERMINAL, failures, chance);
            }
            count
        };
        let hour = Duration::from_secs(3600);
        for chance in [0.0, 0.5, 0.999] {
            // At 0, 10 and 30 minutes (a tenth sooner at most), then hourly.
            assert_eq!(attempts_in(Duration::ZERO, hour, chance), 3);
            let later = attempts_in(hour * 5, hour * 7, chance);
            assert!((2..=3).contains(&later), "{later} attempts in two hours");
        }
    }

    #[test]
    fn a_problem_of_another_kind_counts_from_one_again() {
        let backoff = Backoff::default();
        let waiting = Schedule::for_retry(Retry::Soon(Duration::from_secs(30)), TERMINAL);
        for _ in 0..6 {
            backoff.next_delay("a", Some(1), waiting);
        }
        assert!(backoff.next_delay("a", Some(1), TERMINAL) <= TERMINAL.base);
        assert!(backoff.next_delay("a", Some(1), waiting) <= Duration::from_secs(30));
    }

    #[test]
    fn waiting_states_grow_only_to_the_terminal_first_wait() {
        let waiting = Schedule::for_retry(Retry::Soon(Duration::from_secs(30)), TERMINAL);
        assert_eq!(waiting.base, Duration::from_secs(30));
        assert_eq!(delay_for(waiting, 10, 1.0), TERMINAL.base);
        assert_eq!(Schedule::for_retry(Retry::Terminal, TERMINAL), TERMINAL);
    }
}
