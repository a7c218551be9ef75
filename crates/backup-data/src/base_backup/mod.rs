//! Physical base backups: `pg_basebackup` streamed as one tar (compressed on the client)
//! to `<prefix>/<database>/<backup>/base/<run-id>/base.tar[.lz4|.gz]` and read as a tar on
//! the way, verified in storage as a dump's artifact is (read back and hashed in a
//! directory; on S3 the upload's ETag, or a read-back), then `manifest.json`. WAL is not
//! included: the archiver ships it, and a recovery fetches what the base backup needs from
//! the WAL area.

pub mod inspect;
pub mod manifest;
pub mod position;
pub mod store;
pub mod tar_walk;
pub mod unpack;

use crate::pg::{PgConnection, PgError, PgTools};
use crate::storage::{BackupRef, RunId, Storage, StorageError, Verification, abort_logged};
use chrono::Utc;
use futures::StreamExt as _;
use manifest::{BaseManifest, FORMAT_BASEBACKUP_TAR};
use tokio_util::io::ReaderStream;

/// The pipe from `pg_basebackup`: room for a few of its output chunks.
const PIPE_BYTES: i32 = 1024 * 1024;

/// Client-side compression of the tar stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum BaseCompression {
    None,
    /// Fast, and what the default archive uses.
    #[default]
    Lz4,
    Gzip,
}

impl BaseCompression {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Lz4 => "lz4",
            Self::Gzip => "gzip",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::None, Self::Lz4, Self::Gzip]
            .into_iter()
            .find(|c| c.as_str() == text)
    }

    fn pg_basebackup_arg(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Lz4 => "client-lz4",
            Self::Gzip => "client-gzip:1",
        }
    }

    pub fn file_suffix(self) -> &'static str {
        match self {
            Self::None => "",
            Self::Lz4 => ".lz4",
            Self::Gzip => ".gz",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BaseBackupError {
    #[error("base backup of {target} failed")]
    Tool {
        target: String,
        #[source]
        source: PgError,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Output(String),
    #[error(
        "the base backup stored at {location} is not what was written: {reason}; it does not count"
    )]
    NotVerified { location: String, reason: String },
}

pub struct BaseBackupRequest<'a> {
    pub tools: &'a PgTools,
    /// A superuser or replication role; pg_basebackup uses a replication connection.
    pub connection: &'a PgConnection,
    pub storage: &'a Storage,
    pub backup: BackupRef,
    pub run_id: Option<RunId>,
    pub compression: BaseCompression,
    /// How an upload to S3 is verified.
    pub verification: Verification,
}

/// Takes, stores, verifies and records one base backup; returns its manifest.
pub async fn take(request: BaseBackupRequest<'_>) -> Result<BaseManifest, BaseBackupError> {
    let tool_error = |source| BaseBackupError::Tool {
        target: request.connection.describe(),
        source,
    };
    // Each query starts a psql of its own: both at once.
    let (server_version, segment_size) = tokio::try_join!(
        request.tools.server_version(request.connection),
        store::segment_size(request.tools, request.connection)
    )
    .map_err(tool_error)?;
    let start_time = Utc::now();
    let run_id = request
        .run_id
        .unwrap_or_else(|| RunId::from_time(start_time));
    let run = request.backup.run(run_id);
    let key = store::archive_key(&run, request.compression);
    if store::read_manifest(request.storage, &run).await?.is_some() {
        return Err(StorageError::AlreadyComplete {
            location: request.storage.location(&store::manifest_key(&run)),
        }
        .into());
    }
    let mut writer = request.storage.begin_object(&key).await?;
    let mut tool = request
        .tools
        .spawn_pg_basebackup(
            request.connection,
            request.compression.pg_basebackup_arg(),
            &format!("pgop {}", run.run_id),
        )
        .map_err(tool_error)?;
    let stdout = tool.take_stdout().expect("stdout is piped");
    // With the default 64 KiB pipe, pg_basebackup stalls whenever this side is busy for a
    // moment; a larger one keeps it writing (about a fifth of the run at 1 GiB). Where the
    // kernel refuses, the default only costs speed.
    let _ = nix::fcntl::fcntl(&stdout, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_BYTES));
    let mut chunks = ReaderStream::with_capacity(stdout, 256 * 1024);
    let mut read_as_tar = inspect::InFlight::start(request.compression);
    while let Some(chunk) = chunks.next().await {
        let written = match chunk {
            Ok(chunk) => {
                read_as_tar.feed(&chunk).await;
                writer.write(chunk).await
            }
            Err(source) => Err(StorageError::Io {
                operation: "read pg_basebackup's output for",
                location: writer.location().to_owned(),
                source,
            }),
        };
        if let Err(error) = written {
            tool.kill().await;
            abort_logged(writer).await;
            return Err(error.into());
        }
    }
    if let Err(error) = tool.wait().await {
        abort_logged(writer).await;
        return Err(tool_error(error));
    }
    let committed = writer.commit().await?;
    let end_time = Utc::now();

    // Counts only once what was written reads as a base backup and the store holds it.
    let points = read_as_tar
        .finish()
        .await
        .map_err(BaseBackupError::Output)?;
    request
        .storage
        .verify_object(&key, &committed, request.verification)
        .await
        .map_err(|reason| BaseBackupError::NotVerified {
            location: request.storage.location(&key),
            reason,
        })?;
    let manifest = BaseManifest {
        database: run.backup.database().to_owned(),
        backup_name: run.backup.backup().to_owned(),
        run_id: run.run_id.to_string(),
        format: FORMAT_BASEBACKUP_TAR.to_owned(),
        compression: request.compression.as_str().to_owned(),
        start_lsn: points.start.to_string(),
        end_lsn: points.end.to_string(),
        timeline: points.timeline.get(),
        wal_segment_size: segment_size.bytes(),
        start_time,
        end_time,
        server_version,
        size_bytes: committed.digest.size_bytes,
        sha256: committed.digest.sha256,
    };
    store::put_manifest(request.storage, &run, &manifest).await?;
    // The end point's segment is otherwise archived only when the server fills it, which
    // on a quiet database may take hours; until then the backup cannot be restored.
    if let Err(error) = request
        .tools
        .query(request.connection, "SELECT pg_switch_wal()")
        .await
    {
        tracing::warn!(error = %error_text::describe(&error), "could not switch WAL after the base backup; it becomes restorable once its last segment fills");
    }
    Ok(manifest)
}
