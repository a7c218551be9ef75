//! The operators as users install them: `helm install` of both charts, the seed scenario
//! with the operators running as those Pods, `helm upgrade` to two replicas with leader
//! election (`--wait` completes: followers stand by Ready), and `helm uninstall` leaving no
//! operator object behind.

use std::process::Command;

use api::{Backup, Database};
use kube::Api;

use scenarios::*;

/// The helm binary built by hack/build-tools.sh (the justfile exports HELM).
fn helm(cluster: &testenv::Cluster, args: &[&str]) -> String {
    let helm = std::env::var("HELM").expect(
        "HELM is not set: run the tests through `./justw test`, or export the paths printed by \
         `hack/build-tools.sh --env`",
    );
    let output = Command::new(&helm)
        .args(args)
        .env("KUBECONFIG", cluster.admin_kubeconfig())
        .output()
        .expect("running helm");
    assert!(
        output.status.success(),
        "helm {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// kubectl's output, one non-empty line each.
fn kubectl_lines(cluster: &testenv::Cluster, args: &[&str]) -> Vec<String> {
    kubectl(cluster, args)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect()
}

#[tokio::test]
async fn helm_install_upgrade_and_uninstall() {
    let scenario = Scenario::on_node("e2e-helm").await;
    let cluster = scenario.cluster();
    let client = scenario.client();
    let n = scenario.ns().to_owned();
    let charts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../charts");

    // Releases named after the test namespace, in namespaces of their own, so they never meet
    // the operators other tests install from deploy/.
    let releases: Vec<(String, String, std::path::PathBuf)> =
        ["database-operator", "backup-operator"]
            .iter()
            .map(|chart| {
                (
                    format!("{n}-{}", &chart[..chart.find('-').unwrap()]),
                    format!("{n}-{chart}"),
                    charts.join(chart),
                )
            })
            .collect();
    for (release, namespace, chart) in &releases {
        helm(
            cluster,
            &[
                "install",
                release,
                chart.to_str().unwrap(),
                "--namespace",
                namespace,
                "--create-namespace",
                "--set",
                "image.tag=dev",
                "--set",
                &format!("watchNamespace={n}"),
                "--wait",
                "--timeout",
                "4m",
            ],
        );
    }

    // The seed scenario, served by the chart-installed operators.
    let database = sample("seed-database.yaml").replace("postgres:14", POSTGRES_IMAGE);
    apply_yaml(&client, &n, &database).await.unwrap();
    apply_yaml(&client, &n, &sample("seed-backup.yaml"))
        .await
        .unwrap();
    let databases: Api<Database> = Api::namespaced(client.clone(), &n);
    testenv::wait_for(&databases, "my-database", database_ready, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let backups: Api<Backup> = Api::namespaced(client.clone(), &n);
    testenv::wait_for(&backups, "my-database-backup", backup_completed, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));

    // An upgrade that changes the Pods rolls them; the operators carry on where they were.
    // Two replicas with leader election: `--wait` returns only once both are Ready.
    for (release, namespace, chart) in &releases {
        helm(
            cluster,
            &[
                "upgrade",
                release,
                chart.to_str().unwrap(),
                "--namespace",
                namespace,
                "--reuse-values",
                "--set",
                "logFormat=text",
                "--set",
                "leaderElection.enabled=true",
                "--set",
                "replicas=2",
                "--wait",
                "--timeout",
                "4m",
            ],
        );
    }
    // One of the new Pods leads. Right after the rollout the Lease may be between holders (the
    // old leader released it on SIGTERM; a standby takes it at its next look).
    for (release, namespace, _) in &releases {
        let selector = format!("app.kubernetes.io/instance={release}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let pods = kubectl_lines(
                cluster,
                &[
                    "get", "pods", "-n", namespace, "-l", &selector, "-o", "name",
                ],
            );
            let holders = kubectl_lines(
                cluster,
                &[
                    "get",
                    "leases",
                    "-n",
                    namespace,
                    "-o",
                    "jsonpath={range .items[*]}{.spec.holderIdentity}{\"\\n\"}{end}",
                ],
            );
            if holders.len() == 1 && pods.contains(&format!("pod/{}", holders[0])) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{release}: no Pod of {pods:?} holds its Lease; holders: {holders:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
    psql(&client, &n, "my-database", "SELECT 1")
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let db = databases.get("my-database").await.unwrap();
    assert!(
        db.is_ready(),
        "still Ready after the upgrade: {:?}",
        ready_reason(&db)
    );

    // Uninstall leaves no object of either release, namespaced or cluster-wide.
    for (release, namespace, _) in &releases {
        helm(
            cluster,
            &[
                "uninstall",
                release,
                "--namespace",
                namespace,
                "--wait",
                "--timeout",
                "4m",
            ],
        );
        let selector = format!("app.kubernetes.io/instance={release}");
        // helm waits for what it created; the ReplicaSets and Pods under the Deployment are
        // the garbage collector's to remove, moments later.
        let deadline = std::time::Instant::now() + POD_START;
        let left = loop {
            let left = kubectl_lines(
                cluster,
                &[
                    "get",
                    "deployments,replicasets,pods,services,serviceaccounts,roles,rolebindings",
                    "-n",
                    namespace,
                    "-l",
                    &selector,
                    "-o",
                    "name",
                ],
            );
            if left.is_empty() || std::time::Instant::now() > deadline {
                break left;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        };
        assert!(left.is_empty(), "{release} left {left:?}");
        let cluster_wide = kubectl_lines(
            cluster,
            &[
                "get",
                "clusterroles,clusterrolebindings",
                "-l",
                &selector,
                "-o",
                "name",
            ],
        );
        assert!(cluster_wide.is_empty(), "{release} left {cluster_wide:?}");
        kubectl_lines(cluster, &["delete", "namespace", namespace, "--wait=false"]);
    }

    scenario.finish().await;
}
