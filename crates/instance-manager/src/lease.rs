//! The Lease that says who the primary is, and the timing that keeps two primaries from ever
//! accepting writes at the same time.
//!
//! The primary renews every [`RENEW_EVERY`]. A standby considers the Lease expired only once
//! it has seen it *unchanged* for [`DURATION`] on its own monotonic clock, so clocks never
//! have to agree. The primary fences itself (stops PostgreSQL) when its last successful
//! renewal was sent more than [`FENCE_AFTER`] ago; checked every [`FENCE_CHECK_EVERY`], the
//! stop takes at most [`STOP_WITHIN`]. Any renewal a standby saw was sent before it saw it,
//! so a standby's expiry comes at least `DURATION` after the primary's last renewal, while the
//! primary is stopped by `FENCE_AFTER + FENCE_CHECK_EVERY + STOP_WITHIN` after it, which is
//! shorter ([`fencing_precedes_expiry`] checks the numbers).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use api::names::ANNOTATION_PRIMARY_POSITION;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

pub const DURATION: Duration = Duration::from_secs(10);
pub const RENEW_EVERY: Duration = Duration::from_secs(2);
/// Each renewal request gives up after this, so a hung API server cannot hold up the next.
pub const RENEW_TIMEOUT: Duration = Duration::from_secs(2);
pub const FENCE_AFTER: Duration = Duration::from_secs(6);
pub const FENCE_CHECK_EVERY: Duration = Duration::from_millis(250);
/// An immediate shutdown, then SIGKILL of the postmaster if that did not finish.
pub const STOP_WITHIN: Duration = Duration::from_secs(2);

/// The invariant of the module docs, in numbers.
pub const fn fencing_precedes_expiry() -> bool {
    FENCE_AFTER.as_millis() + FENCE_CHECK_EVERY.as_millis() + STOP_WITHIN.as_millis()
        < DURATION.as_millis()
}
const _: () = assert!(fencing_precedes_expiry());

/// The Lease as the instance managers read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The Pod holding it; empty when released.
    pub identity: String,
    pub resource_version: String,
    pub transitions: i32,
    /// How far the holder had written WAL at its last renewal, when it said.
    pub position: Option<u64>,
}

impl Holder {
    fn of(lease: &Lease) -> Holder {
        let spec = lease.spec.as_ref();
        Holder {
            identity: spec
                .and_then(|s| s.holder_identity.clone())
                .unwrap_or_default(),
            resource_version: lease.metadata.resource_version.clone().unwrap_or_default(),
            transitions: spec.and_then(|s| s.lease_transitions).unwrap_or(0),
            position: lease
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANNOTATION_PRIMARY_POSITION))
                .and_then(|p| p.parse().ok()),
        }
    }

    pub fn is_released(&self) -> bool {
        self.identity.is_empty()
    }
}

/// Tracks when the Lease last changed, as this instance saw it.
#[derive(Debug, Default)]
pub struct Observer {
    last: Option<(String, Instant)>,
}

impl Observer {
    /// Records what was just read; returns whether the Lease has now expired: released, or
    /// unchanged for [`DURATION`] since this observer first saw its current version.
    pub fn observe(&mut self, holder: &Holder, now: Instant) -> bool {
        holder.is_released() || self.unchanged_for(holder, now) >= DURATION
    }

    /// Records what was just read; returns how long this observer has seen it unchanged.
    pub fn unchanged_for(&mut self, holder: &Holder, now: Instant) -> Duration {
        match &self.last {
            Some((version, since)) if *version == holder.resource_version => {
                now.duration_since(*since)
            }
            _ => {
                self.last = Some((holder.resource_version.clone(), now));
                Duration::ZERO
            }
        }
    }
}

/// What a conditional write of the Lease came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Write {
    Done(Holder),
    /// Someone else wrote it first (HTTP 409): read it again.
    Lost,
}

#[derive(Clone)]
pub struct Leases {
    api: Api<Lease>,
    name: String,
}

impl Leases {
    pub fn new(client: kube::Client, namespace: &str, name: &str) -> Leases {
        Leases {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
        }
    }

    /// The Lease, or `None` when it does not exist yet.
    pub async fn read(&self) -> Result<Option<Holder>> {
        let lease = self
            .api
            .get_opt(&self.name)
            .await
            .with_context(|| format!("reading Lease {}", self.name))?;
        Ok(lease.as_ref().map(Holder::of))
    }

