//! `kubectl pg` against the real test cluster (PGOP_NODE=1): a Ready Database with a
//! verified Backup, one waiting for its Backup and a Failed one, each command's output
//! compared with golden files (tests/golden, volatile parts masked); `backup --now` taking
//! exactly one extra run; `restore` bringing rows back; `report` holding no Secret value;
//! RBAC refusals as one line.

mod support;

use std::io::Read as _;

use api::{Backup, Database, RUN_NOW_ANNOTATION, Restore};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use scenarios::{
    POD_START, Scenario, backup_completed, database_ready, has_condition, node_database,
};
use support::{golden, plugin, service_account_kubeconfig, set_kubectl};

fn history_len(backup: &Backup) -> usize {
    backup.status.as_ref().map_or(0, |s| s.history.len())
}

#[tokio::test]
async fn status_psql_report_and_refusals_for_a_ready_a_waiting_and_a_failed_database() {
    let mut scenario = Scenario::on_node("kubectl-pg").await;
    set_kubectl(scenario.cluster());
    let ns = scenario.ns().to_owned();
    let admin = scenario.cluster().admin_kubeconfig().to_path_buf();

    // Every object exists before the operators start, so neither sees one without the other
    // (a Warning that would depend on timing, and the golden files could not).
    // Ready, with a Backup that ran once and waits a year for the next run.
    scenario.apply(&node_database("ready").manifest()).await;
    scenario
        .apply(
            &testkit::backup("ready-yearly", "ready")
                .schedule("0 0 1 1 *")
                .manifest(),
        )
        .await;
    // Waiting: initialised from a Backup of a Database that does not exist.
    scenario
        .apply(&testkit::backup("ghost-once", "ghost").manifest())
        .await;
    scenario
        .apply(&node_database("waiting").backup_ref("ghost-once").manifest())
        .await;
    // Failed: initialised from a Backup of itself, a cycle both operators refuse.
    scenario
        .apply(&testkit::backup("broken-once", "broken").manifest())
        .await;
    scenario
        .apply(&node_database("broken").backup_ref("broken-once").manifest())
        .await;
    scenario.start_both().await;

    let databases: Api<Database> = scenario.api();
    let backups: Api<Backup> = scenario.api();
    let waiting_for_backup = has_condition(
        scenarios::database_condition,
        api::conditions::WAITING_FOR_BACKUP,
        "True",
        "BackupNotReady",
    );
    testenv::wait_for(&databases, "waiting", waiting_for_backup, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let failed =
        |db: Option<&Database>| db.is_some_and(|d| d.phase() == api::DatabasePhase::Failed);
    testenv::wait_for(&databases, "broken", failed, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let backup_failed = |b: Option<&Backup>| {
        b.and_then(|b| b.status.as_ref())
            .is_some_and(|s| s.phase == Some(api::BackupPhase::Failed))
    };
    testenv::wait_for(&backups, "broken-once", backup_failed, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    testenv::wait_for(&databases, "ready", database_ready, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    testenv::wait_for(&backups, "ready-yearly", backup_completed, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));

    let run = |args: &[&str]| plugin(&admin, &ns, args);
    for db in ["ready", "waiting", "broken"] {
        golden(&format!("status-{db}.txt"), &run(&["status", db]).ok(), &ns);
        golden(
            &format!("status-{db}.json"),
            &run(&["status", db, "-o", "json"]).ok(),
            &ns,
        );
    }
    let table = run(&["status"]).ok();
    let rows: Vec<(&str, &str)> = table
        .lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            (cells[0], cells[1])
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("broken", "Failed"),
            ("ready", "Ready"),
            ("waiting", "Pending")
        ],
        "{table}"
    );
    assert!(
        !table.contains('\x1b'),
        "no colour off a terminal: {table:?}"
    );

    // psql in the primary, as the Database's owner, the password never on a command line.
    let who = run(&[
        "psql",
        "ready",
        "--",
        "-X",
        "-tA",
        "-c",
        "SELECT current_user || ' ' || current_database()",
    ])
    .ok();
    golden("psql-ready.txt", &who, &ns);
    golden("psql-waiting.txt", &run(&["psql", "waiting"]).error(), &ns);
    golden("psql-broken.txt", &run(&["psql", "broken"]).error(), &ns);
    golden(
        "psql-replica.txt",
        &run(&["psql", "ready", "--replica"]).error(),
        &ns,
    );
    let failing_sql = run(&[
        "psql",
        "ready",
        "--",
        "-X",
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        "SELECT nope",
    ]);
    assert_ne!(failing_sql.code, 0, "psql's own failure is the exit code");

    golden(
        "promote.txt",
        &run(&["promote", "ready", "ready-0"]).error(),
        &ns,
    );
    golden(
        "restore-time.txt",
        &run(&[
            "restore",
            "ready-yearly",
            "--to",
            "ready",
            "--time",
            "2026-01-01T00:00:00Z",
        ])
        .error(),
        &ns,
    );
    golden(
        "restore-no-artifact.txt",
        &run(&["restore", "ghost-once", "--to", "waiting"]).error(),
        &ns,
    );
    golden(
        "missing-database.txt",
        &run(&["status", "nope"]).error(),
        &ns,
    );
    golden(
        "backup-without-now.txt",
        &run(&["backup", "ready-yearly"]).error(),
        &ns,
    );
    // A request for a Backup whose Database is Failed is accepted and waits.
    golden(
        "backup-now-broken.txt",
        &run(&["backup", "broken-once", "--now"]).ok(),
        &ns,
    );

    // report: everything about the Database, and no Secret value anywhere in it.
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("report.tar.gz");
    let wrote = run(&["report", "ready", "-o", archive.to_str().unwrap()]).ok();
    assert!(wrote.contains("Secret values redacted"), "{wrote}");
    let secrets: Api<Secret> = scenario.api();
    let secret = secrets
        .get(&api::names::credentials_secret("ready"))
        .await
        .unwrap();
    let password = secret.data.unwrap()["password"].0.clone();
    let password = String::from_utf8(password).unwrap();
    let encoded =
        serde_json::to_string(&k8s_openapi::ByteString(password.clone().into_bytes())).unwrap();
    let files = read_archive(&archive);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    let root = format!("pg-report-{ns}-ready");
    for want in [
        "README.txt",
        "database.yaml",
        "statefulset.yaml",
        "pods.yaml",
        "services.yaml",
        "persistentvolumeclaims.yaml",
        "backups.yaml",
        "jobs.yaml",
        "events.yaml",
        "secrets.yaml",
        "status.txt",
        "logs/ready-0/postgres.log",
    ] {
        assert!(
            names.contains(&format!("{root}/{want}").as_str()),
            "{want} missing from {names:?}"
        );
    }
    assert!(
        names
            .iter()
            .any(|n| n.starts_with(&format!("{root}/operators/"))),
        "{names:?}"
    );
    for (name, text) in &files {
        assert!(!text.contains(&password), "{name} holds the password");
        assert!(
            !text.contains(encoded.trim_matches('"')),
            "{name} holds the password in base64"
        );
    }
    let secrets_yaml = &files
        .iter()
        .find(|(n, _)| n.ends_with("/secrets.yaml"))
        .unwrap()
        .1;
    assert!(
        secrets_yaml.contains("password: UkVEQUNURUQ="),
        "base64 of REDACTED: {secrets_yaml}"
    );
    let database_yaml = &files
        .iter()
        .find(|(n, _)| n.ends_with("/database.yaml"))
        .unwrap()
        .1;
    assert!(database_yaml.contains("name: ready"), "{database_yaml}");

    // RBAC: a reader who may not exec or patch, and someone who may do nothing.
    scenario.apply(&reader_rbac()).await;
    let reader = service_account_kubeconfig(scenario.cluster(), &ns, "reader", dir.path()).await;
    let nobody = service_account_kubeconfig(scenario.cluster(), &ns, "nobody", dir.path()).await;
    let as_reader = |args: &[&str]| plugin(&reader, &ns, args);
    assert!(
        as_reader(&["status", "ready"])
            .ok()
            .contains("Database ready")
    );
    golden("rbac-psql.txt", &as_reader(&["psql", "ready"]).error(), &ns);
    golden(
        "rbac-backup.txt",
        &as_reader(&["backup", "ready-yearly", "--now"]).error(),
        &ns,
    );
    golden(
        "rbac-status.txt",
        &plugin(&nobody, &ns, &["status", "ready"]).error(),
        &ns,
    );

    scenario.finish().await;
}

#[tokio::test]
async fn backup_now_takes_exactly_one_extra_run_and_restore_brings_the_rows_back() {
    let mut scenario = Scenario::on_node("kubectl-pg-runs").await;
    set_kubectl(scenario.cluster());
    let ns = scenario.ns().to_owned();
    let admin = scenario.cluster().admin_kubeconfig().to_path_buf();
    scenario.start_both().await;
    let run = |args: &[&str]| plugin(&admin, &ns, args);

    scenario.apply(&node_database("source").manifest()).await;
    scenario.apply(&node_database("target").manifest()).await;
    let databases: Api<Database> = scenario.api();
    testenv::wait_for(&databases, "source", database_ready, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    run(&["psql", "source", "--", "-X", "-v", "ON_ERROR_STOP=1", "-c",
        "CREATE TABLE items (id int PRIMARY KEY, label text); INSERT INTO items VALUES (1, 'one'), (2, 'two')"])
        .ok();

    // The first run at once, the next one in a year.
    scenario
        .apply(
            &testkit::backup("yearly", "source")
                .schedule("0 0 1 1 *")
                .manifest(),
        )
        .await;
    let backups: Api<Backup> = scenario.api();
    let first = testenv::wait_for(&backups, "yearly", backup_completed, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    assert_eq!(history_len(&first), 1);

    let out = run(&["backup", "yearly", "--now", "--wait"]).ok();
    golden("backup-now-wait.txt", &out, &ns);
    let after = backups.get("yearly").await.unwrap();
    let status = after.status.clone().unwrap();
    assert_eq!(
        status.history.len(),
        2,
        "exactly one extra run: {status:#?}"
    );
    let requested = status.last_run_now.clone().expect("status.lastRunNow");
    assert_eq!(
        Some(&requested.request),
        after
            .metadata
            .annotations
            .as_ref()
            .unwrap()
            .get(RUN_NOW_ANNOTATION)
    );
    assert_eq!(status.history[0].run_id, requested.run_id);
    assert_ne!(status.history[1].run_id, requested.run_id);
    assert!(status.active_job.is_none());

    // The same request again, with something else that makes the operator reconcile: no run.
    let jobs: Api<Job> = scenario.api();
    let job_count = || async {
        jobs.list(&ListParams::default().labels(&format!("{}=yearly", api::names::LABEL_BACKUP)))
            .await
            .unwrap()
            .items
            .len()
    };
    let jobs_before = job_count().await;
    let seen = count_reconciles(&mut scenario, "yearly");
    let poke = serde_json::json!({"metadata": {"annotations": {
        RUN_NOW_ANNOTATION: requested.request, "kubectl-pg.test/poke": "1"}}});
    backups
        .patch("yearly", &PatchParams::default(), &Patch::Merge(&poke))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + scenarios::CONVERGE;
    while count_reconciles(&mut scenario, "yearly") <= seen {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the backup-operator did not reconcile yearly again"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let again = backups.get("yearly").await.unwrap();
    let again_status = again.status.unwrap();
    assert_eq!(
        again_status.history.len(),
        2,
        "no run for a request already answered"
    );
    assert!(again_status.active_job.is_none(), "{again_status:#?}");
    assert_eq!(job_count().await, jobs_before);

    // Rows written after the first run; restoring the first run into target brings back
    // what it held.
    run(&[
        "psql",
        "source",
        "--",
        "-X",
        "-c",
        "INSERT INTO items VALUES (3, 'three')",
    ])
    .ok();
    testenv::wait_for(&databases, "target", database_ready, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let first_run = status.history[1].run_id.clone();
    let restored = run(&["restore", "yearly", "--to", "target", "--run", &first_run]).ok();
    golden("restore-run.txt", &restored, &ns);
    let rows = run(&[
        "psql",
        "target",
        "--",
        "-X",
        "-tA",
        "-c",
        "SELECT id, label FROM items ORDER BY id",
    ])
    .ok();
    assert_eq!(rows.trim(), "1|one\n2|two");
    let restores: Api<Restore> = scenario.api();
    let list = restores.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(
        list.items[0].status.as_ref().unwrap().run_id.as_deref(),
        Some(first_run.as_str())
    );

    // With the backup-operator gone, a request is not taken up, and --wait says so.
    scenario.operator(testenv::Operator::Backup).kill().unwrap();
    let stopped = run(&[
        "backup",
        "yearly",
        "--now",
        "--wait",
        "--operator-timeout",
        "3s",
    ]);
    golden("backup-now-operator-stopped.txt", &stopped.error(), &ns);

    scenario.finish().await;
}

fn scenario_backup_log(scenario: &mut Scenario) -> std::path::PathBuf {
    scenario
        .operator(testenv::Operator::Backup)
        .log_path()
        .to_path_buf()
}

/// Reconciles of the Backup `name` the backup-operator logged.
fn count_reconciles(scenario: &mut Scenario, name: &str) -> usize {
    let log = std::fs::read_to_string(scenario_backup_log(scenario)).unwrap_or_default();
    log.lines()
        .filter(|l| l.contains("reconciled") && l.contains(&format!("/{name}")))
        .count()
}

/// `reader` may read what status shows and nothing more; `nobody` may do nothing.
fn reader_rbac() -> String {
    r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: reader}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: nobody}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader}
rules:
- apiGroups: [database.example.com]
  resources: [databases, backups, restores]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [pods, services, events]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects:
- {kind: ServiceAccount, name: reader}
"#
    .to_string()
}

fn read_archive(path: &std::path::Path) -> Vec<(String, String)> {
    let file = std::fs::File::open(path).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        let mut text = String::new();
        entry.read_to_string(&mut text).unwrap();
        out.push((name, text));
    }
    out
}
