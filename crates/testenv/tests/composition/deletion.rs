//! Scenario 5: deleting a Database removes what it owns, through the real garbage collector
//! of kube-controller-manager, and its Backup reports the Database missing.

use api::{Backup, Database, conditions, names};
use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{Secret, Service},
};
use kube::{Api, api::DeleteParams};

use super::support::*;

#[tokio::test]
async fn deleting_a_database_removes_what_it_owns() {
    let cluster = testenv::cluster().await.expect("test cluster");
    let ns = cluster.namespace("deletion").await.unwrap();
    let client = cluster.admin_client();
    let (db_op, backup_op) = start_both(cluster, ns.name()).await.unwrap();
    let fail = |e: anyhow::Error| -> ! { panic!("{e:#}\n{}", logs(&[&db_op, &backup_op])) };

    seed_until_ready(&client, ns.name(), &[&db_op, &backup_op]).await;
    let databases: Api<Database> = Api::namespaced(client.clone(), ns.name());

    databases
        .delete("my-database", &DeleteParams::default())
        .await
        .unwrap();
    testenv::wait_deleted(&databases, "my-database", CONVERGE)
        .await
        .unwrap_or_else(|e| fail(e));

    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), ns.name());
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns.name());
    let services: Api<Service> = Api::namespaced(client.clone(), ns.name());
    testenv::wait_deleted(&statefulsets, &names::statefulset("my-database"), CONVERGE)
        .await
        .unwrap_or_else(|e| fail(e));
    testenv::wait_deleted(
        &secrets,
        &names::credentials_secret("my-database"),
        CONVERGE,
    )
    .await
    .unwrap_or_else(|e| fail(e));
    testenv::wait_deleted(&services, &names::client_service("my-database"), CONVERGE)
        .await
        .unwrap_or_else(|e| fail(e));
    testenv::wait_deleted(&services, &names::headless_service("my-database"), CONVERGE)
        .await
        .unwrap_or_else(|e| fail(e));

    let backups: Api<Backup> = Api::namespaced(client.clone(), ns.name());
    let missing = has_condition(
        backup_condition,
        conditions::WAITING_FOR_DATABASE,
        "True",
        "DatabaseNotFound",
    );
    testenv::wait_for(&backups, "my-database-backup", missing, CONVERGE)
        .await
        .unwrap_or_else(|e| fail(e));

    ns.cleanup().await.unwrap();
}
