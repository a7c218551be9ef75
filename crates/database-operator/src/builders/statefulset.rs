//! The StatefulSet running PostgreSQL.
//!
//! # Data outlives the Database
//!
//! Each Pod `<db>-N` gets a PersistentVolumeClaim `data-<db>-N` from the `data` claim
//! template. The claims are retained both when the StatefulSet is deleted (with its Database,
//! by the garbage collector) and when it scales down
//! (`persistentVolumeClaimRetentionPolicy` Retain/Retain), so deleting a Database never
//! deletes data. Recreating a Database with the same name picks its volumes up again; to free
//! the space, delete the claims by hand:
//! `kubectl delete pvc -l database.example.com/database=<db>` (or `data-<db>-N` by name).
//!
//! # Volume claim templates are immutable
//!
//! The API server rejects any change to `volumeClaimTemplates`, so once the StatefulSet exists
//! its templates are carried over unchanged ([`claim_templates`]); a larger `storage.size`
//! is then applied to the claims themselves (see [`crate::volumes`]).
//!
//! # One primary, streaming standbys
//!
//! Each Pod runs the instance manager (`instance-manager` crate) as the postgres container's
//! command: an init container with the operator's own image copies the binary into the Pod
//! (the `controller` volume), so the PostgreSQL image needs nothing but what the official
//! image has. The manager decides the instance's role from the Lease `<db>-primary`, clones
//! or rewinds as needed, runs the image's entrypoint, and labels its Pod with its role. It
//! acts with the Pod's ServiceAccount `<db>-instance` ([`super::rbac`]).
//!
//! # Pod management
//!
//! `Parallel` starts all Pods at once (a standby waits for the primary by itself) and lets a
//! rolling update replace a Pod that never became ready, so fixing a bad image recovers
//! without deleting Pods by hand. Instances prefer different nodes.

use api::{Database, names};
use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
    StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodAffinityTerm,
    PodAntiAffinity, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SeccompProfile,
    SecretKeySelector, SecurityContext, TCPSocketAction, Volume, VolumeMount,
    VolumeResourceRequirements, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::{credentials, labels, owned_meta, selector_labels};

/// Name of the claim template, hence of the claims: `data-<db>-N`.
pub const DATA_VOLUME: &str = names::DATA_VOLUME;
/// Where the data volume is mounted; PGDATA is a subdirectory because initdb refuses a
/// directory that is not empty, and a fresh filesystem has `lost+found`. Shared through the
/// api crate with the backup-operator's recovery Job, which fills it before the first start.
pub const DATA_MOUNT: &str = names::DATA_MOUNT;
pub const PGDATA: &str = names::PGDATA;
/// The Pod's own directory for the instance manager: its binary, the hba file, libpq's
/// password file.
pub const CONTROLLER_DIR: &str = "/controller";
/// Where PostgreSQL puts its socket (an emptyDir: the root filesystem is read-only).
const SOCKET_DIR: &str = "/var/run/postgresql";
/// uid and gid of the `postgres` user in the official image.
const POSTGRES_UID: i64 = names::POSTGRES_UID;
/// Seconds PostgreSQL gets to stop; the preStop hook uses most of them.
const GRACE_SECONDS: i64 = 60;

/// The claim templates for the StatefulSet. Once the StatefulSet exists, its size and
/// StorageClass are kept: the API server refuses changes to claim templates. The rest is
/// built from the spec as always, so the content (and its hash) stays the same from one
/// reconcile to the next; a future change to the template's labels would be refused too.
pub fn claim_templates(
    db: &Database,
    existing: Option<&StatefulSet>,
) -> Vec<PersistentVolumeClaim> {
    let mut claim = data_claim(db);
    let current = existing.and_then(data_template);
    if let (Some(current), Some(spec)) = (current, claim.spec.as_mut()) {
        let current_spec = current.spec.clone().unwrap_or_default();
        spec.storage_class_name = current_spec.storage_class_name;
        spec.resources = current_spec.resources;
    }
    vec![claim]
}

