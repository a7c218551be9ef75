//! Both operators running in the cluster as Pods from their own images, installed from
//! `deploy/`, pass the same scenario: a Database, a backup Job, and a restored copy; then WAL
//! archiving and a Database recovered from it.

use api::{Backup, Database};
use kube::Api;

use scenarios::*;
use testenv::Operator;

#[tokio::test]
async fn operators_running_as_pods_pass_the_scenario() {
    let scenario = Scenario::on_node("e2e-pods").await;
    let cluster = scenario.cluster();
    let n = &scenario.ns().to_owned();
    let client = scenario.client();

    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    for operator in Operator::ALL {
        let dir = deploy.join(operator.name());
        kubectl(
            cluster,
            &["apply", "--server-side", "-f", dir.to_str().unwrap()],
        );
        // Scope the in-cluster operator to this test's namespace, so it never reconciles
        // what the host-process operators of parallel tests own.
        let deployment = format!("deployment/{}", operator.name());
        let system = operator.namespace();
        kubectl(
            cluster,
            &[
                "-n",
                &system,
                "set",
                "env",
                &deployment,
                &format!("WATCH_NAMESPACE={n}"),
            ],
        );
        kubectl(
            cluster,
            &[
                "-n",
                &system,
                "rollout",
                "status",
                &deployment,
                "--timeout=240s",
            ],
        );
    }
    let operator_logs = || {
        Operator::ALL
            .iter()
            .map(|o| {
                let out = cluster
                    .kubectl()
                    .args([
                        "-n",
                        &o.namespace(),
                        "logs",
                        &format!("deployment/{}", o.name()),
                        "--tail=40",
                    ])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default();
                format!("--- {} ---\n{out}", o.name())
            })
            .collect::<String>()
    };
    // The operators run in the cluster, not as the scenario's processes: their logs are
    // the Deployments'.
    let fail = |e: anyhow::Error| -> ! { panic!("{e:#}\n{}", operator_logs()) };

    let databases: Api<Database> = Api::namespaced(client.clone(), n);
    let origin = node_database("origin");
    apply_yaml(&client, n, &origin.manifest()).await.unwrap();
    testenv::wait_for(&databases, "origin", database_ready, POD_START)
        .await
        .unwrap_or_else(|e| fail(e));
    psql(
        &client,
        n,
        "origin",
        "CREATE TABLE notes (body text); INSERT INTO notes VALUES ('from a pod')",
    )
    .await
    .unwrap_or_else(|e| fail(e));

    apply_yaml(
        &client,
        n,
        &testkit::backup("pods-once", "origin").manifest(),
    )
    .await
    .unwrap();
    let backups: Api<Backup> = Api::namespaced(client.clone(), n);
    let backup = testenv::wait_for(&backups, "pods-once", backup_completed, POD_START)
        .await
        .unwrap_or_else(|e| fail(e));
    let bytes = artifact_bytes(&client, n, &backup)
        .await
        .unwrap_or_else(|e| fail(e));
    assert_eq!(Some(sha256_hex(&bytes)), backup.status.unwrap().sha256);

    apply_yaml(
        &client,
        n,
        &node_database("replica").backup_ref("pods-once").manifest(),
    )
    .await
    .unwrap();
    testenv::wait_for(&databases, "replica", database_ready, POD_START)
        .await
        .unwrap_or_else(|e| fail(e));
    assert_eq!(
        psql(&client, n, "replica", "SELECT body FROM notes")
            .await
            .unwrap_or_else(|e| fail(e)),
        "from a pod"
    );

    // Physical: WAL archived by the backup-operator's archiver StatefulSet, a new Database
    // recovered from it by a Restore Job and the instance manager, all with the RBAC of
    // deploy/.
    apply_yaml(
        &client,
        n,
        &scenarios::pitr::physical_backup("pods-pitr", "origin").manifest(),
    )
    .await
    .unwrap();
    let ready = |b: Option<&Backup>| b.is_some_and(|b| b.is_ready());
    testenv::wait_for(&backups, "pods-pitr", ready, POD_START)
        .await
        .unwrap_or_else(|e| fail(e));
    apply_yaml(
        &client,
        n,
        &scenarios::pitr::recovered_database("recovered", "pods-pitr", None, &origin).manifest(),
    )
    .await
    .unwrap();
    testenv::wait_for(&databases, "recovered", database_ready, POD_START)
        .await
        .unwrap_or_else(|e| fail(e));
    assert_eq!(
        psql(&client, n, "recovered", "SELECT body FROM notes")
            .await
            .unwrap_or_else(|e| fail(e)),
        "from a pod"
    );
    // Deleted while the operator runs: its finalizer stops the archiver and drops the slot.
    backups
        .delete("pods-pitr", &Default::default())
        .await
        .unwrap();
    testenv::wait_deleted(&backups, "pods-pitr", POD_START)
        .await
        .unwrap_or_else(|e| fail(e));

    // Leave no in-cluster operator running for the other tests, and none scoped to this
    // namespace for `./justw up` to find.
    for operator in Operator::ALL {
        let deployment = format!("deployment/{}", operator.name());
        kubectl(
            cluster,
            &[
                "-n",
                &operator.namespace(),
                "delete",
                &deployment,
                "--wait=true",
            ],
        );
    }
    scenario.finish().await;
}
