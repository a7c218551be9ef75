//! What the managers tell the database-operator about replication, through annotations on
//! their own Pods (the operator caches Pods anyway): every instance its timeline, the primary
//! also each standby's state and lag ([`api::ReplicationReport`]). Written only when it
//! changed, so an idle Database costs no writes.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use api::names::{ANNOTATION_REPLICATION, ANNOTATION_TIMELINE};
use api::{ReplicationReport, StandbyReport};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use crate::postgres;
use crate::start::Instance;

const EVERY: Duration = Duration::from_secs(5);

/// Reports every [`EVERY`], as the primary (`primary`) or a standby, until aborted.
pub async fn keep_reporting(instance: Instance, primary: bool) {
    let mut tick = tokio::time::interval(EVERY);
    let mut written: Option<Value> = None;
    loop {
        tick.tick().await;
        let annotations = match annotations(&instance, primary).await {
            Ok(annotations) => annotations,
            Err(e) => {
                tracing::debug!(error = %format!("{e:#}"), "no replication report this time");
                continue;
            }
        };
        if written.as_ref() == Some(&annotations) {
            continue;
        }
        match write(&instance, &annotations).await {
            Ok(()) => written = Some(annotations),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "could not report on the Pod"),
        }
    }
}

async fn annotations(instance: &Instance, primary: bool) -> Result<Value> {
    let config = &instance.config;
    if !primary {
        let timeline = postgres::query_local(
            config,
            "SELECT coalesce((SELECT received_tli FROM pg_stat_wal_receiver), (SELECT timeline_id FROM pg_control_checkpoint()))",
        )
        .await?;
        // A former primary's report goes with its role.
        return Ok(json!({ANNOTATION_TIMELINE: timeline, ANNOTATION_REPLICATION: null}));
    }
    let timeline: i64 =
        postgres::query_local(config, "SELECT timeline_id FROM pg_control_checkpoint()")
            .await?
            .parse()
            .context("reading the timeline")?;
    let rows = postgres::query_local(
        config,
        "SELECT string_agg(application_name || '|' || state || '|' || \
         coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::bigint, ',') FROM pg_stat_replication",
    )
    .await?;
    let report = ReplicationReport {
        timeline,
        standbys: parse_standbys(&rows),
    };
    Ok(json!({
        ANNOTATION_TIMELINE: timeline.to_string(),
        ANNOTATION_REPLICATION: serde_json::to_string(&report)?,
    }))
}

/// `name|state|lag,...` as psql prints the query above.
fn parse_standbys(rows: &str) -> BTreeMap<String, StandbyReport> {
    rows.split(',')
        .filter_map(|row| {
            let mut fields = row.split('|');
            let name = fields.next().filter(|n| !n.is_empty())?;
            let state = fields.next()?;
            let lag_bytes = fields.next()?.parse().ok()?;
            Some((
                name.to_string(),
                StandbyReport {
                    state: state.to_string(),
                    lag_bytes,
                },
            ))
        })
        .collect()
}

async fn write(instance: &Instance, annotations: &Value) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(instance.client.clone(), &instance.config.namespace);
    let patch = json!({"metadata": {"annotations": annotations}});
    pods.patch(
        &instance.config.pod,
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .context("annotating this Pod")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standby_rows_as_psql_prints_them() {
        let standbys = parse_standbys("db-1|streaming|0,db-2|catchup|8192");
        assert_eq!(standbys.len(), 2);
        assert_eq!(standbys["db-2"].state, "catchup");
        assert_eq!(standbys["db-2"].lag_bytes, 8192);
        assert!(parse_standbys("").is_empty());
    }
}