fn data_template(sts: &StatefulSet) -> Option<&PersistentVolumeClaim> {
    sts.spec
        .as_ref()?
        .volume_claim_templates
        .as_ref()?
        .iter()
        .find(|t| t.metadata.name.as_deref() == Some(DATA_VOLUME))
}

/// Size requested by the `data` claim template of an existing StatefulSet.
pub fn claim_size_of(sts: &StatefulSet) -> Option<String> {
    requested_storage(data_template(sts)?)
}

/// The storage a claim (or claim template) requests.
fn requested_storage(claim: &PersistentVolumeClaim) -> Option<String> {
    claim
        .spec
        .as_ref()?
        .resources
        .as_ref()?
        .requests
        .as_ref()?
        .get("storage")
        .map(|q| q.0.clone())
}

/// The claim of instance 0, as the StatefulSet controller would make it from the `data`
/// template: the same builder, named `data-<db>-0`. A Database recovered from a physical
/// Backup needs it before its StatefulSet exists (the recovery Job fills it); the StatefulSet
/// then adopts it by name. Like the template's claims it has no owner: data outlives the
/// Database.
pub fn first_data_claim(db: &Database) -> PersistentVolumeClaim {
    let mut claim = data_claim(db);
    claim.metadata.name = Some(names::data_claim(&db.name_any(), 0));
    claim.metadata.namespace = db.namespace();
    claim
}

fn data_claim(db: &Database) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(DATA_VOLUME.to_string()),
            // Claims inherit these, so the operator can find and watch them by label.
            labels: Some(labels(db)),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_string()]),
            storage_class_name: db.spec.storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(
                    [(
                        "storage".to_string(),
                        Quantity(db.spec.storage.size.clone()),
                    )]
                    .into(),
                ),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

/// What the Pods need from the operator's own configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSettings {
    /// The image the instance manager is copied from: the operator's own.
    pub instance_manager_image: String,
}

/// The StatefulSet of `db` with the given claim templates (see [`claim_templates`]) and the
/// cluster IP of its read-write Service, once it has one (see [`postgres_container`]).
pub fn statefulset(
    db: &Database,
    claims: Vec<PersistentVolumeClaim>,
    settings: &PodSettings,
    primary_address: Option<&str>,
) -> StatefulSet {
    let name = db.name_any();
    StatefulSet {
        metadata: owned_meta(db, names::statefulset(&name)),
        spec: Some(StatefulSetSpec {
            replicas: Some(db.spec.replicas),
            service_name: Some(names::headless_service(&name)),
            selector: LabelSelector {
                match_labels: Some(selector_labels(db)),
                ..LabelSelector::default()
            },
            pod_management_policy: Some("Parallel".to_string()),
            // The operator replaces the Pods itself, standbys first (`crate::rollout`).
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".to_string()),
                rolling_update: None,
            }),
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some("Retain".to_string()),
                    when_scaled: Some("Retain".to_string()),
                },
            ),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(db)),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec(
                    db,
                    settings,
                    wal_retention(&claims),
                    primary_address,
                )),
            },
            volume_claim_templates: Some(claims),
            ..StatefulSetSpec::default()
        }),
        status: None,
    }
}

fn pod_spec(
    db: &Database,
    settings: &PodSettings,
    wal: WalRetention,
    primary_address: Option<&str>,
) -> PodSpec {
    let empty_dir = |name: &str| Volume {
        name: name.to_string(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    };
    let postgres = postgres_container(db, wal, primary_address);
    PodSpec {
        init_containers: Some(vec![
            install_container(settings),
            credentials::set_password_container(&postgres),
        ]),
        containers: vec![postgres],
        service_account_name: Some(names::instance_account(&db.name_any())),
        affinity: Some(spread(db)),
        security_context: Some(PodSecurityContext {
            run_as_user: Some(POSTGRES_UID),
            run_as_group: Some(POSTGRES_UID),
            fs_group: Some(POSTGRES_UID),
            // Large volumes are only re-chowned when their root has the wrong owner.
            fs_group_change_policy: Some("OnRootMismatch".to_string()),
            run_as_non_root: Some(true),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_string(),
                ..SeccompProfile::default()
            }),
            ..PodSecurityContext::default()
        }),
        // Service links would inject variables such as POSTGRES_PORT=tcp://... for any Service
        // named `postgres` in the namespace, which confuses tools reading POSTGRES_*.
        enable_service_links: Some(false),
        termination_grace_period_seconds: Some(GRACE_SECONDS),
        volumes: Some(vec![
            empty_dir("run"),
            empty_dir("tmp"),
            empty_dir("controller"),
            credentials::volume(db),
        ]),
        ..PodSpec::default()
    }
}

