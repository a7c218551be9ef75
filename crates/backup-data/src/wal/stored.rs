//! How archived WAL files are named in storage, so that one listing says everything a
//! window or a recovery plan needs: which file it is, when it was archived, its SHA-256,
//! and for a streaming `.partial` how far it holds WAL.
//!
//! - segment: `000000010000000000000003.20261206T070000000Z.<sha256>`
//! - history: `00000002.history.20261206T070000000Z.<sha256>`
//! - partial: `000000010000000000000005.partial.0000000005123456.20261206T070000000Z.<sha256>`
//!   (the hex number is the LSN it is written to)
//!
//! A stored name never ends in `.partial`: the directory store gives its own unfinished
//! writes that suffix and deletes stale ones, and a WAL partial must never be taken for one.
//! The archive time is kept to the millisecond (rounded down), enough to compare it with a
//! recovery target time.

use super::archive::Archive;
use super::segment::{Lsn, SegmentSize, WalFile, WalNameError, WalSegment};
use super::window::{SegmentMeta, SegmentTimes};
use chrono::{DateTime, NaiveDateTime, Utc};
use std::collections::BTreeMap;

const TIME_FORMAT: &str = "%Y%m%dT%H%M%S%3fZ";
const PARTIAL: &str = ".partial";

/// One archived WAL file as its stored name describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWal {
    pub file: WalFile,
    pub archived_at: DateTime<Utc>,
    /// Lowercase hex SHA-256 of the stored bytes.
    pub sha256: String,
    /// For a `.partial`: the WAL position its bytes reach.
    pub written_to: Option<Lsn>,
}

impl StoredWal {
    pub fn name(&self, size: SegmentSize) -> String {
        let time = self.archived_at.format(TIME_FORMAT);
        match (self.file, self.written_to) {
            (WalFile::Partial(_), Some(lsn)) => format!(
                "{}.{:016X}.{time}.{}",
                self.file.file_name(size),
                lsn.0,
                self.sha256
            ),
            _ => format!("{}.{time}.{}", self.file.file_name(size), self.sha256),
        }
    }

    pub fn parse(name: &str, size: SegmentSize) -> Result<Self, StoredNameError> {
        let malformed = || StoredNameError::Malformed(name.to_owned());
        let (rest, sha256) = name.rsplit_once('.').ok_or_else(malformed)?;
        let sha_ok = sha256.len() == 64
            && sha256
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !sha_ok {
            return Err(malformed());
        }
        let (rest, time) = rest.rsplit_once('.').ok_or_else(malformed)?;
        let archived_at = NaiveDateTime::parse_from_str(time, TIME_FORMAT)
            .map_err(|_| malformed())?
            .and_utc();
        let (wal_name, written_to) = match rest.rsplit_once('.') {
            Some((partial, lsn)) if partial.ends_with(PARTIAL) => {
                let lsn = (lsn.len() == 16)
                    .then(|| u64::from_str_radix(lsn, 16).ok())
                    .flatten()
                    .ok_or_else(malformed)?;
                (partial, Some(Lsn(lsn)))
            }
            _ => (rest, None),
        };
        let file = WalFile::parse(wal_name, size).map_err(StoredNameError::Wal)?;
        if matches!(file, WalFile::Partial(_)) != written_to.is_some() {
            return Err(malformed());
        }
        Ok(StoredWal {
            file,
            archived_at,
            sha256: sha256.to_owned(),
            written_to,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoredNameError {
    #[error(
        "{0:?} is not an archived WAL name: expected <WAL file>[.<LSN>].<YYYYMMDDTHHMMSSZ>.<sha256>"
    )]
    Malformed(String),
    #[error(transparent)]
    Wal(WalNameError),
}

/// The WAL area of one Backup as a single listing shows it.
#[derive(Debug, Clone)]
pub struct WalListing {
    pub archive: Archive,
    /// The file to read for each WAL file: for a `.partial` uploaded more than once, the one
    /// reaching furthest; for a complete file stored twice (a crash between upload and
    /// clean-up), the first.
    pub entries: BTreeMap<WalFile, StoredWal>,
    /// Stored names that lost to another for the same WAL file: older partials waiting to
    /// be deleted.
    pub superseded: Vec<StoredWal>,
    /// Names that are not archived WAL, kept for logging.
    pub ignored: Vec<String>,
}

impl WalListing {
    pub fn from_names<I, S>(names: I, size: SegmentSize) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut entries: BTreeMap<WalFile, StoredWal> = BTreeMap::new();
        let mut superseded = Vec::new();
        let mut ignored = Vec::new();
        for name in names {
            let name = name.as_ref();
            let base = name.rsplit('/').next().unwrap_or(name);
            let stored = match StoredWal::parse(base, size) {
                Ok(stored) => stored,
                Err(_) => {
                    ignored.push(name.to_owned());
                    continue;
                }
            };
            match entries.get(&stored.file) {
                Some(current) if !supersedes(&stored, current) => superseded.push(stored),
                Some(_) => {
                    let previous = entries.insert(stored.file, stored);
                    superseded.extend(previous);
                }
                None => {
                    entries.insert(stored.file, stored);
                }
            }
        }
        let archive = Archive::from_names(entries.keys().map(|file| file.file_name(size)), size);
        WalListing {
            archive,
            entries,
            superseded,
            ignored,
        }
    }

    /// What [`super::window()`] needs to put times on the window.
    pub fn times(&self) -> SegmentTimes {
        self.entries
            .iter()
            .filter(|(file, _)| !matches!(file, WalFile::History(_)))
            .map(|(file, stored)| {
                let meta = SegmentMeta {
                    archived_at: stored.archived_at,
                    last_commit: None,
                    written_to: stored.written_to,
                };
                (*file, meta)
            })
            .collect()
    }

    /// The complete segment furthest along the WAL (then on the highest timeline): where an
    /// archiver resumes.
    pub fn newest_segment(&self) -> Option<WalSegment> {
        self.archive
            .segments()
            .max_by_key(|segment| (segment.number, segment.timeline))
    }
}

/// A later partial reaching further replaces an earlier one; complete files keep the first.
fn supersedes(candidate: &StoredWal, current: &StoredWal) -> bool {
    match (candidate.written_to, current.written_to) {
        (Some(new), Some(old)) => (new, candidate.archived_at) > (old, current.archived_at),
        _ => candidate.archived_at < current.archived_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::segment::Timeline;
    use chrono::TimeZone;

    const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn seg(timeline: u32, number: u64) -> WalSegment {
        WalSegment {
            timeline: Timeline::new(timeline).unwrap(),
            number,
        }
    }

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 6, 7, 0, second).unwrap()
    }

