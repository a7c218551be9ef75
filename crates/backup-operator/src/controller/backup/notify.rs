//! Events and run metrics (of runs and of restore drills), from the difference between the old status and the new one, so
//! each outcome is announced and counted once even though reconciles repeat.

use api::conditions::{self, DEGRADED, WAITING_FOR_DATABASE};
use api::{Backup, BackupStatus, VerificationResult};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use super::drill;
use super::outcome::{LastRun, Learnt};
use super::status::{BACKUP_FAILED, DATABASE_NOT_FOUND};
use crate::controller::context::Context;

/// The condition of this type in `new` if it is True and says something `old` did not.
fn newly_true<'a>(
    old: Option<&BackupStatus>,
    new: &'a BackupStatus,
    type_: &str,
) -> Option<&'a Condition> {
    let now = conditions::find(&new.conditions, type_).filter(|c| c.status == "True")?;
    let before = old.and_then(|s| conditions::find(&s.conditions, type_));
    let same = before.is_some_and(|b| {
        b.status == now.status && b.reason == now.reason && b.message == now.message
    });
    (!same).then_some(now)
}

pub async fn notify(
    ctx: &Context,
    backup: &Backup,
    new: &BackupStatus,
    learnt: Option<&Learnt>,
    started: Option<&(String, String)>,
) {
    let old = backup.status.as_ref();
    if let Some((job, run_id)) = started {
        ctx.event(
            backup,
            false,
            "BackupStarted",
            format!("started Job {job} for run {run_id}"),
        )
        .await;
    }
    if let Some(learnt) = learnt {
        record_metrics(ctx, old, new, learnt);
        if let (LastRun::Succeeded { run_id }, Some(record)) =
            (&learnt.last_run, new.history.first())
        {
            let note = format!(
                "run {run_id} wrote {} bytes to {} (sha256 {})",
                record.size_bytes, record.location, record.sha256
            );
            ctx.event(backup, false, "BackupSucceeded", note).await;
        }
    }
    if let Some(degraded) = newly_true(old, new, DEGRADED) {
        ctx.event(backup, true, &degraded.reason, degraded.message.clone())
            .await;
    }
    if let Some(waiting) = newly_true(old, new, WAITING_FOR_DATABASE)
        && waiting.reason == DATABASE_NOT_FOUND
    {
        ctx.event(backup, true, &waiting.reason, waiting.message.clone())
            .await;
    }
}

fn record_metrics(ctx: &Context, old: Option<&BackupStatus>, new: &BackupStatus, learnt: &Learnt) {
    let metrics = &ctx.metrics;
    let result = match &learnt.last_run {
        LastRun::Succeeded { .. } => {
            metrics.bytes_written.inc_by(learnt.bytes);
            "succeeded"
        }
        // A failed run is read again on every reconcile until the next run; it is new only
        // when the Degraded condition changes.
        LastRun::Failed { .. } => match newly_true(old, new, DEGRADED) {
            Some(c) if c.reason == BACKUP_FAILED => "failed",
            _ => return,
        },
    };
    metrics.runs.with_label_values(&[result]).inc();
    if let Some(seconds) = learnt.duration_seconds {
        metrics.run_duration.observe(seconds);
    }
}

/// Events and metrics of restore drills: a started drill, and a result recorded now. A
/// failure is a Warning naming the artifact, which stays in storage and in the history.
pub async fn drills(ctx: &Context, backup: &Backup, new: &BackupStatus, step: &drill::Step) {
    if let Some((job, run_id)) = &step.started {
        ctx.event(
            backup,
            false,
            "VerificationStarted",
            format!("started Job {job} to restore run {run_id} into a throwaway server"),
        )
        .await;
    }
    let (Some(result), Some(last)) = (step.recorded, new.last_verification.as_ref()) else {
        return;
    };
    let label = match result {
        VerificationResult::Passed => {
            let note = format!(
                "run {} restored: {} tables and {} rows checked",
                last.run_id,
                last.tables_checked.unwrap_or_default(),
                last.rows_checked.unwrap_or_default()
            );
            ctx.event(backup, false, "VerificationPassed", note).await;
            "succeeded"
        }
        VerificationResult::Failed => {
            let note = format!(
                "restore drill of run {} failed; the artifact is kept but marked unverified: {}",
                last.run_id,
                last.error.as_deref().unwrap_or_default()
            );
            ctx.event(backup, true, "VerificationFailed", note).await;
            "failed"
        }
    };
    ctx.metrics.verifications.with_label_values(&[label]).inc();
}