/// Instances kept apart across nodes (or zones): losing one loses one instance. Preferred by
/// default, so a cluster with too few domains still runs every instance; required on request.
fn spread(db: &Database) -> Affinity {
    let spread = &db.spec.spread;
    let term = PodAffinityTerm {
        topology_key: spread.across.topology_key().to_string(),
        label_selector: Some(LabelSelector {
            match_labels: Some(selector_labels(db)),
            ..LabelSelector::default()
        }),
        ..PodAffinityTerm::default()
    };
    let anti_affinity = if spread.required {
        PodAntiAffinity {
            required_during_scheduling_ignored_during_execution: Some(vec![term]),
            ..PodAntiAffinity::default()
        }
    } else {
        PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: term,
                },
            ]),
            ..PodAntiAffinity::default()
        }
    };
    Affinity {
        pod_anti_affinity: Some(anti_affinity),
        ..Affinity::default()
    }
}

/// Copies the instance manager (the operator's own binary) into the `controller` volume.
fn install_container(settings: &PodSettings) -> Container {
    Container {
        name: "install-instance-manager".to_string(),
        image: Some(settings.instance_manager_image.clone()),
        args: Some(
            ["instance", "install", CONTROLLER_DIR]
                .map(String::from)
                .to_vec(),
        ),
        security_context: Some(restricted()),
        volume_mounts: Some(vec![VolumeMount {
            name: "controller".to_string(),
            mount_path: CONTROLLER_DIR.to_string(),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    }
}

fn restricted() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_string()]),
            ..Capabilities::default()
        }),
        ..SecurityContext::default()
    }
}

/// What WAL an instance keeps for others, from the data volume's size (the claim template's,
/// which keeps its size: a grown volume must not restart every Pod).
struct WalRetention {
    /// `max_slot_wal_keep_size`: half the volume, for a standby that fell behind; past it
    /// the standby's slot is invalidated (it is cloned again) rather than the disk filling.
    slot: String,
    /// `wal_keep_size`: a quarter of the volume, one segment to 1 GB, kept whatever the slots.
    /// A former primary rewound after a failover replays from the last checkpoint the two
    /// servers share, before the fork; that WAL is older than any slot on the new primary,
    /// which removed it when it was a standby unless this keeps it.
    keep: String,
}

fn wal_retention(claims: &[PersistentVolumeClaim]) -> WalRetention {
    let size = claims
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(DATA_VOLUME))
        .and_then(requested_storage)
        .and_then(|size| api::quantity::bytes(&size))
        .unwrap_or(1 << 30);
    let mib = size / (1 << 20);
    WalRetention {
        slot: format!("{}MB", (mib / 2).max(64)),
        keep: format!("{}MB", (mib / 4).clamp(16, 1024)),
    }
}

