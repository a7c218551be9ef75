//! Rolling a new Pod spec (image, resources, settings) out to a Database's instances:
//! standbys first, one at a time, then a single switchover to an updated standby, then the
//! former primary. Pure.
//!
//! The StatefulSet uses the `OnDelete` update strategy, so its controller never restarts a
//! Pod by itself: its own rolling update goes by ordinal, restarting the primary wherever it
//! sits in that order (a hand-over to a standby that is restarted next, a second hand-over)
//! and, with one instance or a broken spec, takes the primary down blind. Here the operator
//! picks each Pod to replace, and stops rolling as soon as an instance is not ready, so a
//! spec that does not start reaches one standby, never the primary.

use api::InstanceStatus;
use api::names::ROLE_REPLICA;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

/// The label the StatefulSet controller gives each Pod: the revision of the spec it runs.
const REVISION_LABEL: &str = "controller-revision-hash";

/// The next move of a rollout, when there is one to make now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutStep {
    /// Delete this Pod (its uid guards against deleting its replacement), so that the
    /// StatefulSet recreates it with the newest spec.
    Replace { pod: String, uid: String },
    /// Move the primary to this ready, updated standby before replacing it.
    Switchover { from: String, to: String },
}

/// What to do next to bring every instance to the StatefulSet's newest spec; `None` when
/// they all run it, or while the last step has not settled (a Pod terminating, starting or
/// not ready).
pub fn plan(
    sts: &StatefulSet,
    pods: &[Pod],
    instances: &[InstanceStatus],
    primary: Option<&str>,
) -> Option<RolloutStep> {
    let status = sts.status.as_ref()?;
    let newest = status.update_revision.as_deref()?;
    // The StatefulSet controller has not computed the newest revision of the spec yet.
    if status.observed_generation < sts.metadata.generation {
        return None;
    }
    let desired = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    if pods.len() < desired as usize || pods.iter().any(|p| p.metadata.deletion_timestamp.is_some())
    {
        return None;
    }
    let ready = |name: &str| instances.iter().any(|i| i.name == name && i.ready);
    let mut outdated: Vec<&Pod> = pods
        .iter()
        .filter(|p| p.labels().get(REVISION_LABEL).map(String::as_str) != Some(newest))
        .collect();
    if outdated.is_empty() {
        return None;
    }
    // Highest ordinal first, as the StatefulSet controller would.
    outdated.sort_by_key(|p| std::cmp::Reverse(ordinal(&p.name_any())));
    let is_primary = |p: &&Pod| primary == Some(p.name_any().as_str());
    let replace = |p: &Pod| {
        Some(RolloutStep::Replace {
            pod: p.name_any(),
            uid: p.uid().unwrap_or_default(),
        })
    };

    // An outdated standby that is not ready serves nothing, and its replacement may be what
    // fixes it (the user corrected a spec that did not start): replace it first. So is a
    // single instance; a primary with standbys is left to fail over instead.
    let alone = pods.len() == 1;
    if let Some(broken) = outdated
        .iter()
        .find(|p| (alone || !is_primary(p)) && !ready(&p.name_any()))
    {
        return replace(broken);
    }
    if pods.iter().any(|p| !ready(&p.name_any())) {
        return None;
    }
    if let Some(standby) = outdated.iter().find(|p| !is_primary(p)) {
        return replace(standby);
    }
    // Only the primary is left on the old spec.
    let old_primary = outdated.first()?;
    let updated_standby = instances
        .iter()
        .filter(|i| i.ready && i.role.as_deref() == Some(ROLE_REPLICA))
        .filter(|i| !outdated.iter().any(|p| p.name_any() == i.name))
        .min_by_key(|i| (i.lag_bytes.unwrap_or(i64::MAX), i.name.clone()));
    match updated_standby {
        Some(target) => Some(RolloutStep::Switchover {
            from: old_primary.name_any(),
            to: target.name.clone(),
        }),
        // One instance: a restart is the only way to its new spec.
        None if alone => replace(old_primary),
        None => None,
    }
}

