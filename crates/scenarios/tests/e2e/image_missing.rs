//! An image this machine does not have (nothing can be pulled here; the seed lab's
//! postgres:14 is one) shows on the Database as Failed with the kubelet's reason, and the
//! Database recovers by itself once the image is changed to one that exists.

use api::{Database, DatabasePhase, conditions};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::json;

use scenarios::*;
use testenv::Operator;

#[tokio::test]
async fn missing_image_fails_with_a_reason_and_recovers_when_changed() {
    let mut scenario = Scenario::on_node("e2e-image").await;
    let n = &scenario.ns().to_owned();
    let client = scenario.client();
    scenario.start(Operator::Database).await;
    let databases: Api<Database> = Api::namespaced(client.clone(), n);

    // The seed lab's Database, unchanged: postgres:14 is not on this node.
    apply_yaml(&client, n, &sample("seed-database.yaml"))
        .await
        .unwrap();
    let pull_failed = |db: Option<&Database>| {
        db.and_then(|d| d.status.as_ref()).is_some_and(|s| {
            s.phase == Some(DatabasePhase::Failed)
                && conditions::find(&s.conditions, conditions::DEGRADED).is_some_and(|c| {
                    matches!(c.reason.as_str(), "ImagePullBackOff" | "ErrImagePull")
                })
        })
    };
    let db = testenv::wait_for(&databases, "my-database", pull_failed, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let status = db.status.unwrap();
    let degraded = conditions::find(&status.conditions, conditions::DEGRADED).unwrap();
    assert!(
        degraded.message.contains("postgres:14"),
        "the message names the image: {}",
        degraded.message
    );
    assert!(!conditions::is_true(&status.conditions, conditions::READY));

    // The user fixes the image; the operator notices through its watches alone.
    let fix = json!({"spec": {"image": POSTGRES_IMAGE}});
    databases
        .patch("my-database", &PatchParams::default(), &Patch::Merge(&fix))
        .await
        .unwrap();
    testenv::wait_for(&databases, "my-database", database_ready, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    psql(&client, n, "my-database", "SELECT 1")
        .await
        .unwrap_or_else(|e| scenario.fail(e));

    scenario.finish().await;
}
