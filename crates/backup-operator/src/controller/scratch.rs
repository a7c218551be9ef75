//! How much room on the node a Job's scratch volume gets (pure).
//!
//! The size becomes the emptyDir's `sizeLimit` and part of the Pod's ephemeral-storage
//! request: the scheduler then places the Pod on a node with that room, and the kubelet
//! evicts a Job that outgrows it instead of letting it fill the node
//! ([`crate::controller::job_runs`] turns that eviction into a message that says so). A Job
//! that keeps no local copy gets [`SMALL`]; the others are sized from what the operator
//! already knows, the artifacts' sizes in `status.history` and the Database's `storage.size`,
//! unless the Backup's `spec.scratchSize` says otherwise.

use api::{Backup, BackupRecord, Database, quantity};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// The /tmp of a Job that keeps no local copy (a dump with one job streams to storage, a
/// purge only deletes) and the drill's copy of the operator's binary; also the fixed part of
/// every estimate, for the small files around the copy.
pub const SMALL: u64 = 256 * MIB;

/// An artifact's size when the history has none to go by, which only an object edited by
/// hand or a run id that no longer exists can cause; the Job then fails on its own anyway.
const UNKNOWN: u64 = 4 * GIB;

/// How much a parallel dump may outgrow the one before it: a database that more than doubles
/// between two runs is rare, and the Database's `storage.size` caps the estimate anyway.
const DUMP_GROWTH: u64 = 2;

/// How much larger a restored database is than its compressed artifact. zstd:1 and gzip
/// shrink typical table data 3 to 5 times, and the restored database also has its indexes,
/// which a dump holds only as definitions and which are often as large as the tables: 10
/// covers that with room to spare. Data that compresses far better (pgbench's blank padding:
/// 195 times) needs `spec.scratchSize`. It is capped by the Database's `storage.size`,
/// since the restored copy is no larger than the database it came from.
const DRILL_DATABASE_FACTOR: u64 = 10;

/// The throwaway server's WAL while it restores in one transaction: about as much as it
/// writes, but at least the few segments an empty cluster keeps and at most about its
/// `max_wal_size` (1GB, see backup-data's `drill::server`), after which checkpoints recycle it.
const DRILL_WAL_MIN: u64 = 128 * MIB;
const DRILL_WAL_MAX: u64 = GIB;

/// The scratch volume of a dump: [`SMALL`] with one job, which streams to storage. With more,
/// pg_dump's directory: [`DUMP_GROWTH`] times the newest artifact, at most the Database's
/// `storage.size` (a compressed dump is smaller than the volume holding the database), or
/// that size itself before the first artifact.
pub fn dump(backup: &Backup, database: Option<&Database>) -> u64 {
    if backup.spec.jobs() <= 1 {
        return SMALL;
    }
    if let Some(size) = chosen(backup) {
        return size;
    }
    let volume = database.and_then(storage);
    let dump = match history(backup).first() {
        Some(newest) => {
            let grown = bytes(newest).saturating_mul(DUMP_GROWTH);
            volume.map_or(grown, |volume| grown.min(volume))
        }
        None => volume.unwrap_or(UNKNOWN),
    };
    with_headroom(dump)
}

/// The scratch volume of a restore: the artifact, which is downloaded (a custom-format file,
/// or a packed directory unpacked) and checked there before the target is touched, whatever
/// the number of jobs. `run_id` `None` restores the newest.
pub fn restore(backup: &Backup, run_id: Option<&str>) -> u64 {
    chosen(backup)
        .unwrap_or_else(|| with_headroom(artifact(history(backup), run_id).unwrap_or(UNKNOWN)))
}

