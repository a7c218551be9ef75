//! What every Job of this operator shares: the restricted security context, the connection
//! to a Database through its credentials Secret, and the destination as environment and
//! volumes. The variable names come from [`backup_job::env`], which the `dump`, `restore` and
//! `purge` subcommands read, so the two sides cannot drift apart.

use std::collections::BTreeMap;

use api::names;
use api::{Backup, S3Destination};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec, PodTemplateSpec,
    ResourceRequirements, SeccompProfile, SecretKeySelector, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::scratch;
use backup_job::{EnvEntry, EnvValue, SecretKey, Series};

/// Field manager and `app.kubernetes.io/managed-by` value of everything this operator writes.
pub const MANAGER: &str = "backup-operator";
/// Says which kind of Job an object is: `backup`, `restore` or `cleanup`.
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
/// The user the backup image runs as (`USER 65532` in its Dockerfile); also the group that
/// owns the claim's files, so a claim made by any provisioner is writable.
pub const RUN_AS: i64 = 65532;
/// Where a PersistentVolumeClaim destination is mounted.
pub const CLAIM_MOUNT: &str = "/backups";
/// The only writable path besides the claim: the root filesystem is read-only.
const TMP: &str = "/tmp";
/// The resource a scratch volume's size is requested as.
const EPHEMERAL_STORAGE: &str = "ephemeral-storage";

/// Operator-wide settings for the Jobs it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct JobSettings {
    /// Image with the `backup-operator` binary and the PostgreSQL client programs.
    pub image: String,
    /// Upper bound for one Job; a Pod that cannot start (a missing Secret) fails here
    /// instead of hanging forever.
    pub active_deadline_seconds: i64,
}

/// Where a Backup's artifacts live, as Jobs and the operator address them.
#[derive(Clone, Debug, PartialEq)]
pub enum Destination {
    Claim {
        name: String,
        /// The operator created the claim (no `claimName` in the spec).
        operator_created: bool,
    },
    S3(S3Destination),
}

impl Destination {
    pub fn of(backup: &Backup) -> Self {
        let name = backup.metadata.name.as_deref().unwrap_or_default();
        match (&backup.spec.destination.s3, &backup.spec.destination.pvc) {
            (Some(s3), _) => Destination::S3(s3.clone()),
            (None, Some(pvc)) if pvc.claim_name.is_some() => Destination::Claim {
                name: pvc.claim_name.clone().unwrap_or_default(),
                operator_created: false,
            },
            (None, _) => Destination::Claim {
                name: names::backup_claim(name),
                operator_created: true,
            },
        }
    }
}

/// What differs between the operator's Jobs.
#[derive(Clone, Debug)]
pub struct JobParts {
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub owner: Option<OwnerReference>,
    /// Container name and subcommand, e.g. `backup` and `dump`.
    pub container: &'static str,
    pub subcommand: &'static str,
    /// What the subcommand is told (`backup_job::request`).
    pub env: Vec<EnvEntry>,
    /// Size of /tmp in bytes ([`scratch`]).
    pub tmp: u64,
    /// emptyDirs besides /tmp.
    pub scratch: Vec<ScratchVolume>,
    pub volumes: Vec<Volume>,
    pub mounts: Vec<VolumeMount>,
}

/// An emptyDir of the Job's Pod, mounted into its container, of at most `bytes`.
#[derive(Clone, Debug)]
pub struct ScratchVolume {
    pub name: &'static str,
    pub path: &'static str,
    pub bytes: u64,
}

/// A Job that runs `backup-operator <subcommand>` once: no retries (a failed dump is
/// reported and the next scheduled run tries again; a restore must never run twice), a
/// deadline, the result in the termination message, and the restricted Pod Security profile.
/// Its emptyDirs are limited to their sizes, which the container requests as ephemeral
/// storage: the Pod goes to a node with that room, and is evicted if it outgrows them.
pub fn job(parts: JobParts, settings: &JobSettings) -> Job {
    let name = parts.name.clone();
    let namespace = parts.namespace.clone();
    let labels = parts.labels.clone();
    let owner = parts.owner.clone();
    let mut template = pod_template(parts, settings);
    if let Some(spec) = template.spec.as_mut() {
        spec.restart_policy = Some("Never".into());
    }
    Job {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(namespace),
            labels: Some(labels),
            owner_references: owner.map(|owner| vec![owner]),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            active_deadline_seconds: Some(settings.active_deadline_seconds),
            template,
            ..JobSpec::default()
        }),
        status: None,
    }
}

