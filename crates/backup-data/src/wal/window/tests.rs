use super::*;
use crate::wal::segment::SegmentSize;
use chrono::TimeZone;

fn tl(id: u32) -> Timeline {
    Timeline::new(id).unwrap()
}

fn lsn(s: &str) -> Lsn {
    s.parse().unwrap()
}

fn at(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, hour, minute, 0).unwrap()
}

fn seg(timeline: u32, number: u64) -> WalSegment {
    WalSegment {
        timeline: tl(timeline),
        number,
    }
}

/// Timeline 1's segments `numbers`, plus any other files.
fn listing(numbers: impl IntoIterator<Item = u64>, others: &[WalFile]) -> Archive {
    let size = SegmentSize::DEFAULT;
    let files = numbers.into_iter().map(|n| WalFile::Segment(seg(1, n)));
    let names = files
        .chain(others.iter().copied())
        .map(|f| f.file_name(size));
    Archive::from_names(names, size)
}

fn backup(id: &str, timeline: u32, start: &str, end: &str, ended_at: DateTime<Utc>) -> BaseBackup {
    BaseBackup {
        id: id.to_owned(),
        position: BaseBackupPosition {
            timeline: tl(timeline),
            start: lsn(start),
            end: lsn(end),
        },
        ended_at,
    }
}

fn archived(archived_at: DateTime<Utc>, last_commit: Option<DateTime<Utc>>) -> SegmentMeta {
    SegmentMeta {
        archived_at,
        last_commit,
        written_to: None,
    }
}

fn point(at_lsn: &str, time: Option<(DateTime<Utc>, TimeSource)>) -> RecoverablePoint {
    RecoverablePoint {
        lsn: lsn(at_lsn),
        time: time.map(|(at, source)| PointTime { at, source }),
    }
}

fn ids(range: &RecoverableRange) -> Vec<&str> {
    range.base_backups.iter().map(String::as_str).collect()
}

#[test]
fn continuous_wal_makes_one_range_from_the_oldest_backup() {
    let archive = listing(2..=9, &[]);
    let backups = [
        backup("b", 1, "0/6000028", "0/6000100", at(12, 0)),
        backup("a", 1, "0/2000028", "0/2000100", at(0, 0)),
    ];
    let times = SegmentTimes::from([
        (
            WalFile::Segment(seg(1, 9)),
            archived(at(13, 5), Some(at(13, 4))),
        ),
        (WalFile::Segment(seg(1, 8)), archived(at(12, 30), None)),
    ]);
    let window = window(&archive, &backups, &TimelineHistory::first(), &times);
    assert_eq!(window.timeline, tl(1));
    assert_eq!(window.ranges.len(), 1);
    assert_eq!(ids(&window.ranges[0]), ["a", "b"]);
    assert_eq!(
        window.first(),
        Some(point("0/2000100", Some((at(0, 0), TimeSource::BackupEnd))))
    );
    assert_eq!(
        window.last(),
        Some(point(
            "0/A000000",
            Some((at(13, 4), TimeSource::LastCommit))
        ))
    );
    assert!(window.gaps.is_empty());
    assert!(window.unusable.is_empty());
}

#[test]
fn a_gap_before_the_newest_backup_splits_the_window() {
    // Segments 4 and 5 are lost; only the newest backup restores past them.
    let archive = listing([2, 3, 6, 7, 8, 9], &[]);
    let backups = [
        backup("old", 1, "0/2000028", "0/2000100", at(0, 0)),
        backup("new", 1, "0/7000028", "0/7000100", at(12, 0)),
    ];
    let times = SegmentTimes::from([(WalFile::Segment(seg(1, 3)), archived(at(3, 0), None))]);
    let window = window(&archive, &backups, &TimelineHistory::first(), &times);
    assert_eq!(
        window.gaps,
        [Gap {
            first: seg(1, 4),
            last: seg(1, 5),
            lsns: lsn("0/4000000")..lsn("0/6000000")
        }]
    );
    assert_eq!(window.ranges.len(), 2);
    let (before, after) = (&window.ranges[0], &window.ranges[1]);
    assert_eq!(ids(before), ["old"]);
    assert_eq!(
        before.to,
        point("0/4000000", Some((at(3, 0), TimeSource::Archived)))
    );
    assert_eq!(ids(after), ["new"]);
    assert_eq!(after.from.lsn, lsn("0/7000100"));
    assert_eq!(window.last().unwrap().lsn, lsn("0/A000000"));
}

#[test]
fn a_gap_after_every_backup_ends_the_window_but_is_reported() {
    let archive = listing([2, 3, 4, 7, 8], &[]);
    let backups = [backup("a", 1, "0/2000028", "0/2000100", at(0, 0))];
    let window = window(
        &archive,
        &backups,
        &TimelineHistory::first(),
        &SegmentTimes::new(),
    );
    assert_eq!(window.last(), Some(point("0/5000000", None)));
    assert_eq!(window.gaps.len(), 1);
    assert_eq!(
        (window.gaps[0].first, window.gaps[0].last),
        (seg(1, 5), seg(1, 6))
    );
}

