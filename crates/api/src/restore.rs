//! The `Restore` kind: load a Backup's artifact into a Database, reconciled by the
//! backup-operator.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::database::ObjectReference;

/// Restores one artifact of a Backup into a Database with `pg_restore --clean --if-exists`,
/// after checking its SHA-256 against the manifest written with it. Objects in the target
/// that the artifact also contains are replaced; others are left alone.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "database.example.com",
    version = "v1",
    kind = "Restore",
    plural = "restores",
    singular = "restore",
    shortname = "pgrestore",
    namespaced,
    status = "RestoreStatus",
    derive = "PartialEq",
    cel,
    validation = Rule::new("size(self.metadata.name) <= 63").message("a Restore name may have at most 63 characters: its Job carries the name in a label, whose values are limited to 63"),
    printcolumn = r#"{"name":"Backup","type":"string","jsonPath":".spec.backupRef.name"}"#,
    printcolumn = r#"{"name":"Database","type":"string","jsonPath":".spec.databaseRef.name"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("self == oldSelf").message("a Restore cannot be changed: create a new Restore"))]
#[serde(rename_all = "camelCase")]
pub struct RestoreSpec {
    /// The Backup whose artifact is restored, in the same namespace.
    pub backup_ref: ObjectReference,
    /// The Database restored into, in the same namespace. It must be Ready.
    pub database_ref: ObjectReference,
    /// The run whose artifact is restored (see the Backup's `status.history`). The newest
    /// verified artifact when not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub run_id: Option<String>,
}

/// Where a Restore is.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RestorePhase {
    /// Waiting for the Backup to be ready and the Database to serve.
    Pending,
    /// The restore Job runs.
    Running,
    /// The artifact was verified and restored.
    Completed,
    /// The restore failed; the Restored condition says why. Create a new Restore to retry.
    Failed,
}

/// What the backup-operator observed and concluded.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RestoreStatus {
    /// Where the Restore is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<RestorePhase>,
    /// When the restore Job started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the restore finished, successfully or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// The run whose artifact was restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// SHA-256 of the restored artifact, hex, as verified before restoring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// `method: physical`: the base backup (its run id) the data directory was prepared from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_backup: Option<String>,
    /// `method: physical`: the timeline recovery follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<i64>,
    /// `method: physical`: the recovery target the data directory was prepared for; absent
    /// when it recovers everything archived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_time: Option<Time>,
    /// `method: physical`: every WAL record before this position (an LSN) was fetched and
    /// verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restorable_to: Option<String>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Restored and Progressing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

impl Restore {
    /// The phase, `Pending` until the operator has written one.
    pub fn phase(&self) -> RestorePhase {
        self.status
            .as_ref()
            .and_then(|s| s.phase)
            .unwrap_or(RestorePhase::Pending)
    }
}
