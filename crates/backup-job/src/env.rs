//! Environment variable names of the Jobs. The controller sets them through
//! [`crate::request`], the `dump`, `restore` and `purge` command line reads them, and the
//! data path names them in its errors, so a user is told which setting to change.

/// PostgreSQL host; the controller sets the Service `<db>.<ns>.svc`.
pub const PGHOST: &str = "PGHOST";
pub const PGPORT: &str = "PGPORT";
/// From the Database's credentials Secret, key `username`.
pub const PGUSER: &str = "PGUSER";
/// From the Database's credentials Secret, key `password`.
pub const PGPASSWORD: &str = "PGPASSWORD";
/// From the Database's credentials Secret, key `database`.
pub const PGDATABASE: &str = "PGDATABASE";
/// Directory of the PostgreSQL client programs; `PATH` is searched when unset.
pub const PG_BIN_DIR: &str = "PG_BIN_DIR";
/// How long to keep retrying a server that refuses connections or is still starting.
pub const PG_CONNECT_PATIENCE: &str = "PG_CONNECT_PATIENCE_SECONDS";

/// Name the backups are filed under (`<prefix>/<database>/...`); defaults to `PGDATABASE`.
pub const BACKUP_DATABASE: &str = "BACKUP_DATABASE";
/// Name of the Backup resource; the second level of the layout.
pub const BACKUP_NAME: &str = "BACKUP_NAME";
/// Identifies one run; defaults to the start time, e.g. `20250101T020000Z`.
pub const BACKUP_RUN_ID: &str = "BACKUP_RUN_ID";
/// How many complete runs to keep after a successful dump.
pub const BACKUP_RETENTION: &str = "BACKUP_RETENTION";
/// Leftovers of dead runs older than this many seconds are deleted after a dump.
pub const BACKUP_STALE_AFTER_SECONDS: &str = "BACKUP_STALE_AFTER_SECONDS";
/// Where `restore` downloads the artifact before checking it, and where `dump` with more
/// than one job lets pg_dump write its directory before packing it.
pub const BACKUP_TEMP_DIR: &str = "BACKUP_TEMP_DIR";
/// `dump`'s compression, `ALGORITHM[:LEVEL]` (zstd, lz4, gzip, none); when unset, zstd:1 where
/// the server and pg_dump are PostgreSQL 16 or newer, else gzip.
pub const BACKUP_COMPRESSION: &str = "BACKUP_COMPRESSION";
/// Parallel jobs of pg_dump and pg_restore, 1 to 16; default 1.
pub const BACKUP_JOBS: &str = "BACKUP_JOBS";

/// SQL a restore drill runs on the restored database; it must return true.
pub const VERIFY_QUERY: &str = "VERIFY_QUERY";
/// The scratch directory a restore drill creates its throwaway server in.
pub const VERIFY_WORK_DIR: &str = "VERIFY_WORK_DIR";

/// Directory destination: the mount path of a PersistentVolumeClaim.
pub const BACKUP_DESTINATION_PATH: &str = "BACKUP_DESTINATION_PATH";

pub const S3_ENDPOINT: &str = "S3_ENDPOINT";
pub const S3_BUCKET: &str = "S3_BUCKET";
pub const S3_PREFIX: &str = "S3_PREFIX";
pub const S3_REGION: &str = "S3_REGION";
/// `true` (the default) addresses `endpoint/bucket/key`, which every S3-compatible server accepts.
pub const S3_FORCE_PATH_STYLE: &str = "S3_FORCE_PATH_STYLE";
/// Plain HTTP is refused unless this is `true` or the endpoint is a loopback address.
pub const S3_ALLOW_HTTP: &str = "S3_ALLOW_HTTP";
/// Size of one multipart upload part in MiB; memory use is about three parts.
pub const S3_PART_SIZE_MIB: &str = "S3_PART_SIZE_MIB";
/// Seconds one S3 request is retried (10 times at most, backing off up to 15 s) before the
/// run fails; default 120.
pub const S3_RETRY_TIMEOUT: &str = "S3_RETRY_TIMEOUT_SECONDS";
/// How `dump` verifies an S3 upload: `etag` (the default) or `read`.
pub const S3_VERIFY: &str = "S3_VERIFY";
/// From the S3 credentials Secret, key `accessKeyId`.
pub const AWS_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
/// From the S3 credentials Secret, key `secretAccessKey`.
pub const AWS_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";

/// Where the one-line JSON result is also written for Kubernetes.
pub const TERMINATION_LOG_PATH: &str = "TERMINATION_LOG_PATH";

/// Physical replication slot the WAL archiver streams through; one per Backup.
pub const WAL_SLOT_NAME: &str = "WAL_SLOT_NAME";
/// Local directory pg_receivewal writes into before segments are shipped (an emptyDir).
pub const WAL_SPOOL_DIR: &str = "WAL_SPOOL_DIR";
/// Seconds between uploads of the segment being written (`.partial`), 1 to 60; default 10.
pub const WAL_SYNC_INTERVAL_SECONDS: &str = "WAL_SYNC_INTERVAL_SECONDS";
/// `host:port` the archiver serves `/status` and `/metrics` on; default `0.0.0.0:8080`.
pub const WAL_STATUS_ADDRESS: &str = "WAL_STATUS_ADDRESS";
/// Client-side compression of base backups: `lz4` (default), `gzip` or `none`.
pub const BASE_BACKUP_COMPRESSION: &str = "BASE_BACKUP_COMPRESSION";
/// Recovery target as RFC 3339 (`2026-12-06T07:00:00Z`); unset recovers to the end of the
/// archive.
pub const RECOVERY_TARGET_TIME: &str = "RECOVERY_TARGET_TIME";
/// The new Database's data directory that `prepare-recovery` fills; empty or absent.
pub const RECOVERY_DATA_DIR: &str = "RECOVERY_DATA_DIR";
