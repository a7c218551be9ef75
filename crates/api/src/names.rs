//! Names and labels of the objects the operators create, in one place so each operator can
//! find what the other one made without asking it.

use sha2::{Digest, Sha256};

/// Port PostgreSQL listens on in every Pod and Service.
pub const POSTGRES_PORT: i32 = 5432;

/// Keys of the credentials Secret.
pub const SECRET_USERNAME: &str = "username";
pub const SECRET_PASSWORD: &str = "password";
pub const SECRET_DATABASE: &str = "database";
pub const SECRET_HOST: &str = "host";
pub const SECRET_PORT: &str = "port";
/// Host of the read-only Service (the standbys), in the credentials Secret.
pub const SECRET_READ_ONLY_HOST: &str = "readOnlyHost";

/// Keys of the Secret an S3 destination names.
pub const S3_ACCESS_KEY_ID: &str = "accessKeyId";
pub const S3_SECRET_ACCESS_KEY: &str = "secretAccessKey";

/// Label carrying the Database an object belongs to.
pub const LABEL_DATABASE: &str = "database.example.com/database";
/// Label carrying the Backup an object belongs to.
pub const LABEL_BACKUP: &str = "database.example.com/backup";
/// Label carrying the Restore an object belongs to.
pub const LABEL_RESTORE: &str = "database.example.com/restore";
/// Label carrying the run a backup Job performs.
pub const LABEL_RUN_ID: &str = "database.example.com/run-id";
/// Label with the role of a PostgreSQL instance's Pod, [`ROLE_PRIMARY`] or [`ROLE_REPLICA`];
/// set by the instance manager in the Pod, selected on by the Database's Services.
pub const LABEL_ROLE: &str = "database.example.com/role";
pub const ROLE_PRIMARY: &str = "primary";
pub const ROLE_REPLICA: &str = "replica";
/// Annotation each instance's manager keeps on its Pod: the timeline its server is on.
pub const ANNOTATION_TIMELINE: &str = "database.example.com/timeline";
/// Annotation the primary's manager keeps on its Pod: a [`crate::ReplicationReport`] of its
/// standbys, as JSON. Absent on standbys.
pub const ANNOTATION_REPLICATION: &str = "database.example.com/replication";
/// Annotation the manager of a standby that took over after the primary was lost writes on its
/// own Pod: a [`crate::FailoverReport`] as JSON, which the database-operator turns into the
/// Database's `status.lastFailover`, an Event and a metric.
pub const ANNOTATION_FAILOVER: &str = "database.example.com/failover";
/// Annotation on the primary's Lease: how far the primary had written WAL when it last
/// renewed (an LSN as a number), for the estimate of what a failover lost.
pub const ANNOTATION_PRIMARY_POSITION: &str = "database.example.com/primary-position";
/// Annotations of a Database asking for a switchover, a planned move of the primary that
/// loses nothing committed: from the primary named in `switchover-from` to the standby named
/// in `switchover-to`. Only that primary acts on it, so a request left in place never moves
/// a later primary. Done when `status.currentPrimary` names the target.
pub const ANNOTATION_SWITCHOVER_FROM: &str = "database.example.com/switchover-from";
pub const ANNOTATION_SWITCHOVER_TO: &str = "database.example.com/switchover-to";
/// Label on each of a Database's Services naming which it is: [`SERVICE_READ_WRITE`],
/// [`SERVICE_READ_ONLY`], [`SERVICE_ANY`] or [`SERVICE_HEADLESS`]. The EndpointSlice
/// controller copies a Service's labels to its slices, so a watch can select the slices of
/// one kind of Service.
pub const LABEL_SERVICE: &str = "database.example.com/service";
pub const SERVICE_READ_WRITE: &str = "read-write";
pub const SERVICE_READ_ONLY: &str = "read-only";
pub const SERVICE_ANY: &str = "any";
pub const SERVICE_HEADLESS: &str = "headless";
/// Annotation the manager of an instance that starts on data prepared for point-in-time
/// recovery keeps on its Pod: a [`crate::RecoveryReport`] as JSON, which the
/// database-operator turns into the Database's `status.recovery` and its conditions.
pub const ANNOTATION_RECOVERY: &str = "database.example.com/recovery";
/// Name of the claim template of a Database's StatefulSet, hence the first part of its claims.
pub const DATA_VOLUME: &str = "data";
/// Where a PostgreSQL Pod (and a recovery Job) mounts its data claim.
pub const DATA_MOUNT: &str = "/var/lib/postgresql/data";
/// The data directory inside that mount: a subdirectory, because initdb refuses a directory
/// that is not empty and a fresh filesystem has `lost+found`.
pub const PGDATA: &str = "/var/lib/postgresql/data/pgdata";
/// uid and gid of the `postgres` user in the official image: the database Pods run as it, and
/// so must anything that writes their data directory.
pub const POSTGRES_UID: i64 = 999;
/// Standard label naming the operator that manages an object.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// Longest Kubernetes name that is also used as a label value (Jobs label their Pods with it).
const MAX_LABEL_VALUE: usize = 63;

