//! Scenario 9: hostile and malformed objects, beyond the bad values of `bad_input.rs`:
//! megabyte strings, names at and over their limits, unknown fields and wrong types. The API
//! server refuses what it can with a message naming the field; what it must accept, the
//! operators report on without crashing; and a valid Database created afterwards still goes
//! Ready.

use api::{Backup, Database, conditions, names};
use k8s_openapi::api::{batch::v1::Job, core::v1::Secret};
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, PostParams},
};
use serde_json::{Value, json};
use testenv::Cluster;

use super::hostile_cases::*;
use scenarios::*;

/// The API of a kind as untyped JSON: a typed client would drop unknown fields itself and
/// hide whether the server stored them.
fn raw_api(client: &Client, ns: &str, kind: &str) -> Api<DynamicObject> {
    let resource = match kind {
        "Database" => ApiResource::erase::<Database>(&()),
        "Backup" => ApiResource::erase::<Backup>(&()),
        "Restore" => ApiResource::erase::<api::Restore>(&()),
        other => panic!("no API for {other}"),
    };
    Api::namespaced_with(client.clone(), ns, &resource)
}

/// Creates `object` as a plain API client does: no `fieldValidation`, so the API server's
/// default (Warn) applies. Returns the stored object, or the refusal's code and message.
async fn create(client: &Client, ns: &str, object: &Value) -> Result<DynamicObject, (u16, String)> {
    let kind = object["kind"].as_str().expect("a kind");
    let object: DynamicObject = serde_json::from_value(object.clone()).expect("an object");
    match raw_api(client, ns, kind)
        .create(&PostParams::default(), &object)
        .await
    {
        Ok(created) => Ok(created),
        Err(kube::Error::Api(status)) => Err((status.code, status.message)),
        Err(e) => panic!("creating {kind}: {e}"),
    }
}

