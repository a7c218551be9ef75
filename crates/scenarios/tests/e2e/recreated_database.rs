//! A Database deleted by mistake and re-created with the same name picks up its retained
//! volume, and the credentials in its new Secret are the ones that work: Ready means a
//! client holding the Secret gets in, and the rows are still there.

use api::Database;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret};
use kube::Api;
use kube::api::DeleteParams;

use scenarios::*;
use testenv::Operator;

fn password(secret: &Secret) -> Vec<u8> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get("password"))
        .map(|b| b.0.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn recreated_database_is_ready_with_credentials_that_work() {
    let mut scenario = Scenario::on_node("e2e-recreate").await;
    let n = &scenario.ns().to_owned();
    let client = scenario.client();
    scenario.start(Operator::Database).await;
    let databases: Api<Database> = Api::namespaced(client.clone(), n);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), n);

    apply_yaml(&client, n, &node_database("phoenix").manifest())
        .await
        .unwrap();
    testenv::wait_for(&databases, "phoenix", database_ready, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    psql(
        &client,
        n,
        "phoenix",
        "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('a'), ('b')",
    )
    .await
    .unwrap_or_else(|e| scenario.fail(e));
    let old_password = password(&secrets.get("phoenix-credentials").await.unwrap());

    // Deleted: the garbage collector takes the Secret, the StatefulSet and its Pod; the claim stays.
    databases
        .delete("phoenix", &DeleteParams::foreground())
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), n);
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), n);
    testenv::wait_deleted(&databases, "phoenix", POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    testenv::wait_deleted(&secrets, "phoenix-credentials", POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    testenv::wait_deleted(&statefulsets, "phoenix", POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    testenv::wait_deleted(&pods, "phoenix-0", POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), n);
    assert!(
        claims.get_opt("data-phoenix-0").await.unwrap().is_some(),
        "the data claim is kept"
    );

    // Re-created with the same name: a new Secret with a new password, the old data.
    apply_yaml(&client, n, &node_database("phoenix").manifest())
        .await
        .unwrap();
    testenv::wait_for(&databases, "phoenix", database_ready, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let new_password = password(&secrets.get("phoenix-credentials").await.unwrap());
    assert_ne!(new_password, old_password, "a new Secret, a new password");
    let rows = psql(
        &client,
        n,
        "phoenix",
        "SELECT string_agg(v, ',' ORDER BY v) FROM kept",
    )
    .await
    .unwrap_or_else(|e| scenario.fail(e));
    assert_eq!(
        rows, "a,b",
        "the re-created Database serves the old rows with the new Secret"
    );

    // The old password no longer gets in: the Secret is the one source of the credentials.
    let mut env = connection_env(&client, n, "phoenix").await.unwrap();
    for (key, value) in env.iter_mut() {
        if *key == "PGPASSWORD" {
            *value = String::from_utf8(old_password.clone()).unwrap();
        }
    }
    let output = std::process::Command::new("psql")
        .args(["-X", "-tA", "-c", "SELECT 1"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(!output.status.success(), "the old password still works");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("password authentication failed"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    scenario.finish().await;
}
