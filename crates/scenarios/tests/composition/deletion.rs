//! Scenario 5: deleting a Database removes what it owns, through the real garbage collector
//! of kube-controller-manager, and its Backup reports the Database missing.

use api::{Backup, Database, conditions, names};
use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{Secret, Service},
};
use kube::{Api, api::DeleteParams};

use scenarios::*;

#[tokio::test]
async fn deleting_a_database_removes_what_it_owns() {
    let mut scenario = Scenario::new("deletion").await;
    let n = &scenario.ns().to_owned();
    let client = scenario.client();
    scenario.start_both().await;

    scenario.seed_until_ready().await;
    let databases: Api<Database> = Api::namespaced(client.clone(), n);

    databases
        .delete("my-database", &DeleteParams::default())
        .await
        .unwrap();
    testenv::wait_deleted(&databases, "my-database", CONVERGE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));

    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), n);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), n);
    let services: Api<Service> = Api::namespaced(client.clone(), n);
    testenv::wait_deleted(&statefulsets, &names::statefulset("my-database"), CONVERGE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    testenv::wait_deleted(
        &secrets,
        &names::credentials_secret("my-database"),
        CONVERGE,
    )
    .await
    .unwrap_or_else(|e| scenario.fail(e));
    testenv::wait_deleted(&services, &names::client_service("my-database"), CONVERGE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    testenv::wait_deleted(&services, &names::headless_service("my-database"), CONVERGE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));

    let backups: Api<Backup> = Api::namespaced(client.clone(), n);
    let missing = has_condition(
        backup_condition,
        conditions::WAITING_FOR_DATABASE,
        "True",
        "DatabaseNotFound",
    );
    testenv::wait_for(&backups, "my-database-backup", missing, CONVERGE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));

    scenario.finish().await;
}
