//! The pure decisions: which claims and volumes are ours, where a claim's data lives, the
//! PersistentVolume pointing there, and the guard that keeps deletion inside the root.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{
    HostPathVolumeSource, ObjectReference, PersistentVolume, PersistentVolumeClaim,
    PersistentVolumeSpec,
};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::ObjectMeta;

/// The name StorageClasses give as `provisioner` to have their claims served by us.
pub const PROVISIONER: &str = "pgop.dev/local-path";
/// Set on every volume we make, so only those are ever deleted.
const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// The PV controller names a claim's provisioner here (the beta key on older clusters).
const STORAGE_PROVISIONER: [&str; 2] = [
    "volume.kubernetes.io/storage-provisioner",
    "volume.beta.kubernetes.io/storage-provisioner",
];
/// Linux's limit for one path component.
const NAME_MAX: usize = 255;

/// Mode of a new volume directory: writable by every uid.
///
/// A CSI driver's volume is chowned to the Pod's fsGroup by the kubelet, but the kubelet
/// never does that for hostPath volumes, and with Immediate binding no Pod exists when the
/// directory is made, so no owner or group chosen here could be right. A setgid bit would
/// only make new files group root. With 0777, files belong to the writing Pod's uid and
/// runAsGroup; Pods setting runAsGroup equal to fsGroup (both operators do) see the same
/// ownership as on a CSI volume. Only acceptable on a one-machine test cluster whose volume
/// root is closed to other host users (mode 0700: pods reach their directory by bind mount).
pub const DIR_MODE: u32 = 0o777;
pub const ROOT_MODE: u32 = 0o700;

/// The volume of a claim: one per claim uid, so a restart finds what it already made.
pub fn pv_name(claim_uid: &str) -> String {
    format!("pvc-{claim_uid}")
}

/// `<namespace>-<claim>-<uid prefix>`: readable on the host, unique through the uid.
pub fn dir_name(namespace: &str, claim: &str, claim_uid: &str) -> String {
    let uid: String = claim_uid.chars().take(8).collect();
    let readable: String = format!("{namespace}-{claim}")
        .chars()
        .take(NAME_MAX - uid.len() - 1)
        .collect();
    format!("{readable}-{uid}")
}

/// A claim to provision: still unbound and Pending, of a class that names us.
pub fn wants_volume(claim: &PersistentVolumeClaim, class: Option<&StorageClass>) -> bool {
    let spec = claim.spec.as_ref();
    let unbound = spec
        .and_then(|s| s.volume_name.as_deref())
        .is_none_or(str::is_empty);
    let pending = claim
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_none_or(|p| p == "Pending");
    let annotated = claim.metadata.annotations.as_ref().is_some_and(|a| {
        STORAGE_PROVISIONER
            .iter()
            .any(|key| a.get(*key).is_some_and(|p| p == PROVISIONER))
    });
    let class_is_ours = class.is_some_and(|c| c.provisioner == PROVISIONER);
    claim.metadata.deletion_timestamp.is_none()
        && unbound
        && pending
        && (annotated || class_is_ours)
}

