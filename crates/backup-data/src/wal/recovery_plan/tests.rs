use super::*;
use crate::wal::segment::SegmentSize;

mod timelines;

fn tl(id: u32) -> Timeline {
    Timeline::new(id).unwrap()
}

fn lsn(s: &str) -> Lsn {
    s.parse().unwrap()
}

/// A 16 MiB archive from short names: `1:3` is timeline 1's segment 3, `1:3p` its
/// `.partial`, `h2` timeline 2's history file.
fn listing(short: &[&str]) -> Archive {
    let size = SegmentSize::DEFAULT;
    let names = short.iter().map(|s| file(s).file_name(size));
    Archive::from_names(names, size)
}

fn file(short: &str) -> WalFile {
    if let Some(id) = short.strip_prefix('h') {
        return WalFile::History(tl(id.parse().unwrap()));
    }
    let (timeline, number) = short.split_once(':').unwrap();
    let (number, partial) = match number.strip_suffix('p') {
        Some(number) => (number, true),
        None => (number, false),
    };
    let segment = WalSegment {
        timeline: tl(timeline.parse().unwrap()),
        number: number.parse().unwrap(),
    };
    if partial {
        WalFile::Partial(segment)
    } else {
        WalFile::Segment(segment)
    }
}

fn files(short: &[&str]) -> Vec<WalFile> {
    short.iter().map(|s| file(s)).collect()
}

fn base(timeline: u32, start: &str, end: &str) -> BaseBackupPosition {
    BaseBackupPosition {
        timeline: tl(timeline),
        start: lsn(start),
        end: lsn(end),
    }
}

/// 1 → 2 in the middle of segment 3, 2 → 3 at the very start of segment 5.
fn three() -> TimelineHistory {
    TimelineHistory::parse(tl(3), "1\t0/3000100\tpromoted\n2\t0/5000000\tpromoted\n").unwrap()
}

fn two() -> TimelineHistory {
    TimelineHistory::parse(tl(2), "1\t0/3000100\tpromoted\n").unwrap()
}

fn missing(result: Result<RecoveryPlan, PlanError>) -> MissingSegment {
    match result {
        Err(PlanError::MissingSegment(missing)) => missing,
        other => panic!("expected a missing segment, got {other:?}"),
    }
}

#[test]
fn one_timeline_to_the_end_of_the_archive() {
    let archive = listing(&["1:1", "1:2", "1:3", "1:4", "1:5"]);
    let plan = plan(
        &archive,
        &base(1, "0/2000028", "0/3000100"),
        &TimelineHistory::first(),
        None,
    )
    .unwrap();
    assert_eq!(plan.timeline, tl(1));
    assert_eq!(plan.files, files(&["1:2", "1:3", "1:4", "1:5"]));
    assert_eq!(plan.restorable_to, lsn("0/6000000"));
    assert_eq!(plan.partial_tail, None);
    assert_eq!(
        plan.file_names(&archive),
        [
            "000000010000000000000002",
            "000000010000000000000003",
            "000000010000000000000004",
            "000000010000000000000005",
        ]
    );
}

#[test]
fn a_target_lsn_stops_at_its_segment() {
    let archive = listing(&["1:2", "1:3", "1:4", "1:5"]);
    let base = base(1, "0/2000028", "0/3000100");
    let plan = plan(
        &archive,
        &base,
        &TimelineHistory::first(),
        Some(lsn("0/4800000")),
    )
    .unwrap();
    assert_eq!(plan.files, files(&["1:2", "1:3", "1:4"]));
    assert_eq!(plan.restorable_to, lsn("0/5000000"));
    // The consistent point itself is a valid target; anything before it is not.
    assert!(super::plan(&archive, &base, &TimelineHistory::first(), Some(base.end)).is_ok());
    assert_eq!(
        super::plan(
            &archive,
            &base,
            &TimelineHistory::first(),
            Some(lsn("0/30000FF"))
        ),
        Err(PlanError::TargetBeforeConsistent {
            target: lsn("0/30000FF"),
            consistent: base.end
        })
    );
}

