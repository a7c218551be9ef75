use super::*;
use crate::wal::{BaseBackupPosition, SegmentSize, StoredWal, Timeline, WalListing, WalSegment};
use chrono::TimeZone;

const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 6, 7, minute, 0).unwrap()
}

/// Segments 2..=6 of timeline 1 archived one a minute from 07:02, minus `missing`.
fn listing(missing: &[u64]) -> WalListing {
    let size = SegmentSize::DEFAULT;
    let names: Vec<String> = (2..=6u64)
        .filter(|n| !missing.contains(n))
        .map(|n| {
            StoredWal {
                file: WalFile::Segment(WalSegment {
                    timeline: Timeline::FIRST,
                    number: n,
                }),
                archived_at: at(n as u32),
                sha256: SHA.into(),
                written_to: None,
            }
            .name(size)
        })
        .collect();
    WalListing::from_names(names, size)
}

fn base(id: &str, segment: u64, ended_minute: u32) -> BaseBackup {
    let start = Lsn(segment * SegmentSize::DEFAULT.bytes() + 0x28);
    BaseBackup {
        id: id.into(),
        position: BaseBackupPosition {
            timeline: Timeline::FIRST,
            start,
            end: Lsn(start.0 + 0x100),
        },
        ended_at: at(ended_minute),
    }
}

#[test]
fn the_newest_base_backup_before_the_target_is_chosen() {
    let listing = listing(&[]);
    let backups = [base("a", 2, 2), base("b", 4, 4)];
    let choice = choose(
        &backups,
        &listing.archive,
        &[],
        &listing.times(),
        Some(at(3)),
    )
    .unwrap();
    assert_eq!(choice.base.id, "a");
    let choice = choose(&backups, &listing.archive, &[], &listing.times(), None).unwrap();
    assert_eq!(choice.base.id, "b");
    assert_eq!(choice.plan.files.len(), 3);
}

#[test]
fn a_target_outside_the_window_is_refused_stating_the_window() {
    let listing = listing(&[]);
    let backups = [base("a", 2, 2)];
    for target in [at(1), at(7)] {
        let error = choose(
            &backups,
            &listing.archive,
            &[],
            &listing.times(),
            Some(target),
        )
        .unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, ChooseError::OutsideWindow { .. }), "{text}");
        assert!(text.contains("from 2026-12-06T07:02:00Z"), "{text}");
        assert!(text.contains("to 2026-12-06T07:06:00Z"), "{text}");
    }
}

#[test]
fn a_missing_segment_is_named_unless_the_target_is_before_it() {
    let listing = listing(&[5]);
    let backups = [base("a", 2, 2)];
    let error = choose(&backups, &listing.archive, &[], &listing.times(), None).unwrap_err();
    assert!(
        error.to_string().contains("000000010000000000000005"),
        "{error}"
    );
    let error = choose(
        &backups,
        &listing.archive,
        &[],
        &listing.times(),
        Some(at(5)),
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("000000010000000000000005"),
        "{error}"
    );
    let before_gap = choose(
        &backups,
        &listing.archive,
        &[],
        &listing.times(),
        Some(at(4)),
    );
    assert_eq!(before_gap.unwrap().plan.files.len(), 3);
}
