//! The record a standby leaves after taking over from a lost primary: who, when, and how much
//! WAL the lost primary had written beyond what this standby received (an estimate of what was
//! lost). Written as an annotation on its own Pod; the database-operator turns it into the
//! Database's status, an Event and a metric.

use anyhow::{Context, Result};
use api::FailoverReport;
use api::names::ANNOTATION_FAILOVER;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::start::Instance;

/// The record (pure): `last_written` is what the lost primary last told the Lease, `received`
/// how far this standby had received WAL when it took over.
pub fn report(
    from: &str,
    to: &str,
    time: Timestamp,
    last_written: Option<u64>,
    received: Option<u64>,
    synchronous: bool,
) -> FailoverReport {
    let lost_bytes = match (last_written, received) {
        (Some(written), Some(received)) => {
            Some(i64::try_from(written.saturating_sub(received)).unwrap_or(i64::MAX))
        }
        _ => None,
    };
    FailoverReport {
        time: time.to_string(),
        from: from.to_string(),
        to: to.to_string(),
        lost_bytes,
        synchronous,
    }
}

/// Writes the record on this instance's Pod.
pub async fn announce(instance: &Instance, report: &FailoverReport) -> Result<()> {
    let config = &instance.config;
    let pods: Api<Pod> = Api::namespaced(instance.client.clone(), &config.namespace);
    let value = serde_json::to_string(report)?;
    let patch = json!({"metadata": {"annotations": {ANNOTATION_FAILOVER: value}}});
    pods.patch(&config.pod, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(|| format!("annotating Pod {} with the failover", config.pod))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loss_is_what_the_lost_primary_wrote_beyond_what_the_standby_received() {
        let at = Timestamp::UNIX_EPOCH;
        let r = report("shop-0", "shop-1", at, Some(1000), Some(400), false);
        assert_eq!(r.lost_bytes, Some(600));
        assert_eq!(r.time, "1970-01-01T00:00:00Z");
        // The standby may have received more than the primary last told.
        let r = report("shop-0", "shop-1", at, Some(400), Some(1000), true);
        assert_eq!(r.lost_bytes, Some(0));
        assert!(r.synchronous);
        let r = report("shop-0", "shop-1", at, None, Some(1000), false);
        assert_eq!(r.lost_bytes, None);
    }
}
