//! The pure part of leader election: given the Lease as last read, what to do, and what to
//! write.
//!
//! Expiry is judged on this process's own monotonic clock, never by comparing the Lease's
//! `renewTime` with the local wall clock: the clocks of two nodes may disagree by more than a
//! lease duration. A holder counts as gone once its Lease has stayed unchanged for a whole
//! lease duration since this process first saw it so (client-go's rule too). The holder, in
//! turn, steps down [`Timing::renew_deadline`] after its last successful renewal, well before
//! any follower can see its Lease expire.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;

/// How long a Lease lasts and how often it is renewed and retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How long followers wait, after the Lease last changed, before they take it over.
    pub lease_duration: Duration,
    /// How often the leader renews the Lease.
    pub renew_every: Duration,
    /// How often followers look at the Lease, and how soon the leader retries a failed
    /// renewal.
    pub retry_every: Duration,
    /// How long after its last successful renewal the leader gives up. Shorter than
    /// `lease_duration`, so the old leader has stopped before a follower can take over.
    pub renew_deadline: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            lease_duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
            retry_every: Duration::from_secs(2),
            renew_deadline: Duration::from_secs(10),
        }
    }
}

/// What to do about the Lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// There is no Lease yet: create it, held by us.
    Create,
    /// Nobody holds it (released, or expired): take it over.
    TakeOver,
    /// We hold it already: renew it. After a container restart the Pod keeps its name, and
    /// the process that held the Lease under that name has exited, so this is safe.
    Renew,
    /// Someone else holds it, for at least `remaining` more.
    Wait { holder: String, remaining: Duration },
}

/// When this process first saw the Lease with its current holder and renewal time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
    since: Instant,
}

impl Observation {
    /// The observation after reading `spec` at `now`. A record that has not changed keeps
    /// the instant it was first seen; a changed one (a renewal, a new holder) starts afresh.
    pub fn update(previous: Option<Observation>, spec: &LeaseSpec, now: Instant) -> Observation {
        let holder = holder(spec).map(str::to_owned);
        match previous {
            Some(seen) if seen.holder == holder && seen.renew_time == spec.renew_time => seen,
            _ => Observation {
                holder,
                renew_time: spec.renew_time.clone(),
                since: now,
            },
        }
    }

    /// When the Lease was first seen as it is now.
    pub fn since(&self) -> Instant {
        self.since
    }
}

/// What to do about `lease` (absent: `None`), which has not changed since `unchanged_since`.
pub fn decide(
    lease: Option<&LeaseSpec>,
    unchanged_since: Instant,
    identity: &str,
    now: Instant,
    timing: &Timing,
) -> Decision {
    let Some(spec) = lease else {
        return Decision::Create;
    };
    match holder(spec) {
        None => Decision::TakeOver,
        Some(holder) if holder == identity => Decision::Renew,
        Some(holder) => {
            let expires = unchanged_since + duration_of(spec, timing);
            match expires.checked_duration_since(now) {
                Some(remaining) if !remaining.is_zero() => Decision::Wait {
                    holder: holder.to_owned(),
                    remaining,
                },
                _ => Decision::TakeOver,
            }
        }
    }
}

/// Whether a leader that last renewed at `renewed_at` must give up at `now`.
pub fn must_step_down(renewed_at: Instant, now: Instant, timing: &Timing) -> bool {
    now.saturating_duration_since(renewed_at) >= timing.renew_deadline
}

/// The spec to write so that `identity` holds the Lease from `now` on: a new acquisition,
/// counted in `leaseTransitions`, unless `current` is ours already.
pub fn held_by(
    current: Option<&LeaseSpec>,
    identity: &str,
    now: Timestamp,
    timing: &Timing,
) -> LeaseSpec {
    let ours = current.is_some_and(|c| holder(c) == Some(identity));
    let transitions = match current {
        None => 0,
        Some(c) if ours => c.lease_transitions.unwrap_or(0),
        Some(c) => c.lease_transitions.unwrap_or(0).saturating_add(1),
    };
    let current = current.cloned().unwrap_or_default();
    LeaseSpec {
        holder_identity: Some(identity.to_owned()),
        lease_duration_seconds: Some(seconds(timing.lease_duration)),
        acquire_time: match (&current.acquire_time, ours) {
            (Some(acquired), true) => Some(acquired.clone()),
            _ => Some(MicroTime(now)),
        },
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(transitions),
        ..current
    }
}

/// The spec that gives the Lease up: no holder, so followers take it over at their next
/// look. The one-second duration makes followers that judge by expiry alone quick as well.
pub fn released(current: &LeaseSpec, now: Timestamp) -> LeaseSpec {
    LeaseSpec {
        holder_identity: None,
        lease_duration_seconds: Some(1),
        renew_time: Some(MicroTime(now)),
        ..current.clone()
    }
}

/// The holder named in `spec`; an empty name (how client-go releases) is no holder.
pub fn holder(spec: &LeaseSpec) -> Option<&str> {
    spec.holder_identity.as_deref().filter(|h| !h.is_empty())
}

/// The holder's own lease duration when it wrote one, else ours.
fn duration_of(spec: &LeaseSpec, timing: &Timing) -> Duration {
    match spec.lease_duration_seconds {
        Some(seconds) if seconds > 0 => Duration::from_secs(seconds.unsigned_abs().into()),
        _ => timing.lease_duration,
    }
}

