//! The `Backup` kind: logical or physical backups of a Database, once or on a schedule,
//! reconciled by the backup-operator.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::database::ObjectReference;

/// Most entries `status.history` keeps; `retention` cannot exceed it, so the history always
/// lists every artifact that exists.
pub const MAX_HISTORY: usize = 100;

/// Annotation that asks the backup-operator for one run of a Backup now, outside its
/// schedule: `kubectl annotate backup nightly database.example.com/run-now="$(date +%s)"`
/// (or `kubectl pg backup nightly --now`). The value is the request's identity: the operator
/// starts one run for each new value and records it in `status.lastRunNow`, so re-applying a
/// manifest that carries the same value never starts a second run. A request waits while a run
/// is in flight, while the Database is not Ready and while the Backup is suspended; a
/// scheduled run that is due at the same moment answers it (one run, never a burst).
pub const RUN_NOW_ANNOTATION: &str = "database.example.com/run-now";

/// Backups of a Database: logical (`pg_dump` artifacts, written whole and verified) or
/// physical (base backups and continuous WAL archiving, for point-in-time recovery).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "database.example.com",
    version = "v1",
    kind = "Backup",
    plural = "backups",
    singular = "backup",
    shortname = "pgbackup",
    namespaced,
    status = "BackupStatus",
    derive = "PartialEq",
    cel,
    validation = Rule::new("size(self.metadata.name) <= 63").message("a Backup name may have at most 63 characters: its Jobs and claim carry the name in a label, whose values are limited to 63"),
    printcolumn = r#"{"name":"Database","type":"string","jsonPath":".spec.databaseRef.name"}"#,
    printcolumn = r#"{"name":"Schedule","type":"string","jsonPath":".spec.schedule"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Last Backup","type":"date","jsonPath":".status.lastBackupTime"}"#,
    printcolumn = r#"{"name":"Verified","type":"string","jsonPath":".status.conditions[?(@.type==\"Verified\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.method != 'physical' || !has(self.jobs)").message("jobs sets pg_dump's parallel jobs and has no meaning with method: physical (base backups are taken by pg_basebackup); remove jobs"),
    validation = Rule::new("self.method != 'physical' || !has(self.compression)").message("compression chooses pg_dump's compression and has no meaning with method: physical (base backups are lz4-compressed by the backup Job); remove compression"),
    validation = Rule::new("self.method != 'physical' || !has(self.verification)").message("verification runs restore drills of pg_dump artifacts, which a physical Backup does not write; remove verification from a Backup with method: physical"),
    validation = Rule::new("self.method == 'physical' || !has(self.archive)").message("archive configures continuous WAL archiving, which only method: physical does; set method: physical or remove archive")
)]
pub struct BackupSpec {
    /// The Database to back up, in the same namespace. Runs wait until it is Ready.
    #[x_kube(validation = Rule::new("self == oldSelf").message("databaseRef cannot be changed: create a new Backup for another Database"))]
    pub database_ref: ObjectReference,

    /// When to take backups: a standard 5-field cron expression (minute hour day-of-month
    /// month day-of-week), in UTC unless `timeZone` is set, e.g. `0 2 * * *` for 02:00 every
    /// day. Macros such as `@daily` are accepted. A seconds field is not. Without a schedule
    /// one backup is taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    #[x_kube(validation = Rule::new("self.matches('^\\\\s*@(yearly|annually|monthly|weekly|daily|midnight|hourly)\\\\s*$') || self.matches('^\\\\s*\\\\S+\\\\s+\\\\S+\\\\s+\\\\S+\\\\s+\\\\S+\\\\s+\\\\S+\\\\s*$')").message(Message::Expression("'schedule \"' + self + '\" is not a standard 5-field cron expression (minute hour day-of-month month day-of-week), e.g. \"0 2 * * *\"; a seconds field is not supported'".into())))]
    pub schedule: Option<String>,

