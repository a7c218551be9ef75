//! Scenario 8: each operator's identity is refused what the other one needs. (That each
//! operator works with its own rights alone is what every other scenario shows.)

use k8s_openapi::api::{
    batch::v1::Job,
    core::v1::{Secret, Service},
};
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
};
use scenarios::Scenario;
use serde_json::json;
use testenv::Operator;

fn can_i(
    cluster: &testenv::Cluster,
    operator: Operator,
    verb: &str,
    resource: &str,
    ns: &str,
) -> bool {
    // `kubectl auth can-i` takes a subresource as a flag, not as part of the resource.
    let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
    let output = cluster
        .kubectl()
        .args([
            "auth",
            "can-i",
            verb,
            resource,
            "-n",
            ns,
            "--as",
            &operator.username(),
        ])
        .args((!subresource.is_empty()).then(|| format!("--subresource={subresource}")))
        .output()
        .expect("running kubectl auth can-i");
    String::from_utf8_lossy(&output.stdout).trim() == "yes"
}

fn forbidden<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> bool {
    matches!(result, Err(kube::Error::Api(ref s)) if s.code == 403)
}

#[tokio::test]
async fn each_operator_is_refused_what_the_other_needs() {
    let scenario = Scenario::new("rbac").await;
    let cluster = scenario.cluster();
    let n = &scenario.ns().to_owned();
    // kubectl auth can-i, as each ServiceAccount.
    let table = [
        (Operator::Database, "create", "jobs.batch", false),
        (Operator::Database, "create", "statefulsets.apps", true),
        (
            Operator::Database,
            "patch",
            "databases.database.example.com/status",
            true,
        ),
        (
            Operator::Database,
            "patch",
            "backups.database.example.com/status",
            false,
        ),
        (
            Operator::Database,
            "create",
            "backups.database.example.com",
            false,
        ),
        // Read from a watch cache, never fetched one by one.
        (
            Operator::Database,
            "watch",
            "backups.database.example.com",
            true,
        ),
        (
            Operator::Database,
            "get",
            "backups.database.example.com",
            false,
        ),
        // Its own: the WAL archiver of a physical Backup.
        (Operator::Backup, "create", "statefulsets.apps", true),
        (Operator::Backup, "create", "services", false),
        (Operator::Backup, "delete", "pods", false),
        (Operator::Backup, "create", "secrets", false),
        (Operator::Backup, "list", "secrets", false),
        (Operator::Backup, "create", "jobs.batch", true),
        (
            Operator::Backup,
            "patch",
            "backups.database.example.com/status",
            true,
        ),
        (
            Operator::Backup,
            "patch",
            "databases.database.example.com/status",
            false,
        ),
        (
            Operator::Backup,
            "create",
            "databases.database.example.com",
            false,
        ),
        (
            Operator::Backup,
            "watch",
            "databases.database.example.com",
            true,
        ),
        (
            Operator::Backup,
            "get",
            "databases.database.example.com",
            false,
        ),
    ];
    // Make sure both ServiceAccounts and their bindings exist before asking.
    for operator in Operator::ALL {
        cluster.operator_kubeconfig(operator).await.unwrap();
    }
    for (operator, verb, resource, expected) in table {
        assert_eq!(
            can_i(cluster, operator, verb, resource, n),
            expected,
            "{} {verb} {resource}",
            operator.name()
        );
    }

    // Real requests, refused by the API server.
    let database_operator = cluster.operator_client(Operator::Database).await.unwrap();
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": "not-mine"},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox"}]}}}
    }))
    .unwrap();
    let jobs: Api<Job> = Api::namespaced(database_operator.clone(), n);
    assert!(
        forbidden(jobs.create(&PostParams::default(), &job).await),
        "database-operator creating a Job"
    );
    let backups: Api<api::Backup> = Api::namespaced(database_operator, n);
    let status = json!({"status": {"phase": "Completed"}});
    assert!(forbidden(
        backups
            .patch_status("x", &PatchParams::default(), &Patch::Merge(&status))
            .await
    ));

    let backup_operator = cluster.operator_client(Operator::Backup).await.unwrap();
    // StatefulSets it may create (its WAL archivers); a Service it may not.
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "not-mine"},
        "spec": {"ports": [{"port": 5432}]}
    }))
    .unwrap();
    let services: Api<Service> = Api::namespaced(backup_operator.clone(), n);
    assert!(
        forbidden(services.create(&PostParams::default(), &service).await),
        "the backup-operator creating a Service"
    );
    let secrets: Api<Secret> = Api::namespaced(backup_operator.clone(), n);
    let secret: Secret = serde_json::from_value(json!({"metadata": {"name": "not-mine"}})).unwrap();
    assert!(forbidden(
        secrets.create(&PostParams::default(), &secret).await
    ));
    assert!(
        forbidden(secrets.list(&Default::default()).await),
        "the backup-operator cannot list Secrets"
    );
    let databases: Api<api::Database> = Api::namespaced(backup_operator, n);
    assert!(forbidden(
        databases
            .patch_status("x", &PatchParams::default(), &Patch::Merge(&status))
            .await
    ));

    scenario.finish().await;
}
