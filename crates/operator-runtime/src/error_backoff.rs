//! Per-object exponential backoff for errors a retry can fix.
//!
//! kube's controller retries when the error policy says so, but keeps no failure count; this
//! does, per object, so one object failing repeatedly waits longer and longer (capped)
//! while the others retry fast. A successful reconcile resets the count, and so do a
//! permanent error and the deletion of the object (see [`crate::controller`]), so the map
//! holds only objects that are failing now.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;

/// First retry delay, unless the error asks for another ([`crate::ReconcileError::first_retry`]).
pub const BASE: Duration = Duration::from_secs(5);
/// Longest retry delay.
pub const MAX: Duration = Duration::from_secs(300);

/// The delay before retry number `failures` (1 for the first): `first * 2^(failures-1)`,
/// at most `MAX`.
pub fn delay(first: Duration, failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    first.saturating_mul(1 << exponent).min(MAX)
}

/// Failure counts by object key (`namespace/name`).
#[derive(Debug, Default)]
pub struct ErrorBackoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl ErrorBackoff {
    /// Counts a failure of `key` and returns how long to wait, `first` after the first
    /// failure, with up to 10% jitter so objects that failed together (an API server outage)
    /// do not retry in lockstep.
    pub fn next(&self, key: &str, first: Duration) -> Duration {
        let failures = {
            let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            let count = map.entry(key.to_string()).or_default();
            *count = count.saturating_add(1);
            *count
        };
        let base = delay(first, failures);
        let jitter = rand::rng().random_range(0..=base.as_millis() as u64 / 10);
        base + Duration::from_millis(jitter)
    }

    /// Forgets the failures of `key`: after a success, a permanent error, or once the object
    /// is gone.
    pub fn reset(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        let rows = [
            (1, 5),
            (2, 10),
            (3, 20),
            (4, 40),
            (6, 160),
            (7, 300),
            (40, 300),
        ];
        for (failures, secs) in rows {
            assert_eq!(
                delay(BASE, failures),
                Duration::from_secs(secs),
                "{failures}"
            );
        }
    }

    #[test]
    fn counts_are_per_object_and_reset_on_success() {
        let backoff = ErrorBackoff::default();
        let within = |d: Duration, secs: u64| {
            d >= Duration::from_secs(secs) && d <= Duration::from_secs(secs) * 11 / 10
        };
        assert!(within(backoff.next("prod/a", BASE), 5));
        assert!(within(backoff.next("prod/a", BASE), 10));
        assert!(within(backoff.next("prod/b", BASE), 5));
        backoff.reset("prod/a");
        assert!(within(backoff.next("prod/a", BASE), 5));
        // An error that asks for a longer first wait doubles from there.
        let slow = Duration::from_secs(60);
        assert!(within(backoff.next("prod/c", slow), 60));
        assert!(within(backoff.next("prod/c", slow), 120));
    }
}
