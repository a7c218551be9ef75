use super::*;

const MIB: u64 = 1024 * 1024;

fn tl(id: u32) -> Timeline {
    Timeline::new(id).unwrap()
}

fn size(mib: u64) -> SegmentSize {
    SegmentSize::new(mib * MIB).unwrap()
}

fn lsn(s: &str) -> Lsn {
    s.parse().unwrap()
}

#[test]
fn lsns_parse_and_print_like_postgresql() {
    for (text, value, printed) in [
        ("0/3000028", 0x300_0028, "0/3000028"),
        ("16/B374D848", 0x16_B374_D848, "16/B374D848"),
        ("0/0", 0, "0/0"),
        ("FFFFFFFF/FFFFFFFF", u64::MAX, "FFFFFFFF/FFFFFFFF"),
        // PostgreSQL 18 pads the low half; older versions and lower case also parse.
        ("0/03000028", 0x300_0028, "0/3000028"),
        ("a/b374d848", 0xA_B374_D848, "A/B374D848"),
    ] {
        assert_eq!(lsn(text), Lsn(value), "{text}");
        assert_eq!(Lsn(value).to_string(), printed, "{text}");
    }
}

#[test]
fn malformed_lsns_are_refused() {
    for text in [
        "",
        "0",
        "/1",
        "1/",
        "0/123456789",
        "+1/0",
        "0/-1",
        "0x1/0",
        "1/2/3",
        " 0/1",
        "G/0",
    ] {
        assert_eq!(
            text.parse::<Lsn>(),
            Err(LsnError(text.to_owned())),
            "{text:?}"
        );
    }
    assert!(LsnError("x".into()).to_string().contains("like 0/3000028"));
}

#[test]
fn timeline_zero_does_not_exist() {
    assert_eq!(Timeline::new(0), Err(TimelineZero));
    assert_eq!(Timeline::new(7).unwrap().get(), 7);
    assert_eq!(Timeline::FIRST, tl(1));
}

#[test]
fn segment_sizes_are_powers_of_two_from_1_mib_to_1_gib() {
    for mib in [1, 2, 16, 64, 512, 1024] {
        assert_eq!(SegmentSize::new(mib * MIB).unwrap().bytes(), mib * MIB);
    }
    for bytes in [0, 512 * 1024, 3 * MIB, 2048 * MIB, 16 * MIB + 1] {
        assert_eq!(SegmentSize::new(bytes), Err(SegmentSizeError(bytes)));
    }
    assert_eq!(SegmentSize::default(), size(16));
    assert_eq!(size(16).to_string(), "16 MiB");
}

#[test]
fn segment_names_depend_on_the_segment_size() {
    // The same position is named differently: the middle field counts 4 GiB "logs".
    for (mib, number, name) in [
        (16, 3, "000000010000000000000003"),
        (16, 0xFF, "0000000100000000000000FF"),
        (16, 0x100, "000000010000000100000000"),
        (16, 0x12_3456, "000000010000123400000056"),
        (1, 0x1000, "000000010000000100000000"),
        (1, 0xFFF, "000000010000000000000FFF"),
        (1024, 5, "000000010000000100000001"),
        (64, 0x40, "000000010000000100000000"),
    ] {
        let segment = WalSegment {
            timeline: tl(1),
            number,
        };
        assert_eq!(segment.file_name(size(mib)), name, "{mib} MiB #{number:X}");
        assert_eq!(
            WalFile::parse(name, size(mib)),
            Ok(WalFile::Segment(segment))
        );
    }
}

#[test]
fn partial_and_history_names_round_trip() {
    let s = size(16);
    let segment = WalSegment {
        timeline: tl(0x1A),
        number: 0x205,
    };
    for (file, name) in [
        (WalFile::Segment(segment), "0000001A0000000200000005"),
        (
            WalFile::Partial(segment),
            "0000001A0000000200000005.partial",
        ),
        (WalFile::History(tl(2)), "00000002.history"),
        (WalFile::History(tl(0xAB)), "000000AB.history"),
    ] {
        assert_eq!(file.file_name(s), name);
        assert_eq!(WalFile::parse(name, s), Ok(file));
    }
}

