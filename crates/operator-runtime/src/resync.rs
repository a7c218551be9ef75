//! The safety net under the watches: every object is looked at again after a long,
//! per-object interval even when no event came.
//!
//! Reconciles are driven by watch events. Should one ever be lost (an operator bug, a watch
//! relisted at an unlucky moment), nothing else would wake that object again, and it would
//! stay stranded, for example a Database waiting for a Backup that became ready long ago. A
//! reconcile of an unchanged object writes nothing, so the re-check costs reads only.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use kube::runtime::controller::Action;

/// Default interval between re-checks of an unchanged object, in seconds.
pub const DEFAULT_SECONDS: u64 = 600;

/// `action`, or, when it waits for a change, a re-check after [`after`]`(interval, uid)`.
pub fn or_resync(action: Action, interval: Duration, uid: Option<&str>) -> Action {
    if action == Action::await_change() {
        Action::requeue(after(interval, uid.unwrap_or_default()))
    } else {
        action
    }
}

/// When to look at the object with `uid` again: `interval` stretched by a factor between 0.9
/// and 1.1 fixed per object, so Databases created in one burst do not all come due together,
/// and each keeps a steady period.
pub fn after(interval: Duration, uid: &str) -> Duration {
    // `DefaultHasher::new` has fixed keys: the same spread in every run and every replica.
    let mut hasher = std::hash::DefaultHasher::new();
    uid.hash(&mut hasher);
    let spread = (hasher.finish() % 10_000) as f64 / 10_000.0;
    interval.mul_f64(0.9 + 0.2 * spread)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_wait_for_change_becomes_a_resync() {
        let interval = Duration::from_secs(600);
        let resync = or_resync(Action::await_change(), interval, Some("u"));
        assert_eq!(resync, Action::requeue(after(interval, "u")));
        let soon = Action::requeue(Duration::from_secs(3));
        assert_eq!(or_resync(soon.clone(), interval, Some("u")), soon);
    }

    #[test]
    fn within_ten_percent_stable_per_object_and_spread_over_objects() {
        let interval = Duration::from_secs(600);
        let all: Vec<Duration> = (0..200)
            .map(|i| after(interval, &format!("uid-{i}")))
            .collect();
        assert!(
            all.iter()
                .all(|d| *d >= Duration::from_secs(540) && *d <= Duration::from_secs(660))
        );
        assert_eq!(after(interval, "uid-7"), after(interval, "uid-7"));
        let min = all.iter().min().copied().unwrap_or_default();
        let max = all.iter().max().copied().unwrap_or_default();
        assert!(
            max - min > Duration::from_secs(100),
            "spread {min:?}..{max:?}"
        );
    }
}
