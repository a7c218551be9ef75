//! What the instances' managers report about replication, read from their Pods, and whether
//! it is healthy (pure).

use api::k8s_openapi::jiff::Timestamp;
use api::names::{
    ANNOTATION_FAILOVER, ANNOTATION_REPLICATION, ANNOTATION_TIMELINE, ROLE_PRIMARY, ROLE_REPLICA,
};
use api::{DatabaseStatus, FailoverReport, InstanceStatus, ReplicationReport};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

/// A standby further behind than this makes replication unhealthy: a failover now would lose
/// that much, and it may not catch up.
pub const LAG_LIMIT_BYTES: i64 = 16 << 20;

/// The timeline an instance's manager reported on its Pod.
pub fn timeline(pod: &Pod) -> Option<i64> {
    pod.annotations().get(ANNOTATION_TIMELINE)?.parse().ok()
}

/// The primary's report of its standbys, if its Pod carries a readable one.
pub fn report(pod: &Pod) -> Option<ReplicationReport> {
    serde_json::from_str(pod.annotations().get(ANNOTATION_REPLICATION)?).ok()
}

/// The newest failover the instances' managers recorded on their Pods.
pub fn newest_failover(pods: &[Pod]) -> Option<FailoverReport> {
    pods.iter()
        .filter_map(|pod| pod.annotations().get(ANNOTATION_FAILOVER))
        .filter_map(|text| serde_json::from_str::<FailoverReport>(text).ok())
        .filter_map(|report| Some((report.time.parse::<Timestamp>().ok()?, report)))
        .max_by_key(|(time, _)| *time)
        .map(|(_, report)| report)
}

/// `status.lastFailover` and `status.failovers` given what the status said before and the
/// newest failover recorded on the Pods: a newer one replaces the last and counts one more.
pub fn failover_history(
    old: Option<&DatabaseStatus>,
    newest: Option<&FailoverReport>,
) -> (Option<FailoverReport>, i64) {
    let last = old.and_then(|o| o.last_failover.clone());
    let count = old.map(|o| o.failovers).unwrap_or(0);
    let time = |r: &FailoverReport| r.time.parse::<Timestamp>().ok();
    match newest {
        Some(newest) if last.as_ref().and_then(time) < time(newest) => {
            (Some(newest.clone()), count + 1)
        }
        _ => (last, count),
    }
}

/// Fills in each standby's lag from the primary's report.
pub fn add_lag(instances: &mut [InstanceStatus], report: Option<&ReplicationReport>) {
    let Some(report) = report else { return };
    for instance in instances.iter_mut() {
        if instance.role.as_deref() == Some(ROLE_REPLICA) {
            instance.lag_bytes = report.standbys.get(&instance.name).map(|s| s.lag_bytes);
        }
    }
}