/// The drill's work volume: the download (and, for a packed directory, the copy unpacked to
/// list its tables once the download is gone), the restored database
/// ([`DRILL_DATABASE_FACTOR`]) and the throwaway server's WAL. `history` is the one being
/// written, which may already hold the run that was just recorded.
pub fn drill(
    backup: &Backup,
    history: &[BackupRecord],
    run_id: &str,
    database: Option<&Database>,
) -> u64 {
    if let Some(size) = chosen(backup) {
        return size;
    }
    let artifact = artifact(history, Some(run_id)).unwrap_or(UNKNOWN);
    let mut restored = artifact.saturating_mul(DRILL_DATABASE_FACTOR);
    if let Some(volume) = database.and_then(storage) {
        restored = restored.min(volume);
    }
    let wal = restored.clamp(DRILL_WAL_MIN, DRILL_WAL_MAX);
    with_headroom(artifact.saturating_add(restored).saturating_add(wal))
}

/// `bytes` as a quantity: whole GiB when it is, otherwise MiB, rounded up.
pub fn quantity(bytes: u64) -> Quantity {
    if bytes > 0 && bytes.is_multiple_of(GIB) {
        Quantity(format!("{}Gi", bytes / GIB))
    } else {
        Quantity(format!("{}Mi", bytes.div_ceil(MIB)))
    }
}

/// A quarter more, for filesystem blocks and what the estimate misses, plus [`SMALL`].
fn with_headroom(estimate: u64) -> u64 {
    estimate.saturating_add(estimate / 4).saturating_add(SMALL)
}

/// `spec.scratchSize`. The schema refuses what does not parse; such a value is ignored.
fn chosen(backup: &Backup) -> Option<u64> {
    let size = quantity::bytes(backup.spec.scratch_size.as_deref()?)?;
    u64::try_from(size).ok().filter(|&size| size > 0)
}

fn storage(database: &Database) -> Option<u64> {
    u64::try_from(quantity::bytes(&database.spec.storage.size)?).ok()
}

fn history(backup: &Backup) -> &[BackupRecord] {
    backup
        .status
        .as_ref()
        .map(|status| status.history.as_slice())
        .unwrap_or_default()
}

/// The size of run `run_id`'s artifact, or of the newest; the largest of the history when
/// `run_id` is not in it.
fn artifact(history: &[BackupRecord], run_id: Option<&str>) -> Option<u64> {
    let wanted = match run_id {
        Some(run_id) => history.iter().find(|record| record.run_id == run_id),
        None => history.first(),
    };
    wanted
        .map(bytes)
        .or_else(|| history.iter().map(bytes).max())
}

