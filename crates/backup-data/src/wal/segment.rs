//! WAL positions and file names: LSNs, timelines, segment sizes and the names PostgreSQL
//! gives segments (`TTTTTTTTLLLLLLLLSSSSSSSS`), their `.partial` forms and history files.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

const MIB: u64 = 1024 * 1024;
const PARTIAL: &str = ".partial";
const HISTORY: &str = ".history";

/// A position in the WAL stream, printed the way PostgreSQL prints it: `0/3000028`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl FromStr for Lsn {
    type Err = LsnError;

    /// Either case and zero padding are accepted: PostgreSQL 18 pads the low half.
    fn from_str(s: &str) -> Result<Self, LsnError> {
        let invalid = || LsnError(s.to_owned());
        let (high, low) = s.split_once('/').ok_or_else(invalid)?;
        let half = |part: &str| {
            let digits =
                (1..=8).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_hexdigit());
            digits.then(|| u64::from_str_radix(part, 16).ok()).flatten()
        };
        match (half(high), half(low)) {
            (Some(high), Some(low)) => Ok(Lsn(high << 32 | low)),
            _ => Err(invalid()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not an LSN: expected two hexadecimal numbers of 1 to 8 digits separated by '/', like 0/3000028"
)]
pub struct LsnError(pub String);

/// A timeline ID; PostgreSQL starts at 1 and never uses 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timeline(u32);

impl Timeline {
    /// The timeline of a freshly initialised cluster; it has no history file.
    pub const FIRST: Timeline = Timeline(1);

    pub fn new(id: u32) -> Result<Self, TimelineZero> {
        if id == 0 {
            Err(TimelineZero)
        } else {
            Ok(Timeline(id))
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// Decimal, as PostgreSQL's messages and `recovery_target_timeline` write it.
impl fmt::Display for Timeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("timeline 0 does not exist: PostgreSQL numbers timelines from 1")]
pub struct TimelineZero;

/// The WAL segment size chosen at initdb; it decides how LSNs map to file names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SegmentSize(u64);

impl SegmentSize {
    pub const DEFAULT: SegmentSize = SegmentSize(16 * MIB);

    /// Any power of two from 1 MiB to 1 GiB, the sizes `initdb --wal-segsize` allows.
    pub fn new(bytes: u64) -> Result<Self, SegmentSizeError> {
        if bytes.is_power_of_two() && (MIB..=1024 * MIB).contains(&bytes) {
            Ok(SegmentSize(bytes))
        } else {
            Err(SegmentSizeError(bytes))
        }
    }

    pub fn bytes(self) -> u64 {
        self.0
    }

    /// Segments per 4 GiB "log", the unit of a file name's middle field.
    fn per_log(self) -> u64 {
        (1 << 32) / self.0
    }
}

impl Default for SegmentSize {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for SegmentSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} MiB", self.0 / MIB)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("WAL segment size {0} bytes is not a power of two between 1 MiB and 1 GiB")]
pub struct SegmentSizeError(pub u64);

/// One segment of one timeline. Ordered like the file names: by timeline, then position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WalSegment {
    pub timeline: Timeline,
    /// Position in the WAL stream: the segment starts at `number * size`.
    pub number: u64,
}

impl WalSegment {
    /// The segment of `timeline` that holds `lsn`.
    pub fn containing(timeline: Timeline, lsn: Lsn, size: SegmentSize) -> Self {
        WalSegment {
            timeline,
            number: lsn.0 / size.0,
        }
    }

    /// The LSNs this segment holds, end exclusive; the very last segment of the 64-bit
    /// space ends at `FFFFFFFF/FFFFFFFF`, one byte short, which no server ever reaches.
    pub fn lsn_range(self, size: SegmentSize) -> Range<Lsn> {
        let start = self.number.saturating_mul(size.0);
        Lsn(start)..Lsn(start.saturating_add(size.0))
    }