/// The ReplicationHealthy condition: (status, reason, message).
pub fn health(
    replicas: i32,
    instances: &[InstanceStatus],
    report: Option<&ReplicationReport>,
) -> (bool, &'static str, String) {
    if replicas <= 1 {
        return (
            true,
            "SingleInstance",
            "one instance, no standbys".to_string(),
        );
    }
    let Some(primary) = instances
        .iter()
        .find(|i| i.role.as_deref() == Some(ROLE_PRIMARY))
    else {
        return (false, "NoPrimary", "no instance is the primary".to_string());
    };
    let Some(report) = report else {
        return (
            false,
            "NoReport",
            format!(
                "the primary, {}, has not reported its standbys yet",
                primary.name
            ),
        );
    };
    let standbys = instances.iter().filter(|i| i.name != primary.name);
    let mut worst = 0;
    for standby in standbys {
        match report.standbys.get(&standby.name) {
            None => {
                return (
                    false,
                    "NotStreaming",
                    format!(
                        "{} does not stream from the primary {}",
                        standby.name, primary.name
                    ),
                );
            }
            Some(s) if s.state != "streaming" => {
                return (
                    false,
                    "NotStreaming",
                    format!(
                        "{} is {} from the primary {}, not streaming",
                        standby.name, s.state, primary.name
                    ),
                );
            }
            Some(s) if s.lag_bytes > LAG_LIMIT_BYTES => {
                return (
                    false,
                    "Lagging",
                    format!(
                        "{} is {} MiB behind the primary {} (limit {} MiB)",
                        standby.name,
                        s.lag_bytes >> 20,
                        primary.name,
                        LAG_LIMIT_BYTES >> 20
                    ),
                );
            }
            Some(s) => worst = worst.max(s.lag_bytes),
        }
    }
    let count = instances.len().saturating_sub(1);
    if (count as i32) < replicas - 1 {
        return (
            false,
            "StandbyMissing",
            format!("{count} of {} standbys exist", replicas - 1),
        );
    }
    (
        true,
        "Streaming",
        format!(
            "{count} standbys streaming from {}, at most {worst} bytes behind",
            primary.name
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::StandbyReport;

    fn failover(time: &str, to: &str) -> FailoverReport {
        FailoverReport {
            time: time.to_string(),
            from: "shop-0".to_string(),
            to: to.to_string(),
            lost_bytes: Some(8192),
            synchronous: false,
        }
    }

    fn pod_with_failover(name: &str, report: &FailoverReport) -> Pod {
        let mut pod = Pod::default();
        pod.metadata.name = Some(name.to_string());
        pod.metadata.annotations = Some(
            [(
                ANNOTATION_FAILOVER.to_string(),
                serde_json::to_string(report).unwrap(),
            )]
            .into(),
        );
        pod
    }

    #[test]
    fn the_newest_failover_on_the_pods_is_counted_once() {
        let older = failover("2026-12-06T03:00:00.5Z", "shop-1");
        let newer = failover("2026-12-06T03:00:01Z", "shop-2");
        let pods = [
            pod_with_failover("shop-2", &newer),
            pod_with_failover("shop-1", &older),
            Pod::default(),
        ];
        let newest = newest_failover(&pods);
        assert_eq!(newest.as_ref(), Some(&newer));

        let (last, count) = failover_history(None, newest.as_ref());
        assert_eq!((last.as_ref(), count), (Some(&newer), 1));
        let status = DatabaseStatus {
            last_failover: last,
            failovers: count,
            ..DatabaseStatus::default()
        };
        // Seen again: nothing new.
        assert_eq!(
            failover_history(Some(&status), newest.as_ref()),
            (Some(newer.clone()), 1)
        );
        // An older record (a Pod that kept it) does not replace the newer one.
        assert_eq!(
            failover_history(Some(&status), Some(&older)),
            (Some(newer), 1)
        );
        assert_eq!(failover_history(Some(&status), None).1, 1);
    }

    fn instance(name: &str, role: &str) -> InstanceStatus {
        InstanceStatus {
            name: name.to_string(),
            role: Some(role.to_string()),
            ready: true,
            ..InstanceStatus::default()
        }
    }

    fn report(standbys: &[(&str, &str, i64)]) -> ReplicationReport {
        ReplicationReport {
            timeline: 2,
            standbys: standbys
                .iter()
                .map(|(name, state, lag)| {
                    (
                        name.to_string(),
                        StandbyReport {
                            state: state.to_string(),
                            lag_bytes: *lag,
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn healthy_when_every_standby_streams_close_behind() {
        let instances = [
            instance("db-0", "primary"),
            instance("db-1", "replica"),
            instance("db-2", "replica"),
        ];
        let rows: Vec<(Option<ReplicationReport>, bool, &str)> = vec![
            (
                Some(report(&[
                    ("db-1", "streaming", 0),
                    ("db-2", "streaming", 4096),
                ])),
                true,
                "Streaming",
            ),
            (
                Some(report(&[("db-1", "streaming", 0)])),
                false,
                "NotStreaming",
            ),
            (
                Some(report(&[("db-1", "streaming", 0), ("db-2", "catchup", 0)])),
                false,
                "NotStreaming",
            ),
            (
                Some(report(&[
                    ("db-1", "streaming", 0),
                    ("db-2", "streaming", 64 << 20),
                ])),
                false,
                "Lagging",
            ),
            (None, false, "NoReport"),
        ];
        for (report, healthy, reason) in rows {
            let (status, why, message) = health(3, &instances, report.as_ref());
            assert_eq!((status, why), (healthy, reason), "{message}");
        }
        let (_, _, message) = health(3, &instances, Some(&report(&[("db-1", "streaming", 0)])));
        assert_eq!(message, "db-2 does not stream from the primary db-0");
    }

    #[test]
    fn a_single_instance_has_nothing_to_replicate_and_no_primary_is_unhealthy() {
        assert!(health(1, &[instance("db-0", "primary")], None).0);
        let (status, reason, _) = health(
            2,
            &[instance("db-0", "replica"), instance("db-1", "replica")],
            None,
        );
        assert_eq!((status, reason), (false, "NoPrimary"));
    }

    #[test]
    fn standbys_get_their_lag_from_the_primary_report() {
        let mut instances = [instance("db-0", "primary"), instance("db-1", "replica")];
        add_lag(&mut instances, Some(&report(&[("db-1", "streaming", 512)])));
        assert_eq!(instances[0].lag_bytes, None);
        assert_eq!(instances[1].lag_bytes, Some(512));
    }
}