/// The PersistentVolume for `claim` at `path`, pre-bound to the claim by uid; the PV
/// controller completes the binding.
pub fn persistent_volume(
    claim: &PersistentVolumeClaim,
    class: Option<&StorageClass>,
    path: &Path,
) -> Result<PersistentVolume> {
    let meta = &claim.metadata;
    let (Some(namespace), Some(name), Some(uid)) = (&meta.namespace, &meta.name, &meta.uid) else {
        bail!("the claim lacks a namespace, name or uid");
    };
    let spec = claim.spec.clone().unwrap_or_default();
    if spec.volume_mode.as_deref() == Some("Block") {
        bail!("volumeMode Block is not supported: this provisioner makes directories");
    }
    let size = spec
        .resources
        .and_then(|r| r.requests)
        .and_then(|r| r.get("storage").cloned())
        .context("the claim requests no storage size")?;
    Ok(PersistentVolume {
        metadata: ObjectMeta {
            name: Some(pv_name(uid)),
            annotations: Some([(PROVISIONED_BY.to_string(), PROVISIONER.to_string())].into()),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeSpec {
            // Not enforced: a hostPath directory can grow to the size of the disk.
            capacity: Some([("storage".to_string(), size)].into()),
            access_modes: spec.access_modes,
            volume_mode: Some("Filesystem".to_string()),
            persistent_volume_reclaim_policy: Some(
                class
                    .and_then(|c| c.reclaim_policy.clone())
                    .unwrap_or_else(|| "Delete".to_string()),
            ),
            storage_class_name: spec.storage_class_name,
            claim_ref: Some(ObjectReference {
                api_version: Some("v1".to_string()),
                kind: Some("PersistentVolumeClaim".to_string()),
                namespace: Some(namespace.clone()),
                name: Some(name.clone()),
                uid: Some(uid.clone()),
                ..ObjectReference::default()
            }),
            // `Directory`, not `DirectoryOrCreate`: a missing directory is an error to
            // see, not a root-owned 0755 one the Pod then cannot write.
            host_path: Some(HostPathVolumeSource {
                path: path.to_string_lossy().into_owned(),
                type_: Some("Directory".to_string()),
            }),
            ..PersistentVolumeSpec::default()
        }),
        status: None,
    })
}

/// A volume of ours whose claim is gone and whose class said to delete it.
pub fn released_for_deletion(volume: &PersistentVolume) -> bool {
    let ours = volume
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PROVISIONED_BY))
        .is_some_and(|p| p == PROVISIONER);
    let delete = volume
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
        == Some("Delete");
    let released = volume.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Released");
    ours && delete && released
}

