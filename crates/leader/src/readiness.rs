//! What a replica answers on `/readyz`, the same in both operators.
//!
//! A follower is Ready: it is doing its job, which is to stand by for the Lease. Were it
//! not, a Deployment of several replicas would never finish a rollout (`helm --wait`,
//! `kubectl rollout status`) and a rolling update could not keep a standby while it
//! replaces the leader. Which replica leads is on `/metrics` (the `*_leader` gauge) and in
//! the Lease's `holderIdentity`. The leader is Ready once its caches have synced: before,
//! its metrics would count no objects and a stuck start could not be told apart.

/// The state `/readyz` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Waiting to take over the Lease.
    StandingBy,
    /// Leading, caches still being listed.
    Syncing,
    /// Leading with synced caches.
    Leading,
}

impl Readiness {
    pub fn of(leading: bool, caches_synced: bool) -> Readiness {
        match (leading, caches_synced) {
            (false, _) => Readiness::StandingBy,
            (true, false) => Readiness::Syncing,
            (true, true) => Readiness::Leading,
        }
    }

    pub fn is_ready(self) -> bool {
        self != Readiness::Syncing
    }

    /// The body of the answer, for whoever runs `curl /readyz`.
    pub fn message(self) -> &'static str {
        match self {
            Readiness::StandingBy => "ready: standing by to take over the leader Lease",
            Readiness::Syncing => "not ready: leading, caches not synced yet",
            Readiness::Leading => "ready: leading",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn followers_and_synced_leaders_are_ready() {
        let rows = [
            (false, false, true, "standing by"),
            (false, true, true, "standing by"),
            (true, false, false, "not synced"),
            (true, true, true, "leading"),
        ];
        for (leading, synced, ready, says) in rows {
            let readiness = Readiness::of(leading, synced);
            assert_eq!(readiness.is_ready(), ready, "{leading} {synced}");
            assert!(readiness.message().contains(says), "{readiness:?}");
        }
    }
}
