//! What happens to artifacts when a Backup is deleted: `Delete` removes them from storage
//! (the operator-created claim and its volume), `Retain` keeps them.

use api::{Backup, Database, names};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::{Api, api::DeleteParams};

use scenarios::*;

#[tokio::test]
async fn deletion_policy_decides_whether_artifacts_survive_their_backup() {
    let mut scenario = Scenario::on_node("e2e-deletion").await;
    let n = &scenario.ns().to_owned();
    let client = scenario.client();
    scenario.start_both().await;

    let databases: Api<Database> = Api::namespaced(client.clone(), n);
    apply_yaml(&client, n, &node_database("data").manifest())
        .await
        .unwrap();
    testenv::wait_for(&databases, "data", database_ready, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    apply_yaml(
        &client,
        n,
        &testkit::backup("kept", "data")
            .deletion_policy("Retain")
            .manifest(),
    )
    .await
    .unwrap();
    apply_yaml(
        &client,
        n,
        &testkit::backup("dropped", "data")
            .deletion_policy("Delete")
            .manifest(),
    )
    .await
    .unwrap();

    let backups: Api<Backup> = Api::namespaced(client.clone(), n);
    let mut artifacts = Vec::new();
    for name in ["kept", "dropped"] {
        let backup = testenv::wait_for(&backups, name, backup_completed, POD_START)
            .await
            .unwrap_or_else(|e| scenario.fail(e));
        // The artifact is on the volume, as the status says.
        let bytes = artifact_bytes(&client, n, &backup)
            .await
            .unwrap_or_else(|e| scenario.fail(e));
        assert_eq!(
            Some(sha256_hex(&bytes)),
            backup.status.clone().unwrap().sha256
        );
        artifacts.push(backup);
    }

    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), n);
    for name in ["kept", "dropped"] {
        backups
            .delete(name, &DeleteParams::foreground())
            .await
            .unwrap();
        testenv::wait_deleted(&backups, name, POD_START)
            .await
            .unwrap_or_else(|e| scenario.fail(e));
    }
    // Delete: the claim goes with its Backup, and with it the volume's data.
    testenv::wait_deleted(&claims, &names::backup_claim("dropped"), POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    // Retain: the claim and the artifact on it are still there.
    assert!(
        claims
            .get_opt(&names::backup_claim("kept"))
            .await
            .unwrap()
            .is_some(),
        "Retain keeps the claim"
    );
    let kept = &artifacts[0];
    let bytes = artifact_bytes(&client, n, kept)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    assert_eq!(
        Some(sha256_hex(&bytes)),
        kept.status.clone().unwrap().sha256,
        "the retained artifact is intact"
    );

    scenario.finish().await;
}