fn bytes(record: &BackupRecord) -> u64 {
    u64::try_from(record.size_bytes).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MB: u64 = 1_000_000;

    fn backup(jobs: i32, sizes: &[(&str, u64)], scratch: Option<&str>) -> Backup {
        let history: Vec<_> = sizes
            .iter()
            .map(|(run, size)| {
                json!({"runId": run, "time": "2026-01-02T02:00:00Z", "location": "l",
                       "sizeBytes": size, "sha256": "ab"})
            })
            .collect();
        let mut spec = json!({"databaseRef": {"name": "shop"}, "jobs": jobs});
        if let Some(scratch) = scratch {
            spec["scratchSize"] = json!(scratch);
        }
        serde_json::from_value(json!({
            "apiVersion": "database.example.com/v1", "kind": "Backup",
            "metadata": {"name": "nightly", "namespace": "prod"},
            "spec": spec, "status": {"history": history}
        }))
        .unwrap()
    }

    fn database(size: &str) -> Database {
        testkit::database("shop").storage(size).build()
    }

    fn headroom(bytes: u64) -> u64 {
        bytes + bytes / 4 + SMALL
    }

    #[test]
    fn a_dump_gets_room_for_twice_the_newest_artifact_at_most_the_databases_volume() {
        let db = database("10Gi");
        let dump_of = |jobs, history: &[(&str, u64)], database, scratch| {
            dump(&backup(jobs, history, scratch), database)
        };
        let newest_first = [("r2", 300 * MB), ("r1", 900 * MB)];
        // One job streams, whatever scratchSize says.
        assert_eq!(dump_of(1, &newest_first, Some(&db), None), SMALL);
        assert_eq!(dump_of(1, &[], Some(&db), Some("50Gi")), SMALL);
        // Twice the newest, not the largest.
        assert_eq!(
            dump_of(4, &newest_first, Some(&db), None),
            headroom(600 * MB)
        );
        // Capped by the volume, and the volume before the first artifact.
        let volume = headroom(10 * GIB);
        assert_eq!(dump_of(4, &[("r2", 8 * GIB)], Some(&db), None), volume);
        assert_eq!(dump_of(2, &[], Some(&db), None), volume);
        assert_eq!(dump_of(2, &[], None, None), headroom(UNKNOWN));
        // scratchSize is the user's word.
        assert_eq!(dump_of(2, &newest_first, Some(&db), Some("50Gi")), 50 * GIB);
    }

    #[test]
    fn a_restore_gets_room_for_the_artifact_it_restores_whatever_its_jobs() {
        let history = [("r3", 100 * MB), ("r2", 700 * MB), ("r1", 50 * MB)];
        let restore_of = |jobs, run_id, scratch| restore(&backup(jobs, &history, scratch), run_id);
        // Every restore downloads the artifact, a custom-format file as much as a directory.
        assert_eq!(restore_of(1, None, None), headroom(100 * MB));
        assert_eq!(restore_of(8, None, None), headroom(100 * MB));
        assert_eq!(restore_of(1, Some("r1"), None), headroom(50 * MB));
        // A run not listed: the largest listed.
        assert_eq!(restore_of(2, Some("r0"), None), headroom(700 * MB));
        assert_eq!(restore_of(2, Some("r1"), Some("3Gi")), 3 * GIB);
        assert_eq!(restore(&backup(1, &[], None), None), headroom(UNKNOWN));
    }

    #[test]
    fn a_drill_gets_room_for_the_download_the_restored_database_and_its_wal() {
        // No scratchSize; the history is the one passed in.
        let unset = backup(1, &[], None);
        let records = |sizes: &[(&str, u64)]| backup(1, sizes, None).status.unwrap().history;
        let (big_volume, small_volume) = (database("100Gi"), database("2Gi"));
        // (what, history, database, bytes)
        let rows: Vec<(&str, Vec<BackupRecord>, Option<&Database>, u64)> = vec![
            (
                "a tiny artifact: the WAL's least",
                records(&[("r1", MB)]),
                Some(&big_volume),
                headroom(MB + 10 * MB + DRILL_WAL_MIN),
            ),
            (
                "ten times the artifact, WAL as much",
                records(&[("r1", 50 * MB)]),
                Some(&big_volume),
                headroom(50 * MB + 500 * MB + 500 * MB),
            ),
            (
                "the WAL's most",
                records(&[("r1", 2 * GIB)]),
                Some(&big_volume),
                headroom(2 * GIB + 20 * GIB + DRILL_WAL_MAX),
            ),
            (
                "the restored database no larger than the volume",
                records(&[("r1", 2 * GIB)]),
                Some(&small_volume),
                headroom(2 * GIB + 2 * GIB + DRILL_WAL_MAX),
            ),
            (
                "the run drilled, not the newest",
                records(&[("r2", 2 * GIB), ("r1", MB)]),
                Some(&big_volume),
                headroom(MB + 10 * MB + DRILL_WAL_MIN),
            ),
        ];
        for (what, history, database, want) in rows {
            let run = history.last().unwrap().run_id.clone();
            assert_eq!(drill(&unset, &history, &run, database), want, "{what}");
        }
        let chosen = backup(1, &[], Some("40Gi"));
        assert_eq!(
            drill(&chosen, &records(&[("r1", MB)]), "r1", None),
            40 * GIB
        );
    }

    #[test]
    fn sizes_read_as_quantities() {
        for (bytes, want) in [
            (SMALL, "256Mi"),
            (3 * GIB, "3Gi"),
            (GIB + 1, "1025Mi"),
            (headroom(100 * MB), "376Mi"),
        ] {
            assert_eq!(quantity(bytes).0, want, "{bytes}");
        }
    }
}