/// The Pod every workload of this operator runs (Jobs and the WAL archiver): one container
/// running `backup-operator <subcommand>` under the restricted profile, its emptyDirs
/// limited to their sizes and requested as ephemeral storage. The restart policy is the
/// workload's to set.
pub fn pod_template(parts: JobParts, settings: &JobSettings) -> PodTemplateSpec {
    let mut env = env_vars(parts.env);
    // Temporary files (a restore's download) go to the emptyDir; the root is read-only.
    env.push(env_var(EnvEntry::plain("TMPDIR", TMP)));
    let tmp = ScratchVolume {
        name: "tmp",
        path: TMP,
        bytes: parts.tmp,
    };
    let scratch: Vec<_> = std::iter::once(tmp).chain(parts.scratch).collect();
    let room = scratch
        .iter()
        .fold(0u64, |sum, v| sum.saturating_add(v.bytes));
    let mut volumes: Vec<_> = scratch
        .iter()
        .map(|v| Volume {
            name: v.name.into(),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit: Some(scratch::quantity(v.bytes)),
                ..EmptyDirVolumeSource::default()
            }),
            ..Volume::default()
        })
        .collect();
    volumes.extend(parts.volumes);
    let mut mounts: Vec<_> = scratch
        .iter()
        .map(|v| VolumeMount {
            name: v.name.into(),
            mount_path: v.path.into(),
            ..VolumeMount::default()
        })
        .collect();
    mounts.extend(parts.mounts);
    let container = Container {
        name: parts.container.into(),
        image: Some(settings.image.clone()),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(vec!["backup-operator".into()]),
        args: Some(vec![parts.subcommand.into()]),
        env: Some(env),
        volume_mounts: Some(mounts),
        // The JSON result is written there; the controller reads it from the Pod status.
        termination_message_policy: Some("File".into()),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".into(), Quantity("100m".into())),
                ("memory".into(), Quantity("128Mi".into())),
                (EPHEMERAL_STORAGE.into(), scratch::quantity(room)),
            ])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    };
    let metadata = ObjectMeta {
        labels: Some(parts.labels),
        ..ObjectMeta::default()
    };
    PodTemplateSpec {
        metadata: Some(metadata),
        spec: Some(PodSpec {
            // The Jobs talk to PostgreSQL and storage, never to the Kubernetes API.
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(RUN_AS),
                run_as_group: Some(RUN_AS),
                fs_group: Some(RUN_AS),
                // A large claim is chowned once, not on every run.
                fs_group_change_policy: Some("OnRootMismatch".into()),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    ..SeccompProfile::default()
                }),
                ..PodSecurityContext::default()
            }),
            containers: vec![container],
            volumes: Some(volumes),
            ..PodSpec::default()
        }),
    }
}

/// `job` running as `uid` (user, group and fsGroup) instead of [`RUN_AS`]: a Job that writes
/// a database Pod's data directory must own its files as PostgreSQL does, since the server
/// refuses a data directory that is not its own. [`RUN_AS`] stays a supplemental group: a
/// claim destination's files are the other Jobs' (mode 0640, group [`RUN_AS`]), and a
/// hostPath volume gets no fsGroup ownership from the kubelet.
pub fn run_as(job: &mut Job, uid: i64) {
    let context = job
        .spec
        .as_mut()
        .and_then(|s| s.template.spec.as_mut())
        .and_then(|p| p.security_context.as_mut());
    if let Some(context) = context {
        context.run_as_user = Some(uid);
        context.run_as_group = Some(uid);
        context.fs_group = Some(uid);
        context.supplemental_groups = Some(vec![RUN_AS]);
    }
}

