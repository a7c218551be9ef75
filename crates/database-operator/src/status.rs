//! Step 5: the Database's status, as a pure function of what was observed and applied.
//!
//! [`compute_status`] decides the phase and the Ready, Progressing, Degraded and (with a
//! `backupRef`) WaitingForBackup conditions, merged into the old conditions so that
//! `lastTransitionTime` moves only when a condition flips. [`api::conditions::status_changed`]
//! tells whether the result is worth a status patch.

use api::conditions;
use api::k8s_openapi::jiff::Timestamp;
use api::{Database, DatabasePhase, DatabaseStatus, RecoveryState, Restore, RestorePhase, names};
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::ResourceExt;

use crate::error::Stage;
use crate::pods::PodFailure;
use crate::recovery::Recovery;
use crate::validate::BackupGate;

/// Everything the status is computed from.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    pub gate: BackupGate,
    pub provisioning: Provisioning,
    /// Whether the credentials Secret and the Services exist now.
    pub secret_exists: bool,
    pub services_exist: bool,
    /// The StatefulSet as applied (or found current), if it exists.
    pub workload: Option<Workload>,
    /// The client Service has a ready endpoint at the primary's Pod, so clients can connect.
    pub routed: bool,
    /// The Pod labelled primary, if any.
    pub primary: Option<String>,
    pub instances: Vec<api::InstanceStatus>,
    /// The newest failover an instance's manager recorded on its Pod.
    pub failover: Option<api::FailoverReport>,
    /// The ReplicationHealthy condition: status, reason, message.
    pub replication: (bool, &'static str, String),
    pub pod_failure: Option<PodFailure>,
    /// Why a Pod waits for a node or volume, while that may still resolve by itself.
    pub pod_note: Option<String>,
    /// The initial restore (only with a `backupRef`).
    pub restore: InitialRestore,
    /// Why `backupRef` cannot be followed (with [`BackupGate::Refused`]).
    pub refusal: Option<String>,
    /// Recovery from a physical Backup.
    pub recovery: Recovery,
    pub volumes: Volumes,
}

/// How far applying the owned objects got.
#[derive(Clone, Debug, PartialEq)]
pub enum Provisioning {
    /// The backupRef gate is closed: nothing was applied.
    Blocked,
    /// Every owned object is applied and current.
    Applied,
    /// Applying stopped at `stage`; `rejected` when the API server refused the object itself.
    Failed {
        stage: Stage,
        message: String,
        rejected: bool,
    },
}

/// The replica counts of the StatefulSet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Workload {
    pub desired: i32,
    pub ready: i32,
    pub updated: i32,
    /// The StatefulSet controller has seen the newest spec.
    pub observed_current: bool,
    /// Its Pods are being replaced by ones of a newer spec (the current and update
    /// revisions differ).
    pub rolling: bool,
}

impl Workload {
    pub fn of(sts: &StatefulSet) -> Workload {
        let status = sts.status.clone().unwrap_or_default();
        Workload {
            desired: sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
            ready: status.ready_replicas.unwrap_or(0),
            updated: status.updated_replicas.unwrap_or(0),
            observed_current: status.observed_generation.is_some()
                && status.observed_generation >= sts.metadata.generation,
            rolling: status.update_revision.is_some()
                && status.current_revision != status.update_revision,
        }
    }

    /// Every replica runs the newest spec and is ready.
    pub fn rolled_out(self) -> bool {
        self.observed_current && self.ready >= self.desired && self.updated >= self.desired
    }
}

/// The initial Restore the backup-operator runs for a Database with a `backupRef`.
#[derive(Clone, Debug, PartialEq)]
pub enum InitialRestore {
    /// Not created yet (or no `backupRef`).
    Missing,
    InProgress(RestorePhase),
    Completed,
    /// Failed, with the message of its Restored condition.
    Failed(String),
}

