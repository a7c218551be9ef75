//! What the operators keep of the objects they cache.
//!
//! A watch delivers whole objects, including `metadata.managedFields`, the API server's
//! record of which manager set which field. No reconcile reads it, yet parsed into nested
//! JSON maps it is the largest part of a cached object: about half of a Backup's JSON, and
//! over a dozen MiB for 1,000 Backups in the backup-operator. Both operators pass their
//! watch streams through [`slim`] before the reflector stores them.

use kube::Resource;

/// The annotation `kubectl apply` (client-side) keeps a whole copy of the object in.
const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops from `object` what no reconcile reads: its managed fields and kubectl's last
/// applied copy. Every write is a patch of the fields it sets, never a cached object sent
/// back, so nothing of this is lost on the API server.
pub fn slim<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED_ANNOTATION);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Backup;
    use serde_json::json;

    #[test]
    fn slim_keeps_everything_but_managed_fields_and_the_last_applied_copy() {
        let mut backup: Backup = serde_json::from_value(json!({
            "apiVersion": "database.example.com/v1", "kind": "Backup",
            "metadata": {
                "name": "nightly", "namespace": "prod", "generation": 3,
                "labels": {"team": "shop"},
                "annotations": {LAST_APPLIED_ANNOTATION: "{}", "note": "kept"},
                "finalizers": ["database.example.com/backup"],
                "managedFields": [{"manager": "kubectl", "operation": "Apply",
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:schedule": {}}}}],
            },
            "spec": {"databaseRef": {"name": "shop"}, "schedule": "0 2 * * *"},
            "status": {"phase": "Pending", "observedGeneration": 3},
        }))
        .unwrap();
        let mut expected = backup.clone();
        expected.metadata.managed_fields = None;
        expected.metadata.annotations = Some([("note".into(), "kept".into())].into());

        slim(&mut backup);
        assert_eq!(backup, expected);
    }
}