/// Runs `kubectl apply` with `flags` on `object` (as YAML on stdin); returns whether it
/// succeeded and everything it printed.
fn kubectl_apply(cluster: &Cluster, ns: &str, flags: &[&str], object: &Value) -> (bool, String) {
    use std::io::Write as _;
    let mut child = cluster
        .kubectl()
        .args(["apply", "--namespace", ns, "-f", "-"])
        .args(flags)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running kubectl");
    let yaml = serde_yaml::to_string(object).expect("YAML");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(yaml.as_bytes())
        .expect("writing to kubectl");
    let output = child.wait_with_output().expect("kubectl ran");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[tokio::test]
async fn hostile_objects_are_refused_or_reported_and_the_operators_carry_on() {
    let mut scenario = Scenario::new("hostile-input").await;
    let cluster = scenario.cluster();
    let n = &scenario.ns().to_owned();
    let client = scenario.client();
    scenario.start_both().await;
    let databases: Api<Database> = Api::namespaced(client.clone(), n);
    let backups: Api<Backup> = Api::namespaced(client.clone(), n);

    for (what, object, words) in refused_cases() {
        let (code, message) = match create(&client, n, &object).await {
            Ok(created) => panic!("{what} was accepted: {:?}", created.metadata.name),
            Err(refusal) => refusal,
        };
        assert_eq!(code, 422, "{what} refused as invalid: {message:.500}");
        for word in words {
            assert!(
                message.contains(word),
                "{what}: {word:?} missing from {message:.500}"
            );
        }
    }

    // Unknown fields: kubectl's strict validation (its default) refuses them, naming each.
    let unknown = testkit::database("pruned")
        .set("/extra", json!("top"))
        .set("/spec/colour", json!("blue"))
        .set("/spec/storage/sizee", json!("2Gi"))
        .json();
    let (ok, out) = kubectl_apply(cluster, n, &["--validate=strict"], &unknown);
    assert!(!ok, "strict validation accepted unknown fields: {out}");
    for field in ["extra", "spec.colour", "spec.storage.sizee"] {
        assert!(
            out.contains(&format!("unknown field \"{field}\"")),
            "{field}: {out}"
        );
    }
    // Server-side apply needs every field in the schema, whatever the validation asked for.
    let (ok, out) = kubectl_apply(cluster, n, &["--server-side", "--validate=false"], &unknown);
    assert!(!ok && out.contains("field not declared in schema"), "{out}");
    assert!(databases.get_opt("pruned").await.unwrap().is_none());
    // The API's default (Warn) and kubectl's warn mode store the object without them.
    let stored = create(&client, n, &unknown)
        .await
        .unwrap_or_else(|(code, m)| panic!("refused ({code}): {m}"));
    let stored = serde_json::to_value(&stored).unwrap();
    assert_eq!(stored.get("extra"), None, "{stored}");
    assert_eq!(stored["spec"].get("colour"), None, "{stored}");
    assert_eq!(
        stored["spec"]["storage"],
        json!({"size": "1Gi"}),
        "{stored}"
    );
    let unknown_backup = testkit::backup("pruned", "pruned")
        .set("/spec/retention_days", json!(3))
        .json();
    let (ok, out) = kubectl_apply(cluster, n, &["--validate=warn"], &unknown_backup);
    assert!(
        ok && out.contains("unknown field \"spec.retention_days\""),
        "{out}"
    );
    let stored = raw_api(&client, n, "Backup").get("pruned").await.unwrap();
    assert_eq!(
        stored.data["spec"]["databaseRef"],
        json!({"name": "pruned"})
    );
    assert_eq!(
        stored.data["spec"].get("retention_days"),
        None,
        "{:?}",
        stored.data
    );

    // Accepted, and reported on: values only PostgreSQL, cron or the Pod API can judge.
    let huge_claim = testkit::database("huge-claim")
        .set(
            "/spec/resources",
            json!({"claims": [{"name": "x".repeat(MIB)}]}),
        )
        .json();
    create(&client, n, &huge_claim)
        .await
        .unwrap_or_else(|(code, m)| panic!("refused ({code}): {m:.300}"));
    let bad_minute = testkit::backup("bad-minute", "good")
        .schedule("61 2 * * *")
        .json();
    let bad_zone = testkit::backup("bad-zone", "good")
        .schedule("0 2 * * *")
        .set("/spec/timeZone", json!("Mars/Olympus"))
        .json();
    for object in [&bad_minute, &bad_zone] {
        create(&client, n, object)
            .await
            .unwrap_or_else(|(code, m)| panic!("refused ({code}): {m}"));
    }
    // Names exactly at their limits are accepted and work.
    let longest_db = "d".repeat(MAX_DATABASE_NAME);
    let longest_backup = "b".repeat(MAX_BACKUP_NAME);
    create(&client, n, &testkit::database(&longest_db).json())
        .await
        .unwrap_or_else(|(code, m)| panic!("refused ({code}): {m}"));
    create(&client, n, &testkit::backup(&longest_backup, "good").json())
        .await
        .unwrap_or_else(|(code, m)| panic!("refused ({code}): {m}"));
    create(
        &client,
        n,
        &testkit::restore(&"r".repeat(MAX_BACKUP_NAME), "nightly", "good").json(),
    )
    .await
    .unwrap_or_else(|(code, m)| panic!("refused ({code}): {m}"));

    let invalid_spec = |db: Option<&Database>| {
        db.and_then(|d| d.status.as_ref()).is_some_and(|s| {
            s.phase == Some(api::DatabasePhase::Failed)
                && conditions::find(&s.conditions, conditions::DEGRADED)
                    .is_some_and(|c| c.status == "True" && c.reason == "InvalidSpec")
        })
    };
    let db = testenv::wait_for(&databases, "huge-claim", invalid_spec, CONVERGE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let status = db.status.unwrap();
    assert_eq!(status.observed_generation, db.metadata.generation);
    for condition in &status.conditions {
        // The Condition schema allows 32 KiB; a status echoing the megabyte could not be saved.
        assert!(
            condition.message.len() < 32 * 1024,
            "{} message of {} bytes",
            condition.type_,
            condition.message.len()
        );
    }
    let degraded = conditions::find(&status.conditions, conditions::DEGRADED).unwrap();
    assert!(
        degraded.message.contains("resources.claims"),
        "names the field: {:.300}",
        degraded.message
    );

    let invalid_schedule = |word: &'static str| {
        move |b: Option<&Backup>| {
            b.and_then(|b| b.status.as_ref()).is_some_and(|s| {
                s.phase == Some(api::BackupPhase::Failed)
                    && conditions::find(&s.conditions, conditions::DEGRADED).is_some_and(|c| {
                        c.reason == "InvalidSchedule"
                            && c.message.contains(word)
                            && c.message.contains("fix spec.schedule or spec.timeZone")
                    })
            })
        }
    };
    for (name, word) in [
        ("bad-minute", "not a valid cron expression"),
        ("bad-zone", "not an IANA time zone"),
    ] {
        testenv::wait_for(&backups, name, invalid_schedule(word), CONVERGE)
            .await
            .unwrap_or_else(|e| scenario.fail(e));
    }

    // After all that, a valid Database goes Ready, and so do the one at the name limit and the
    // one stored without its unknown fields.
    scenario.apply(&testkit::database("good").manifest()).await;
    for name in ["good", longest_db.as_str(), "pruned"] {
        play_kubelet(&client, n, name, 1)
            .await
            .unwrap_or_else(|e| scenario.fail(e));
        testenv::wait_for(&databases, name, database_ready, CONVERGE)
            .await
            .unwrap_or_else(|e| scenario.fail(e));
    }

    // The Backup at the name limit runs: its Job's name is shortened, and the label values on
    // the Job and its Pod (the whole name) are valid, so the Job controller makes the Pod.
    let backup = testenv::wait_for(&backups, &longest_backup, run_in_flight, CONVERGE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let job_name = backup.status.clone().unwrap().active_job.unwrap();
    assert!(job_name.len() <= 63, "{job_name}");
    let jobs: Api<Job> = Api::namespaced(client.clone(), n);
    assert!(jobs.get_opt(&job_name).await.unwrap().is_some());
    let selector = format!("batch.kubernetes.io/job-name={job_name}");
    let pods = wait_for_pods(&client, n, &selector, 1, CONVERGE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    assert_eq!(
        pods[0].metadata.labels.as_ref().unwrap()[names::LABEL_BACKUP],
        longest_backup
    );
    let run_id = finish_backup_run(&client, n, &backup).await.unwrap();
    let backup = testenv::wait_for(&backups, &longest_backup, backup_completed, CONVERGE)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let location = backup.status.unwrap().backup_location.unwrap();
    let claim = names::backup_claim(&longest_backup);
    assert!(claim.len() <= 63, "{claim}");
    assert_eq!(
        location,
        format!("pvc://{claim}/good/{longest_backup}/{run_id}/dump.pgdump")
    );

    scenario.assert_operators_running();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), n);
    for name in ["good", longest_db.as_str()] {
        let secret = secrets.get(&names::credentials_secret(name)).await.unwrap();
        let password = &secret.data.unwrap()[names::SECRET_PASSWORD].0;
        let password = String::from_utf8(password.clone()).unwrap();
        for operator in scenario.operators() {
            let log = std::fs::read_to_string(operator.log_path()).unwrap();
            assert!(
                !log.contains(&password),
                "{} logged the password of {name}",
                operator.log_path().display()
            );
        }
    }

    scenario.finish().await;
}
