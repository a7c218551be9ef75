//! The WAL area of one Backup in storage, `<prefix>/<database>/<backup>/wal/`: archived
//! segments, history files and the newest streaming `.partial`, each stored whole under a
//! name that carries its SHA-256 (see [`crate::wal::stored`]), so a listing is enough to
//! plan and every fetch is verified.

use crate::digest::DigestWriter;
use crate::storage::{BackupRef, Storage, StorageError};
use crate::wal::history::HistoryError;
use crate::wal::{
    Lsn, SegmentSize, StoredWal, Timeline, TimelineHistory, WalFile, WalListing, WalRetention,
};
use bytes::Bytes;
use chrono::{DateTime, Utc};

#[derive(Debug, thiserror::Error)]
pub enum WalStoreError {
    #[error(transparent)]
    Storage(#[from] StorageError),

    #[error(
        "archived WAL file {name} is corrupt: its SHA-256 is {actual}, but {expected} was recorded when it was archived ({location}); recovery cannot use it or anything after it"
    )]
    Corrupt {
        name: String,
        location: String,
        expected: String,
        actual: String,
    },

    #[error(
        "archived WAL segment {name} has {actual} bytes, but segments of this archive have {expected} ({location})"
    )]
    WrongSize {
        name: String,
        location: String,
        expected: u64,
        actual: u64,
    },

    #[error("archived history file {name} cannot be read")]
    History {
        name: String,
        #[source]
        source: HistoryError,
    },
}

/// The WAL area of one Backup.
pub struct WalStore<'a> {
    storage: &'a Storage,
    backup: BackupRef,
    size: SegmentSize,
}

impl<'a> WalStore<'a> {
    pub fn new(storage: &'a Storage, backup: BackupRef, size: SegmentSize) -> Self {
        Self {
            storage,
            backup,
            size,
        }
    }

    pub fn size(&self) -> SegmentSize {
        self.size
    }

    fn key(&self, stored: &StoredWal) -> String {
        format!("{}/{}", self.backup.wal_dir(), stored.name(self.size))
    }

    /// Where a stored file is, for messages.
    pub fn location(&self, stored: &StoredWal) -> String {
        self.storage.location(&self.key(stored))
    }

    pub async fn list(&self) -> Result<WalListing, WalStoreError> {
        let names = self.storage.list_objects(&self.backup.wal_dir()).await?;
        Ok(WalListing::from_names(names, self.size))
    }

    /// Removes uploads a killed writer left unfinished (directory destinations only).
    pub async fn remove_unfinished(&self) -> Result<(), WalStoreError> {
        Ok(self
            .storage
            .remove_unfinished_objects(&self.backup.wal_dir())
            .await?)
    }

    /// Stores one file; for a `.partial`, `written_to` says how far it holds WAL.
    pub async fn put(
        &self,
        file: WalFile,
        data: Bytes,
        written_to: Option<Lsn>,
        archived_at: DateTime<Utc>,
    ) -> Result<StoredWal, WalStoreError> {
        let mut digest = DigestWriter::new();
        digest.update(&data);
        let stored = StoredWal {
            file,
            archived_at,
            sha256: digest.finish().sha256,
            written_to: written_to.filter(|_| matches!(file, WalFile::Partial(_))),
        };
        self.storage.put_object(&self.key(&stored), data).await?;
        Ok(stored)
    }

    /// The stored bytes, checked against the recorded SHA-256 and, for a segment or
    /// partial, the segment size.
    pub async fn fetch(&self, stored: &StoredWal) -> Result<Bytes, WalStoreError> {
        let key = self.key(stored);
        let data = self.storage.get_object(&key).await?;
        let name = stored.file.file_name(self.size);
        let location = self.storage.location(&key);
        if !matches!(stored.file, WalFile::History(_)) && data.len() as u64 != self.size.bytes() {
            return Err(WalStoreError::WrongSize {
                name,
                location,
                expected: self.size.bytes(),
                actual: data.len() as u64,
            });
        }
        let mut digest = DigestWriter::new();
        digest.update(&data);
        let actual = digest.finish().sha256;
        if actual != stored.sha256 {
            return Err(WalStoreError::Corrupt {
                name,
                location,
                expected: stored.sha256.clone(),
                actual,
            });
        }
        Ok(data)
    }

    pub async fn delete(&self, stored: &StoredWal) -> Result<(), WalStoreError> {
        Ok(self.storage.delete_object(&self.key(stored)).await?)
    }

    /// Every history file of the listing, fetched, verified and parsed.
    pub async fn histories(
        &self,
        listing: &WalListing,
    ) -> Result<Vec<TimelineHistory>, WalStoreError> {
        let mut histories = Vec::new();
        for timeline in listing.archive.history_timelines() {
            histories.push(self.history(listing, timeline).await?);
        }
        Ok(histories)
    }

    async fn history(
        &self,
        listing: &WalListing,
        timeline: Timeline,
    ) -> Result<TimelineHistory, WalStoreError> {
        let file = WalFile::History(timeline);
        let stored = &listing.entries[&file];
        let data = self.fetch(stored).await?;
        TimelineHistory::parse(timeline, &String::from_utf8_lossy(&data)).map_err(|source| {
            WalStoreError::History {
                name: file.file_name(self.size),
                source,
            }
        })
    }

    /// Deletes what `retention` allows, and partials superseded by a newer upload.
    /// Returns the names deleted.
    pub async fn prune(
        &self,
        listing: &WalListing,
        retention: &WalRetention,
    ) -> Result<Vec<String>, WalStoreError> {
        let mut deleted = Vec::new();
        let expired = listing
            .entries
            .values()
            .filter(|stored| retention.prunable(stored.file))
            .chain(&listing.superseded);
        for stored in expired {
            self.delete(stored).await?;
            deleted.push(stored.name(self.size));
        }
        Ok(deleted)
    }
}
