//! A Backup of a replicated Database dumps from a standby, through the read-only Service,
//! once the Database reports replication healthy: the primary is not loaded, and the dump,
//! with its row counts from one exported snapshot, works on a hot standby.

use std::time::Duration;

use api::{Backup, BackupPhase, Database};
use k8s_openapi::api::batch::v1::Job;
use kube::Api;
use kube::api::ListParams;
use scenarios::{POD_START, Scenario};
use testenv::Operator;

use super::cluster::{self, NAME};

#[tokio::test]
async fn a_backup_of_a_replicated_database_dumps_from_a_standby() {
    let _nodes = cluster::NODES_IN_USE.lock().await;
    let mut scenario = Scenario::on_node("repl-backup").await;
    cluster::ready_database(&mut scenario, 2).await;
    scenario.start(Operator::Backup).await;
    let databases: Api<Database> = scenario.api();
    cluster::eventually(Duration::from_secs(60), "ReplicationHealthy", || async {
        let status = databases.get(NAME).await?.status.unwrap_or_default();
        Ok(
            api::conditions::is_true(&status.conditions, api::conditions::REPLICATION_HEALTHY)
                .then_some(()),
        )
    })
    .await;
    let rw = cluster::service_ip(&scenario, NAME).await;
    cluster::psql_on(
        &scenario,
        &rw,
        "CREATE TABLE orders AS SELECT generate_series(1, 500) AS id",
    )
    .await
    .unwrap();

    scenario
        .apply(&testkit::backup("nightly", NAME).manifest())
        .await;
    let backups: Api<Backup> = scenario.api();
    let done = |b: Option<&Backup>| {
        b.and_then(|b| b.status.as_ref())
            .is_some_and(|s| matches!(s.phase, Some(BackupPhase::Completed | BackupPhase::Failed)))
    };
    let backup = testenv::wait_for(&backups, "nightly", done, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let status = backup.status.unwrap_or_default();
    assert_eq!(status.phase, Some(BackupPhase::Completed), "{status:#?}");

    let jobs: Api<Job> = scenario.api();
    let selector = format!("{}=nightly", api::names::LABEL_BACKUP);
    let job = jobs
        .list(&ListParams::default().labels(&selector))
        .await
        .unwrap()
        .items
        .into_iter()
        .next()
        .expect("the run's Job");
    let host = job
        .spec
        .and_then(|s| s.template.spec)
        .and_then(|p| p.containers.into_iter().next())
        .and_then(|c| c.env)
        .unwrap_or_default()
        .into_iter()
        .find(|e| e.name == "PGHOST")
        .and_then(|e| e.value);
    assert_eq!(
        host.as_deref(),
        Some(format!("{NAME}-ro.{}.svc", scenario.ns()).as_str()),
        "the dump reads from the standbys' Service"
    );
    scenario.finish().await;
}