/// The connection to a Database's client Service as the user the database-operator created;
/// the credentials stay in the Secret and reach the Pod through `secretKeyRef`.
pub fn connection(database: &str, namespace: &str) -> backup_job::Connection {
    connection_to(names::service_host(database, namespace), database)
}

/// [`connection`] to `host`, one of the Database's Services.
pub fn connection_to(host: String, database: &str) -> backup_job::Connection {
    let secret = names::credentials_secret(database);
    backup_job::Connection {
        host,
        port: u16::try_from(names::POSTGRES_PORT).expect("POSTGRES_PORT is a TCP port"),
        user: SecretKey::new(&secret, names::SECRET_USERNAME),
        password: SecretKey::new(&secret, names::SECRET_PASSWORD),
        dbname: SecretKey::new(&secret, names::SECRET_DATABASE),
    }
}

/// The series of artifacts a Backup writes: `<database>/<backup>/<run-id>/` under the
/// destination. Filed under the Database's resource name, which the operator knows without
/// reading any Secret, so it can verify and delete them itself.
pub fn series(database: &str, backup: &str) -> Series {
    Series {
        database: database.into(),
        backup: backup.into(),
    }
}

/// The destination as the Job sees it: a claim is a directory at [`CLAIM_MOUNT`].
pub fn job_destination(destination: &Destination) -> backup_job::Destination {
    match destination {
        Destination::Claim { .. } => backup_job::Destination::Directory {
            path: CLAIM_MOUNT.into(),
        },
        Destination::S3(s3) => {
            let secret = &s3.credentials_secret.name;
            backup_job::Destination::S3(backup_job::S3Destination {
                endpoint: s3.endpoint.clone(),
                bucket: s3.bucket.clone(),
                prefix: s3.prefix.clone(),
                region: s3.region.clone(),
                force_path_style: s3.force_path_style,
                // The user wrote http:// into the Backup; that is the consent the data path
                // asks for before it sends backups unencrypted.
                allow_http: plain_http(s3),
                access_key_id: SecretKey::new(secret, names::S3_ACCESS_KEY_ID),
                secret_access_key: SecretKey::new(secret, names::S3_SECRET_ACCESS_KEY),
            })
        }
    }
}

/// The volume and mount a claim destination needs; none for S3. `read_only` for Jobs that
/// only read.
pub fn destination_volumes(
    destination: &Destination,
    read_only: bool,
) -> (Vec<Volume>, Vec<VolumeMount>) {
    match destination {
        Destination::Claim { name, .. } => (
            vec![Volume {
                name: "backups".into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: name.clone(),
                    read_only: read_only.then_some(true),
                }),
                ..Volume::default()
            }],
            vec![VolumeMount {
                name: "backups".into(),
                mount_path: CLAIM_MOUNT.into(),
                read_only: read_only.then_some(true),
                ..VolumeMount::default()
            }],
        ),
        Destination::S3(_) => (Vec::new(), Vec::new()),
    }
}

/// True when the endpoint is plain HTTP.
pub fn plain_http(s3: &S3Destination) -> bool {
    s3.endpoint
        .get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"))
}

/// Labels every object of this operator carries, plus `extra`.
pub fn labels(component: &str, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (names::LABEL_MANAGED_BY.to_string(), MANAGER.to_string()),
        (LABEL_COMPONENT.to_string(), component.to_string()),
    ]);
    labels.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    labels
}

/// The contract's environment as Kubernetes writes it into a container.
pub fn env_vars(entries: Vec<EnvEntry>) -> Vec<EnvVar> {
    entries.into_iter().map(env_var).collect()
}

fn env_var(entry: EnvEntry) -> EnvVar {
    let (value, value_from) = match entry.value {
        EnvValue::Plain(value) => (Some(value), None),
        EnvValue::FromSecret(SecretKey { secret, key }) => (
            None,
            Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: secret,
                    key,
                    optional: None,
                }),
                ..EnvVarSource::default()
            }),
        ),
    };
    EnvVar {
        name: entry.name.into(),
        value,
        value_from,
    }
}
