//! Checking a committed artifact before its run may be marked complete.

use super::{CommittedArtifact, RunRef, Storage};
use error_text::describe;
use std::fmt;

/// How an artifact in S3 is verified after its upload. One in a directory is always read
/// back: that costs little on a local volume and catches a disk that lost the writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Verification {
    /// Compare the ETag the store gave the upload with the one computed from the parts
    /// sent, then check the stored object's size and ETag with a HEAD request. When the
    /// store's ETags are not MD5s of the parts (SSE-KMS, SSE-C, some S3-compatible servers)
    /// the comparison fails, and the artifact is read back as with `read`.
    #[default]
    Etag,
    /// Download the artifact and hash it again: checks what the store serves, at the
    /// cost of reading the whole artifact back.
    Read,
}

/// How an artifact was verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// The store's ETag and size matched what was sent.
    Etag,
    /// Its bytes were read back and hashed.
    Read,
}

impl fmt::Display for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Etag => "etag",
            Self::Read => "read",
        })
    }
}

impl Storage {
    /// Whether the artifact stored for `run` is what was written. `Err` says what differs,
    /// or what failed while finding out.
    pub async fn verify_artifact(
        &self,
        run: &RunRef,
        committed: &CommittedArtifact,
        how: Verification,
    ) -> Result<Verified, String> {
        self.verify_object(&run.artifact_key(), committed, how)
            .await
    }

    /// The same for an object written under `key` with [`Storage::begin_object`] (a base
    /// backup).
    pub async fn verify_object(
        &self,
        key: &str,
        committed: &CommittedArtifact,
        how: Verification,
    ) -> Result<Verified, String> {
        let mut unconfirmed = None;
        if let (Verification::Etag, Self::S3(store), Some(receipt)) =
            (how, self, &committed.receipt)
        {
            match store
                .confirm_upload(key, receipt, committed.digest.size_bytes)
                .await
            {
                Ok(()) => return Ok(Verified::Etag),
                Err(reason) => {
                    tracing::warn!(
                        location = %self.location(key),
                        %reason,
                        "the upload's ETag does not confirm it, so it is read back; with a store whose ETags are not MD5s of the parts, set {}=read to skip this check",
                        backup_job::env::S3_VERIFY
                    );
                    unconfirmed = Some(reason);
                }
            }
        }
        let stored = self
            .hash_object(key)
            .await
            .map_err(|error| describe(&error))?;
        let written = &committed.digest;
        if &stored != written {
            let also = unconfirmed
                .map(|reason| format!("; before that, {reason}"))
                .unwrap_or_default();
            return Err(format!(
                "stored artifact has {} bytes with sha256 {}, but {} bytes with sha256 {} were written{also}",
                stored.size_bytes, stored.sha256, written.size_bytes, written.sha256
            ));
        }
        Ok(Verified::Read)
    }
}
