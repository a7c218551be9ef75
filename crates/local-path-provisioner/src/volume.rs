//! The pure decisions about claims and volumes: which are ours, which node a claim's volume
//! goes to, and the PersistentVolume pinned there.

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{
    HostPathVolumeSource, ObjectReference, PersistentVolume, PersistentVolumeClaim,
    PersistentVolumeSpec,
};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::ObjectMeta;

use crate::layout::{self, Layout};

/// The name StorageClasses give as `provisioner` to have their claims served by us.
pub const PROVISIONER: &str = "pgop.dev/local-path";
/// Set on every volume we make, so only those are ever deleted or counted.
pub const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// The scheduler names here the node of a claim of a WaitForFirstConsumer class, once a Pod
/// using it is scheduled.
const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// The PV controller names a claim's provisioner here (the beta key on older clusters).
const STORAGE_PROVISIONER: [&str; 2] = [
    "volume.kubernetes.io/storage-provisioner",
    "volume.beta.kubernetes.io/storage-provisioner",
];

/// The volume of a claim, and its directory's name: one per claim uid, so a restart finds
/// what it already made.
pub fn pv_name(claim_uid: &str) -> String {
    format!("pvc-{claim_uid}")
}

/// A volume this provisioner made.
pub fn provisioned_by_us(volume: &PersistentVolume) -> bool {
    volume
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PROVISIONED_BY))
        .is_some_and(|p| p == PROVISIONER)
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

/// Where a wanted claim's volume goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Placement<'a> {
    /// On the node the scheduler selected (or anyone did, whatever the binding mode).
    Selected(&'a str),
    /// Nowhere yet: the class waits for the first consumer, and the scheduler will select a
    /// node once a Pod using the claim is scheduled; the claim changes then.
    AwaitScheduler,
    /// Ours to choose: the class binds at once ([`crate::node::least_used`]).
    Choose,
}

/// The claim's selected node when it has one, else what its class's binding mode implies. A
/// claim without a class (served because the PV controller annotated it) binds at once.
pub fn placement<'a>(
    claim: &'a PersistentVolumeClaim,
    class: Option<&StorageClass>,
) -> Placement<'a> {
    let selected = claim
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SELECTED_NODE))
        .filter(|n| !n.is_empty());
    let waits =
        class.and_then(|c| c.volume_binding_mode.as_deref()) == Some("WaitForFirstConsumer");
    match selected {
        Some(node) => Placement::Selected(node),
        None if waits => Placement::AwaitScheduler,
        None => Placement::Choose,
    }
}

/// The PersistentVolume for `claim` on `node`, pre-bound to the claim by uid (the PV
/// controller completes the binding) and pinned to the node, whose kubelet alone sees its
/// directory. An error is the claim's fault (or its selected node's name).
pub fn persistent_volume(
    claim: &PersistentVolumeClaim,
    class: Option<&StorageClass>,
    layout: &Layout,
    node: &str,
) -> Result<PersistentVolume> {
    let meta = &claim.metadata;
    let (Some(namespace), Some(name), Some(uid)) = (&meta.namespace, &meta.name, &meta.uid) else {
        bail!("the claim lacks a namespace, name or uid");
    };
    // Checked here, not only when the directory is made, so a bad node name in the claim's
    // annotation is reported as the claim's fault.
    layout.volumes_on_host(node)?;
    let pv_name = pv_name(uid);
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
            name: Some(pv_name.clone()),
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
                path: layout.path_on_node(&pv_name).to_string_lossy().into_owned(),
                type_: Some("Directory".to_string()),
            }),
            node_affinity: Some(layout::node_affinity(node)),
            ..PersistentVolumeSpec::default()
        }),
        status: None,
    })
}

