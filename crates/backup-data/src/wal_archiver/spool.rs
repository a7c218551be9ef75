//! The local directory pg_receivewal writes into, read as what to ship next. Pure apart
//! from [`scan`], so the decisions are tested from names alone.

use crate::wal::{Lsn, SegmentSize, WalFile, WalSegment};
use std::path::Path;

/// What the spool holds, sorted the way it must be shipped.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SpoolContents {
    /// History files first: a segment of a new timeline is useless without its history.
    pub histories: Vec<WalFile>,
    /// Complete segments by position, then timeline.
    pub segments: Vec<WalSegment>,
    /// The `.partial` pg_receivewal is writing: the one furthest along.
    pub current_partial: Option<WalSegment>,
    /// Partials left behind, e.g. the old timeline's last segment after a timeline switch:
    /// shipped once as they are, then removed.
    pub abandoned_partials: Vec<WalSegment>,
}

/// Sorts file names (with their sizes) from the spool. A segment smaller than the segment
/// size is still being written under its final name by nobody; pg_receivewal renames only
/// whole files, so it is left alone and reported by the caller's continuity check instead.
pub fn classify<'a>(
    files: impl IntoIterator<Item = (&'a str, u64)>,
    size: SegmentSize,
) -> SpoolContents {
    let mut contents = SpoolContents::default();
    let mut partials = Vec::new();
    for (name, bytes) in files {
        match WalFile::parse(name, size) {
            Ok(file @ WalFile::History(_)) => contents.histories.push(file),
            Ok(WalFile::Segment(segment)) if bytes == size.bytes() => {
                contents.segments.push(segment)
            }
            Ok(WalFile::Partial(segment)) if bytes == size.bytes() => partials.push(segment),
            _ => {}
        }
    }
    contents.histories.sort();
    contents.segments.sort_by_key(|s| (s.number, s.timeline));
    partials.sort_by_key(|s| (s.number, s.timeline));
    contents.current_partial = partials.pop();
    contents.abandoned_partials = partials;
    contents
}

/// Whether shipping `next` after `last` (the newest archived segment) leaves positions
/// without a segment. A new timeline may restart at the same position or the next.
pub fn follows(last: Option<WalSegment>, next: WalSegment) -> bool {
    match last {
        None => true,
        Some(last) => next.number <= last.number + 1,
    }
}

/// How far a `.partial` holds WAL: pg_receivewal fills the file with zeros before writing,
/// so the last non-zero byte bounds what was received. Trailing zero bytes of the last
/// record make this a slight underestimate, never an overestimate.
pub fn written_to(segment: WalSegment, size: SegmentSize, data: &[u8]) -> Lsn {
    let start = segment.lsn_range(size).start.0;
    let used = data.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    Lsn(start + used as u64)
}

/// The zero-filled `.partial` that makes pg_receivewal start streaming at `segment`: it
/// resumes from the highest file in its directory, and a `.partial` from its first byte.
pub fn seed_name(segment: WalSegment, size: SegmentSize) -> String {
    WalFile::Partial(segment).file_name(size)
}

/// Names and sizes of the regular files in the spool.
pub async fn scan(spool: &Path) -> std::io::Result<Vec<(String, u64)>> {
    let mut entries = tokio::fs::read_dir(spool).await?;
    let mut files = Vec::new();
    while let Some(entry) = entries.next_entry().await? {
        let metadata = entry.metadata().await?;
        if metadata.is_file()
            && let Some(name) = entry.file_name().to_str()
        {
            files.push((name.to_owned(), metadata.len()));
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::Timeline;

    fn seg(timeline: u32, number: u64) -> WalSegment {
        WalSegment {
            timeline: Timeline::new(timeline).unwrap(),
            number,
        }
    }

    #[test]
    fn files_are_sorted_for_shipping() {
        let size = SegmentSize::DEFAULT;
        let full = size.bytes();
        let contents = classify(
            [
                ("000000020000000000000005.partial", full),
                ("000000010000000000000004", full),
                ("000000010000000000000003", full),
                ("00000002.history", 41),
                ("000000010000000000000005.partial", full),
                ("000000010000000000000006", 100),
                ("notes", 3),
            ],
            size,
        );
        assert_eq!(contents.segments, [seg(1, 3), seg(1, 4)]);
        assert_eq!(
            contents.histories,
            [WalFile::History(Timeline::new(2).unwrap())]
        );
        assert_eq!(contents.current_partial, Some(seg(2, 5)));
        assert_eq!(contents.abandoned_partials, [seg(1, 5)]);
    }

    #[test]
    fn a_skipped_position_is_a_gap_but_a_timeline_switch_is_not() {
        assert!(follows(None, seg(1, 9)));
        assert!(follows(Some(seg(1, 4)), seg(1, 5)));
        assert!(follows(Some(seg(1, 4)), seg(2, 4)));
        assert!(follows(Some(seg(1, 4)), seg(2, 5)));
        assert!(!follows(Some(seg(1, 4)), seg(1, 6)));
    }

    #[test]
    fn written_to_is_the_last_non_zero_byte() {
        let size = SegmentSize::new(1024 * 1024).unwrap();
        let mut data = vec![0u8; size.bytes() as usize];
        assert_eq!(written_to(seg(1, 5), size, &data), Lsn(5 * 1024 * 1024));
        data[99] = 7;
        assert_eq!(
            written_to(seg(1, 5), size, &data),
            Lsn(5 * 1024 * 1024 + 100)
        );
    }
}