    /// IANA time zone the schedule is read in, e.g. `Europe/Berlin`. UTC when not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub time_zone: Option<String>,

    /// Take the first backup as soon as the Database is Ready, instead of waiting for the
    /// first scheduled time. Ignored without a schedule (one backup is taken at once).
    #[serde(default = "default_true")]
    pub immediate: bool,

    /// How late a missed scheduled run may still start, in seconds. A run missed for longer
    /// (the operator was down) is skipped; at most one missed run is ever taken.
    #[serde(default = "default_starting_deadline")]
    #[schemars(range(min = 10, max = 86400))]
    pub starting_deadline_seconds: i64,

    /// How many of the newest successful artifacts to keep. Older ones are deleted from
    /// storage. At most 100.
    #[serde(default = "default_retention")]
    #[schemars(range(min = 1, max = 100))]
    pub retention: i32,

    /// Where artifacts are written. A PersistentVolumeClaim created for this Backup when not set.
    #[serde(default)]
    pub destination: BackupDestination,

    /// Stop starting new runs; a run in flight finishes. With `method: physical` no new base
    /// backup starts, but WAL archiving goes on, so the window keeps growing from the base
    /// backups already kept; deleting the Backup stops it.
    #[serde(default)]
    pub suspend: bool,

    /// What happens to the artifacts when this Backup is deleted: `Retain` keeps them,
    /// `Delete` removes them from storage first.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Restore drills that prove the newest artifact restores. A drill is a Job that runs
    /// the Database's PostgreSQL image with a throwaway server of its own on an emptyDir
    /// (the Database itself is never touched): it restores the artifact after checking its
    /// SHA-256, checks that every table of the archive exists with the rows counted at dump
    /// time, and runs `query` if set. The result is in `status.lastVerification`, the
    /// `Verified` condition and the artifact's `history` entry; the Job is deleted once its
    /// result is recorded. A failed drill never deletes an artifact. Drills need room in the
    /// node's ephemeral storage for the artifact and the restored database (`scratchSize`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerificationSpec>,

    /// How pg_dump compresses the backup. When not set: zstd at level 1 where the Database's
    /// server and the backup tools are PostgreSQL 16 or newer, which is faster than gzip and
    /// smaller; gzip otherwise, and the run's `status.history` entry says why
    /// (`compressionNote`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<BackupCompression>,

    /// Parallel jobs of pg_dump, and of pg_restore when restoring from this Backup: 1 to 16,
    /// each one database connection. Default 1, which streams the dump straight to storage
    /// and restores in one transaction. More than 1 dumps tables in parallel (it helps when
    /// several tables are large) into the Job's /tmp, an emptyDir on the node with room for
    /// one compressed dump (`scratchSize`), then stores it as one tar artifact; a restore with more
    /// than 1 job is not one transaction, and one that fails must be run again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 16))]
    pub jobs: Option<i32>,

    /// `logical` (the default): `pg_dump` runs, each a restorable artifact. `physical`: base
    /// backups with `pg_basebackup` on the schedule, and every WAL segment archived
    /// continuously between them, so that a new Database can be recovered to any moment
    /// within the recoverability window (`backupRef.targetTime`). `retention` then counts
    /// base backups, and WAL that no kept base backup needs is deleted. Cannot be changed.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("method cannot be changed: create a new Backup"))]
    pub method: BackupMethod,

    /// How continuous WAL archiving runs (`method: physical`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<ArchiveSpec>,

