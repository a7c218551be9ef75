//! The safety net under the watches: every Database is looked at again after a long,
//! per-object interval even when no event came.
//!
//! Reconciles are driven by watch events. Should one ever be lost (an operator bug, a watch
//! relisted at an unlucky moment), nothing else would wake that Database again, and it would
//! stay stranded, for example waiting for a Backup that became ready long ago. A reconcile of
//! an unchanged Database writes nothing, so the re-check costs reads only.

use std::time::Duration;

use sha2::{Digest, Sha256};

/// Default interval between re-checks of an unchanged Database.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(600);

/// When to look at the object with `uid` again: `interval` stretched by a factor between 0.9
/// and 1.1 fixed per object, so Databases created in one burst do not all come due together,
/// and each keeps a steady period.
pub fn after(interval: Duration, uid: &str) -> Duration {
    let digest = Sha256::digest(uid.as_bytes());
    let spread = f64::from(u16::from_be_bytes([digest[0], digest[1]])) / f64::from(u16::MAX);
    interval.mul_f64(0.9 + 0.2 * spread)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_ten_percent_stable_per_object_and_spread_over_objects() {
        let interval = Duration::from_secs(600);
        let all: Vec<Duration> = (0..200).map(|i| after(interval, &format!("uid-{i}"))).collect();
        assert!(all.iter().all(|d| *d >= Duration::from_secs(540) && *d <= Duration::from_secs(660)));
        assert_eq!(after(interval, "uid-7"), after(interval, "uid-7"));
        let min = all.iter().min().copied().unwrap_or_default();
        let max = all.iter().max().copied().unwrap_or_default();
        assert!(max - min > Duration::from_secs(100), "spread {min:?}..{max:?}");
    }
}
