//! The first look at each object after the operator starts (a restart, a
//! new leader). Every object arrives at once then; one whose status says it
//! was in sync at its current generation, and whose ServiceAccount agrees,
//! has its first drift check spread over the resync period instead of all
//! of them reading AWS in the first minute. Anything else (a new generation,
//! not Ready, being deleted, a ServiceAccount changed while the operator was
//! away) is looked at at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Reconcile now, reading AWS.
    Check,
    /// In sync by its status: look again this much later.
    Defer(Duration),
}

enum Entry {
    Deferred {
        due: Instant,
        generation: Option<i64>,
    },
    Checked,
}

pub struct FirstChecks {
    period: Duration,
    entries: Mutex<HashMap<String, Entry>>,
    /// Set when the guardrails change: every status was judged under the
    /// old ones, so none is trusted any more.
    all_checked: std::sync::atomic::AtomicBool,
}

impl FirstChecks {
    pub fn new(period: Duration) -> Self {
        FirstChecks {
            period,
            entries: Mutex::new(HashMap::new()),
            all_checked: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Looked at since this process started: no deferral, and no need to
    /// ask whether the object is in sync.
    pub fn checked(&self, key: &str) -> bool {
        self.all_checked.load(std::sync::atomic::Ordering::Relaxed)
            || matches!(self.lock().get(key), Some(Entry::Checked))
    }

    /// From now on every object is looked at when triggered.
    pub fn check_all_now(&self) {
        self.all_checked
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.lock().clear();
    }

    /// `in_sync`: the status says Ready at `generation` and the
    /// ServiceAccount agrees.
    pub fn decide(
        &self,
        key: &str,
        uid: &str,
        generation: Option<i64>,
        in_sync: bool,
        now: Instant,
    ) -> Decision {
        if self.all_checked.load(std::sync::atomic::Ordering::Relaxed) {
            return Decision::Check;
        }
        let mut entries = self.lock();
        let deferred_until = match entries.get(key) {
            Some(Entry::Checked) => None,
            Some(Entry::Deferred {
                due,
                generation: deferred_at,
            }) => (in_sync && *deferred_at == generation && now < *due).then_some(*due),
            None if in_sync => {
                let due = now + spread(self.period, uid);
                entries.insert(key.to_string(), Entry::Deferred { due, generation });
                Some(due)
            }
            None => None,
        };
        match deferred_until {
            Some(due) if due > now => Decision::Defer(due - now),
            _ => {
                entries.insert(key.to_string(), Entry::Checked);
                Decision::Check
            }
        }
    }

    /// The object is gone.
    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a sync was asked to make, as a short stable string: the checked
/// desire (spec, guardrails and flags applied) and this operator's version.
/// Equal fingerprints: the last sync's verdict still holds as far as the
/// configuration goes.
pub fn fingerprint(desired: &impl std::fmt::Debug) -> String {
    use std::hash::{Hash, Hasher};
    // SipHash with fixed keys: the same input hashes the same in every
    // process of one build (the version covers the rest).
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    env!("CARGO_PKG_VERSION").hash(&mut hasher);
    format!("{desired:?}").hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// A fraction of `period`, fixed per object, spread evenly over [0, period).
pub fn spread(period: Duration, uid: &str) -> Duration {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    uid.hash(&mut hasher);
    period.mul_f64((hasher.finish() % 10_000) as f64 / 10_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: Duration = Duration::from_secs(600);

    fn deferred_for(decision: Decision) -> Duration {
        match decision {
            Decision::Defer(d) => d,
            Decision::Check => panic!("checked at once"),
        }
    }

    #[test]
    fn an_object_in_sync_is_looked_at_later_once_then_normally() {
        let checks = FirstChecks::new(PERIOD);
        let start = Instant::now();
        let wait = deferred_for(checks.decide("a", "uid-a", Some(3), true, start));
        assert!(wait < PERIOD);
        // Triggered again (its ServiceAccount listed) before it is due.
        let later = start + wait / 2;
        let again = deferred_for(checks.decide("a", "uid-a", Some(3), true, later));
        assert!(again <= wait - wait / 2 + Duration::from_millis(1));
        assert!(!checks.checked("a"));
        assert_eq!(
            checks.decide("a", "uid-a", Some(3), true, start + wait),
            Decision::Check
        );
        assert!(checks.checked("a"));
        assert_eq!(
            checks.decide("a", "uid-a", Some(3), true, start + wait),
            Decision::Check
        );
    }

    #[test]
    fn anything_not_in_sync_or_changed_is_looked_at_at_once() {
        let checks = FirstChecks::new(PERIOD);
        let now = Instant::now();
        assert_eq!(
            checks.decide("new", "u1", Some(1), false, now),
            Decision::Check
        );
        let first = checks.decide("edited", "uid-edited", Some(1), true, now);
        assert!(matches!(first, Decision::Defer(_)));
        assert_eq!(
            checks.decide("edited", "uid-edited", Some(2), true, now),
            Decision::Check
        );
        let first = checks.decide("sa", "uid-sa", Some(1), true, now);
        assert!(matches!(first, Decision::Defer(_)));
        assert_eq!(
            checks.decide("sa", "uid-sa", Some(1), false, now),
            Decision::Check,
            "its ServiceAccount changed while deferred"
        );
    }

    #[test]
    fn new_guardrails_end_every_deferral() {
        let checks = FirstChecks::new(PERIOD);
        let now = Instant::now();
        assert!(matches!(
            checks.decide("a", "uid-a", Some(1), true, now),
            Decision::Defer(_)
        ));
        checks.check_all_now();
        assert!(checks.checked("a") && checks.checked("never-seen"));
        assert_eq!(
            checks.decide("a", "uid-a", Some(1), true, now),
            Decision::Check
        );
    }

    #[test]
    fn a_forgotten_object_starts_over() {
        let checks = FirstChecks::new(PERIOD);
        let now = Instant::now();
        assert_eq!(
            checks.decide("a", "u", Some(1), false, now),
            Decision::Check
        );
        checks.forget("a");
        assert!(!checks.checked("a"));
    }

    #[test]
    fn a_fingerprint_changes_with_what_is_asked_and_only_with_it() {
        let asked = (
            "role-a",
            vec!["arn:aws:iam::aws:policy/ReadOnlyAccess"],
            Some("/apps/"),
        );
        assert_eq!(fingerprint(&asked), fingerprint(&asked.clone()));
        assert_ne!(
            fingerprint(&asked),
            fingerprint(&("role-a", asked.1.clone(), None::<&str>))
        );
        assert_eq!(fingerprint(&asked).len(), 16);
    }

    #[test]
    fn first_checks_spread_evenly_over_the_period() {
        let mut per_tenth = [0usize; 10];
        for i in 0..1000 {
            let offset = spread(PERIOD, &format!("uid-{i}"));
            assert!(offset < PERIOD);
            per_tenth[(offset.as_secs_f64() / 60.0) as usize] += 1;
        }
        // 100 expected in each tenth; a herd would put them all in one.
        assert!(
            per_tenth.iter().all(|n| (60..=140).contains(n)),
            "{per_tenth:?}"
        );
    }
}