impl InitialRestore {
    pub fn of(restore: Option<&Restore>) -> InitialRestore {
        let Some(restore) = restore else {
            return InitialRestore::Missing;
        };
        match restore.phase() {
            RestorePhase::Completed => InitialRestore::Completed,
            RestorePhase::Failed => {
                let conditions = restore.status.as_ref().map(|s| s.conditions.as_slice());
                let message = conditions
                    .and_then(|c| conditions::find(c, conditions::RESTORED))
                    .map(|c| c.message.clone())
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| "no reason given".to_string());
                InitialRestore::Failed(message)
            }
            phase => InitialRestore::InProgress(phase),
        }
    }
}

/// Growing the data volumes after `storage.size` grew.
#[derive(Clone, Debug, PartialEq)]
pub enum Volumes {
    /// Nothing to grow.
    Settled,
    /// These claims were asked to grow.
    Expanding(Vec<String>),
    /// The API server refused to grow a claim; the message says why.
    Rejected(String),
}

/// One condition's verdict before it is stamped.
struct Verdict {
    status: bool,
    reason: String,
    message: String,
}

fn verdict(status: bool, reason: &str, message: impl Into<String>) -> Verdict {
    Verdict {
        status,
        reason: reason.to_string(),
        message: message.into(),
    }
}

/// The phase and the Ready, Progressing and Degraded verdicts.
struct Outcome {
    phase: DatabasePhase,
    ready: Verdict,
    progressing: Verdict,
    degraded: Verdict,
}

/// Waiting on something else, or failed: not ready, not progressing.
fn stalled(phase: DatabasePhase, reason: &str, message: String, degraded: bool) -> Outcome {
    Outcome {
        phase,
        ready: verdict(false, reason, message.clone()),
        progressing: verdict(false, reason, message.clone()),
        degraded: if degraded {
            verdict(true, reason, message)
        } else {
            healthy()
        },
    }
}

/// Working towards the desired state.
fn progressing(phase: DatabasePhase, message: String) -> Outcome {
    let reason = phase.as_str();
    Outcome {
        phase,
        ready: verdict(false, reason, message.clone()),
        progressing: verdict(true, reason, message),
        degraded: healthy(),
    }
}

fn healthy() -> Verdict {
    verdict(false, "Healthy", "no problems observed")
}

