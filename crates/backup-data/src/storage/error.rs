use super::layout::InvalidName;
use super::retention::ZeroRetention;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(
        "backup directory {path} cannot be used; check that the volume is mounted at that path and is a directory"
    )]
    DirectoryUnavailable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("could not {operation} {location}")]
    Io {
        operation: &'static str,
        location: String,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "S3 request to {operation} {location} failed; check the endpoint, bucket and credentials"
    )]
    ObjectStore {
        operation: &'static str,
        location: String,
        #[source]
        source: object_store::Error,
    },

    #[error("S3 settings are invalid: {reason}")]
    InvalidS3Config { reason: String },

    #[error("{location} does not exist")]
    NotFound { location: String },

    #[error(
        "{location} already exists: that run is complete and is never overwritten; use another run id"
    )]
    AlreadyComplete { location: String },

    #[error("manifest {location} cannot be used ({reason}); repair it or delete that run's folder")]
    InvalidManifest { location: String, reason: String },

    #[error(transparent)]
    InvalidName(#[from] InvalidName),

    #[error(transparent)]
    ZeroRetention(#[from] ZeroRetention),
}