#[test]
fn malformed_names_are_refused_with_the_reason() {
    let s = size(16);
    let malformed = |name: &str| WalNameError::Malformed {
        name: name.to_owned(),
    };
    for name in [
        "",
        "00000001000000000000003",
        "0000000100000000000000030",
        "00000001000000000000000g",
        "00000001000000000000000a",
        "000000010000000000000003.gz",
        "000000010000000000000003.partial.partial",
        "000000010000000000000003.00000028.backup",
        "2.history",
        "0000000a.history",
        "00000002.history.partial",
        "+0000001000000000000000F",
        "00000001000000000000000Ä",
        "manifest.json",
    ] {
        assert_eq!(WalFile::parse(name, s), Err(malformed(name)), "{name:?}");
    }
    for name in [
        "000000000000000000000003",
        "00000000.history",
        "000000000000000000000003.partial",
    ] {
        let error = WalFile::parse(name, s).unwrap_err();
        assert_eq!(
            error,
            WalNameError::TimelineZero {
                name: name.to_owned()
            }
        );
    }
    let error = WalFile::parse("000000010000000000000100", s).unwrap_err();
    assert!(matches!(
        error,
        WalNameError::SegmentOutOfRange {
            field: 0x100,
            per_log: 0x100,
            ..
        }
    ));
    assert!(
        error.to_string().contains("segment size is not 16 MiB"),
        "{error}"
    );
    // Fine with 1 MiB segments, which fit 4096 to a log.
    assert!(WalFile::parse("000000010000000000000100", size(1)).is_ok());
}

#[test]
fn segments_order_like_their_names() {
    let s = size(16);
    let names = [
        "000000020000000000000001",
        "000000010000000100000000",
        "0000000100000000000000FF",
        "000000010000000000000002",
    ];
    let mut segments: Vec<WalSegment> = names
        .iter()
        .map(|name| match WalFile::parse(name, s).unwrap() {
            WalFile::Segment(segment) => segment,
            other => panic!("{other:?}"),
        })
        .collect();
    segments.sort();
    let mut sorted_names = names.map(str::to_owned);
    sorted_names.sort();
    assert_eq!(
        segments.iter().map(|g| g.file_name(s)).collect::<Vec<_>>(),
        sorted_names
    );
}

#[test]
fn the_segment_holding_an_lsn_and_its_range() {
    for (mib, at, name, start, end) in [
        (
            16,
            "0/3000028",
            "000000010000000000000003",
            "0/3000000",
            "0/4000000",
        ),
        (
            16,
            "0/3FFFFFF",
            "000000010000000000000003",
            "0/3000000",
            "0/4000000",
        ),
        (
            16,
            "0/4000000",
            "000000010000000000000004",
            "0/4000000",
            "0/5000000",
        ),
        (
            16,
            "1/FF000000",
            "0000000100000001000000FF",
            "1/FF000000",
            "2/0",
        ),
        (
            1,
            "0/3000028",
            "000000010000000000000030",
            "0/3000000",
            "0/3100000",
        ),
        (
            1024,
            "5/60000000",
            "000000010000000500000001",
            "5/40000000",
            "5/80000000",
        ),
    ] {
        let segment = WalSegment::containing(tl(1), lsn(at), size(mib));
        assert_eq!(segment.file_name(size(mib)), name, "{at}");
        assert_eq!(segment.lsn_range(size(mib)), lsn(start)..lsn(end), "{at}");
    }
}

#[test]
fn next_segment_crosses_logs_and_stops_at_the_end_of_the_lsn_space() {
    let s = size(16);
    let last_of_log = WalSegment {
        timeline: tl(3),
        number: 0xFF,
    };
    let next = last_of_log.next(s).unwrap();
    assert_eq!(next.file_name(s), "000000030000000100000000");
    let last = WalSegment::containing(tl(3), Lsn(u64::MAX), s);
    assert_eq!(last.file_name(s), "00000003FFFFFFFF000000FF");
    assert_eq!(last.next(s), None);
    assert_eq!(last.lsn_range(s).end, Lsn(u64::MAX));
}