fn outcome(db: &Database, o: &Observed) -> Outcome {
    let name = db.name_any();
    let backup = db
        .spec
        .backup_ref
        .as_ref()
        .map(|r| r.name.as_str())
        .unwrap_or_default();
    let restore = names::initial_restore(&name);
    match o.gate {
        BackupGate::DependencyCycle => {
            return stalled(
                DatabasePhase::Failed,
                "DependencyCycle",
                format!(
                    "Backup {backup} backs up this Database, so it can never have an artifact before this Database exists; point spec.backupRef at a Backup of another Database"
                ),
                true,
            );
        }
        BackupGate::BackupNotFound => {
            return stalled(
                DatabasePhase::Pending,
                "BackupNotFound",
                format!(
                    "Backup {backup} does not exist; create it or correct spec.backupRef. Nothing is provisioned until it reports BackupReady=True"
                ),
                false,
            );
        }
        BackupGate::BackupNotReady => {
            // The window matters only to a target time, so only then is it mentioned.
            let targeted = db
                .spec
                .backup_ref
                .as_ref()
                .is_some_and(|r| r.target_time.is_some());
            let window = if targeted {
                " and its status.recoverability (to check targetTime)"
            } else {
                ""
            };
            return stalled(
                DatabasePhase::Pending,
                "BackupNotReady",
                format!(
                    "waiting for Backup {backup} to report BackupReady=True{window} before provisioning"
                ),
                false,
            );
        }
        BackupGate::Refused => {
            let message = o
                .refusal
                .clone()
                .unwrap_or_else(|| format!("Backup {backup} cannot give what spec.backupRef asks"));
            return stalled(
                DatabasePhase::Failed,
                "RecoveryTargetRefused",
                message,
                true,
            );
        }
        BackupGate::NotRequired | BackupGate::Ready => {}
    }
    if let Provisioning::Failed {
        stage,
        message,
        rejected,
    } = &o.provisioning
    {
        if *rejected {
            return stalled(DatabasePhase::Failed, "InvalidSpec", message.clone(), true);
        }
        let phase = match stage {
            Stage::Secret => DatabasePhase::Provisioning,
            Stage::Services | Stage::InstanceAccount => DatabasePhase::Configuring,
            Stage::StatefulSet | Stage::Rollout | Stage::Volumes => DatabasePhase::Deploying,
        };
        let mut outcome = progressing(phase, message.clone());
        outcome.degraded = verdict(
            true,
            &format!("{}ApplyFailed", stage.as_str()),
            message.clone(),
        );
        return outcome;
    }
    // Before the Pod's own failure: a server that stopped recovering leaves a Pod that fails
    // its probes and restarts, and the report says why.
    let report = o.recovery.report.as_ref();
    if let Some(report) = report.filter(|r| r.state == RecoveryState::Failed) {
        let said = report.message.as_deref().unwrap_or("no reason given");
        return stalled(
            DatabasePhase::Failed,
            "RecoveryFailed",
            format!(
                "PostgreSQL stopped recovering from Backup {backup} and serves nothing, rather than come up with less data than asked: {said}. A target after the last archived commit cannot be reached: choose an earlier spec.backupRef.targetTime (or none) in a new Database"
            ),
            true,
        );
    }
    if let Some(failure) = &o.pod_failure {
        return stalled(
            DatabasePhase::Failed,
            &failure.reason,
            failure.message.clone(),
            true,
        );
    }
    if let (true, InitialRestore::Failed(message)) = (db.spec.backup_ref.is_some(), &o.restore) {
        return stalled(
            DatabasePhase::Failed,
            "RestoreFailed",
            format!(
                "the initial Restore {restore} of Backup {backup} failed: {message}; see `kubectl describe restore {restore}`"
            ),
            true,
        );
    }
    if o.recovery.pending {
        let waiting = match &o.restore {
            InitialRestore::InProgress(phase) => format!("Restore {restore} is {phase:?}"),
            _ => format!("waiting for the backup-operator to create Restore {restore}"),
        };
        let message = format!(
            "{waiting}: it prepares volume {} from Backup {backup} (base backup and archived WAL); the StatefulSet is created once it completed",
            names::data_claim(&name, 0)
        );
        return Outcome {
            phase: DatabasePhase::Provisioning,
            ready: verdict(false, "PreparingRecovery", message.clone()),
            progressing: verdict(true, "PreparingRecovery", message),
            degraded: healthy(),
        };
    }
    let workload = o.workload.unwrap_or_default();
    if !workload.rolled_out() {
        let mut message = format!("{}/{} replicas ready", workload.ready, workload.desired);
        if report.is_some_and(|r| r.state == RecoveryState::Recovering) {
            message
                .push_str("; PostgreSQL replays the archived WAL and serves once it has promoted");
        }
        // Only a rollout has Pods of two specs. A new StatefulSet's controller reports 0
        // updated replicas for a moment, and a Database that said so would only be patched
        // twice more for it.
        if workload.observed_current && workload.rolling && workload.updated < workload.desired {
            message.push_str(&format!(", {} on the newest spec", workload.updated));
        }
        if let Some(note) = &o.pod_note {
            message.push_str(&format!("; {note}"));
        }
        return progressing(DatabasePhase::Deploying, message);
    }
    if db.spec.backup_ref.is_some() && o.restore != InitialRestore::Completed {
        let waiting = match &o.restore {
            InitialRestore::InProgress(phase) => format!("Restore {restore} is {phase:?}"),
            _ => format!("waiting for the backup-operator to create Restore {restore}"),
        };
        return progressing(
            DatabasePhase::Verifying,
            format!(
                "all {} replicas ready; {waiting} from Backup {backup}",
                workload.desired
            ),
        );
    }
    if !o.routed {
        let message = match &o.primary {
            Some(primary) => format!(
                "all {} replicas ready; waiting for Service {} to route to Pod {primary}",
                workload.desired,
                names::client_service(&name),
            ),
            None => format!(
                "all {} replicas ready; no instance is the primary yet",
                workload.desired
            ),
        };
        return Outcome {
            phase: DatabasePhase::Verifying,
            ready: verdict(false, "ServiceNotRouting", message.clone()),
            progressing: verdict(true, "ServiceNotRouting", message),
            degraded: healthy(),
        };
    }
    let message = format!("{0}/{0} replicas ready", workload.desired);
    Outcome {
        phase: DatabasePhase::Ready,
        ready: verdict(true, "Ready", message.clone()),
        progressing: verdict(false, "Complete", message),
        degraded: healthy(),
    }
}