fn ordinal(pod: &str) -> u32 {
    pod.rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NEW: &str = "shop-7d9";
    const OLD: &str = "shop-5c4";

    fn statefulset(replicas: i32) -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "shop", "generation": 2},
            "spec": {"replicas": replicas, "selector": {}, "template": {}, "serviceName": "shop-headless"},
            "status": {"replicas": replicas, "observedGeneration": 2,
                       "currentRevision": OLD, "updateRevision": NEW},
        }))
        .unwrap()
    }

    fn pod(name: &str, revision: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "uid": format!("uid-{name}"),
                         "labels": {REVISION_LABEL: revision}},
        }))
        .unwrap()
    }

    fn instance(name: &str, role: &str, ready: bool, lag: Option<i64>) -> InstanceStatus {
        InstanceStatus {
            name: name.into(),
            role: Some(role.into()),
            ready,
            lag_bytes: lag,
            ..InstanceStatus::default()
        }
    }

    fn replace(pod: &str) -> Option<RolloutStep> {
        Some(RolloutStep::Replace {
            pod: pod.into(),
            uid: format!("uid-{pod}"),
        })
    }

    /// Three instances, shop-1 primary, each on `revisions[i]`, all ready.
    fn three(revisions: [&str; 3]) -> (Vec<Pod>, Vec<InstanceStatus>) {
        let names = ["shop-0", "shop-1", "shop-2"];
        let pods = names
            .iter()
            .zip(revisions)
            .map(|(n, r)| pod(n, r))
            .collect();
        let instances = vec![
            instance("shop-0", "replica", true, Some(40)),
            instance("shop-1", "primary", true, None),
            instance("shop-2", "replica", true, Some(0)),
        ];
        (pods, instances)
    }

    #[test]
    fn standbys_are_replaced_first_highest_ordinal_first_then_one_switchover_then_the_old_primary()
    {
        let sts = statefulset(3);
        let (pods, instances) = three([OLD, OLD, OLD]);
        assert_eq!(
            plan(&sts, &pods, &instances, Some("shop-1")),
            replace("shop-2")
        );
        let (pods, instances) = three([OLD, OLD, NEW]);
        assert_eq!(
            plan(&sts, &pods, &instances, Some("shop-1")),
            replace("shop-0")
        );
        // Only the primary is left: it hands over to the updated standby furthest along.
        let (pods, instances) = three([NEW, OLD, NEW]);
        assert_eq!(
            plan(&sts, &pods, &instances, Some("shop-1")),
            Some(RolloutStep::Switchover {
                from: "shop-1".into(),
                to: "shop-2".into()
            })
        );
        // After the switchover the former primary is an outdated standby.
        let (pods, mut instances) = three([NEW, OLD, NEW]);
        instances[1].role = Some("replica".into());
        instances[2].role = Some("primary".into());
        assert_eq!(
            plan(&sts, &pods, &instances, Some("shop-2")),
            replace("shop-1")
        );
        let (pods, instances) = three([NEW, NEW, NEW]);
        assert_eq!(plan(&sts, &pods, &instances, Some("shop-1")), None);
    }

    #[test]
    fn nothing_moves_while_an_instance_is_not_ready_terminating_or_missing() {
        let sts = statefulset(3);
        let (pods, mut instances) = three([OLD, OLD, NEW]);
        instances[2].ready = false;
        assert_eq!(plan(&sts, &pods, &instances, Some("shop-1")), None);

        let (mut pods, instances) = three([OLD, OLD, NEW]);
        pods[2].metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Default::default()),
        );
        assert_eq!(plan(&sts, &pods, &instances, Some("shop-1")), None);

        let (mut pods, instances) = three([OLD, OLD, NEW]);
        pods.pop();
        assert_eq!(plan(&sts, &pods, &instances, Some("shop-1")), None);
    }

    #[test]
    fn an_outdated_standby_that_is_not_ready_is_replaced_even_while_others_are_not_ready() {
        // A spec that did not start reached shop-2; the user fixed it: shop-2 is outdated
        // again, and replacing it is what makes it ready.
        let sts = statefulset(3);
        let (pods, mut instances) = three([NEW, NEW, OLD]);
        instances[2].ready = false;
        instances[0].ready = false;
        assert_eq!(
            plan(&sts, &pods, &instances, Some("shop-1")),
            replace("shop-2")
        );
    }

    #[test]
    fn a_new_spec_that_does_not_start_stops_at_the_first_standby() {
        let sts = statefulset(3);
        let (pods, mut instances) = three([OLD, OLD, NEW]);
        instances[2].ready = false; // crash-looping on the new spec
        assert_eq!(plan(&sts, &pods, &instances, Some("shop-1")), None);
    }

    #[test]
    fn a_single_instance_is_restarted_and_a_primary_without_an_updated_standby_waits() {
        let sts = statefulset(1);
        let pods = [pod("shop-0", OLD)];
        let instances = [instance("shop-0", "primary", true, None)];
        assert_eq!(
            plan(&sts, &pods, &instances, Some("shop-0")),
            replace("shop-0")
        );
        // Not ready on its old spec (a bad image the user has just corrected): replaced too.
        let instances = [instance("shop-0", "primary", false, None)];
        assert_eq!(
            plan(&sts, &pods, &instances, Some("shop-0")),
            replace("shop-0")
        );

        // Two instances, the updated one ready but not (yet) streaming as a standby: the
        // primary waits rather than restarting blind.
        let sts = statefulset(2);
        let pods = [pod("shop-0", OLD), pod("shop-1", NEW)];
        let instances = [
            instance("shop-0", "primary", true, None),
            instance("shop-1", "unknown", true, None),
        ];
        assert_eq!(plan(&sts, &pods, &instances, Some("shop-0")), None);
    }

    #[test]
    fn nothing_happens_before_the_statefulset_controller_saw_the_spec() {
        let mut sts = statefulset(3);
        sts.metadata.generation = Some(3);
        let (pods, instances) = three([OLD, OLD, OLD]);
        assert_eq!(plan(&sts, &pods, &instances, Some("shop-1")), None);
    }
}
