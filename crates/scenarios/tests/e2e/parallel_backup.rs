//! A Backup with compression and parallel jobs on a real node: pg_dump's directory format
//! is written into the Job's /tmp emptyDir (the root filesystem is read-only), packed into
//! one artifact on the claim, and a Restore from it runs pg_restore with the same jobs.

use api::{Backup, BackupPhase, Database, Restore, RestorePhase};
use kube::Api;
use serde_json::json;

use scenarios::*;

#[tokio::test]
async fn a_parallel_lz4_backup_restores_with_its_jobs() {
    let mut scenario = Scenario::on_node("e2e-parallel").await;
    let n = &scenario.ns().to_owned();
    let client = scenario.client();
    scenario.start_both().await;
    let databases: Api<Database> = Api::namespaced(client.clone(), n);

    for name in ["source", "target"] {
        apply_yaml(&client, n, &node_database(name).manifest())
            .await
            .unwrap();
    }
    testenv::wait_for(&databases, "source", database_ready, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let setup = "CREATE TABLE a (id int PRIMARY KEY, v text); CREATE TABLE b (id int PRIMARY KEY, v text); \
                 INSERT INTO a SELECT g, md5(g::text) FROM generate_series(1, 5000) g; \
                 INSERT INTO b SELECT g, repeat('x', g % 100) FROM generate_series(1, 5000) g";
    psql(&client, n, "source", setup)
        .await
        .unwrap_or_else(|e| scenario.fail(e));

    let backup = testkit::backup("parallel", "source")
        .set("/spec/jobs", json!(2))
        .set("/spec/compression", json!({"algorithm": "lz4", "level": 3}));
    scenario.apply(&backup.manifest()).await;
    let backups: Api<Backup> = Api::namespaced(client.clone(), n);
    let done = |b: Option<&Backup>| {
        b.and_then(|b| b.status.as_ref())
            .is_some_and(|s| matches!(s.phase, Some(BackupPhase::Completed | BackupPhase::Failed)))
    };
    let backup = testenv::wait_for(&backups, "parallel", done, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let status = backup.status.clone().unwrap();
    assert_eq!(status.phase, Some(BackupPhase::Completed), "{status:#?}");
    let record = &status.history[0];
    assert_eq!(record.compression.as_deref(), Some("lz4:3"));
    assert_eq!(record.compression_note, None);
    let bytes = artifact_bytes(&client, n, &backup)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    assert_eq!(
        &bytes[257..262],
        b"ustar",
        "pg_dump's directory packed as tar"
    );

    testenv::wait_for(&databases, "target", database_ready, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    scenario
        .apply(&testkit::restore("from-parallel", "parallel", "target").manifest())
        .await;
    let restores: Api<Restore> = Api::namespaced(client.clone(), n);
    let finished = |r: Option<&Restore>| {
        r.is_some_and(|r| matches!(r.phase(), RestorePhase::Completed | RestorePhase::Failed))
    };
    let restore = testenv::wait_for(&restores, "from-parallel", finished, POD_START)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    assert_eq!(restore.phase(), RestorePhase::Completed, "{restore:#?}");
    let digest = "SELECT md5(string_agg(a.v || b.v, ',' ORDER BY a.id)) FROM a JOIN b USING (id)";
    let restored = psql(&client, n, "target", digest)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    let original = psql(&client, n, "source", digest)
        .await
        .unwrap_or_else(|e| scenario.fail(e));
    assert_eq!(restored, original);

    scenario.finish().await;
}