#[test]
fn a_missing_segment_mid_range_is_named() {
    let archive = listing(&["1:2", "1:3", "1:5", "1:6"]);
    let base = base(1, "0/2000028", "0/3000100");
    let gap = missing(plan(&archive, &base, &TimelineHistory::first(), None));
    assert_eq!(
        gap.segment,
        WalSegment {
            timeline: tl(1),
            number: 4
        }
    );
    assert_eq!(gap.name, "000000010000000000000004");
    assert_eq!(gap.range, lsn("0/4000000")..lsn("0/5000000"));
    assert_eq!(gap.restorable_to, lsn("0/4000000"));
    assert_eq!(
        PlanError::MissingSegment(gap).to_string(),
        "WAL segment 000000010000000000000004 (timeline 1, 0/4000000 to 0/5000000) is missing \
         from the archive, so recovery from this base backup cannot go past 0/4000000; choose \
         an earlier target or a base backup taken after the gap"
    );
    // A target before the gap needs nothing past it.
    let plan = plan(
        &archive,
        &base,
        &TimelineHistory::first(),
        Some(lsn("0/3FFFFFF")),
    )
    .unwrap();
    assert_eq!(plan.files, files(&["1:2", "1:3"]));
}

#[test]
fn missing_segments_at_either_end_of_the_backup() {
    let first = TimelineHistory::first();
    // The archive starts after the backup's start.
    let gap = missing(plan(
        &listing(&["1:3", "1:4"]),
        &base(1, "0/2000028", "0/3000100"),
        &first,
        None,
    ));
    assert_eq!(
        (gap.name.as_str(), gap.restorable_to),
        ("000000010000000000000002", lsn("0/2000000"))
    );
    // The archive stops before the backup is consistent.
    let gap = missing(plan(
        &listing(&["1:2", "1:3"]),
        &base(1, "0/2000028", "0/4000100"),
        &first,
        None,
    ));
    assert_eq!(gap.name, "000000010000000000000004");
    // The target lies beyond the archive.
    let gap = missing(plan(
        &listing(&["1:2"]),
        &base(1, "0/2000028", "0/2000100"),
        &first,
        Some(lsn("0/9000000")),
    ));
    assert_eq!(gap.name, "000000010000000000000003");
}

#[test]
fn a_partial_stands_in_for_the_last_segment_only() {
    let first = TimelineHistory::first();
    let base = base(1, "0/2000028", "0/3000100");
    let archive = listing(&["1:2", "1:3", "1:4", "1:5p"]);
    let plan = plan(&archive, &base, &first, None).unwrap();
    assert_eq!(plan.files, files(&["1:2", "1:3", "1:4", "1:5p"]));
    assert_eq!(
        plan.partial_tail,
        Some(WalSegment {
            timeline: tl(1),
            number: 5
        })
    );
    assert_eq!(plan.restorable_to, lsn("0/5000000"));
    assert_eq!(
        plan.file_names(&archive)[3],
        "000000010000000000000005.partial"
    );

    // A target inside the partial: the partial is the last file.
    let to_target = super::plan(&archive, &base, &first, Some(lsn("0/5000200"))).unwrap();
    assert_eq!(to_target.partial_tail, plan.partial_tail);
    // A target past it: the partial cannot stand in for a segment recovery reads through.
    let gap = missing(super::plan(&archive, &base, &first, Some(lsn("0/6000000"))));
    assert_eq!(gap.name, "000000010000000000000005");

    // Nor mid-range.
    let gap = missing(super::plan(
        &listing(&["1:2", "1:3p", "1:4"]),
        &base,
        &first,
        None,
    ));
    assert_eq!(gap.name, "000000010000000000000003");
}

#[test]
fn a_complete_segment_wins_over_its_partial() {
    let archive = listing(&["1:2", "1:3", "1:3p"]);
    let plan = plan(
        &archive,
        &base(1, "0/2000028", "0/2000100"),
        &TimelineHistory::first(),
        None,
    )
    .unwrap();
    assert_eq!(plan.files, files(&["1:2", "1:3"]));
    assert_eq!(plan.partial_tail, None);
}

#[test]
fn a_backup_consistent_only_inside_a_partial_says_so() {
    let archive = listing(&["1:2", "1:3p"]);
    let plan = plan(
        &archive,
        &base(1, "0/2000028", "0/3000100"),
        &TimelineHistory::first(),
        None,
    )
    .unwrap();
    assert_eq!(plan.files, files(&["1:2", "1:3p"]));
    assert_eq!(plan.restorable_to, lsn("0/3000000"));
    assert!(plan.partial_tail.is_some());
}

#[test]
fn other_segment_sizes_plan_the_same_way() {
    let size = SegmentSize::new(1024 * 1024).unwrap();
    let names = [
        "000000010000000000000030",
        "000000010000000000000031",
        "000000010000000000000032",
    ];
    let archive = Archive::from_names(names, size);
    let plan = plan(
        &archive,
        &base(1, "0/3000028", "0/30FFFFF"),
        &TimelineHistory::first(),
        None,
    )
    .unwrap();
    assert_eq!(plan.file_names(&archive), names);
    assert_eq!(plan.restorable_to, lsn("0/3300000"));
}
