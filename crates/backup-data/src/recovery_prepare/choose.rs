//! Which base backup and which archived WAL a recovery to a target time (or to the end of
//! the archive) uses. Pure: the listing, the histories and the manifests come in.

use crate::wal::recovery_plan::{self, PlanError};
use crate::wal::window::{self, PointTime, RecoverablePoint};
use crate::wal::{Archive, BaseBackup, Lsn, RecoveryPlan, SegmentTimes, TimelineHistory, WalFile};
use chrono::{DateTime, SecondsFormat, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub base: BaseBackup,
    pub plan: RecoveryPlan,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChooseError {
    #[error("the Backup has no complete base backup; take one (base-backup) before recovering")]
    NoBaseBackup,

    #[error(
        "recovery target {} is outside what the archive can restore: {window}; choose a target inside it",
        .target.to_rfc3339_opts(SecondsFormat::Secs, true)
    )]
    OutsideWindow {
        target: DateTime<Utc>,
        window: String,
    },

    #[error("base backup {base}: {source}")]
    Plan {
        base: String,
        #[source]
        source: PlanError,
    },
}

/// Tries the newest base backup that ended at or before `target` first, then older ones:
/// an older one helps only when a newer one's own WAL is missing. Without a target every
/// segment up to the newest archived one must be there; a missing one is an error naming
/// it, never a quieter recovery to an earlier point.
pub fn choose(
    backups: &[BaseBackup],
    archive: &Archive,
    histories: &[TimelineHistory],
    times: &SegmentTimes,
    target: Option<DateTime<Utc>>,
) -> Result<Choice, ChooseError> {
    if backups.is_empty() {
        return Err(ChooseError::NoBaseBackup);
    }
    let outside = || ChooseError::OutsideWindow {
        target: target.expect("only with a target"),
        window: describe_window(backups, archive, histories, times),
    };
    let mut candidates: Vec<&BaseBackup> = backups
        .iter()
        .filter(|b| target.is_none_or(|t| b.ended_at <= t))
        .collect();
    candidates.sort_by_key(|b| std::cmp::Reverse((b.ended_at, b.position.end)));
    if candidates.is_empty() {
        return Err(outside());
    }
    let mut first_error = None;
    for base in candidates {
        match choose_one(base, archive, histories, times, target) {
            Ok(Some(plan)) => {
                return Ok(Choice {
                    base: base.clone(),
                    plan,
                });
            }
            Ok(None) => {
                first_error.get_or_insert_with(outside);
            }
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    Err(first_error.expect("at least one candidate was tried"))
}

/// `Ok(None)`: the archive ends before the target.
fn choose_one(
    base: &BaseBackup,
    archive: &Archive,
    histories: &[TimelineHistory],
    times: &SegmentTimes,
    target: Option<DateTime<Utc>>,
) -> Result<Option<RecoveryPlan>, ChooseError> {
    let plan_error = |source| ChooseError::Plan {
        base: base.id.clone(),
        source,
    };
    let history = recovery_plan::latest_timeline(&base.position, histories).map_err(plan_error)?;
    let plan = match recovery_plan::plan(archive, &base.position, &history, None) {
        Ok(plan) => plan,
        // With a target before a gap, the WAL up to the gap may be enough.
        Err(PlanError::MissingSegment(missing))
            if target.is_some() && missing.range.start > base.position.end =>
        {
            let before_gap = Lsn(missing.range.start.0 - 1);
            let plan = recovery_plan::plan(archive, &base.position, &history, Some(before_gap))
                .map_err(plan_error)?;
            if end_time(&plan, times).is_some_and(|end| target.is_some_and(|t| t <= end)) {
                return Ok(Some(plan));
            }
            return Err(plan_error(PlanError::MissingSegment(missing)));
        }
        Err(error) => return Err(plan_error(error)),
    };
    match target {
        None => Ok(Some(plan)),
        Some(target) => Ok(end_time(&plan, times)
            .filter(|end| target <= *end)
            .map(|_| plan)),
    }
}

/// When the last file of the plan was archived: every commit in it happened before.
fn end_time(plan: &RecoveryPlan, times: &SegmentTimes) -> Option<DateTime<Utc>> {
    plan.files
        .iter()
        .rev()
        .find(|f| !matches!(f, WalFile::History(_)))
        .and_then(|f| times.get(f))
        .map(|meta| meta.archived_at)
}

/// `from 2026-12-06T07:00:00Z (base backup X) to 2026-12-06T08:00:00Z`, each range and
/// gap listed, for messages.
pub fn describe_window(
    backups: &[BaseBackup],
    archive: &Archive,
    histories: &[TimelineHistory],
    times: &SegmentTimes,
) -> String {
    let Some(newest) = backups.iter().max_by_key(|b| (b.ended_at, b.position.end)) else {
        return "no base backup".to_owned();
    };
    let Ok(history) = recovery_plan::latest_timeline(&newest.position, histories) else {
        return "no timeline of the archive descends from the newest base backup".to_owned();
    };
    let window = window::window(archive, backups, &history, times);
    if window.ranges.is_empty() {
        return format!(
            "nothing on timeline {} (no base backup has the WAL it needs)",
            window.timeline
        );
    }
    let point = |p: &RecoverablePoint| match p.time {
        Some(PointTime { at, .. }) => {
            format!(
                "{} ({})",
                at.to_rfc3339_opts(SecondsFormat::Secs, true),
                p.lsn
            )
        }
        None => p.lsn.to_string(),
    };
    let ranges: Vec<String> = window
        .ranges
        .iter()
        .map(|r| {
            format!(
                "from {} to {} (base backups {})",
                point(&r.from),
                point(&r.to),
                r.base_backups.join(", ")
            )
        })
        .collect();
    let size = archive.size();
    let gaps: Vec<String> = window
        .gaps
        .iter()
        .map(|g| {
            format!(
                "segments {} to {} missing",
                g.first.file_name(size),
                g.last.file_name(size)
            )
        })
        .collect();
    let mut text = format!("timeline {}: {}", window.timeline, ranges.join("; "));
    if !gaps.is_empty() {
        text.push_str(&format!("; gaps: {}", gaps.join(", ")));
    }
    text
}

#[cfg(test)]
mod tests;