/// The PostgreSQL container. Standbys stream from the read-write Service's cluster IP
/// (`PGOP_PRIMARY_ADDRESS`), its name only for libpq's password file: a standby's WAL
/// receiver resolving the name when a node is lost may wait out the resolver's timeout on a
/// DNS replica of that node, and a promotion waits for the WAL receiver to stop. A cluster IP
/// never changes while its Service lives; a Service created again changes the template, and
/// the Pods are replaced as for any change.
fn postgres_container(
    db: &Database,
    wal: WalRetention,
    primary_address: Option<&str>,
) -> Container {
    let secret = names::credentials_secret(&db.name_any());
    let from_secret = |env: &str, key: &str| EnvVar {
        name: env.to_string(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.clone(),
                key: key.to_string(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    };
    let mount = |name: &str, path: &str| VolumeMount {
        name: name.to_string(),
        mount_path: path.to_string(),
        ..VolumeMount::default()
    };
    let value = |env: &str, value: String| EnvVar {
        name: env.to_string(),
        value: Some(value),
        ..EnvVar::default()
    };
    let field = |env: &str, path: &str| EnvVar {
        name: env.to_string(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.to_string(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    };
    let name = db.name_any();
    Container {
        name: "postgres".to_string(),
        image: Some(db.spec.image.clone()),
        command: Some(vec![format!("{CONTROLLER_DIR}/instance-manager")]),
        args: Some(["instance", "run"].map(String::from).to_vec()),
        ports: Some(vec![ContainerPort {
            name: Some("postgres".to_string()),
            container_port: names::POSTGRES_PORT,
            protocol: Some("TCP".to_string()),
            ..ContainerPort::default()
        }]),
        env: Some(
            [
                from_secret("POSTGRES_USER", names::SECRET_USERNAME),
                from_secret("POSTGRES_PASSWORD", names::SECRET_PASSWORD),
                from_secret("POSTGRES_DB", names::SECRET_DATABASE),
                EnvVar {
                    name: "PGDATA".to_string(),
                    value: Some(PGDATA.to_string()),
                    ..EnvVar::default()
                },
                credentials::password_file_env(),
                field("POD_NAME", "metadata.name"),
                field("POD_NAMESPACE", "metadata.namespace"),
                value("PGOP_DATABASE", name.clone()),
                value("PGOP_STATEFULSET", names::statefulset(&name)),
                value("PGOP_HEADLESS_SERVICE", names::headless_service(&name)),
                value("PGOP_PRIMARY_SERVICE", names::client_service(&name)),
                value("PGOP_LEASE", names::primary_lease(&name)),
                value("PGOP_WORK_DIR", CONTROLLER_DIR.to_string()),
                value("PGOP_SOCKET_DIR", SOCKET_DIR.to_string()),
                value("PGOP_MAX_SLOT_WAL_KEEP_SIZE", wal.slot),
                value("PGOP_WAL_KEEP_SIZE", wal.keep),
                // Checksums catch corruption, and let pg_rewind bring a former primary back.
                value("POSTGRES_INITDB_ARGS", "--data-checksums".to_string()),
            ]
            .into_iter()
            .chain(primary_address.map(|ip| value("PGOP_PRIMARY_ADDRESS", ip.to_string())))
            .collect(),
        ),
        resources: db.spec.resources.clone(),
        readiness_probe: Some(credentials::login_probe(db)),
        // Liveness only asks whether the postmaster listens: a server in crash recovery
        // rejects connections for a while, and restarting it then only starts recovery over.
        liveness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(names::POSTGRES_PORT),
                ..TCPSocketAction::default()
            }),
            period_seconds: Some(10),
            timeout_seconds: Some(5),
            failure_threshold: Some(6),
            ..Probe::default()
        }),
        // initdb on first start (and loading a large PGDATA) may take minutes; liveness waits.
        startup_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(names::POSTGRES_PORT),
                ..TCPSocketAction::default()
            }),
            period_seconds: Some(10),
            failure_threshold: Some(60),
            ..Probe::default()
        }),
        // No preStop hook: the instance manager is PID 1 and turns SIGTERM into a fast
        // shutdown (a smart one would wait for every client until the grace period ends),
        // then gives up the primary's Lease so a standby takes over at once.
        security_context: Some(restricted()),
        // The root filesystem is read-only; PostgreSQL writes its socket and lock files to
        // /var/run/postgresql and temporary files to /tmp.
        volume_mounts: Some(vec![
            mount(DATA_VOLUME, DATA_MOUNT),
            mount("run", SOCKET_DIR),
            mount("tmp", "/tmp"),
            mount("controller", CONTROLLER_DIR),
            credentials::mount(),
        ]),
        ..Container::default()
    }
}

#[cfg(test)]
mod tests;
