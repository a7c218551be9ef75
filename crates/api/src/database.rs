//! The `Database` kind: one PostgreSQL instance, reconciled by the database-operator.

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The image used when `spec.image` is not set.
pub const DEFAULT_IMAGE: &str = "postgres:17";

/// A PostgreSQL instance: a credentials Secret, a StatefulSet with a data volume, and Services.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "database.example.com",
    version = "v1",
    kind = "Database",
    plural = "databases",
    singular = "database",
    shortname = "pgdb",
    namespaced,
    status = "DatabaseStatus",
    derive = "PartialEq",
    cel,
    validation = Rule::new("self.spec.synchronousStandbys < self.spec.replicas").message("spec.synchronousStandbys must be less than spec.replicas: a primary cannot wait for more standbys than there are"),
    validation = Rule::new("size(self.metadata.name) <= 52").message("a Database name may have at most 52 characters: its StatefulSet's Pods carry the name plus a hash in a label"),
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Ready","type":"integer","jsonPath":".status.readyReplicas"}"#,
    printcolumn = r#"{"name":"Endpoint","type":"string","jsonPath":".status.endpoint","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseSpec {
    /// Container image running PostgreSQL. It must behave like the official `postgres` image:
    /// POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB and PGDATA, user 999, port 5432.
    #[serde(default = "default_image")]
    #[schemars(length(min = 1, max = 512))]
    pub image: String,

    /// Number of PostgreSQL instances, each a Pod with its own volume: one primary and
    /// `replicas - 1` hot standbys streaming from it. Clients write through the `<name>`
    /// Service (the primary) and read through `<name>-ro` (standbys) or `<name>-r` (any).
    /// Scaling down removes standbys, never the primary.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 1, max = 16))]
    pub replicas: i32,

    /// How many standbys must have a transaction on disk before its commit returns
    /// (quorum commit: any N of them). 0 (the default) is asynchronous replication: fastest,
    /// but a failover may lose the last transactions, which it reports. With N > 0 a failover
    /// loses no acknowledged transaction, and writes wait while fewer than N standbys stream.
    /// Less than `replicas`.
    #[serde(default)]
    #[schemars(range(min = 0, max = 15))]
    pub synchronous_standbys: i32,

    /// How the instances are spread over the cluster.
    #[serde(default)]
    pub spread: SpreadSpec,

    /// Name of the database created on first start. A lowercase PostgreSQL identifier
    /// (letters, digits, underscore; at most 63 characters); `postgres`, `template0`,
    /// `template1` and names starting with `pg_` are reserved. Cannot be changed later.
    #[schemars(length(max = 63))]
    #[x_kube(
        validation = Rule::new("self.matches('^[a-z_][a-z0-9_]*$')").message(Message::Expression("'databaseName \"' + self + '\" is not a valid PostgreSQL identifier: use 1 to 63 lowercase letters, digits or underscores, starting with a letter or underscore'".into())),
        validation = Rule::new("!(self in ['postgres', 'template0', 'template1']) && !self.startsWith('pg_')").message(Message::Expression("'databaseName \"' + self + '\" is reserved by PostgreSQL: choose another name (names starting with pg_ are reserved too)'".into())),
        validation = Rule::new("self == oldSelf").message("databaseName cannot be changed after creation: create a new Database and restore a Backup into it")
    )]
    pub database_name: String,

    /// Name of the user that owns the database. Same rules as `databaseName`; `postgres`,
    /// `public`, `none`, `user`, `current_user`, `current_role`, `session_user`,
    /// `system_user` and names starting with `pg_` are reserved. Cannot be changed later.
    #[schemars(length(max = 63))]
    #[x_kube(
        validation = Rule::new("self.matches('^[a-z_][a-z0-9_]*$')").message(Message::Expression("'username \"' + self + '\" is not a valid PostgreSQL identifier: use 1 to 63 lowercase letters, digits or underscores, starting with a letter or underscore'".into())),
        validation = Rule::new("!(self in ['postgres', 'public', 'none', 'user', 'current_user', 'current_role', 'session_user', 'system_user']) && !self.startsWith('pg_')").message(Message::Expression("'username \"' + self + '\" is reserved by PostgreSQL: choose another name (names starting with pg_ are reserved too)'".into())),
        validation = Rule::new("self == oldSelf").message("username cannot be changed after creation")
    )]
    pub username: String,

    /// The data volume of each Pod.
    pub storage: StorageSpec,

    /// CPU and memory requests and limits of the PostgreSQL container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// A Backup to initialise this Database from. Nothing is provisioned until that Backup
    /// reports `BackupReady=True`. A logical Backup's newest artifact is then restored before
    /// the Database becomes Ready; a physical Backup's newest base backup before `targetTime`
    /// is recovered with its archived WAL up to `targetTime` (or to the end of the archive)
    /// before the server starts. The Backup must back up another Database (a Backup of this
    /// one would wait for it forever).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_ref: Option<BackupRef>,
}

