//! What a replica answers on `/readyz`, the same in both operators.
//!
//! A follower is Ready: it is doing its job, which is to stand by for the Lease. Were it
//! not, a Deployment of several replicas would never finish a rollout (`helm --wait`,
//! `kubectl rollout status`) and a rolling update could not keep a standby while it
//! replaces the leader. Which replica leads is on `/metrics` (the `*_leader` gauge) and in
//! the Lease's `holderIdentity`. The leader is Ready once its caches have synced: before,
//! its metrics would count no objects and a stuck start could not be told apart.

use std::future::Future;

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};
use kube::runtime::reflector::{Lookup, Store};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What a replica knows about itself, shared between the controllers (which set it) and the
/// HTTP server (which reports it).
#[derive(Debug, Default)]
pub struct Health {
    leading: AtomicBool,
    synced: AtomicBool,
}

impl Health {
    /// This replica reconciles: at once without leader election, else once it holds the Lease.
    pub fn set_leading(&self) {
        self.leading.store(true, Ordering::Relaxed);
    }

    /// Every cache the controllers read has its first full list.
    pub fn set_synced(&self) {
        self.synced.store(true, Ordering::Relaxed);
    }

    pub fn readiness(&self) -> Readiness {
        Readiness::of(
            self.leading.load(Ordering::Relaxed),
            self.synced.load(Ordering::Relaxed),
        )
    }
}

/// Resolves once `synced()` answers true, or false when it can never sync (the controllers
/// stopped first).
///
/// A store's readiness is a oneshot that wakes only the waiter that polled it last, and each
/// controller waits on its own store before it reconciles, later than this when it first
/// waited for the leader Lease. So this never waits for a wake-up: it looks again every
/// second.
pub async fn caches_synced<F, Fut>(synced: F) -> bool
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    loop {
        if let Ok(answer) = tokio::time::timeout(Duration::from_secs(1), synced()).await {
            if answer {
                tracing::info!("caches synced");
            }
            return answer;
        }
    }
}

/// Resolves once every store added with [`Synced::of`] has its first full list, shared by
/// every reconcile that must not read its caches before (a missing object could not be told
/// from one not listed yet).
#[derive(Default)]
pub struct Synced {
    waits: Vec<Box<dyn Fn() -> BoxFuture<'static, bool> + Send + Sync>>,
}

impl Synced {
    /// Also waits for `store`.
    pub fn of<K>(mut self, store: &Store<K>) -> Self
    where
        K: Lookup + Clone + Send + Sync + 'static,
        K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
    {
        let store = store.clone();
        self.waits.push(Box::new(move || {
            let store = store.clone();
            async move { store.wait_until_ready().await.is_ok() }.boxed()
        }));
        self
    }

    /// The wait, to be awaited by any number of reconciles: true once synced, false when a
    /// watch ended for good (shutdown).
    pub fn shared(self) -> Shared<BoxFuture<'static, bool>> {
        async move {
            caches_synced(|| async {
                futures::future::join_all(self.waits.iter().map(|wait| wait()))
                    .await
                    .into_iter()
                    .all(|ok| ok)
            })
            .await
        }
        .boxed()
        .shared()
    }
}

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
