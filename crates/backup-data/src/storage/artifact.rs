//! Writing one artifact: hashed on the way in, visible only after `commit`.

use super::StorageError;
use super::directory::PartialFile;
use super::s3::{PendingUpload, UploadReceipt};
use crate::digest::{ContentDigest, DigestWriter};
use bytes::Bytes;

/// Read size for streams fed into a writer; large enough that per-chunk
/// overhead (hashing calls, syscalls) is negligible, small next to a part.
pub(crate) const CHUNK_SIZE: usize = 256 * 1024;

pub(crate) enum PendingArtifact {
    Directory(PartialFile),
    S3(PendingUpload),
}

/// An artifact being written. End it with [`commit`](Self::commit) or
/// [`abort`](Self::abort); if the process dies first, what is left is a
/// `.partial` file or an unfinished multipart upload, neither of which is
/// listed as a backup, and [`super::Storage::remove_stale`] or a bucket
/// lifecycle rule removes it later.
pub struct ArtifactWriter {
    pending: PendingArtifact,
    digest: DigestWriter,
    location: String,
}

impl ArtifactWriter {
    pub(crate) fn new(pending: PendingArtifact, location: String) -> Self {
        Self {
            pending,
            digest: DigestWriter::new(),
            location,
        }
    }

    /// Where the artifact will be once committed.
    pub fn location(&self) -> &str {
        &self.location
    }

    pub fn bytes_written(&self) -> u64 {
        self.digest.size_bytes()
    }

    pub async fn write(&mut self, chunk: Bytes) -> Result<(), StorageError> {
        self.digest.update(&chunk);
        match &mut self.pending {
            PendingArtifact::Directory(file) => file.write(&chunk).await,
            PendingArtifact::S3(upload) => upload.write(chunk).await,
        }
    }

    /// Makes the artifact durable and visible under its final name and
    /// returns the digest of everything written, and what the store said about it.
    pub async fn commit(self) -> Result<CommittedArtifact, StorageError> {
        let receipt = match self.pending {
            PendingArtifact::Directory(file) => {
                file.commit().await?;
                None
            }
            PendingArtifact::S3(upload) => Some(upload.commit().await?),
        };
        Ok(CommittedArtifact {
            digest: self.digest.finish(),
            receipt,
        })
    }

    /// Discards what was written.
    pub async fn abort(self) -> Result<(), StorageError> {
        match self.pending {
            PendingArtifact::Directory(file) => file.abort().await,
            PendingArtifact::S3(upload) => upload.abort().await,
        }
    }
}

/// An artifact under its final name, not yet verified.
#[derive(Debug)]
pub struct CommittedArtifact {
    /// Of the bytes written.
    pub digest: ContentDigest,
    /// The store's acknowledgement of an S3 upload, which can verify it without reading it.
    pub(crate) receipt: Option<UploadReceipt>,
}