/// The Backup a new Database starts from.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BackupRef {
    /// Name of the Backup, in the same namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Recover to this moment, e.g. `2026-12-05T10:00:00Z` (RFC 3339): only with a Backup of
    /// `method: physical`, and only within its recoverability window
    /// (`status.recoverability`); the Database fails with the window in its message
    /// otherwise. Without it, everything archived is recovered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_time: Option<Time>,
}

/// Where instances may run relative to each other.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SpreadSpec {
    /// The failure domain instances are kept apart across: `Node` (the default) or `Zone`
    /// (the `topology.kubernetes.io/zone` label of the nodes).
    #[serde(default)]
    pub across: SpreadDomain,
    /// `false` (the default) prefers separate domains but places an instance anyway when
    /// there are too few; `true` leaves it Pending instead.
    #[serde(default)]
    pub required: bool,
}

/// A failure domain.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SpreadDomain {
    #[default]
    Node,
    Zone,
}

impl SpreadDomain {
    /// The node label that names the domain.
    pub fn topology_key(self) -> &'static str {
        match self {
            SpreadDomain::Node => "kubernetes.io/hostname",
            SpreadDomain::Zone => "topology.kubernetes.io/zone",
        }
    }
}

/// The persistent volume of each PostgreSQL Pod.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!isQuantity(self.size) || !isQuantity(oldSelf.size) || quantity(self.size).compareTo(quantity(oldSelf.size)) >= 0").message(Message::Expression("'storage.size may grow but never shrink (from ' + oldSelf.size + ' to ' + self.size + '): a volume cannot be made smaller'".into())))]
pub struct StorageSpec {
    /// Size of the volume, as a Kubernetes quantity such as `1Gi` or `500Mi`. It may grow
    /// (when the StorageClass allows volume expansion) but never shrink.
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(
        validation = Rule::new("isQuantity(self)").message(Message::Expression("'storage.size \"' + self + '\" is not a Kubernetes quantity: use a number with a unit such as 1Gi, 500Mi or 10G'".into())),
        validation = Rule::new("!isQuantity(self) || quantity(self).isGreaterThan(quantity('0'))").message("storage.size must be larger than zero")
    )]
    pub size: String,

    /// StorageClass of the volume; the cluster's default class when not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub storage_class_name: Option<String>,
}

/// A reference to another object in the same namespace.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectReference {
    /// Name of the object, in the same namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Where a Database is in its life.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DatabasePhase {
    /// Accepted, waiting for something it depends on (its backupRef).
    Pending,
    /// Creating the credentials Secret.
    Provisioning,
    /// Creating the Services.
    Configuring,
    /// The StatefulSet is rolling out.
    Deploying,
    /// Pods are up; waiting for them to be ready or for the initial restore to finish.
    Verifying,
    /// Every replica is ready and serves SQL.
    Ready,
    /// Something needs a change from the user; the Degraded condition says what.
    Failed,
}

impl DatabasePhase {
    /// All phases, in life order; used for metrics that report every phase, even empty ones.
    pub const ALL: [DatabasePhase; 7] = [
        DatabasePhase::Pending,
        DatabasePhase::Provisioning,
        DatabasePhase::Configuring,
        DatabasePhase::Deploying,
        DatabasePhase::Verifying,
        DatabasePhase::Ready,
        DatabasePhase::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DatabasePhase::Pending => "Pending",
            DatabasePhase::Provisioning => "Provisioning",
            DatabasePhase::Configuring => "Configuring",
            DatabasePhase::Deploying => "Deploying",
            DatabasePhase::Verifying => "Verifying",
            DatabasePhase::Ready => "Ready",
            DatabasePhase::Failed => "Failed",
        }
    }
}

