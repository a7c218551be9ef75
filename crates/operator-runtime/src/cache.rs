//! What the operators keep of the objects they cache.
//!
//! A watch delivers whole objects, including `metadata.managedFields`, the API server's
//! record of which manager set which field. No reconcile reads it, yet parsed into nested
//! JSON maps it is the largest part of a cached object: about half of a Backup's JSON, and
//! over a dozen MiB for 1,000 Backups in the backup-operator. Every cached watch passes its
//! stream through [`slim`] before the reflector stores it ([`crate::controller::cached`]).

use kube::Resource;

/// The annotation `kubectl apply` (client-side) keeps a whole copy of the object in.
pub(crate) const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

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

/// For [`crate::controller::reflected`]: keeps all that [`slim`] leaves.
pub fn everything<K>(_: &mut K) {}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use serde_json::json;

    #[test]
    fn slim_keeps_everything_but_managed_fields_and_the_last_applied_copy() {
        let mut object: ConfigMap = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {
                "name": "nightly", "namespace": "prod", "generation": 3,
                "labels": {"team": "shop"},
                "annotations": {LAST_APPLIED_ANNOTATION: "{}", "note": "kept"},
                "finalizers": ["database.example.com/backup"],
                "managedFields": [{"manager": "kubectl", "operation": "Apply",
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:schedule": {}}}}],
            },
            "data": {"schedule": "0 2 * * *"},
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let mut expected = object.clone();
        expected.metadata.managed_fields = None;
        expected.metadata.annotations = Some([("note".into(), "kept".into())].into());

        slim(&mut object);
        assert_eq!(object, expected);
    }
}