    /// Room on the node for the Jobs that keep a local copy, as a Kubernetes quantity such
    /// as `20Gi`: a dump with more than one job (pg_dump's directory, in /tmp), a restore from
    /// this Backup (the artifact, downloaded into /tmp and checked before the target is
    /// touched) and a restore drill (the download and the throwaway server, in /work). It is
    /// that emptyDir's size limit and the Pod's ephemeral-storage request: the Pod is placed
    /// on a node with the room, and one that needs more is evicted by the kubelet and fails
    /// saying so, instead of filling the node. When not set, each Job is sized from the
    /// artifacts in `status.history` and the Database's `storage.size`; set it when a Job was
    /// evicted for lack of room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(
        validation = Rule::new("isQuantity(self)").message(Message::Expression("'scratchSize \"' + self + '\" is not a Kubernetes quantity: use a number with a unit such as 20Gi or 500Mi'".into())),
        validation = Rule::new("!isQuantity(self) || quantity(self).isGreaterThan(quantity('0'))").message("scratchSize must be larger than zero")
    )]
    pub scratch_size: Option<String>,

    /// Which instance of a replicated Database the dump reads from. `PreferStandby` (the
    /// default): a standby, through the `<database>-ro` Service, when the Database reports
    /// replication healthy and a ready standby, so backups do not load the primary; the
    /// primary otherwise. `Primary`: always the primary.
    #[serde(default)]
    pub source: BackupSource,
}

/// What a Backup takes.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum BackupMethod {
    /// `pg_dump` artifacts.
    #[default]
    Logical,
    /// Base backups and continuous WAL archiving: point-in-time recovery.
    Physical,
}

/// Continuous WAL archiving.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveSpec {
    /// How often the segment being written is also stored while it fills, in seconds:
    /// at most this much of committed writes (plus one upload) is lost with the Database.
    /// A segment is stored as soon as it is complete in any case. Default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 60))]
    pub sync_seconds: Option<i32>,
}

/// Where a Backup's dumps read from.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BackupSource {
    #[default]
    PreferStandby,
    Primary,
}

/// When restore drills run and what they check beyond tables and row counts.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct VerificationSpec {
    /// When to drill the newest artifact: a 5-field cron expression read in `timeZone`
    /// like `schedule`, e.g. `0 5 * * 0` for Sundays at 05:00. When not set, every artifact
    /// is drilled after the run that wrote it succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    #[x_kube(validation = Rule::new("self.matches('^\\\\s*@(yearly|annually|monthly|weekly|daily|midnight|hourly)\\\\s*$') || self.matches('^\\\\s*\\\\S+\\\\s+\\\\S+\\\\s+\\\\S+\\\\s+\\\\S+\\\\s+\\\\S+\\\\s*$')").message(Message::Expression("'verification.schedule \"' + self + '\" is not a standard 5-field cron expression (minute hour day-of-month month day-of-week), e.g. \"0 5 * * 0\"; a seconds field is not supported'".into())))]
    pub schedule: Option<String>,

    /// SQL run on the restored database after the restore, which must return one row with
    /// the single value true, e.g. `SELECT count(*) > 0 FROM orders`. It runs as a superuser
    /// of the throwaway server; nothing it does leaves the drill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096))]
    pub query: Option<String>,
}

/// A compression algorithm and, optionally, its level.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.level) || (self.algorithm == 'zstd' && self.level >= 1 && self.level <= 22) || (self.algorithm == 'lz4' && self.level >= 1 && self.level <= 12) || (self.algorithm == 'gzip' && self.level >= 1 && self.level <= 9)").message("compression level is out of range for its algorithm: zstd takes 1 to 22, lz4 1 to 12, gzip 1 to 9, none no level"))]
pub struct BackupCompression {
    /// `zstd`, `lz4`, `gzip` or `none`. zstd and lz4 need PostgreSQL 16 or newer tools to
    /// restore; gzip is what plain `pg_dump -Fc` writes.
    pub algorithm: CompressionAlgorithm,
    /// Higher is smaller and slower: zstd 1 to 22 (default 3), lz4 1 to 12, gzip 1 to 9
    /// (default 6); none takes no level. pg_dump's default when not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<i32>,
}

/// How pg_dump compresses.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CompressionAlgorithm {
    Zstd,
    Lz4,
    Gzip,
    None,
}