/// What the database-operator observed and concluded.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseStatus {
    /// Where the Database is in its life.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<DatabasePhase>,
    /// PostgreSQL Pods that pass their readiness probe.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Secret holding `username`, `password`, `database`, `host` and `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// `host:port` clients connect to, inside the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The Pod whose PostgreSQL is the primary (the one the read-write Service reaches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_primary: Option<String>,
    /// The last failover: an unplanned promotion after the primary was lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failover: Option<FailoverReport>,
    /// Failovers this Database has had.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failovers: i64,
    /// What a Database created from a `method: physical` Backup was recovered from and to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<RecoveryStatus>,
    /// Every PostgreSQL instance: its Pod, role and readiness.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub instances: Vec<InstanceStatus>,
    /// Ready, Progressing, Degraded and WaitingForBackup, following Kubernetes API
    /// conventions: `lastTransitionTime` moves only when a condition's status flips.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// One PostgreSQL instance of a Database.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct InstanceStatus {
    /// The Pod.
    pub name: String,
    /// `primary` or `replica` (a streaming standby), as the instance's manager labelled its
    /// Pod; absent while the instance starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Whether the Pod passes its readiness probe (clients holding the Secret get in).
    pub ready: bool,
    /// The PostgreSQL timeline the instance is on (it grows with each promotion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<i64>,
    /// For a standby: how many bytes of WAL it has not replayed yet, as its primary reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_bytes: Option<i64>,
}

/// What the primary's instance manager reports about its standbys
/// ([`crate::names::ANNOTATION_REPLICATION`] on its Pod).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationReport {
    pub timeline: i64,
    /// By standby Pod name (its `application_name`).
    pub standbys: std::collections::BTreeMap<String, StandbyReport>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StandbyReport {
    /// `pg_stat_replication.state`: `streaming` once it has caught up.
    pub state: String,
    /// WAL the primary has written and the standby not replayed yet.
    pub lag_bytes: i64,
}

/// A failover as the promoted instance's manager reports it
/// ([`crate::names::ANNOTATION_FAILOVER`] on its Pod), and as the Database status keeps it.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FailoverReport {
    /// When the promoted instance took the primary's Lease (RFC 3339).
    pub time: String,
    /// The instance that was lost.
    pub from: String,
    /// The instance promoted.
    pub to: String,
    /// WAL the lost primary had written, as it last told the Lease, beyond what the promoted
    /// instance had received: an estimate of what the failover lost (it may be short by what
    /// was written in the last two seconds). Absent when the lost primary had not told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_bytes: Option<i64>,
    /// Whether synchronous standbys were required: then no acknowledged transaction is lost,
    /// whatever `lostBytes` says (those bytes were never acknowledged).
    pub synchronous: bool,
}

/// How a Database created from a `method: physical` Backup was recovered.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryStatus {
    /// The Backup recovered from (`spec.backupRef.name`).
    pub backup: String,
    /// The base backup (its run id) the data directory was prepared from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_backup: Option<String>,
    /// The requested recovery target; absent when everything archived was recovered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_time: Option<Time>,
    /// Commit time of the last transaction the server replayed before it promoted: the
    /// Database holds every transaction committed up to here and none after the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered_to: Option<Time>,
    /// The timeline the recovered server promoted onto.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<i64>,
}

/// Where an instance starting on data prepared for point-in-time recovery is, as its manager
/// reports it ([`crate::names::ANNOTATION_RECOVERY`] on its Pod).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryReport {
    pub state: RecoveryState,
    /// After promotion: the commit time of the last transaction replayed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered_to: Option<String>,
    /// After promotion: the new timeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<i64>,
    /// When failed: what PostgreSQL said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecoveryState {
    /// PostgreSQL replays the archived WAL.
    Recovering,
    /// Recovery reached its target (or the end of the archive) and the server promoted.
    Promoted,
    /// PostgreSQL stopped before the target: the message says why. Nothing is served.
    Failed,
}

impl Database {
    /// The phase, `Pending` until the operator has written one.
    pub fn phase(&self) -> DatabasePhase {
        self.status
            .as_ref()
            .and_then(|s| s.phase)
            .unwrap_or(DatabasePhase::Pending)
    }

    /// True once the operator reported the Database Ready for its current generation.
    pub fn is_ready(&self) -> bool {
        let Some(status) = &self.status else {
            return false;
        };
        status.observed_generation == self.metadata.generation
            && crate::conditions::is_true(&status.conditions, crate::conditions::READY)
    }
}

fn default_image() -> String {
    DEFAULT_IMAGE.to_string()
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn default_replicas() -> i32 {
    1
}