    /// Creates the Lease held by `me`; [`Write::Lost`] when it exists already.
    pub async fn create(&self, me: &str) -> Result<Write> {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(spec(me, 0)),
        };
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(created) => Ok(Write::Done(Holder::of(&created))),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(Write::Lost),
            Err(e) => Err(e).with_context(|| format!("creating Lease {}", self.name)),
        }
    }

    /// Writes `identity` as holder (renewing when it already is, taking over or releasing
    /// otherwise), only if the Lease is still at `current`'s version.
    pub async fn write(&self, current: &Holder, identity: &str) -> Result<Write> {
        self.put(current, identity, None).await
    }

    /// Renews the Lease held by `me`, telling how far it has written WAL (`position`).
    pub async fn renew(&self, current: &Holder, me: &str, position: Option<u64>) -> Result<Write> {
        self.put(current, me, position).await
    }

    async fn put(&self, current: &Holder, identity: &str, position: Option<u64>) -> Result<Write> {
        let transitions = if current.identity == identity {
            current.transitions
        } else {
            current.transitions + 1
        };
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                resource_version: Some(current.resource_version.clone()),
                annotations: position
                    .map(|p| [(ANNOTATION_PRIMARY_POSITION.to_string(), p.to_string())].into()),
                ..ObjectMeta::default()
            },
            spec: Some(spec(identity, transitions)),
        };
        let params = PostParams::default();
        let request = self.api.replace(&self.name, &params, &lease);
        match tokio::time::timeout(RENEW_TIMEOUT, request).await {
            Err(_) => anyhow::bail!("writing Lease {} timed out", self.name),
            Ok(Ok(written)) => Ok(Write::Done(Holder::of(&written))),
            Ok(Err(kube::Error::Api(e))) if e.code == 409 => Ok(Write::Lost),
            Ok(Err(e)) => Err(e).with_context(|| format!("writing Lease {}", self.name)),
        }
    }
}

fn spec(identity: &str, transitions: i32) -> LeaseSpec {
    let now = MicroTime(Timestamp::now());
    LeaseSpec {
        holder_identity: Some(identity.to_string()),
        lease_duration_seconds: Some(DURATION.as_secs() as i32),
        renew_time: Some(now.clone()),
        acquire_time: Some(now),
        lease_transitions: Some(transitions),
        ..LeaseSpec::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(identity: &str, version: &str) -> Holder {
        Holder {
            identity: identity.to_string(),
            resource_version: version.to_string(),
            transitions: 0,
            position: None,
        }
    }

    #[test]
    fn a_lease_expires_only_after_it_stayed_unchanged_for_the_duration() {
        let mut observer = Observer::default();
        let t0 = Instant::now();
        assert!(!observer.observe(&holder("db-0", "1"), t0));
        assert!(!observer.observe(&holder("db-0", "1"), t0 + DURATION / 2));
        // Renewed: the clock starts again from when this observer saw the new version.
        assert!(!observer.observe(
            &holder("db-0", "2"),
            t0 + DURATION - Duration::from_millis(1)
        ));
        assert!(!observer.observe(&holder("db-0", "2"), t0 + DURATION + DURATION / 2));
        assert!(observer.observe(&holder("db-0", "2"), t0 + 2 * DURATION));
    }

    #[test]
    fn unchanged_for_counts_from_the_first_sight_of_a_version() {
        let mut observer = Observer::default();
        let t0 = Instant::now();
        assert_eq!(observer.unchanged_for(&holder("", "3"), t0), Duration::ZERO);
        assert_eq!(
            observer.unchanged_for(&holder("", "3"), t0 + DURATION),
            DURATION
        );
        assert_eq!(
            observer.unchanged_for(&holder("db-1", "4"), t0 + DURATION),
            Duration::ZERO
        );
    }

    #[test]
    fn a_released_lease_is_expired_at_once() {
        let mut observer = Observer::default();
        assert!(observer.observe(&holder("", "7"), Instant::now()));
    }

    #[test]
    fn the_primary_is_stopped_before_a_standby_may_take_over() {
        assert!(fencing_precedes_expiry());
        assert!(RENEW_EVERY + RENEW_TIMEOUT < FENCE_AFTER);
    }
}
