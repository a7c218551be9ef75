//! How long a controller's watches pause after one of them fails, the same in both operators
//! (`Controller::trigger_backoff`).
//!
//! kube's Controller merges all its watches (the kind it reconciles and the kinds it owns or
//! watches) into one stream with one backoff: any watch failing pauses every watch, and the
//! errors of several watches come out one pause at a time. An API server restart gives each
//! watch two or three (connection refused, 403 from the old server as it shuts down, 410 Gone
//! for a resource version the new one does not have), so with kube's default (doubling from
//! 0.8 to 30 seconds plus up to 100% jitter, reset only after two quiet minutes) the
//! control-plane restart test saw a change go unseen for over two minutes. These pauses stay
//! short, and start over as soon as any watch delivers an event again.
//!
//! Here rather than in each operator because it is part of how a replica keeps running
//! through control-plane faults, like the Lease it holds.

use std::time::Duration;

use kube::runtime::utils::Backoff;

const FIRST: Duration = Duration::from_millis(250);
/// client-go caps the backoff of each watch at 30 seconds; here one pause is paid per error
/// of any watch, one after another (the database-operator has nine). With a 2-second cap a
/// change after a restart waited 15 seconds. A server that is down still sees at most one
/// attempt a second from each controller.
const MAX: Duration = Duration::from_secs(1);

/// Doubling pauses from [`FIRST`] to [`MAX`], never giving up.
#[derive(Debug)]
pub struct WatchBackoff {
    next: Duration,
}

impl Default for WatchBackoff {
    fn default() -> Self {
        WatchBackoff { next: FIRST }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let pause = self.next;
        self.next = (pause * 2).min(MAX);
        Some(pause)
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_a_second_and_start_over_on_reset() {
        let mut backoff = WatchBackoff::default();
        let millis: Vec<_> = backoff.by_ref().take(7).map(|d| d.as_millis()).collect();
        assert_eq!(millis, [250, 500, 1000, 1000, 1000, 1000, 1000]);
        backoff.reset();
        assert_eq!(backoff.next(), Some(FIRST));
    }
}
