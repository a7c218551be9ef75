use super::*;

fn tl(id: u32) -> Timeline {
    Timeline::new(id).unwrap()
}

fn lsn(s: &str) -> Lsn {
    s.parse().unwrap()
}

/// Timeline 3 after two promotions: 1 → 2 at 0/3000100, 2 → 3 at 0/5000000.
const THREE: &str = "1\t0/3000100\tno recovery target specified\n\
                     \n\
                     2\t0/5000000\tat restore point \"before_migration\"\n";

#[test]
fn parses_the_ancestry_oldest_first() {
    let history = TimelineHistory::parse(tl(3), THREE).unwrap();
    assert_eq!(history.timeline(), tl(3));
    assert_eq!(
        history.switches(),
        [
            Switch {
                parent: tl(1),
                at: lsn("0/3000100")
            },
            Switch {
                parent: tl(2),
                at: lsn("0/5000000")
            },
        ]
    );
    assert_eq!(
        history.spans(),
        [
            TimelineSpan {
                timeline: tl(1),
                begin: lsn("0/0"),
                end: Some(lsn("0/3000100"))
            },
            TimelineSpan {
                timeline: tl(2),
                begin: lsn("0/3000100"),
                end: Some(lsn("0/5000000"))
            },
            TimelineSpan {
                timeline: tl(3),
                begin: lsn("0/5000000"),
                end: None
            },
        ]
    );
    assert_eq!(history.span(tl(2)).unwrap().end, Some(lsn("0/5000000")));
    assert_eq!(history.span(tl(4)), None);
}

#[test]
fn comments_blank_lines_spaces_and_missing_reasons_are_accepted() {
    let text = "# written by hand\n\n   \n1 0/3000100\n  # indented comment\n2\t0/05000000\r\n";
    let history = TimelineHistory::parse(tl(3), text).unwrap();
    assert_eq!(history, TimelineHistory::parse(tl(3), THREE).unwrap());
}

#[test]
fn ancestors_may_skip_abandoned_timelines() {
    // Timeline 2 was a dead end; 4 descends from 3, which descends from 1.
    let text = "1\t0/3000100\tx\n3\t0/6000000\ty\n";
    let history = TimelineHistory::parse(tl(4), text).unwrap();
    assert_eq!(history.span(tl(2)), None);
    assert_eq!(history.timeline_at(lsn("0/4000000")), tl(3));
}

#[test]
fn timeline_one_has_no_ancestors() {
    let first = TimelineHistory::first();
    assert_eq!(first.timeline(), tl(1));
    assert!(first.switches().is_empty());
    assert_eq!(first.timeline_at(lsn("FF/0")), tl(1));
    assert_eq!(TimelineHistory::parse(tl(1), "# nothing\n").unwrap(), first);
}

#[test]
fn which_timeline_holds_an_lsn() {
    let history = TimelineHistory::parse(tl(3), THREE).unwrap();
    for (at, timeline) in [
        ("0/0", 1),
        ("0/30000FF", 1),
        // The switch point itself is the child's first byte.
        ("0/3000100", 2),
        ("0/4FFFFFF", 2),
        ("0/5000000", 3),
        ("7/0", 3),
    ] {
        assert_eq!(history.timeline_at(lsn(at)), tl(timeline), "{at}");
    }
}

#[test]
fn the_segment_holding_a_switch_point_is_read_from_the_child() {
    let history = TimelineHistory::parse(tl(3), THREE).unwrap();
    let size = SegmentSize::DEFAULT;
    // 1 → 2 mid-segment 3; 2 → 3 exactly at the start of segment 5.
    for (number, timeline) in [(2, 1), (3, 2), (4, 2), (5, 3), (6, 3)] {
        assert_eq!(
            history.timeline_for_segment(number, size),
            tl(timeline),
            "#{number}"
        );
    }
}

#[test]
fn equal_switch_points_skip_an_empty_timeline() {
    let history = TimelineHistory::parse(tl(3), "1\t0/3000100\n2\t0/3000100\n").unwrap();
    assert_eq!(history.timeline_at(lsn("0/3000100")), tl(3));
    assert_eq!(history.timeline_for_segment(3, SegmentSize::DEFAULT), tl(3));
    assert_eq!(history.timeline_for_segment(2, SegmentSize::DEFAULT), tl(1));
}

#[test]
fn malformed_lines_are_refused_with_their_number() {
    for (text, line, expected) in [
        (
            "1\n",
            1,
            "a switch point LSN such as 0/3000028 after the timeline",
        ),
        ("# c\nx\t0/1\n", 2, "a decimal parent timeline ID"),
        ("0\t0/1\n", 1, "a parent timeline above 0"),
        (
            "1\t0/XYZ\treason\n",
            1,
            "a switch point LSN such as 0/3000028 after the timeline",
        ),
        ("-1\t0/1\n", 1, "a decimal parent timeline ID"),
    ] {
        match TimelineHistory::parse(tl(5), text) {
            Err(HistoryError::Syntax {
                line: l,
                expected: e,
                timeline,
                ..
            }) => {
                assert_eq!((l, e, timeline), (line, expected, tl(5)), "{text:?}");
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
}

#[test]
fn inconsistent_ancestries_are_refused() {
    for (text, line, problem) in [
        (
            "1\t0/1\n5\t0/2\n",
            2,
            "parent timeline 5 is not older than timeline 5",
        ),
        (
            "2\t0/1\n1\t0/2\n",
            2,
            "parent timeline 1 does not follow timeline 2",
        ),
        (
            "1\t0/1\n1\t0/2\n",
            2,
            "parent timeline 1 does not follow timeline 1",
        ),
        (
            "1\t0/5000000\n2\t0/3000000\n",
            2,
            "switch point 0/3000000 comes before the previous one, 0/5000000",
        ),
    ] {
        let error = TimelineHistory::parse(tl(5), text).unwrap_err();
        assert_eq!(
            error,
            HistoryError::Inconsistent {
                timeline: tl(5),
                line,
                problem: problem.to_owned()
            },
            "{text:?}"
        );
        assert!(error.to_string().contains("fetch it again"));
    }
    // Timeline 1 cannot have a parent.
    assert!(TimelineHistory::parse(tl(1), "1\t0/1\n").is_err());
}
