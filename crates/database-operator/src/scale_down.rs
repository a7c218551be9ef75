//! Scaling down removes the StatefulSet's highest ordinals. When the primary is among them it
//! is moved first, by a planned switchover to a ready standby that stays, and the StatefulSet
//! keeps its size until the primary is elsewhere: scaling down never costs a failover (pure).

use api::names::ROLE_REPLICA;
use api::{Database, InstanceStatus};

/// How many instances to ask the StatefulSet for now, and the switchover (from, to) to ask
/// for first, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalePlan {
    pub replicas: i32,
    pub switchover: Option<(String, String)>,
}

/// `current`: the StatefulSet's replicas now; `primary`: the Pod that is primary.
pub fn plan(
    db: &Database,
    current: Option<i32>,
    primary: Option<&str>,
    instances: &[InstanceStatus],
) -> ScalePlan {
    let wanted = db.spec.replicas;
    let apply = ScalePlan {
        replicas: wanted,
        switchover: None,
    };
    let (Some(current), Some(primary)) = (current, primary) else {
        return apply;
    };
    let sts = api::names::statefulset(&kube::ResourceExt::name_any(db));
    let stays = |pod: &str| ordinal(&sts, pod).is_some_and(|n| n < wanted);
    if wanted >= current || stays(primary) {
        return apply;
    }
    // The standby that stays and is furthest along; none ready: wait, removing nothing.
    let target = instances
        .iter()
        .filter(|i| i.role.as_deref() == Some(ROLE_REPLICA) && i.ready && stays(&i.name))
        .min_by_key(|i| (i.lag_bytes.unwrap_or(i64::MAX), i.name.clone()));
    ScalePlan {
        replicas: current,
        switchover: target.map(|t| (primary.to_string(), t.name.clone())),
    }
}

fn ordinal(statefulset: &str, pod: &str) -> Option<i32> {
    pod.strip_prefix(statefulset)?
        .strip_prefix('-')?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::fixtures::database;

    fn instance(name: &str, role: &str, lag: Option<i64>) -> InstanceStatus {
        InstanceStatus {
            name: name.to_string(),
            role: Some(role.to_string()),
            ready: true,
            lag_bytes: lag,
            ..InstanceStatus::default()
        }
    }

    fn shop(replicas: i32) -> Database {
        let mut db = database("shop");
        db.spec.replicas = replicas;
        db
    }

    #[test]
    fn a_primary_about_to_be_removed_is_switched_over_to_a_standby_that_stays_first() {
        let instances = [
            instance("shop-0", "replica", Some(900)),
            instance("shop-1", "replica", Some(10)),
            instance("shop-2", "primary", None),
        ];
        let plan = plan(&shop(2), Some(3), Some("shop-2"), &instances);
        assert_eq!(
            plan,
            ScalePlan {
                replicas: 3,
                switchover: Some(("shop-2".into(), "shop-1".into()))
            }
        );
        // Down to one: only shop-0 stays.
        let plan = super::plan(&shop(1), Some(3), Some("shop-2"), &instances);
        assert_eq!(plan.switchover, Some(("shop-2".into(), "shop-0".into())));
    }

    #[test]
    fn scaling_goes_ahead_when_the_primary_stays_or_nothing_shrinks() {
        let instances = [
            instance("shop-0", "primary", None),
            instance("shop-1", "replica", Some(0)),
            instance("shop-2", "replica", Some(0)),
        ];
        let down = plan(&shop(1), Some(3), Some("shop-0"), &instances);
        assert_eq!((down.replicas, down.switchover), (1, None));
        let up = plan(&shop(5), Some(3), Some("shop-2"), &instances);
        assert_eq!((up.replicas, up.switchover), (5, None));
        let first = plan(&shop(3), None, None, &[]);
        assert_eq!((first.replicas, first.switchover), (3, None));
    }

    #[test]
    fn without_a_ready_standby_that_stays_nothing_is_removed_yet() {
        let mut standby = instance("shop-0", "replica", Some(0));
        standby.ready = false;
        let instances = [standby, instance("shop-1", "primary", None)];
        let plan = plan(&shop(1), Some(2), Some("shop-1"), &instances);
        assert_eq!((plan.replicas, plan.switchover), (2, None));
    }
}