#[test]
fn a_partial_at_the_end_extends_the_window_as_far_as_it_is_known_to_go() {
    let partial = WalFile::Partial(seg(1, 5));
    let archive = listing(2..=4, &[partial]);
    let backups = [backup("a", 1, "0/2000028", "0/2000100", at(0, 0))];
    let history = TimelineHistory::first();
    let known = SegmentMeta {
        archived_at: at(9, 1),
        last_commit: Some(at(9, 0)),
        written_to: Some(lsn("0/5123456")),
    };
    let times = SegmentTimes::from([(partial, known)]);
    let window = super::window(&archive, &backups, &history, &times);
    assert_eq!(
        window.last(),
        Some(point("0/5123456", Some((at(9, 0), TimeSource::LastCommit))))
    );
    assert!(window.gaps.is_empty(), "a trailing partial is not a gap");

    // Without its extent, only the complete segments count.
    let times = SegmentTimes::from([(WalFile::Segment(seg(1, 4)), archived(at(8, 0), None))]);
    let window = super::window(&archive, &backups, &history, &times);
    assert_eq!(
        window.last(),
        Some(point("0/5000000", Some((at(8, 0), TimeSource::Archived))))
    );
}

#[test]
fn a_partial_mid_range_is_a_gap() {
    let archive = listing([2, 4], &[WalFile::Partial(seg(1, 3))]);
    let window = window(
        &archive,
        &[],
        &TimelineHistory::first(),
        &SegmentTimes::new(),
    );
    assert_eq!(window.gaps.len(), 1);
    assert_eq!(window.gaps[0].first, seg(1, 3));
    assert_eq!((window.first(), window.last()), (None, None));
}

#[test]
fn follows_timelines_one_two_three() {
    let history = TimelineHistory::parse(tl(3), "1\t0/3000100\tx\n2\t0/5000000\ty\n").unwrap();
    let others = [
        WalFile::History(tl(2)),
        WalFile::History(tl(3)),
        WalFile::Segment(seg(2, 3)),
        WalFile::Segment(seg(2, 4)),
        WalFile::Segment(seg(3, 5)),
        WalFile::Segment(seg(3, 6)),
    ];
    // Timeline 1's segments 3 and 4 were written after the switch and are not on the line.
    let archive = listing(1..=4, &others);
    let backups = [
        backup("on-1", 1, "0/1000028", "0/1000100", at(0, 0)),
        backup("on-3", 3, "0/6000028", "0/6000100", at(6, 0)),
        backup("late-on-1", 1, "0/3000028", "0/4000000", at(4, 0)),
    ];
    let window = window(&archive, &backups, &history, &SegmentTimes::new());
    assert_eq!(window.timeline, tl(3));
    assert!(window.gaps.is_empty());
    assert_eq!(window.ranges.len(), 1);
    assert_eq!(ids(&window.ranges[0]), ["on-1", "on-3"]);
    assert_eq!(window.last().unwrap().lsn, lsn("0/7000000"));
    assert_eq!(window.unusable.len(), 1);
    assert_eq!(window.unusable[0].id, "late-on-1");
    assert!(matches!(
        window.unusable[0].reason,
        Unusable::Plan(PlanError::NotOnTimeline { .. })
    ));
}

#[test]
fn a_gap_across_a_timeline_switch_names_both_ends() {
    let history = TimelineHistory::parse(tl(2), "1\t0/3000100\tx\n").unwrap();
    let archive = listing([1], &[WalFile::History(tl(2)), WalFile::Segment(seg(2, 5))]);
    let window = window(&archive, &[], &history, &SegmentTimes::new());
    assert_eq!(
        window.gaps,
        [Gap {
            first: seg(1, 2),
            last: seg(2, 4),
            lsns: lsn("0/2000000")..lsn("0/5000000")
        }]
    );
}

#[test]
fn backups_the_archive_cannot_complete_are_listed_as_unusable() {
    let partial = WalFile::Partial(seg(1, 6));
    let archive = listing([3, 4, 5], &[partial]);
    let backups = [
        // Its first segment was pruned.
        backup("pruned", 1, "0/2000028", "0/3000100", at(0, 0)),
        // It becomes consistent inside the partial, which is not known to reach that far.
        backup("too-new", 1, "0/5000028", "0/6000100", at(6, 0)),
        backup("good", 1, "0/3000028", "0/3000100", at(3, 0)),
    ];
    let window = window(
        &archive,
        &backups,
        &TimelineHistory::first(),
        &SegmentTimes::new(),
    );
    assert_eq!(window.ranges.len(), 1);
    assert_eq!(ids(&window.ranges[0]), ["good"]);
    let reasons: Vec<(&str, &Unusable)> = window
        .unusable
        .iter()
        .map(|u| (u.id.as_str(), &u.reason))
        .collect();
    assert!(matches!(
        reasons[0],
        ("pruned", Unusable::Plan(PlanError::MissingSegment(_)))
    ));
    assert_eq!(
        reasons[1],
        ("too-new", &Unusable::ConsistentOnlyInPartial(seg(1, 6)))
    );

    // Once the partial is known to hold the consistent point, that backup counts.
    let times = SegmentTimes::from([(
        partial,
        SegmentMeta {
            archived_at: at(6, 1),
            last_commit: None,
            written_to: Some(lsn("0/6000200")),
        },
    )]);
    let window = super::window(&archive, &backups, &TimelineHistory::first(), &times);
    assert_eq!(ids(&window.ranges[0]), ["good", "too-new"]);
    assert_eq!(
        window.last(),
        Some(point("0/6000200", Some((at(6, 1), TimeSource::Archived))))
    );
}