impl BackupCompression {
    /// The `ALGORITHM[:LEVEL]` form the backup Jobs read.
    pub fn to_setting(&self) -> String {
        let algorithm = match self.algorithm {
            CompressionAlgorithm::Zstd => "zstd",
            CompressionAlgorithm::Lz4 => "lz4",
            CompressionAlgorithm::Gzip => "gzip",
            CompressionAlgorithm::None => "none",
        };
        match self.level {
            Some(level) => format!("{algorithm}:{level}"),
            None => algorithm.to_owned(),
        }
    }
}

impl BackupSpec {
    /// Parallel jobs of the dump and of restores; the schema keeps the setting within 1..=16.
    pub fn jobs(&self) -> u32 {
        self.jobs
            .and_then(|jobs| u32::try_from(jobs).ok())
            .unwrap_or(1)
            .clamp(1, 16)
    }
}

/// Exactly one place artifacts are written to.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.pvc) != has(self.s3)").message("destination needs exactly one of pvc or s3"))]
pub struct BackupDestination {
    /// A PersistentVolumeClaim mounted by the backup Jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pvc: Option<PvcDestination>,
    /// An S3-compatible object store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Destination>,
}

impl Default for BackupDestination {
    fn default() -> Self {
        BackupDestination {
            pvc: Some(PvcDestination::default()),
            s3: None,
        }
    }
}

/// Artifacts on a PersistentVolumeClaim.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PvcDestination {
    /// An existing claim to write to. When not set the operator creates one named
    /// `<backup>-artifacts` of `size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub claim_name: Option<String>,
    /// Size of the claim the operator creates, e.g. `5Gi`. Default `1Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub size: Option<String>,
    /// StorageClass of the claim the operator creates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub storage_class_name: Option<String>,
}

/// Artifacts in an S3-compatible bucket.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct S3Destination {
    /// URL of the S3 API, e.g. `https://s3.eu-west-1.amazonaws.com` or `http://minio.minio:9000`.
    #[schemars(length(min = 1, max = 512))]
    pub endpoint: String,
    /// Bucket name; it must exist.
    #[schemars(length(min = 3, max = 63))]
    pub bucket: String,
    /// Key prefix for every artifact of this Backup; default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    pub prefix: Option<String>,
    /// Region to sign requests for. Default `us-east-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub region: Option<String>,
    /// Secret in this namespace with keys `accessKeyId` and `secretAccessKey`.
    pub credentials_secret: ObjectReference,
    /// Address buckets as `endpoint/bucket` instead of `bucket.endpoint`; most self-hosted
    /// stores need this. Default true.
    #[serde(default = "default_true")]
    pub force_path_style: bool,
}

/// What happens to the artifacts when their Backup is deleted.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeletionPolicy {
    /// Keep the artifacts in storage.
    #[default]
    Retain,
    /// Delete the artifacts from storage before the Backup goes away.
    Delete,
}

/// Where a Backup is.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackupPhase {
    /// Waiting for the Database or for the next scheduled time.
    Pending,
    /// A run is in flight.
    InProgress,
    /// The last run wrote a verified artifact.
    Completed,
    /// The last run failed; the Degraded condition says why.
    Failed,
}

impl BackupPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupPhase::Pending => "Pending",
            BackupPhase::InProgress => "InProgress",
            BackupPhase::Completed => "Completed",
            BackupPhase::Failed => "Failed",
        }
    }
}

/// One artifact that exists in storage.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupRecord {
    /// Identifier of the run that wrote it (its scheduled time, `YYYYMMDDTHHMMSSZ`).
    pub run_id: String,
    /// When the dump finished.
    pub time: Time,
    /// Where the artifact is, e.g. `s3://bucket/prefix/...` or `pvc://claim/path`.
    pub location: String,
    /// Size of the artifact in bytes.
    pub size_bytes: i64,
    /// SHA-256 of the artifact, hex.
    pub sha256: String,
    /// Whether a restore drill proved this artifact restores: true once one passed, false
    /// when the last one failed (the artifact is kept), absent when none ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// How the artifact is compressed, e.g. `zstd` or `gzip:6`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// Why the artifact is not compressed as by default, when the run fell back (an older
    /// server or older backup tools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression_note: Option<String>,
}