/// A volume of ours whose claim is gone and whose class said to delete it.
pub fn released_for_deletion(volume: &PersistentVolume) -> bool {
    let delete = volume
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
        == Some("Delete");
    let released = volume.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Released");
    provisioned_by_us(volume) && delete && released
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

    fn layout() -> Layout {
        Layout::new(
            "/var/lib/pgop-nodes".into(),
            "/var/lib/pgop-node/volumes".into(),
        )
        .unwrap()
    }

    const PV: &str = "pvc-0a1b2c3d-aaaa-bbbb-cccc-000000000000";

    #[test]
    fn volume_is_prebound_to_the_claim_with_its_size_modes_and_policy() {
        let ours = class(PROVISIONER, Some("Retain"));
        let pv = persistent_volume(&claim(&[]), Some(&ours), &layout(), "pgop-node-1").unwrap();
        assert_eq!(pv.metadata.name.as_deref(), Some(PV));
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
    }

    #[test]
    fn claim_with_a_selected_node_gets_a_volume_pinned_there_at_the_node_path() {
        let waiting = StorageClass {
            volume_binding_mode: Some("WaitForFirstConsumer".into()),
            ..class(PROVISIONER, None)
        };
        let claim = claim(&[(SELECTED_NODE, "pgop-node-2")]);
        let Placement::Selected(node) = placement(&claim, Some(&waiting)) else {
            panic!("the selected node is not used");
        };
        let pv = persistent_volume(&claim, Some(&waiting), &layout(), node).unwrap();
        let spec = pv.spec.as_ref().unwrap();
        let host = spec.host_path.as_ref().unwrap();
        assert_eq!(
            (host.path.as_str(), host.type_.as_deref()),
            (
                format!("/var/lib/pgop-node/volumes/{PV}").as_str(),
                Some("Directory")
            )
        );
        let terms = &spec
            .node_affinity
            .as_ref()
            .unwrap()
            .required
            .as_ref()
            .unwrap()
            .node_selector_terms;
        assert_eq!(terms.len(), 1);
        assert_eq!(terms[0].match_fields, None);
        let expressions = terms[0].match_expressions.as_deref().unwrap();
        assert_eq!(expressions.len(), 1);
        assert_eq!(
            (
                expressions[0].key.as_str(),
                expressions[0].operator.as_str(),
                expressions[0].values.as_deref().unwrap()
            ),
            (
                "kubernetes.io/hostname",
                "In",
                ["pgop-node-2".to_string()].as_slice()
            )
        );
        // What is made on the host is what reclaim will remove.
        assert_eq!(
            layout().dir_on_host(&pv).unwrap(),
            std::path::Path::new(&format!("/var/lib/pgop-nodes/pgop-node-2/volumes/{PV}"))
        );
    }

    #[test]
    fn claims_wait_for_the_scheduler_only_in_a_waiting_class() {
        let waiting = StorageClass {
            volume_binding_mode: Some("WaitForFirstConsumer".into()),
            ..class(PROVISIONER, None)
        };
        let immediate = StorageClass {
            volume_binding_mode: Some("Immediate".into()),
            ..class(PROVISIONER, None)
        };
        assert_eq!(
            placement(&claim(&[]), Some(&waiting)),
            Placement::AwaitScheduler
        );
        assert_eq!(
            placement(&claim(&[(SELECTED_NODE, "")]), Some(&waiting)),
            Placement::AwaitScheduler
        );
        assert_eq!(placement(&claim(&[]), Some(&immediate)), Placement::Choose);
        assert_eq!(placement(&claim(&[]), None), Placement::Choose);
        let selected = claim(&[(SELECTED_NODE, "pgop-node-3")]);
        assert_eq!(
            placement(&selected, Some(&immediate)),
            Placement::Selected("pgop-node-3")
        );
    }

    #[test]
    fn reclaim_policy_defaults_to_delete_and_bad_claims_are_refused() {
        let pv = persistent_volume(&claim(&[]), None, &layout(), "pgop-node-1").unwrap();
        assert_eq!(
            pv.spec.unwrap().persistent_volume_reclaim_policy.as_deref(),
            Some("Delete")
        );
        let mut block = claim(&[]);
        block.spec.as_mut().unwrap().volume_mode = Some("Block".into());
        assert!(persistent_volume(&block, None, &layout(), "pgop-node-1").is_err());
        // A selected-node annotation is anyone's to write: it must not lead out of the root.
        assert!(persistent_volume(&claim(&[]), None, &layout(), "../etc").is_err());
    }

    #[test]
    fn only_released_volumes_of_ours_with_delete_are_deleted() {
        let mut pv = persistent_volume(&claim(&[]), None, &layout(), "pgop-node-1").unwrap();
        assert!(!released_for_deletion(&pv));
        pv.status = Some(PersistentVolumeStatus {
            phase: Some("Released".into()),
            ..Default::default()
        });
        assert!(released_for_deletion(&pv));
        pv.metadata.annotations = None;
        assert!(!released_for_deletion(&pv));
    }
}
