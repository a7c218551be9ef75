//! Moving files from the spool to the WAL area: complete files once, the current
//! `.partial` when it changed, gaps recorded as they are found.

use super::record;
use super::server::SharedStatus;
use super::spool::{self, SpoolContents};
use super::status::{ErrorCategory, GapReport};
use crate::wal::{SegmentSize, StoredWal, TimelineHistory, WalFile, WalSegment};
use crate::wal_store::{WalStore, WalStoreError};
use chrono::Utc;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;

pub(super) struct Shipper<'a> {
    wal: WalStore<'a>,
    spool: PathBuf,
    /// What the WAL area holds, kept in step with what this archiver stores.
    archived: BTreeMap<WalFile, StoredWal>,
    newest: Option<WalSegment>,
    /// SHA-256 of the partial uploaded last, to skip uploads of an unchanged file.
    partial_sha: Option<String>,
    last_partial_sync: Option<Instant>,
    sync_interval: Duration,
    status: SharedStatus,
    listed: bool,
}

impl<'a> Shipper<'a> {
    pub(super) fn new(
        wal: WalStore<'a>,
        spool: PathBuf,
        sync_interval: Duration,
        status: SharedStatus,
    ) -> Self {
        Self {
            wal,
            spool,
            archived: BTreeMap::new(),
            newest: None,
            partial_sha: None,
            last_partial_sync: None,
            sync_interval,
            status,
            listed: false,
        }
    }

    pub(super) fn size(&self) -> SegmentSize {
        self.wal.size()
    }

    /// Lists the archive once (again after a failure); false while the store is unreachable.
    pub(super) async fn ensure_listed(&mut self) -> bool {
        if self.listed {
            return true;
        }
        // Only this archiver writes the WAL area, so an unfinished upload there is one a
        // killed predecessor left.
        if let Err(error) = self.wal.remove_unfinished().await {
            self.store_error(error);
            return false;
        }
        match self.wal.list().await {
            Ok(listing) => {
                for name in &listing.ignored {
                    tracing::warn!(%name, "not an archived WAL file; left alone");
                }
                self.newest = listing.newest_segment();
                self.archived = listing.entries;
                self.listed = true;
                let mut status = self.status.lock().expect("status lock");
                if let Some(newest) = self.newest {
                    status.last_archived_segment = Some(newest.file_name(self.wal.size()));
                    status.last_archived_time = self
                        .archived
                        .get(&WalFile::Segment(newest))
                        .map(|s| s.archived_at);
                    status.timeline = Some(newest.timeline.get());
                }
                status.clear_error(ErrorCategory::StoreUnreachable);
                true
            }
            Err(error) => {
                self.store_error(error);
                false
            }
        }
    }

    fn store_error(&self, error: WalStoreError) {
        record(
            &self.status,
            ErrorCategory::StoreUnreachable,
            error_text::describe(&error),
        );
    }