/// Secret with the database credentials.
pub fn credentials_secret(database: &str) -> String {
    format!("{database}-credentials")
}

/// StatefulSet running PostgreSQL.
pub fn statefulset(database: &str) -> String {
    database.to_string()
}

/// Headless Service that gives each Pod a stable DNS name.
pub fn headless_service(database: &str) -> String {
    format!("{database}-headless")
}

/// Service clients connect to.
pub fn client_service(database: &str) -> String {
    database.to_string()
}

/// Service that reaches the ready standbys only (read-only).
pub fn read_only_service(database: &str) -> String {
    format!("{database}-ro")
}

/// Service that reaches any ready instance, primary or standby.
pub fn any_instance_service(database: &str) -> String {
    format!("{database}-r")
}

/// Lease whose holder is the Database's primary (the Pod name); renewed by the primary's
/// instance manager, taken over by a standby's only once it has expired.
pub fn primary_lease(database: &str) -> String {
    format!("{database}-primary")
}

/// ServiceAccount, Role and RoleBinding of the Database's Pods (their instance manager).
pub fn instance_account(database: &str) -> String {
    format!("{database}-instance")
}

/// Name of the physical replication slot the primary keeps for the instance in Pod `pod`.
pub fn replication_slot(pod: &str) -> String {
    pod.replace(['-', '.'], "_")
}

/// `host:port` of the client Service inside the cluster.
pub fn endpoint(database: &str, namespace: &str) -> String {
    format!("{}:{POSTGRES_PORT}", service_host(database, namespace))
}

/// DNS name of the client Service.
pub fn service_host(database: &str, namespace: &str) -> String {
    format!("{}.{namespace}.svc", client_service(database))
}

/// The in-cluster DNS name of the read-only Service (the standbys).
pub fn read_only_host(database: &str, namespace: &str) -> String {
    format!("{}.{namespace}.svc", read_only_service(database))
}

/// Restore the backup-operator creates to initialise a Database that has a `backupRef`.
/// The database-operator waits for it by this name before it reports the Database Ready.
pub fn initial_restore(database: &str) -> String {
    bounded(&format!("{database}-init"))
}

/// The data claim of instance `ordinal` of a Database: the name the StatefulSet controller
/// gives the claim it makes from the `data` template, so a claim made earlier is adopted.
pub fn data_claim(database: &str, ordinal: u32) -> String {
    format!("{DATA_VOLUME}-{}-{ordinal}", statefulset(database))
}

/// Claim the backup-operator creates when a Backup names no destination.
pub fn backup_claim(backup: &str) -> String {
    bounded(&format!("{backup}-artifacts"))
}

/// Job of one backup run. Deterministic, so a restarted operator finds the Job it started
/// instead of starting a second one.
pub fn backup_job(backup: &str, run_id: &str) -> String {
    bounded(&format!("{backup}-{}", run_id.to_ascii_lowercase()))
}

/// Job of a Restore.
pub fn restore_job(restore: &str) -> String {
    bounded(&format!("restore-{restore}"))
}

/// Job of one restore drill of a Backup; `drill` is the drilled run id, or the scheduled
/// time's run id with `verification.schedule`.
pub fn verify_job(backup: &str, drill: &str) -> String {
    bounded(&format!("{backup}-verify-{}", drill.to_ascii_lowercase()))
}

/// Job that removes a Backup's artifacts from a PVC when the Backup is deleted.
pub fn cleanup_job(backup: &str) -> String {
    bounded(&format!("{backup}-cleanup"))
}

