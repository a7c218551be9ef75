//! What a WAL archive holds, from a storage listing's names.

use super::history::TimelineHistory;
use super::segment::{SegmentSize, Timeline, WalFile, WalSegment};
use std::collections::BTreeSet;

/// The WAL files found in one archive, by kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    size: SegmentSize,
    segments: BTreeSet<WalSegment>,
    partials: BTreeSet<WalSegment>,
    histories: BTreeSet<Timeline>,
    ignored: Vec<String>,
}

impl Archive {
    /// Sorts a listing into WAL files. Keys may carry a folder (`prefix/000…03`): only the
    /// last path component counts. Names that are not WAL files (checksum files, manifests,
    /// unfinished uploads) are kept in [`Archive::ignored`] so the caller can log them
    /// rather than have them vanish.
    pub fn from_names<I, S>(names: I, size: SegmentSize) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut archive = Archive {
            size,
            segments: BTreeSet::new(),
            partials: BTreeSet::new(),
            histories: BTreeSet::new(),
            ignored: Vec::new(),
        };
        for name in names {
            let name = name.as_ref();
            let base = name.rsplit('/').next().unwrap_or(name);
            match WalFile::parse(base, size) {
                Ok(WalFile::Segment(segment)) => archive.segments.insert(segment),
                Ok(WalFile::Partial(segment)) => archive.partials.insert(segment),
                Ok(WalFile::History(timeline)) => archive.histories.insert(timeline),
                Err(_) => {
                    archive.ignored.push(name.to_owned());
                    continue;
                }
            };
        }
        archive
    }

    pub fn size(&self) -> SegmentSize {
        self.size
    }

    pub fn contains(&self, file: WalFile) -> bool {
        match file {
            WalFile::Segment(segment) => self.segments.contains(&segment),
            WalFile::Partial(segment) => self.partials.contains(&segment),
            WalFile::History(timeline) => {
                timeline == Timeline::FIRST || self.histories.contains(&timeline)
            }
        }
    }

    /// Complete segments, in name order.
    pub fn segments(&self) -> impl Iterator<Item = WalSegment> + '_ {
        self.segments.iter().copied()
    }

    /// Timelines with a history file, oldest first.
    pub fn history_timelines(&self) -> impl Iterator<Item = Timeline> + '_ {
        self.histories.iter().copied()
    }

    /// Listed names that are not WAL files.
    pub fn ignored(&self) -> &[String] {
        &self.ignored
    }

    /// Positions that hold a segment or a `.partial` of the timeline `history` reads
    /// there, lowest first: the archive as seen from that timeline.
    pub fn positions_on(&self, history: &TimelineHistory) -> BTreeSet<u64> {
        let on_lineage =
            |s: &WalSegment| history.timeline_for_segment(s.number, self.size) == s.timeline;
        self.segments
            .iter()
            .chain(&self.partials)
            .filter(|s| on_lineage(s))
            .map(|s| s.number)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tl(id: u32) -> Timeline {
        Timeline::new(id).unwrap()
    }

    #[test]
    fn sorts_a_listing_by_kind_and_keeps_what_it_cannot_read() {
        let archive = Archive::from_names(
            [
                "wal/000000010000000000000003",
                "wal/000000010000000000000003.sha256",
                "000000010000000000000004.partial",
                "wal/00000002.history",
                "000000020000000000000004.gz",
                "000000010000000000000005.partial.partial",
            ],
            SegmentSize::DEFAULT,
        );
        let segment = |number| WalSegment {
            timeline: tl(1),
            number,
        };
        assert!(archive.contains(WalFile::Segment(segment(3))));
        assert!(!archive.contains(WalFile::Partial(segment(3))));
        assert!(archive.contains(WalFile::Partial(segment(4))));
        assert!(!archive.contains(WalFile::Segment(segment(4))));
        assert!(archive.contains(WalFile::History(tl(2))));
        assert!(!archive.contains(WalFile::History(tl(3))));
        // Timeline 1 never has a history file, so none is missing.
        assert!(archive.contains(WalFile::History(tl(1))));
        assert_eq!(archive.segments().collect::<Vec<_>>(), [segment(3)]);
        assert_eq!(archive.history_timelines().collect::<Vec<_>>(), [tl(2)]);
        assert_eq!(
            archive.ignored(),
            [
                "wal/000000010000000000000003.sha256",
                "000000020000000000000004.gz",
                "000000010000000000000005.partial.partial",
            ]
        );
    }

    #[test]
    fn positions_follow_the_timeline_read_at_each_position() {
        let archive = Archive::from_names(
            [
                "000000010000000000000002",
                "000000010000000000000003",
                // Timeline 1 went on after the switch: not on timeline 2's lineage.
                "000000010000000000000004",
                "000000020000000000000003",
                "000000020000000000000005.partial",
            ],
            SegmentSize::DEFAULT,
        );
        let history = TimelineHistory::parse(tl(2), "1\t0/3000100\n").unwrap();
        assert_eq!(
            archive
                .positions_on(&history)
                .into_iter()
                .collect::<Vec<_>>(),
            [2, 3, 5]
        );
        let first = TimelineHistory::first();
        assert_eq!(
            archive.positions_on(&first).into_iter().collect::<Vec<_>>(),
            [2, 3, 4]
        );
    }
}