    /// With nothing in the spool, a zero-filled `.partial` of the segment after the newest
    /// archived one makes pg_receivewal resume there rather than at the slot's position,
    /// which may be past WAL that was received but never archived.
    pub(super) async fn seed(&self) -> Result<(), String> {
        let files = spool::scan(&self.spool)
            .await
            .map_err(|e| format!("could not list the spool: {e}"))?;
        let contents = spool::classify(files.iter().map(|(n, s)| (n.as_str(), *s)), self.size());
        let empty = contents.segments.is_empty() && contents.current_partial.is_none();
        let Some(mut next) = self.newest.and_then(|s| s.next(self.size())) else {
            return Ok(());
        };
        if !empty {
            return Ok(());
        }
        // After a promotion the next position may belong to a newer timeline; asking the
        // server for the old one past its switch point would fail.
        if let Some(history) = self.newest_history().await {
            next.timeline = history.timeline_for_segment(next.number, self.size());
        }
        let path = self.spool.join(spool::seed_name(next, self.size()));
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| format!("could not create {}: {e}", path.display()))?;
        file.set_len(self.size().bytes())
            .await
            .map_err(|e| format!("could not size {}: {e}", path.display()))?;
        tracing::info!(segment = %next.file_name(self.size()), "resuming after the newest archived segment");
        Ok(())
    }

    /// The archived history of the highest timeline, if there is one and it reads.
    async fn newest_history(&self) -> Option<TimelineHistory> {
        let (file, stored) = self
            .archived
            .iter()
            .rev()
            .find(|(file, _)| matches!(file, WalFile::History(_)))?;
        let WalFile::History(timeline) = file else {
            return None;
        };
        let data = self.wal.fetch(stored).await.ok()?;
        TimelineHistory::parse(*timeline, &String::from_utf8_lossy(&data)).ok()
    }

    /// Ships what the spool holds; `force_partial` uploads the current partial now. Returns
    /// false when something could not be shipped (it stays in the spool for the next try).
    pub(super) async fn ship(&mut self, force_partial: bool) -> bool {
        let files = match spool::scan(&self.spool).await {
            Ok(files) => files,
            Err(error) => {
                tracing::warn!(%error, "could not list the spool");
                return false;
            }
        };
        let contents = spool::classify(files.iter().map(|(n, s)| (n.as_str(), *s)), self.size());
        match self.ship_contents(&contents, force_partial).await {
            Ok(()) => {
                self.status
                    .lock()
                    .expect("status lock")
                    .clear_error(ErrorCategory::StoreUnreachable);
                true
            }
            Err(ShipError::Store(error)) => {
                self.store_error(error);
                false
            }
            Err(ShipError::Refused(message)) => {
                record(&self.status, ErrorCategory::SegmentRefused, message);
                false
            }
        }
    }

    async fn ship_contents(
        &mut self,
        contents: &SpoolContents,
        force_partial: bool,
    ) -> Result<(), ShipError> {
        for file in &contents.histories {
            self.ship_complete(*file).await?;
        }
        for segment in &contents.segments {
            if !spool::follows(self.newest, *segment) {
                let after = self.newest.map(|s| s.file_name(self.size()));
                let next = segment.file_name(self.size());
                let message = format!(
                    "the spool's next segment {next} does not follow the newest archived one ({}): the WAL between them is not in the archive",
                    after.as_deref().unwrap_or("none")
                );
                self.record_gap(Some(next), message).await;
            }
            self.ship_complete(WalFile::Segment(*segment)).await?;
        }
        for segment in &contents.abandoned_partials {
            self.ship_partial(*segment).await?;
            self.remove_local(&WalFile::Partial(*segment).file_name(self.size()))
                .await;
        }
        if let Some(segment) = contents.current_partial {
            let due = self
                .last_partial_sync
                .is_none_or(|at| at.elapsed() >= self.sync_interval);
            if force_partial || due {
                self.last_partial_sync = Some(Instant::now());
                self.ship_partial(segment).await?;
            }
        }
        Ok(())
    }

    /// Stores a complete segment or history file unless already there, then removes it
    /// from the spool.
    async fn ship_complete(&mut self, file: WalFile) -> Result<(), ShipError> {
        let name = file.file_name(self.size());
        let path = self.spool.join(&name);
        let Ok(data) = tokio::fs::read(&path).await else {
            return Ok(());
        };
        let data = bytes::Bytes::from(data);
        if let Some(stored) = self.archived.get(&file) {
            let sha = sha256(&data);
            if sha != stored.sha256 {
                return Err(ShipError::Refused(format!(
                    "{name} is already archived with SHA-256 {} at {}, but the spool's copy has {sha}; neither is overwritten",
                    stored.sha256,
                    self.wal.location(stored)
                )));
            }
        } else {
            let bytes = data.len() as u64;
            let stored = self
                .wal
                .put(file, data, None, Utc::now())
                .await
                .map_err(ShipError::Store)?;
            let archived_at = stored.archived_at;
            self.archived.insert(file, stored);
            let mut status = self.status.lock().expect("status lock");
            status.archived_bytes += bytes;
            if let WalFile::Segment(segment) = file {
                status.archived_segments += 1;
                status.last_archived_segment = Some(name.clone());
                status.last_archived_time = Some(archived_at);
                status.timeline = Some(segment.timeline.get());
            }
        }
        if let WalFile::Segment(segment) = file {
            if self
                .newest
                .is_none_or(|n| (segment.number, segment.timeline) > (n.number, n.timeline))
            {
                self.newest = Some(segment);
            }
            // The complete segment replaces its streaming partial.
            if let Some(partial) = self.archived.remove(&WalFile::Partial(segment)) {
                self.wal.delete(&partial).await.map_err(ShipError::Store)?;
            }
        }
        self.remove_local(&name).await;
        Ok(())
    }

    /// Uploads a `.partial` when it changed since the last upload, replacing the stored one.
    async fn ship_partial(&mut self, segment: WalSegment) -> Result<(), ShipError> {
        let file = WalFile::Partial(segment);
        let path = self.spool.join(file.file_name(self.size()));
        // Renamed to its complete name in the meantime: shipped as such on the next pass.
        let Ok(data) = tokio::fs::read(&path).await else {
            return Ok(());
        };
        let sha = sha256(&data);
        if self.partial_sha.as_deref() == Some(sha.as_str()) {
            return Ok(());
        }
        let written_to = spool::written_to(segment, self.size(), &data);
        if written_to == segment.lsn_range(self.size()).start {
            // Only zeros yet (e.g. the seed): nothing worth storing.
            return Ok(());
        }
        let stored = self
            .wal
            .put(file, data.into(), Some(written_to), Utc::now())
            .await
            .map_err(ShipError::Store)?;
        let (uploaded_at, reach) = (stored.archived_at, written_to);
        if let Some(previous) = self.archived.insert(file, stored.clone())
            && previous.name(self.size()) != stored.name(self.size())
        {
            self.wal.delete(&previous).await.map_err(ShipError::Store)?;
        }
        self.partial_sha = Some(sha);
        let mut status = self.status.lock().expect("status lock");
        status.partial_written_to = Some(reach.to_string());
        status.partial_uploaded_time = Some(uploaded_at);
        status.received_lsn = Some(reach.to_string());
        status.timeline = Some(segment.timeline.get());
        Ok(())
    }

    pub(super) async fn record_gap(&mut self, next: Option<String>, message: String) {
        let mut status = self.status.lock().expect("status lock");
        // A receiver failure (next unknown) followed by the first segment after it is
        // one gap, not two.
        if let Some(open) = status.gaps.last_mut().filter(|g| g.next.is_none())
            && next.is_some()
        {
            open.next = next;
            return;
        }
        tracing::error!(%message, "gap in the archived WAL");
        status.record_gap(GapReport {
            after: self.newest.map(|s| s.file_name(self.size())),
            next,
            message,
            detected_at: Utc::now(),
        });
    }

    /// After a gap the stream restarts from the slot; partials before it cannot continue.
    pub(super) async fn clear_spool_partials(&mut self) {
        if let Ok(files) = spool::scan(&self.spool).await {
            for (name, _) in files {
                if name.ends_with(".partial") {
                    self.remove_local(&name).await;
                }
            }
        }
        self.partial_sha = None;
    }

    async fn remove_local(&self, name: &str) {
        if let Err(error) = tokio::fs::remove_file(self.spool.join(name)).await
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(%name, %error, "could not remove a shipped file from the spool");
        }
    }
}

enum ShipError {
    Store(WalStoreError),
    Refused(String),
}

fn sha256(data: &[u8]) -> String {
    let mut digest = crate::digest::DigestWriter::new();
    digest.update(data);
    digest.finish().sha256
}