    #[test]
    fn names_round_trip_and_never_end_in_partial() {
        let size = SegmentSize::DEFAULT;
        let files = [
            StoredWal {
                file: WalFile::Segment(seg(1, 3)),
                archived_at: at(1),
                sha256: SHA.into(),
                written_to: None,
            },
            StoredWal {
                file: WalFile::History(Timeline::new(2).unwrap()),
                archived_at: at(2),
                sha256: SHA.into(),
                written_to: None,
            },
            StoredWal {
                file: WalFile::Partial(seg(1, 5)),
                archived_at: at(3),
                sha256: SHA.into(),
                written_to: Some("0/5123456".parse().unwrap()),
            },
        ];
        let names: Vec<String> = files.iter().map(|f| f.name(size)).collect();
        assert_eq!(
            names[0],
            format!("000000010000000000000003.20261206T070001000Z.{SHA}")
        );
        assert_eq!(
            names[1],
            format!("00000002.history.20261206T070002000Z.{SHA}")
        );
        assert_eq!(
            names[2],
            format!("000000010000000000000005.partial.0000000005123456.20261206T070003000Z.{SHA}")
        );
        for (file, name) in files.iter().zip(&names) {
            assert!(!name.ends_with(".partial"));
            assert_eq!(&StoredWal::parse(name, size).unwrap(), file);
        }
    }

    #[test]
    fn malformed_names_are_refused() {
        let size = SegmentSize::DEFAULT;
        for name in [
            "000000010000000000000003",
            "000000010000000000000003.partial",
            &format!("000000010000000000000003.20261206T070001000Z.{}", &SHA[1..]),
            &format!("000000010000000000000003.2026-12-06.{SHA}"),
            &format!("000000010000000000000003.partial.20261206T070001000Z.{SHA}"),
            &format!("000000010000000000000003.0000000005123456.20261206T070001000Z.{SHA}"),
            &format!(
                "000000010000000000000003.20261206T070001000Z.{}",
                SHA.to_uppercase()
            ),
        ] {
            assert!(StoredWal::parse(name, size).is_err(), "{name} was accepted");
        }
    }

    #[test]
    fn a_listing_keeps_the_furthest_partial_and_the_first_copy_of_a_segment() {
        let size = SegmentSize::DEFAULT;
        let names = [
            format!("wal/000000010000000000000003.20261206T070001000Z.{SHA}"),
            format!("wal/000000010000000000000003.20261206T070009000Z.{SHA}"),
            format!(
                "wal/000000010000000000000004.partial.0000000004000100.20261206T070002000Z.{SHA}"
            ),
            format!(
                "wal/000000010000000000000004.partial.0000000004000200.20261206T070003000Z.{SHA}"
            ),
            "wal/notes.txt".to_owned(),
        ];
        let listing = WalListing::from_names(&names, size);
        assert_eq!(listing.ignored, ["wal/notes.txt"]);
        assert_eq!(listing.superseded.len(), 2);
        assert_eq!(
            listing.entries[&WalFile::Segment(seg(1, 3))].archived_at,
            at(1)
        );
        let partial = &listing.entries[&WalFile::Partial(seg(1, 4))];
        assert_eq!(partial.written_to, Some(Lsn(0x4000200)));
        assert_eq!(listing.newest_segment(), Some(seg(1, 3)));
        let times = listing.times();
        assert_eq!(
            times[&WalFile::Partial(seg(1, 4))].written_to,
            Some(Lsn(0x4000200))
        );
        assert!(listing.archive.contains(WalFile::Partial(seg(1, 4))));
    }
}