/// StatefulSet (and, with `-0`, Pod) of a physical Backup's WAL archiver. At most 52
/// characters: the StatefulSet controller labels its Pods with the name plus an 11-character
/// revision hash, and a label value holds 63.
pub fn wal_archiver(backup: &str) -> String {
    bounded_to(&format!("{backup}-wal"), MAX_STATEFULSET_NAME)
}

/// Job that drops a deleted physical Backup's replication slot.
pub fn wal_slot_job(backup: &str) -> String {
    bounded(&format!("{backup}-drop-slot"))
}

/// The physical replication slot a Backup's WAL archiver streams from: one per Backup, so
/// two Backups of one Database never share a position. Slot names take `[a-z0-9_]` and at
/// most 63 characters; a Backup name's `-` and `.` become `_`, and a hash of the exact name
/// keeps `a-b` and `a.b` apart. The leading `_` keeps it out of every Database's own slots
/// ([`replication_slot`] of a Pod name, which starts with a letter or digit), which the
/// instance manager drops when they are inactive.
pub fn wal_slot(backup: &str) -> String {
    const PREFIX: &str = "_pgop_wal_";
    let hash = hex::encode(&Sha256::digest(backup.as_bytes())[..4]);
    let room = MAX_SLOT_NAME - PREFIX.len() - 1 - hash.len();
    let readable: String = backup
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '_',
        })
        .take(room)
        .collect();
    format!("{PREFIX}{readable}_{hash}")
}

/// Longest replication slot name PostgreSQL accepts (NAMEDATALEN - 1).
const MAX_SLOT_NAME: usize = 63;
/// Longest StatefulSet name whose Pods' revision label still fits.
const MAX_STATEFULSET_NAME: usize = 52;

/// Shortens a name to 63 characters, keeping it unique with a hash of the whole name.
fn bounded(name: &str) -> String {
    bounded_to(name, MAX_LABEL_VALUE)
}

/// [`bounded`] to `max` characters.
fn bounded_to(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let hash = hex::encode(&Sha256::digest(name.as_bytes())[..4]);
    let keep = max - hash.len() - 1;
    let prefix = name[..keep].trim_end_matches('-');
    format!("{prefix}-{hash}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_object_names() {
        let rows = [
            (credentials_secret("shop"), "shop-credentials"),
            (statefulset("shop"), "shop"),
            (headless_service("shop"), "shop-headless"),
            (client_service("shop"), "shop"),
            (endpoint("shop", "prod"), "shop.prod.svc:5432"),
            (initial_restore("shop"), "shop-init"),
            (backup_claim("nightly"), "nightly-artifacts"),
            (
                backup_job("nightly", "20260102T020000Z"),
                "nightly-20260102t020000z",
            ),
            (restore_job("again"), "restore-again"),
        ];
        for (got, want) in rows {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn long_names_are_bounded_and_stay_distinct() {
        let long = "b".repeat(60);
        let a = backup_job(&long, "20260102T020000Z");
        let b = backup_job(&long, "20260103T020000Z");
        assert!(a.len() <= 63 && b.len() <= 63, "{a} {b}");
        assert_ne!(a, b);
        assert_eq!(a, backup_job(&long, "20260102T020000Z"));
    }

    #[test]
    fn wal_slots_are_valid_slot_names_and_distinct_per_backup() {
        let long = "b-".repeat(31) + "b";
        for backup in ["nightly", "a-b", "a.b", "Upper", long.as_str()] {
            let slot = wal_slot(backup);
            assert!(slot.len() <= 63, "{slot}");
            assert!(
                slot.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{slot}"
            );
            assert_eq!(slot, wal_slot(backup), "stable");
        }
        assert!(wal_slot("nightly").starts_with("_pgop_wal_nightly_"));
        // No Database's slot prefix (its StatefulSet's name, from a DNS label) matches it.
        assert!(!wal_slot("nightly").starts_with(&replication_slot("pgop-")));
        assert_ne!(wal_slot("a-b"), wal_slot("a.b"));
    }

    #[test]
    fn archiver_names_leave_room_for_the_pod_revision_label() {
        assert_eq!(wal_archiver("nightly"), "nightly-wal");
        let long = wal_archiver(&"b".repeat(63));
        assert!(long.len() <= 52, "{long}");
    }
}
