//! Timeline history files: which timeline holds which stretch of WAL for a given timeline.
//!
//! A promotion starts a new timeline and writes `0000000X.history`, one line per ancestor:
//! `parentTLI<TAB>switchpoint<TAB>reason`, oldest first, where the switch point is the
//! first LSN that belongs to the child. Lines starting with `#` and blank lines are
//! comments. Timeline 1 has no history file: it has no ancestors.

use super::segment::{Lsn, SegmentSize, Timeline};

/// Where one timeline of an ancestry ended and its child began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch {
    /// The ancestor that held WAL up to, not including, `at`.
    pub parent: Timeline,
    pub at: Lsn,
}

/// The stretch of WAL one timeline of an ancestry holds: `begin..end`, open-ended for the
/// timeline the history describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelineSpan {
    pub timeline: Timeline,
    pub begin: Lsn,
    pub end: Option<Lsn>,
}

/// The ancestry of one timeline, from its history file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineHistory {
    timeline: Timeline,
    switches: Vec<Switch>,
}

impl TimelineHistory {
    /// Timeline 1, which has no history file.
    pub fn first() -> Self {
        TimelineHistory {
            timeline: Timeline::FIRST,
            switches: Vec::new(),
        }
    }

    /// Parses the contents of `timeline`'s history file; the file's name, not its
    /// contents, says which timeline it describes.
    pub fn parse(timeline: Timeline, text: &str) -> Result<Self, HistoryError> {
        let mut switches: Vec<Switch> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line_no = index + 1;
            let content = line.trim();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let syntax = |expected: &'static str| HistoryError::Syntax {
                timeline,
                line: line_no,
                text: line.to_owned(),
                expected,
            };
            let (parent, rest) = split_field(content);
            let (at, _reason) = split_field(rest);
            let parent: u32 = parent
                .parse()
                .map_err(|_| syntax("a decimal parent timeline ID"))?;
            let parent = Timeline::new(parent).map_err(|_| syntax("a parent timeline above 0"))?;
            let at: Lsn = at
                .parse()
                .map_err(|_| syntax("a switch point LSN such as 0/3000028 after the timeline"))?;
            let inconsistent = |problem: String| HistoryError::Inconsistent {
                timeline,
                line: line_no,
                problem,
            };
            if parent >= timeline {
                return Err(inconsistent(format!(
                    "parent timeline {parent} is not older than timeline {timeline}"
                )));
            }
            if let Some(previous) = switches.last() {
                if parent <= previous.parent {
                    return Err(inconsistent(format!(
                        "parent timeline {parent} does not follow timeline {}",
                        previous.parent
                    )));
                }
                if at < previous.at {
                    return Err(inconsistent(format!(
                        "switch point {at} comes before the previous one, {}",
                        previous.at
                    )));
                }
            }
            switches.push(Switch { parent, at });
        }
        Ok(TimelineHistory { timeline, switches })
    }

    /// The timeline this history describes.
    pub fn timeline(&self) -> Timeline {
        self.timeline
    }

    /// The ancestors' switches, oldest first.
    pub fn switches(&self) -> &[Switch] {
        &self.switches
    }

    /// Every timeline of the ancestry with the WAL it holds, oldest first.
    pub fn spans(&self) -> Vec<TimelineSpan> {
        let mut begin = Lsn(0);
        let mut spans = Vec::with_capacity(self.switches.len() + 1);
        for switch in &self.switches {
            spans.push(TimelineSpan {
                timeline: switch.parent,
                begin,
                end: Some(switch.at),
            });
            begin = switch.at;
        }
        spans.push(TimelineSpan {
            timeline: self.timeline,
            begin,
            end: None,
        });
        spans
    }

    /// The span of `timeline` if it is this timeline or one of its ancestors.
    pub fn span(&self, timeline: Timeline) -> Option<TimelineSpan> {
        self.spans()
            .into_iter()
            .find(|span| span.timeline == timeline)
    }

    /// The timeline that holds `lsn`: a switch point already belongs to the child.
    pub fn timeline_at(&self, lsn: Lsn) -> Timeline {
        self.switches
            .iter()
            .find(|switch| lsn < switch.at)
            .map_or(self.timeline, |switch| switch.parent)
    }

    /// The timeline whose file recovery reads for the segment at position `number`.
    ///
    /// A promotion copies the start of the segment holding the switch point into the new
    /// timeline's file of the same position, so that segment, and every later one, is read
    /// from the newest timeline that had begun by its end; earlier ones from the parent.
    pub fn timeline_for_segment(&self, number: u64, size: SegmentSize) -> Timeline {
        let spans = self.spans();
        spans
            .iter()
            .rev()
            .find(|span| span.begin.0 / size.bytes() <= number)
            .map_or(self.timeline, |span| span.timeline)
    }
}

/// The first whitespace-separated field and the rest; PostgreSQL writes tabs, but a
/// hand-edited file with spaces means the same.
fn split_field(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    s.split_once(char::is_whitespace).unwrap_or((s, ""))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    #[error(
        "history file of timeline {timeline}, line {line} ({text:?}): expected {expected}; the file is corrupt, fetch it again from the archive"
    )]
    Syntax {
        timeline: Timeline,
        line: usize,
        text: String,
        expected: &'static str,
    },

    #[error(
        "history file of timeline {timeline}, line {line}: {problem}; the file is corrupt, fetch it again from the archive"
    )]
    Inconsistent {
        timeline: Timeline,
        line: usize,
        problem: String,
    },
}

#[cfg(test)]
mod tests;
