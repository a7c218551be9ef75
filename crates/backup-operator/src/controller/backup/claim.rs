//! The claim a Backup gets when its destination names none (pure).

use std::collections::BTreeMap;

use api::Backup;
use api::DeletionPolicy;
use api::names;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource as _, ResourceExt as _};

use crate::controller::pod_template::{self, Destination};

const DEFAULT_SIZE: &str = "1Gi";

/// The claim to create, or `None` when the user named one (or chose S3). It is owned by the
/// Backup only under `deletionPolicy: Delete`, so that with `Retain` the artifacts outlive
/// the Backup.
pub fn claim(backup: &Backup) -> Option<PersistentVolumeClaim> {
    let Destination::Claim {
        name,
        operator_created: true,
    } = Destination::of(backup)
    else {
        return None;
    };
    let pvc = backup.spec.destination.pvc.clone().unwrap_or_default();
    let owner = match backup.spec.deletion_policy {
        DeletionPolicy::Delete => backup.controller_owner_ref(&()).map(|o| vec![o]),
        DeletionPolicy::Retain => None,
    };
    let size = pvc.size.unwrap_or_else(|| DEFAULT_SIZE.into());
    Some(PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: backup.namespace(),
            labels: Some(pod_template::labels(
                "artifacts",
                &[(names::LABEL_BACKUP, &backup.name_any())],
            )),
            owner_references: owner,
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: pvc.storage_class_name,
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".into(), Quantity(size))])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn backup(spec: serde_json::Value) -> Backup {
        let mut full = json!({"databaseRef": {"name": "shop"}});
        full.as_object_mut()
            .unwrap()
            .extend(spec.as_object().unwrap().clone());
        serde_json::from_value(json!({
            "apiVersion": "database.example.com/v1", "kind": "Backup",
            "metadata": {"name": "nightly", "namespace": "prod", "uid": "u-1"},
            "spec": full
        }))
        .unwrap()
    }

    #[test]
    fn claims_for_each_destination_and_policy() {
        // (spec, claim name, size, storage class, owned by the Backup)
        let rows = [
            (json!({}), Some(("nightly-artifacts", "1Gi", None, false))),
            (
                json!({"deletionPolicy": "Delete"}),
                Some(("nightly-artifacts", "1Gi", None, true)),
            ),
            (
                json!({"destination": {"pvc": {"size": "5Gi", "storageClassName": "fast"}}}),
                Some(("nightly-artifacts", "5Gi", Some("fast"), false)),
            ),
            (json!({"destination": {"pvc": {"claimName": "mine"}}}), None),
            (
                json!({"destination": {"s3": {"endpoint": "https://s3", "bucket": "bkt", "credentialsSecret": {"name": "c"}}}}),
                None,
            ),
        ];
        for (spec, want) in rows {
            let got = claim(&backup(spec.clone())).map(|pvc| {
                let spec = pvc.spec.unwrap();
                let size = spec.resources.unwrap().requests.unwrap()["storage"]
                    .0
                    .clone();
                assert_eq!(spec.access_modes, Some(vec!["ReadWriteOnce".to_string()]));
                (
                    pvc.metadata.name.unwrap(),
                    size,
                    spec.storage_class_name,
                    pvc.metadata.owner_references.is_some(),
                )
            });
            let want = want.map(|(name, size, class, owned)| {
                (
                    name.to_string(),
                    size.to_string(),
                    class.map(String::from),
                    owned,
                )
            });
            assert_eq!(got, want, "{spec}");
        }
    }
}
