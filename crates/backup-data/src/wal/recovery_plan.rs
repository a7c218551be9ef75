//! Which archived WAL files a recovery from one base backup reads, in the order it reads
//! them, so a Job can fetch and verify all of them before the server starts and the
//! server's `restore_command` only copies local files.

use super::archive::Archive;
use super::history::TimelineHistory;
use super::segment::{Lsn, Timeline, WalFile, WalSegment};
use std::fmt;
use std::ops::Range;

/// Where a physical base backup sits in the WAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseBackupPosition {
    /// The timeline the server was on when the backup started.
    pub timeline: Timeline,
    /// Where replay starts (the backup's checkpoint redo point).
    pub start: Lsn,
    /// Where replay reaches a consistent state; no earlier point can be recovered to.
    pub end: Lsn,
}

/// The files a recovery needs and how far they take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryPlan {
    /// The timeline recovery follows; pass it as `recovery_target_timeline`.
    pub timeline: Timeline,
    /// History files first (oldest timeline first), then segments in replay order.
    pub files: Vec<WalFile>,
    /// The end of the last complete segment in `files`: every record that ends before it
    /// can be replayed.
    pub restorable_to: Lsn,
    /// Set when the last file is a `.partial` standing in for a segment never completed:
    /// recovery may go past `restorable_to`, as far as that partial holds WAL.
    pub partial_tail: Option<WalSegment>,
}

impl RecoveryPlan {
    pub fn file_names(&self, archive: &Archive) -> Vec<String> {
        self.files
            .iter()
            .map(|f| f.file_name(archive.size()))
            .collect()
    }
}

/// Whether `base` lies on `history`'s ancestry: its timeline is one of them and had not
/// been left behind when the backup became consistent.
pub fn descends_from(history: &TimelineHistory, base: &BaseBackupPosition) -> bool {
    history
        .span(base.timeline)
        .is_some_and(|span| span.begin <= base.start && span.end.is_none_or(|end| base.end <= end))
}

/// The highest timeline among `histories` (plus timeline 1, which has no history file)
/// that descends from `base`.
///
/// PostgreSQL's own `latest` takes the highest timeline in the archive and fails when the
/// base backup is not its ancestor; skipping unrelated branches instead lets a recovery
/// from an old backup follow its own line, so the result must be passed to the server by
/// number, not as `latest`.
pub fn latest_timeline(
    base: &BaseBackupPosition,
    histories: &[TimelineHistory],
) -> Result<TimelineHistory, PlanError> {
    let first = TimelineHistory::first();
    std::iter::once(&first)
        .chain(histories)
        .filter(|history| descends_from(history, base))
        .max_by_key(|history| history.timeline())
        .cloned()
        .ok_or(PlanError::NoTimeline {
            base: base.timeline,
        })
}

/// The files to recover from `base` along `target`'s ancestry up to `target_lsn`, or
/// without one up to the newest WAL the archive holds on that ancestry.
///
/// Every segment from the one holding `base.start` to the last one needed must be there
/// complete, except the last, for which a `.partial` may stand in. A missing one is an
/// error naming it: a recovery that silently stopped short would lose data unnoticed.
pub fn plan(
    archive: &Archive,
    base: &BaseBackupPosition,
    target: &TimelineHistory,
    target_lsn: Option<Lsn>,
) -> Result<RecoveryPlan, PlanError> {
    let size = archive.size();
    if base.end < base.start {
        return Err(PlanError::InvalidBaseBackup {
            start: base.start,
            end: base.end,
        });
    }
    if !descends_from(target, base) {
        return Err(PlanError::NotOnTimeline {
            base: base.timeline,
            end: base.end,
            target: target.timeline(),
        });
    }
    if let Some(target_lsn) = target_lsn.filter(|lsn| *lsn < base.end) {
        return Err(PlanError::TargetBeforeConsistent {
            target: target_lsn,
            consistent: base.end,
        });
    }

    let mut files = Vec::new();
    for span in target.spans() {
        let history = WalFile::History(span.timeline);
        if span.timeline == Timeline::FIRST {
            continue;
        }
        if archive.contains(history) {
            files.push(history);
        } else if span.timeline == target.timeline() {
            // Ancestors' files are optional: an archiver that started on a later timeline
            // never saw them, and the target's file already lists every switch point.
            return Err(PlanError::MissingHistory {
                timeline: span.timeline,
                name: history.file_name(size),
            });
        }
    }

    let first = WalSegment::containing(base.timeline, base.start, size).number;
    let consistent = WalSegment::containing(base.timeline, base.end, size).number;
    let last = match target_lsn {
        Some(lsn) => WalSegment::containing(base.timeline, lsn, size).number,
        None => archive
            .positions_on(target)
            .last()
            .map_or(consistent, |newest| (*newest).max(consistent)),
    };
    let mut restorable_to = Lsn(first * size.bytes());
    let mut partial_tail = None;
    for number in first..=last {
        let segment = WalSegment {
            timeline: target.timeline_for_segment(number, size),
            number,
        };
        if archive.contains(WalFile::Segment(segment)) {
            files.push(WalFile::Segment(segment));
            restorable_to = segment.lsn_range(size).end;
        } else if number == last && archive.contains(WalFile::Partial(segment)) {
            files.push(WalFile::Partial(segment));
            partial_tail = Some(segment);
        } else {
            return Err(PlanError::MissingSegment(MissingSegment {
                segment,
                name: segment.file_name(size),
                range: segment.lsn_range(size),
                restorable_to,
            }));
        }
    }
    Ok(RecoveryPlan {
        timeline: target.timeline(),
        files,
        restorable_to,
        partial_tail,
    })
}

/// The first segment recovery needs that the archive lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingSegment {
    pub segment: WalSegment,
    pub name: String,
    pub range: Range<Lsn>,
    /// How far the segments before it take recovery.
    pub restorable_to: Lsn,
}

impl fmt::Display for MissingSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WAL segment {} (timeline {}, {} to {}) is missing from the archive, so recovery \
             from this base backup cannot go past {}; choose an earlier target or a base \
             backup taken after the gap",
            self.name, self.segment.timeline, self.range.start, self.range.end, self.restorable_to
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "the base backup ends at {end}, before it starts at {start}: its recorded positions are wrong"
    )]
    InvalidBaseBackup { start: Lsn, end: Lsn },

    #[error(
        "timeline {target} does not descend from the base backup (timeline {base}, consistent at {end}): it branched off before the backup ended or from another line; choose another timeline or base backup"
    )]
    NotOnTimeline {
        base: Timeline,
        end: Lsn,
        target: Timeline,
    },

    #[error(
        "no timeline in the archive descends from the base backup's timeline {base}: its history file is missing from the archive"
    )]
    NoTimeline { base: Timeline },

    #[error(
        "history file {name} of timeline {timeline} is missing from the archive; recovery to that timeline needs it"
    )]
    MissingHistory { timeline: Timeline, name: String },

    #[error(
        "recovery target {target} is before {consistent}, where the base backup becomes consistent; choose a later target or an older base backup"
    )]
    TargetBeforeConsistent { target: Lsn, consistent: Lsn },

    #[error("{0}")]
    MissingSegment(MissingSegment),
}

#[cfg(test)]
mod tests;
