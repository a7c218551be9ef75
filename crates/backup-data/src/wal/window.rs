//! The recoverability window: the stretches of WAL an archive and its base backups can
//! restore to, and the gaps between them. A gap is always reported, never smoothed over:
//! a window shown as one range while a segment is missing would promise recoveries that
//! fail.

use super::archive::Archive;
use super::history::TimelineHistory;
use super::recovery_plan::{self, BaseBackupPosition, PlanError, RecoveryPlan};
use super::segment::{Lsn, Timeline, WalFile, WalSegment};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::ops::Range;

/// A physical base backup in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseBackup {
    pub id: String,
    pub position: BaseBackupPosition,
    pub ended_at: DateTime<Utc>,
}

/// What the archiver recorded about one archived segment or `.partial`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentMeta {
    pub archived_at: DateTime<Utc>,
    /// The newest commit timestamp in the file, when the archiver decoded it.
    pub last_commit: Option<DateTime<Utc>>,
    /// For a `.partial`: how far it holds WAL. Without it a partial extends nothing.
    pub written_to: Option<Lsn>,
}

/// Metadata by archived file; files without an entry simply have no time.
pub type SegmentTimes = BTreeMap<WalFile, SegmentMeta>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSource {
    /// When the base backup finished: the earliest time it can restore to.
    BackupEnd,
    /// The newest commit in the WAL: a `recovery_target_time` up to it is reached.
    LastCommit,
    /// When the file was archived, an upper bound of its commits' times; a target time
    /// between the last commit and this one is past the end of the WAL.
    Archived,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointTime {
    pub at: DateTime<Utc>,
    pub source: TimeSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoverablePoint {
    pub lsn: Lsn,
    pub time: Option<PointTime>,
}

/// A continuous stretch every point of which some base backup restores to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoverableRange {
    pub from: RecoverablePoint,
    pub to: RecoverablePoint,
    /// The base backups that can restore into this range, oldest first.
    pub base_backups: Vec<String>,
}

/// Segments missing between two archived ones: `first..=last`, covering `lsns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub first: WalSegment,
    pub last: WalSegment,
    pub lsns: Range<Lsn>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unusable {
    Plan(PlanError),
    /// Its consistent point lies in a `.partial` not known to reach it.
    ConsistentOnlyInPartial(WalSegment),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnusableBackup {
    pub id: String,
    pub reason: Unusable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub timeline: Timeline,
    /// Oldest first, never overlapping; more than one means a gap splits the window.
    pub ranges: Vec<RecoverableRange>,
    pub gaps: Vec<Gap>,
    pub unusable: Vec<UnusableBackup>,
}

impl Window {
    pub fn first(&self) -> Option<RecoverablePoint> {
        self.ranges.first().map(|range| range.from)
    }

    pub fn last(&self) -> Option<RecoverablePoint> {
        self.ranges.last().map(|range| range.to)
    }
}

/// The window along `history`'s timeline (usually the one `latest_timeline` gives for the
/// newest base backup): each base backup restores to any point from its consistent point
/// to the first missing segment after it, or the end of the archive.
pub fn window(
    archive: &Archive,
    backups: &[BaseBackup],
    history: &TimelineHistory,
    times: &SegmentTimes,
) -> Window {
    let mut ranges = Vec::new();
    let mut unusable = Vec::new();
    for backup in backups {
        match reach(archive, &backup.position, history) {
            Ok(plan) => {
                let from = RecoverablePoint {
                    lsn: backup.position.end,
                    time: Some(PointTime {
                        at: backup.ended_at,
                        source: TimeSource::BackupEnd,
                    }),
                };
                let to = end_point(&plan, times);
                match plan.partial_tail {
                    Some(partial) if to.lsn < from.lsn => unusable.push(UnusableBackup {
                        id: backup.id.clone(),
                        reason: Unusable::ConsistentOnlyInPartial(partial),
                    }),
                    _ => ranges.push((from, to, backup.id.clone())),
                }
            }
            Err(error) => unusable.push(UnusableBackup {
                id: backup.id.clone(),
                reason: Unusable::Plan(error),
            }),
        }
    }
    Window {
        timeline: history.timeline(),
        ranges: merge(ranges),
        gaps: gaps(archive, history),
        unusable,
    }
}

/// The plan to the end of the archive, or up to the first gap past the consistent point.
fn reach(
    archive: &Archive,
    base: &BaseBackupPosition,
    history: &TimelineHistory,
) -> Result<RecoveryPlan, PlanError> {
    match recovery_plan::plan(archive, base, history, None) {
        Err(PlanError::MissingSegment(missing)) if missing.range.start > base.end => {
            let before_gap = Lsn(missing.range.start.0 - 1);
            recovery_plan::plan(archive, base, history, Some(before_gap))
        }
        other => other,
    }
}

fn end_point(plan: &RecoveryPlan, times: &SegmentTimes) -> RecoverablePoint {
    let partial = plan
        .partial_tail
        .and_then(|segment| times.get(&WalFile::Partial(segment)))
        .and_then(|meta| Some((meta.written_to?, meta)));
    if let Some((written_to, meta)) = partial {
        return RecoverablePoint {
            lsn: written_to.max(plan.restorable_to),
            time: Some(time_of(meta)),
        };
    }
    let last_segment = plan
        .files
        .iter()
        .rev()
        .find(|f| matches!(f, WalFile::Segment(_)));
    RecoverablePoint {
        lsn: plan.restorable_to,
        time: last_segment.and_then(|f| times.get(f)).map(time_of),
    }
}

fn time_of(meta: &SegmentMeta) -> PointTime {
    match meta.last_commit {
        Some(at) => PointTime {
            at,
            source: TimeSource::LastCommit,
        },
        None => PointTime {
            at: meta.archived_at,
            source: TimeSource::Archived,
        },
    }
}

/// Joins ranges that touch or overlap; their backups restore to the same stretch.
fn merge(mut ranges: Vec<(RecoverablePoint, RecoverablePoint, String)>) -> Vec<RecoverableRange> {
    ranges.sort_by_key(|(from, _, _)| from.lsn);
    let mut merged: Vec<RecoverableRange> = Vec::new();
    for (from, to, id) in ranges {
        match merged.last_mut() {
            Some(current) if from.lsn <= current.to.lsn => {
                if to.lsn > current.to.lsn {
                    current.to = to;
                }
                current.base_backups.push(id);
            }
            _ => merged.push(RecoverableRange {
                from,
                to,
                base_backups: vec![id],
            }),
        }
    }
    merged
}

/// Runs of positions along `history` with no complete segment, between the oldest and
/// the newest archived file; a `.partial` counts only at the very end.
fn gaps(archive: &Archive, history: &TimelineHistory) -> Vec<Gap> {
    let size = archive.size();
    let at = |number| WalSegment {
        timeline: history.timeline_for_segment(number, size),
        number,
    };
    let positions = archive.positions_on(history);
    let newest = positions.last().copied();
    let present: Vec<u64> = positions
        .into_iter()
        .filter(|n| archive.contains(WalFile::Segment(at(*n))) || Some(*n) == newest)
        .collect();
    present
        .windows(2)
        .filter(|pair| pair[1] > pair[0] + 1)
        .map(|pair| {
            let (first, last) = (at(pair[0] + 1), at(pair[1] - 1));
            Gap {
                first,
                last,
                lsns: first.lsn_range(size).start..last.lsn_range(size).end,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