    /// The following segment on the same timeline, or `None` at the end of the LSN space.
    pub fn next(self, size: SegmentSize) -> Option<Self> {
        let number = self
            .number
            .checked_add(1)
            .filter(|n| *n <= u64::MAX / size.0)?;
        Some(WalSegment { number, ..self })
    }

    pub fn file_name(self, size: SegmentSize) -> String {
        let per_log = size.per_log();
        format!(
            "{:08X}{:08X}{:08X}",
            self.timeline.0,
            self.number / per_log,
            self.number % per_log
        )
    }
}

/// A file PostgreSQL puts in a WAL archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WalFile {
    Segment(WalSegment),
    /// A segment not yet complete, shipped early to bound the data lost with the primary.
    Partial(WalSegment),
    /// `0000000X.history`: the ancestry of timeline X.
    History(Timeline),
}

impl WalFile {
    /// Parses a bare file name. Hex digits must be upper case, as PostgreSQL writes them:
    /// a lower-case name was made by something else and is refused rather than guessed at.
    pub fn parse(name: &str, size: SegmentSize) -> Result<Self, WalNameError> {
        if let Some(hex) = name.strip_suffix(HISTORY) {
            let id = parse_upper_hex(hex, 8).ok_or_else(|| malformed(name))?;
            let timeline = Timeline::new(id).map_err(|_| timeline_zero(name))?;
            return Ok(WalFile::History(timeline));
        }
        let (hex, partial) = match name.strip_suffix(PARTIAL) {
            Some(hex) => (hex, true),
            None => (name, false),
        };
        if hex.len() != 24 || !hex.is_ascii() {
            return Err(malformed(name));
        }
        let field =
            |i: usize| parse_upper_hex(&hex[i * 8..i * 8 + 8], 8).ok_or_else(|| malformed(name));
        let (timeline, log, seg) = (field(0)?, field(1)?, field(2)?);
        let timeline = Timeline::new(timeline).map_err(|_| timeline_zero(name))?;
        if u64::from(seg) >= size.per_log() {
            return Err(WalNameError::SegmentOutOfRange {
                name: name.to_owned(),
                field: seg,
                per_log: size.per_log(),
                size,
            });
        }
        let segment = WalSegment {
            timeline,
            number: u64::from(log) * size.per_log() + u64::from(seg),
        };
        Ok(if partial {
            WalFile::Partial(segment)
        } else {
            WalFile::Segment(segment)
        })
    }

    pub fn file_name(self, size: SegmentSize) -> String {
        match self {
            WalFile::Segment(segment) => segment.file_name(size),
            WalFile::Partial(segment) => segment.file_name(size) + PARTIAL,
            WalFile::History(timeline) => format!("{:08X}{HISTORY}", timeline.0),
        }
    }
}

fn parse_upper_hex(s: &str, len: usize) -> Option<u32> {
    let upper = s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F'));
    upper.then(|| u32::from_str_radix(s, 16).ok()).flatten()
}

fn malformed(name: &str) -> WalNameError {
    WalNameError::Malformed {
        name: name.to_owned(),
    }
}

fn timeline_zero(name: &str) -> WalNameError {
    WalNameError::TimelineZero {
        name: name.to_owned(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalNameError {
    #[error(
        "{name:?} is not a WAL file name: expected 24 upper-case hex digits (timeline, log, segment), optionally followed by .partial, or 8 followed by .history"
    )]
    Malformed { name: String },

    #[error("{name:?} names timeline 0, which PostgreSQL never uses")]
    TimelineZero { name: String },

    #[error(
        "{name:?} has segment field {field:X}, but with {size} segments a log holds only {per_log:X}: the archive's segment size is not {size}, or the name is corrupt"
    )]
    SegmentOutOfRange {
        name: String,
        field: u32,
        per_log: u64,
        size: SegmentSize,
    },
}

#[cfg(test)]
mod tests;
