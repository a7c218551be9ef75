//! What the point-in-time recovery tests share: a physical Backup, the moments noted on the
//! server's own clock, waiting for the archive to cover a moment, a Database recovered from
//! it, and a WAL segment damaged in storage.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use api::{Backup, Database};
use kube::{Api, Client};
use serde_json::json;
use testkit::{BackupFixture, DatabaseFixture};

use crate::{POD_START, claim_dir, node_database, psql};

/// A physical Backup of `database` on a claim of its own: WAL archived continuously, a base
/// backup at once.
pub fn physical_backup(name: &str, database: &str) -> BackupFixture {
    testkit::backup(name, database)
        .set("/spec/method", json!("physical"))
        // Short, so a test waits seconds, not minutes, for the archive to cover a moment.
        .set("/spec/archive", json!({"syncSeconds": 2}))
}

/// A Database recovered from `backup` (to `target`, or to the end of the archive), with the
/// source's role and database names: the recovered cluster is the source's, and the instance
/// sets this Database's password on that role.
pub fn recovered_database(
    name: &str,
    backup: &str,
    target: Option<&str>,
    source: &DatabaseFixture,
) -> DatabaseFixture {
    let source = source.build();
    let db = node_database(name)
        .backup_ref(backup)
        .set("/spec/username", json!(source.spec.username))
        .set("/spec/databaseName", json!(source.spec.database_name));
    match target {
        Some(t) => db.set("/spec/backupRef/targetTime", json!(t)),
        None => db,
    }
}

/// The server's clock, as RFC 3339 in UTC.
pub async fn server_now(client: &Client, ns: &str, database: &str) -> Result<String> {
    psql(
        client,
        ns,
        database,
        "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
    )
    .await
}

/// The next whole second on the server's clock, once the server's clock has passed it: every
/// commit before this call is before the returned moment, every commit after it after. Whole
/// seconds, since a Kubernetes time is.
pub async fn next_whole_second(client: &Client, ns: &str, database: &str) -> Result<String> {
    psql(
        client,
        ns,
        database,
        "SELECT pg_sleep_until(date_trunc('second', clock_timestamp()) + interval '1.2 second'); \
         SELECT to_char(date_trunc('second', clock_timestamp()) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
    )
    .await
    .map(|out| out.lines().last().unwrap_or_default().to_string())
}

/// Waits until the Backup's recoverability window reaches `moment` (RFC 3339): the archive
/// holds everything committed up to it. Asks the server to finish its current segment first,
/// so that does not wait for the partial segment's next upload.
pub async fn wait_recoverable_to(
    client: &Client,
    ns: &str,
    source: &str,
    backup: &str,
    moment: &str,
) -> Result<Backup> {
    psql(client, ns, source, "SELECT pg_switch_wal()").await?;
    let moment: k8s_openapi::jiff::Timestamp = moment.parse().context("parsing the moment")?;
    let backups: Api<Backup> = Api::namespaced(client.clone(), ns);
    let covers = |b: Option<&Backup>| {
        b.and_then(|b| b.status.as_ref())
            .and_then(|s| s.recoverability.as_ref())
            .is_some_and(|w| w.last_recoverable_time.0 >= moment)
    };
    testenv::wait_for(&backups, backup, covers, POD_START).await
}

/// Waits until the Database is Failed; its Ready condition's reason and message.
pub async fn wait_failed(client: &Client, ns: &str, name: &str) -> Result<(String, String)> {
    let databases: Api<Database> = Api::namespaced(client.clone(), ns);
    let failed =
        |db: Option<&Database>| db.is_some_and(|d| d.phase() == api::DatabasePhase::Failed);
    let db = testenv::wait_for(&databases, name, failed, POD_START).await?;
    let status = db.status.unwrap_or_default();
    let ready = api::conditions::find(&status.conditions, api::conditions::READY)
        .context("no Ready condition")?;
    Ok((ready.reason.clone(), ready.message.clone()))
}

/// Flips one bit in the middle of the newest complete WAL segment the Backup stored (a
/// claim destination, on its node's disk); its segment name.
pub async fn flip_bit_in_newest_segment(
    client: &Client,
    ns: &str,
    backup: &Backup,
) -> Result<String> {
    let database = &backup.spec.database_ref.name;
    let name = backup.metadata.name.clone().unwrap_or_default();
    let wal: PathBuf = claim_dir(client, ns, backup)
        .await?
        .join(database)
        .join(name)
        .join("wal");
    let mut segments: Vec<(String, PathBuf)> = std::fs::read_dir(&wal)
        .with_context(|| format!("listing {}", wal.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().to_string();
            let segment = file.split('.').next()?.to_string();
            // `<segment>.<archived at>.<sha256>`: three parts, 24 hex digits first.
            (file.split('.').count() == 3
                && segment.len() == 24
                && segment.chars().all(|c| c.is_ascii_hexdigit()))
            .then_some((segment, e.path()))
        })
        .collect();
    segments.sort();
    let Some((segment, path)) = segments.pop() else {
        bail!("no complete segment in {}", wal.display());
    };
    let mut bytes = std::fs::read(&path)?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, bytes)?;
    Ok(segment)
}
