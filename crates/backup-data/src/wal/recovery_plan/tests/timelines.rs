//! Recovery along timelines other than the first: switches, history files, `latest`.

use super::*;

#[test]
fn follows_timeline_switches_one_two_three() {
    // Timeline 1 kept writing segment 4 after the switch (an old primary not yet fenced):
    // recovery to timeline 3 never reads it. Timeline 2's partial of 5 is not read either.
    let archive = listing(&[
        "h2", "h3", "1:1", "1:2", "1:3", "1:4", "2:3", "2:4", "2:5p", "3:5", "3:6", "3:7",
    ]);
    let plan = plan(&archive, &base(1, "0/1000028", "0/2000100"), &three(), None).unwrap();
    assert_eq!(plan.timeline, tl(3));
    assert_eq!(
        plan.files,
        files(&["h2", "h3", "1:1", "1:2", "2:3", "2:4", "3:5", "3:6", "3:7"])
    );
    assert_eq!(plan.restorable_to, lsn("0/8000000"));
}

#[test]
fn the_segment_holding_a_switch_point_comes_from_the_new_timeline() {
    // The backup starts and ends on timeline 1 inside segment 3, before the switch at
    // 0/3000100; timeline 2's copy of segment 3 holds that WAL too and is the one read.
    let archive = listing(&["h2", "2:3", "2:4"]);
    let plan = plan(&archive, &base(1, "0/3000028", "0/3000090"), &two(), None).unwrap();
    assert_eq!(plan.files, files(&["h2", "2:3", "2:4"]));
}

#[test]
fn a_missing_segment_on_a_later_timeline_names_that_timeline() {
    let archive = listing(&["h2", "h3", "1:1", "1:2", "2:3", "3:5", "3:6"]);
    let gap = missing(plan(
        &archive,
        &base(1, "0/1000028", "0/2000100"),
        &three(),
        None,
    ));
    assert_eq!(gap.name, "000000020000000000000004");
    assert_eq!(gap.segment.timeline, tl(2));
    assert_eq!(gap.restorable_to, lsn("0/4000000"));
}

#[test]
fn history_files_the_target_needs() {
    let base = base(1, "0/1000028", "0/2000100");
    let segments = ["1:1", "1:2", "2:3", "2:4", "3:5"];
    // The target's own history file is required.
    let without_three = listing(&[&["h2"][..], &segments].concat());
    assert_eq!(
        plan(&without_three, &base, &three(), None),
        Err(PlanError::MissingHistory {
            timeline: tl(3),
            name: "00000003.history".into()
        })
    );
    // An ancestor's is fetched when present, but not required.
    let without_two = listing(&[&["h3"][..], &segments].concat());
    let plan = plan(&without_two, &base, &three(), None).unwrap();
    assert_eq!(plan.files[0], file("h3"));
    assert!(!plan.files.contains(&file("h2")));
}

#[test]
fn a_timeline_that_left_before_the_backup_ended_is_refused() {
    let archive = listing(&["h2", "1:3", "2:3", "2:4"]);
    // Timeline 2 began at 0/3000100, but this backup became consistent on 1 after it.
    let late = base(1, "0/3000028", "0/3000200");
    assert_eq!(
        plan(&archive, &late, &two(), None),
        Err(PlanError::NotOnTimeline {
            base: tl(1),
            end: lsn("0/3000200"),
            target: tl(2)
        })
    );
    // A backup on timeline 2 cannot recover along timeline 1.
    let on_two = base(2, "0/4000028", "0/4000200");
    assert!(matches!(
        plan(&archive, &on_two, &TimelineHistory::first(), None),
        Err(PlanError::NotOnTimeline { .. })
    ));
    assert_eq!(
        plan(&archive, &base(1, "0/3000000", "0/2000000"), &two(), None),
        Err(PlanError::InvalidBaseBackup {
            start: lsn("0/3000000"),
            end: lsn("0/2000000")
        })
    );
}

#[test]
fn latest_is_the_highest_timeline_descending_from_the_backup() {
    // Timeline 4 branched off timeline 1 at 0/1800000 (a recovery to an earlier point).
    let four = TimelineHistory::parse(tl(4), "1\t0/1800000\tpitr\n").unwrap();
    let histories = [two(), three(), four];
    for (base, latest) in [
        (base(1, "0/1000028", "0/1000100"), 4),
        (base(1, "0/1000028", "0/1800000"), 4),
        (base(1, "0/1000028", "0/2000100"), 3),
        (base(2, "0/4000028", "0/4000100"), 3),
        (base(3, "0/6000028", "0/6000100"), 3),
        // Ends on timeline 1 after every branch: only timeline 1 itself.
        (base(1, "0/3000028", "0/3000200"), 1),
    ] {
        let found = latest_timeline(&base, &histories).unwrap();
        assert_eq!(found.timeline(), tl(latest), "{base:?}");
    }
    assert_eq!(
        latest_timeline(&base(5, "0/9000000", "0/9000100"), &histories),
        Err(PlanError::NoTimeline { base: tl(5) })
    );
}