fn seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs()).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "operator-a";
    const OTHER: &str = "operator-b";

    fn spec(holder: Option<&str>, renewed: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(
                Timestamp::from_second(renewed).unwrap_or(Timestamp::UNIX_EPOCH),
            )),
            lease_transitions: Some(3),
            ..LeaseSpec::default()
        }
    }

    fn decide_at(lease: Option<&LeaseSpec>, seen_secs_ago: u64) -> Decision {
        let now = Instant::now() + Duration::from_secs(3600);
        let seen = now - Duration::from_secs(seen_secs_ago);
        decide(lease, seen, ME, now, &Timing::default())
    }

    #[test]
    fn acquires_an_absent_lease() {
        assert_eq!(decide_at(None, 0), Decision::Create);
    }

    #[test]
    fn takes_over_a_lease_unchanged_for_its_duration() {
        let lease = spec(Some(OTHER), 100);
        assert_eq!(decide_at(Some(&lease), 15), Decision::TakeOver);
        assert_eq!(decide_at(Some(&lease), 60), Decision::TakeOver);
    }

    #[test]
    fn takes_over_a_released_lease_at_once() {
        assert_eq!(decide_at(Some(&spec(None, 100)), 0), Decision::TakeOver);
        assert_eq!(decide_at(Some(&spec(Some(""), 100)), 0), Decision::TakeOver);
    }

    #[test]
    fn renews_a_lease_held_by_us() {
        assert_eq!(decide_at(Some(&spec(Some(ME), 100)), 0), Decision::Renew);
        assert_eq!(decide_at(Some(&spec(Some(ME), 100)), 600), Decision::Renew);
    }

    #[test]
    fn waits_while_another_holder_is_fresh() {
        let lease = spec(Some(OTHER), 100);
        assert_eq!(
            decide_at(Some(&lease), 5),
            Decision::Wait {
                holder: OTHER.into(),
                remaining: Duration::from_secs(10)
            }
        );
    }

    #[test]
    fn uses_the_holders_own_duration() {
        let mut lease = spec(Some(OTHER), 100);
        lease.lease_duration_seconds = Some(60);
        assert!(matches!(decide_at(Some(&lease), 30), Decision::Wait { .. }));
        lease.lease_duration_seconds = None;
        assert_eq!(decide_at(Some(&lease), 30), Decision::TakeOver);
    }

    #[test]
    fn expiry_counts_from_the_first_sighting_of_an_unchanged_record() {
        let start = Instant::now();
        let later = start + Duration::from_secs(20);
        let first = Observation::update(None, &spec(Some(OTHER), 100), start);
        let same = Observation::update(Some(first.clone()), &spec(Some(OTHER), 100), later);
        assert_eq!(same.since(), start);
        // A renewal, or a new holder, restarts the clock, whatever the wall-clock times say.
        let renewed = Observation::update(Some(first.clone()), &spec(Some(OTHER), 90), later);
        assert_eq!(renewed.since(), later);
        let new_holder = Observation::update(Some(first), &spec(Some("c"), 100), later);
        assert_eq!(new_holder.since(), later);
    }

    #[test]
    fn the_leader_steps_down_before_followers_may_take_over() {
        let timing = Timing::default();
        assert!(timing.renew_deadline < timing.lease_duration);
        assert!(timing.renew_every + timing.retry_every < timing.renew_deadline);
        let renewed = Instant::now();
        assert!(!must_step_down(
            renewed,
            renewed + Duration::from_secs(9),
            &timing
        ));
        assert!(must_step_down(
            renewed,
            renewed + Duration::from_secs(10),
            &timing
        ));
    }

    #[test]
    fn taking_over_counts_a_transition_and_renewing_does_not() {
        let timing = Timing::default();
        let now = Timestamp::from_second(200).unwrap_or(Timestamp::UNIX_EPOCH);
        let taken = held_by(Some(&spec(Some(OTHER), 100)), ME, now, &timing);
        assert_eq!(taken.holder_identity.as_deref(), Some(ME));
        assert_eq!(taken.lease_transitions, Some(4));
        assert_eq!(taken.acquire_time, Some(MicroTime(now)));
        assert_eq!(taken.renew_time, Some(MicroTime(now)));
        assert_eq!(taken.lease_duration_seconds, Some(15));

        let later = Timestamp::from_second(205).unwrap_or(Timestamp::UNIX_EPOCH);
        let renewed = held_by(Some(&taken), ME, later, &timing);
        assert_eq!(renewed.lease_transitions, Some(4));
        assert_eq!(renewed.acquire_time, Some(MicroTime(now)));
        assert_eq!(renewed.renew_time, Some(MicroTime(later)));

        let created = held_by(None, ME, now, &timing);
        assert_eq!(created.lease_transitions, Some(0));
        let after_release = held_by(Some(&released(&taken, later)), OTHER, later, &timing);
        assert_eq!(after_release.lease_transitions, Some(5));
    }

    #[test]
    fn a_released_lease_has_no_holder() {
        let now = Timestamp::from_second(300).unwrap_or(Timestamp::UNIX_EPOCH);
        let released = released(&spec(Some(ME), 100), now);
        assert_eq!(holder(&released), None);
        assert_eq!(released.lease_transitions, Some(3));
        assert_eq!(
            decide_at(Some(&released), 0),
            Decision::TakeOver,
            "followers take a released Lease at once"
        );
    }
}