/// `path` when it is a direct child of `root`, the only directories this provisioner makes;
/// `None` for anything else (`..`, the root itself, deeper paths, other trees), so an edited
/// PersistentVolume cannot make us delete the wrong directory.
pub fn dir_under_root(root: &Path, path: &Path) -> Option<PathBuf> {
    let mut rest = path.strip_prefix(root).ok()?.components();
    match (rest.next(), rest.next()) {
        (Some(Component::Normal(name)), None) => Some(root.join(name)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        PersistentVolumeClaimSpec, PersistentVolumeClaimStatus, PersistentVolumeStatus,
        VolumeResourceRequirements,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    const UID: &str = "0a1b2c3d-aaaa-bbbb-cccc-000000000000";

    fn claim(annotations: &[(&str, &str)]) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: ObjectMeta {
                namespace: Some("shop".into()),
                name: Some("data-db-0".into()),
                uid: Some(UID.into()),
                annotations: Some(
                    annotations
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".into()]),
                storage_class_name: Some("standard".into()),
                resources: Some(VolumeResourceRequirements {
                    requests: Some([("storage".into(), Quantity("256Mi".into()))].into()),
                    ..VolumeResourceRequirements::default()
                }),
                ..PersistentVolumeClaimSpec::default()
            }),
            status: Some(PersistentVolumeClaimStatus {
                phase: Some("Pending".into()),
                ..PersistentVolumeClaimStatus::default()
            }),
        }
    }

    fn class(provisioner: &str, reclaim: Option<&str>) -> StorageClass {
        StorageClass {
            provisioner: provisioner.into(),
            reclaim_policy: reclaim.map(Into::into),
            ..StorageClass::default()
        }
    }

    #[test]
    fn claims_of_our_class_or_annotation_want_a_volume_until_bound() {
        let ours = class(PROVISIONER, None);
        assert!(wants_volume(&claim(&[]), Some(&ours)));
        assert!(wants_volume(
            &claim(&[(STORAGE_PROVISIONER[0], PROVISIONER)]),
            None
        ));
        assert!(!wants_volume(
            &claim(&[]),
            Some(&class("kubernetes.io/host-path", None))
        ));
        assert!(!wants_volume(
            &claim(&[(STORAGE_PROVISIONER[0], "other")]),
            None
        ));
        let mut bound = claim(&[]);
        bound.spec.as_mut().unwrap().volume_name = Some("pvc-x".into());
        assert!(!wants_volume(&bound, Some(&ours)));
    }

    #[test]
    fn volume_is_prebound_to_the_claim_with_its_size_modes_and_policy() {
        let path = Path::new("/v/shop-data-db-0-0a1b2c3d");
        let pv = persistent_volume(&claim(&[]), Some(&class(PROVISIONER, Some("Retain"))), path)
            .unwrap();
        assert_eq!(
            pv.metadata.name.as_deref(),
            Some("pvc-0a1b2c3d-aaaa-bbbb-cccc-000000000000")
        );
        assert_eq!(
            pv.metadata.annotations.unwrap()[PROVISIONED_BY],
            PROVISIONER
        );
        let spec = pv.spec.unwrap();
        assert_eq!(spec.capacity.unwrap()["storage"], Quantity("256Mi".into()));
        assert_eq!(spec.access_modes.unwrap(), ["ReadWriteOnce"]);
        assert_eq!(
            spec.persistent_volume_reclaim_policy.as_deref(),
            Some("Retain")
        );
        assert_eq!(spec.storage_class_name.as_deref(), Some("standard"));
        let claim_ref = spec.claim_ref.unwrap();
        assert_eq!(
            (claim_ref.namespace.unwrap(), claim_ref.uid.unwrap()),
            ("shop".into(), UID.into())
        );
        let host = spec.host_path.unwrap();
        assert_eq!(
            (host.path.as_str(), host.type_.as_deref()),
            (path.to_str().unwrap(), Some("Directory"))
        );
    }

    #[test]
    fn reclaim_policy_defaults_to_delete_and_block_claims_are_refused() {
        let pv = persistent_volume(&claim(&[]), None, Path::new("/v/x")).unwrap();
        assert_eq!(
            pv.spec.unwrap().persistent_volume_reclaim_policy.as_deref(),
            Some("Delete")
        );
        let mut block = claim(&[]);
        block.spec.as_mut().unwrap().volume_mode = Some("Block".into());
        assert!(persistent_volume(&block, None, Path::new("/v/x")).is_err());
    }

    #[test]
    fn directory_names_are_readable_unique_and_fit_a_path_component() {
        assert_eq!(
            dir_name("shop", "data-db-0", UID),
            "shop-data-db-0-0a1b2c3d"
        );
        let long = dir_name(&"n".repeat(63), &"c".repeat(253), UID);
        assert_eq!(long.len(), NAME_MAX);
        assert!(long.ends_with("-0a1b2c3d"));
    }

    #[test]
    fn only_released_volumes_of_ours_with_delete_are_deleted() {
        let mut pv = persistent_volume(&claim(&[]), None, Path::new("/v/x")).unwrap();
        assert!(!released_for_deletion(&pv));
        pv.status = Some(PersistentVolumeStatus {
            phase: Some("Released".into()),
            ..Default::default()
        });
        assert!(released_for_deletion(&pv));
        pv.metadata.annotations = None;
        assert!(!released_for_deletion(&pv));
    }

    #[test]
    fn root_guard_accepts_only_direct_children_of_the_root() {
        let root = Path::new("/var/lib/pgop-node/volumes");
        let ok = Path::new("/var/lib/pgop-node/volumes/shop-data-0a1b2c3d");
        assert_eq!(dir_under_root(root, ok).as_deref(), Some(ok));
        for bad in [
            "/var/lib/pgop-node/volumes",
            "/var/lib/pgop-node/volumes/..",
            "/var/lib/pgop-node/volumes/../../../etc",
            "/var/lib/pgop-node/volumes/a/b",
            "/var/lib/pgop-node/volumes-evil/a",
            "/etc",
            "volumes/a",
        ] {
            assert_eq!(dir_under_root(root, Path::new(bad)), None, "{bad}");
        }
    }
}
