//! Which base backups a retention count keeps and which archived WAL goes with the rest.

use super::segment::{SegmentSize, WalFile, WalSegment};
use super::window::BaseBackup;
use crate::storage::retention::ZeroRetention;
use std::cmp::Reverse;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalRetention {
    /// Ids of the base backups kept, newest first.
    pub keep: Vec<String>,
    /// Ids of the base backups to delete, newest first.
    pub delete: Vec<String>,
    /// The segment the oldest kept backup starts in; `None` keeps every segment.
    pub oldest_needed: Option<WalSegment>,
}

impl WalRetention {
    /// Whether `file`, parsed with the same segment size, may be deleted: segments and partials before the oldest needed one,
    /// on every timeline. History files are never pruned: they are tiny, and a lost one
    /// can make a later timeline's ancestry unreadable.
    pub fn prunable(&self, file: WalFile) -> bool {
        match (file, self.oldest_needed) {
            (WalFile::Segment(s) | WalFile::Partial(s), Some(oldest)) => s.number < oldest.number,
            _ => false,
        }
    }
}

/// Keeps the `keep` newest base backups by end time (then end LSN) and the WAL from the
/// oldest of them onwards. With no base backup, no WAL is prunable: the first backup may
/// still be running, and it needs the WAL archived while it runs.
///
/// Zero is refused like the dump retention's: more likely a missing setting than a wish to
/// lose every backup.
pub fn wal_retention(
    backups: &[BaseBackup],
    keep: usize,
    size: SegmentSize,
) -> Result<WalRetention, ZeroRetention> {
    if keep == 0 {
        return Err(ZeroRetention);
    }
    let mut newest_first: Vec<&BaseBackup> = backups.iter().collect();
    newest_first.sort_by_key(|b| Reverse((b.ended_at, b.position.end)));
    let (kept, deleted) = newest_first.split_at(keep.min(newest_first.len()));
    let oldest_needed = kept
        .iter()
        .map(|b| b.position)
        .min_by_key(|p| p.start)
        .map(|p| WalSegment::containing(p.timeline, p.start, size));
    let ids = |list: &[&BaseBackup]| list.iter().map(|b| b.id.clone()).collect();
    Ok(WalRetention {
        keep: ids(kept),
        delete: ids(deleted),
        oldest_needed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::recovery_plan::BaseBackupPosition;
    use crate::wal::segment::{Lsn, Timeline};
    use chrono::{TimeZone, Utc};

    fn tl(id: u32) -> Timeline {
        Timeline::new(id).unwrap()
    }

    fn backup(id: &str, timeline: u32, start: &str, hour: u32) -> BaseBackup {
        let start: Lsn = start.parse().unwrap();
        BaseBackup {
            id: id.to_owned(),
            position: BaseBackupPosition {
                timeline: tl(timeline),
                start,
                end: Lsn(start.0 + 0x100),
            },
            ended_at: Utc.with_ymd_and_hms(2025, 3, 1, hour, 0, 0).unwrap(),
        }
    }

    fn seg(timeline: u32, number: u64) -> WalSegment {
        WalSegment {
            timeline: tl(timeline),
            number,
        }
    }

    #[test]
    fn keeps_the_newest_and_the_wal_from_the_oldest_kept_onwards() {
        // Given out of order: retention sorts by end time itself.
        let backups = [
            backup("b", 1, "0/5000028", 2),
            backup("d", 2, "0/9000028", 4),
            backup("a", 1, "0/2000028", 1),
            backup("c", 2, "0/7000028", 3),
        ];
        let plan = wal_retention(&backups, 2, SegmentSize::DEFAULT).unwrap();
        assert_eq!(plan.keep, ["d", "c"]);
        assert_eq!(plan.delete, ["b", "a"]);
        assert_eq!(plan.oldest_needed, Some(seg(2, 7)));
        for (file, prunable) in [
            (WalFile::Segment(seg(1, 6)), true),
            (WalFile::Partial(seg(1, 6)), true),
            (WalFile::Segment(seg(3, 2)), true),
            (WalFile::Segment(seg(1, 7)), false),
            (WalFile::Segment(seg(2, 7)), false),
            (WalFile::Partial(seg(2, 8)), false),
            (WalFile::History(tl(2)), false),
            (WalFile::History(tl(9)), false),
        ] {
            assert_eq!(plan.prunable(file), prunable, "{file:?}");
        }
    }

    #[test]
    fn the_oldest_start_decides_even_when_it_ended_later() {
        // "slow" started first but finished after "quick": its start bounds the WAL kept.
        let mut slow = backup("slow", 1, "0/3000028", 5);
        slow.position.end = "0/8000000".parse().unwrap();
        let backups = [
            slow,
            backup("quick", 1, "0/6000028", 4),
            backup("old", 1, "0/1000028", 1),
        ];
        let plan = wal_retention(&backups, 2, SegmentSize::DEFAULT).unwrap();
        assert_eq!(plan.keep, ["slow", "quick"]);
        assert_eq!(plan.oldest_needed, Some(seg(1, 3)));
    }

    #[test]
    fn segment_numbers_follow_the_segment_size() {
        let plan = wal_retention(
            &[backup("a", 1, "0/3000028", 1)],
            1,
            SegmentSize::new(1 << 20).unwrap(),
        )
        .unwrap();
        assert_eq!(plan.oldest_needed, Some(seg(1, 0x30)));
    }

    #[test]
    fn fewer_backups_than_retention_delete_nothing() {
        let plan =
            wal_retention(&[backup("a", 1, "0/2000028", 1)], 3, SegmentSize::DEFAULT).unwrap();
        assert_eq!((plan.keep.len(), plan.delete.len()), (1, 0));
        assert!(plan.prunable(WalFile::Segment(seg(1, 1))));
    }

    #[test]
    fn without_base_backups_no_wal_is_pruned() {
        let plan = wal_retention(&[], 2, SegmentSize::DEFAULT).unwrap();
        assert_eq!(plan.oldest_needed, None);
        assert!(!plan.prunable(WalFile::Segment(seg(1, 1))));
    }

    #[test]
    fn zero_is_refused() {
        assert_eq!(
            wal_retention(&[], 0, SegmentSize::DEFAULT),
            Err(ZeroRetention)
        );
    }
}
