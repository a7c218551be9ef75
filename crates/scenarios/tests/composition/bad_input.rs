//! Scenario 7: every bad input named by the API is refused by the real API server, with a
//! message a user can act on.

use api::Database;
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use scenarios::Scenario;
use serde_json::{Value, json};

async fn refusal(api: &Api<Database>, object: &Value) -> String {
    match api
        .patch(
            "bad",
            &PatchParams::apply("composition-test"),
            &Patch::Apply(object),
        )
        .await
    {
        Ok(_) => String::new(),
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "refused as invalid: {status:?}");
            status.message
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[tokio::test]
async fn the_api_server_refuses_bad_input_with_its_reason() {
    let scenario = Scenario::new("bad-input").await;
    let cluster = scenario.cluster();
    let n = &scenario.ns().to_owned();
    let databases: Api<Database> = Api::namespaced(cluster.admin_client(), n);

    let with = |field: &str, value: Value| {
        let database = testkit::database("bad").set(&format!("/spec/{field}"), value);
        database.json()
    };
    let cases = [
        (
            with("databaseName", json!("")),
            "is not a valid PostgreSQL identifier",
        ),
        (
            with("databaseName", json!("My-DB")),
            "is not a valid PostgreSQL identifier",
        ),
        (
            with("databaseName", json!("pg_catalog2")),
            "is reserved by PostgreSQL",
        ),
        (
            with("username", json!("")),
            "is not a valid PostgreSQL identifier",
        ),
        (
            with("username", json!("1admin")),
            "is not a valid PostgreSQL identifier",
        ),
        (
            with("username", json!("postgres")),
            "is reserved by PostgreSQL",
        ),
        (with("replicas", json!(0)), "spec.replicas"),
        (
            with("storage", json!({"size": "lots"})),
            "is not a Kubernetes quantity",
        ),
    ];
    for (object, expected) in &cases {
        let message = refusal(&databases, object).await;
        assert!(
            message.contains(expected),
            "expected {expected:?} in {message:?} for {object}"
        );
    }

    // Transitions: create a valid Database, then try to shrink it and to rename its database.
    assert_eq!(
        refusal(&databases, &testkit::database("bad").json()).await,
        ""
    );
    let shrink = with("storage", json!({"size": "512Mi"}));
    assert!(
        refusal(&databases, &shrink)
            .await
            .contains("may grow but never shrink")
    );
    let rename = with("databaseName", json!("otherdb"));
    assert!(
        refusal(&databases, &rename)
            .await
            .contains("databaseName cannot be changed")
    );
    let grow = with("storage", json!({"size": "2Gi"}));
    assert_eq!(refusal(&databases, &grow).await, "", "growing is allowed");

    // A 6-field cron (with seconds) is refused on a Backup.
    let backups: Api<api::Backup> = Api::namespaced(cluster.admin_client(), n);
    let backup = testkit::backup("bad", "bad").schedule("0 0 2 * * *").json();
    let err = backups
        .patch(
            "bad",
            &PatchParams::apply("composition-test"),
            &Patch::Apply(&backup),
        )
        .await
        .expect_err("a seconds field is refused");
    assert!(
        err.to_string()
            .contains("not a standard 5-field cron expression"),
        "{err}"
    );

    scenario.finish().await;
}