/// How a restore drill ended.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerificationResult {
    /// Restored, every table present with the rows counted at dump time, the query true.
    Passed,
    /// `error` says what went wrong.
    Failed,
}

/// The newest restore drill's result.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LastVerification {
    /// The run whose artifact was drilled.
    #[schemars(length(max = 64))]
    pub run_id: String,
    /// When the drill finished.
    pub time: Time,
    pub result: VerificationResult,
    /// The drill's Job (deleted once this was recorded).
    #[schemars(length(max = 253))]
    pub job: String,
    /// The scheduled time of the drill when `verification.schedule` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_time: Option<Time>,
    /// How long the drill took, from the start of its Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<i64>,
    /// Tables of the archive found after the restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tables_checked: Option<i64>,
    /// Rows restored; each table's count matched the one recorded at dump time unless
    /// `rowCountsCompared` is false (artifacts written before counts were recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_checked: Option<i64>,
    /// Whether each table's rows were compared with the count recorded at dump time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_counts_compared: Option<bool>,
    /// Why the drill failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub error: Option<String>,
}

/// Continuous WAL archiving as the archiver last reported it.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveStatus {
    /// The newest complete WAL segment stored, e.g. `00000002000000000000001A`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub last_archived_segment: Option<String>,
    /// When it was stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_archived_time: Option<Time>,
    /// The timeline being archived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<i64>,
    /// How far behind the Database the archive is, in seconds: the age of the newest write
    /// stored (the segment being written counts as of its last upload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<i64>,
}

/// The first and last moment a new Database can be recovered to.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RecoverabilityWindow {
    pub first_recoverable_time: Time,
    pub last_recoverable_time: Time,
}

/// A `database.example.com/run-now` request the backup-operator honoured.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RunNowRecord {
    /// The annotation's value when the run was started.
    #[schemars(length(max = 253))]
    pub request: String,
    /// The run started for it (see `history` once it has written an artifact).
    #[schemars(length(max = 64))]
    pub run_id: String,
}

/// What the backup-operator observed and concluded.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupStatus {
    /// Where the Backup is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<BackupPhase>,
    /// Location of the newest verified artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_location: Option<String>,
    /// When the newest verified artifact was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup_time: Option<Time>,
    /// The scheduled time of the newest run started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<Time>,
    /// When the next run is due; absent without a schedule or while suspended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_schedule_time: Option<Time>,
    /// Size of the newest verified artifact in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    /// SHA-256 of the newest verified artifact, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The Job of the run in flight, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_job: Option<String>,
    /// The artifacts that exist in storage, newest first (at most `retention`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub history: Vec<BackupRecord>,
    /// The last `database.example.com/run-now` request honoured, and the run started for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_now: Option<RunNowRecord>,
    /// The newest restore drill's result (`spec.verification`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_verification: Option<LastVerification>,
    /// When a restore drill last passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_verified_time: Option<Time>,
    /// Continuous WAL archiving (`method: physical`): how far it got and how far behind it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<ArchiveStatus>,
    /// The moments a new Database can be recovered to (`method: physical`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recoverability: Option<RecoverabilityWindow>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// BackupReady, WaitingForDatabase, Progressing, Degraded, and Verified with
    /// `spec.verification`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

impl Backup {
    /// True once a verified artifact exists that a restore can use.
    pub fn is_ready(&self) -> bool {
        self.status.as_ref().is_some_and(|s| {
            crate::conditions::is_true(&s.conditions, crate::conditions::BACKUP_READY)
        })
    }
}

fn default_true() -> bool {
    true
}

fn default_retention() -> i32 {
    7
}

fn default_starting_deadline() -> i64 {
    600
}