/// The status `db` should have given `observed`, at time `now`.
pub fn compute_status(db: &Database, observed: &Observed, now: Timestamp) -> DatabaseStatus {
    let mut outcome = outcome(db, observed);
    match &observed.volumes {
        Volumes::Settled => {}
        Volumes::Expanding(claims) if !outcome.progressing.status => {
            outcome.progressing = verdict(
                true,
                "ExpandingVolumes",
                format!(
                    "growing {} to storage.size {}",
                    claims.join(", "),
                    db.spec.storage.size
                ),
            );
        }
        Volumes::Expanding(_) => {}
        Volumes::Rejected(message) if !outcome.degraded.status => {
            outcome.degraded = verdict(true, "VolumeExpansionRejected", message.clone());
        }
        Volumes::Rejected(_) => {}
    }

    let generation = db.metadata.generation;
    let old = db.status.clone().unwrap_or_default();
    let mut conds = old.conditions;
    let mut put = |type_: &str, v: Verdict| {
        conditions::set(
            &mut conds,
            conditions::new(type_, v.status, &v.reason, v.message, generation, now),
        );
    };
    put(conditions::READY, outcome.ready);
    let (healthy, reason, message) = observed.replication.clone();
    put(
        conditions::REPLICATION_HEALTHY,
        verdict(healthy, reason, message),
    );
    put(conditions::PROGRESSING, outcome.progressing);
    put(conditions::DEGRADED, outcome.degraded);
    if let Some(backup) = &db.spec.backup_ref {
        let gate = observed.gate;
        let waiting = !gate.allows_provisioning()
            && !matches!(gate, BackupGate::DependencyCycle | BackupGate::Refused);
        let message = match gate {
            BackupGate::BackupNotFound => format!("Backup {} does not exist", backup.name),
            BackupGate::BackupNotReady => {
                format!("Backup {} has no verified artifact yet", backup.name)
            }
            BackupGate::DependencyCycle => {
                format!("Backup {} backs up this Database itself", backup.name)
            }
            BackupGate::Refused => format!(
                "Backup {} cannot give what spec.backupRef asks; see the Ready condition",
                backup.name
            ),
            BackupGate::Ready | BackupGate::NotRequired => {
                format!("Backup {} is ready or was restored", backup.name)
            }
        };
        put(
            conditions::WAITING_FOR_BACKUP,
            verdict(waiting, gate.reason(), message),
        );
    } else {
        conditions::remove(&mut conds, conditions::WAITING_FOR_BACKUP);
    }

    let name = db.name_any();
    let namespace = db.namespace().unwrap_or_default();
    let (last_failover, failovers) =
        crate::replication::failover_history(db.status.as_ref(), observed.failover.as_ref());
    DatabaseStatus {
        phase: Some(outcome.phase),
        ready_replicas: observed.workload.map(|w| w.ready).unwrap_or(0),
        secret_name: observed
            .secret_exists
            .then(|| names::credentials_secret(&name)),
        endpoint: observed
            .services_exist
            .then(|| names::endpoint(&name, &namespace)),
        observed_generation: generation,
        current_primary: observed.primary.clone(),
        instances: observed.instances.clone(),
        recovery: observed.recovery.status.clone(),
        last_failover,
        failovers,
        conditions: conds,
    }
}

#[cfg(test)]
mod tests;
