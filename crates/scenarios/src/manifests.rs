//! Manifests as a user applies them: the samples in `deploy/samples`, server-side applied.

use anyhow::{Context, Result};
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
    core::DynamicObject,
};

/// The field manager the tests apply their objects with.
const TEST_MANAGER: &str = "composition-test";

/// Reads a manifest from `deploy/samples`, unchanged.
pub fn sample(file: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/samples")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Server-side applies every document of a YAML manifest into `ns`, as a user would with
/// `kubectl apply --server-side`.
pub async fn apply_yaml(client: &Client, ns: &str, yaml: &str) -> Result<()> {
    for document in serde_yaml::Deserializer::from_str(yaml) {
        let value: serde_json::Value = serde::Deserialize::deserialize(document)?;
        if value.is_null() {
            continue;
        }
        let object: DynamicObject = serde_json::from_value(value)?;
        let types = object
            .types
            .clone()
            .context("manifest without apiVersion/kind")?;
        let name = object
            .metadata
            .name
            .clone()
            .context("manifest without a name")?;
        let (group, version) = match types.api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), types.api_version.clone()),
        };
        let gvk = kube::core::GroupVersionKind::gvk(&group, &version, &types.kind);
        let resource = kube::core::ApiResource::from_gvk(&gvk);
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
        api.patch(
            &name,
            &PatchParams::apply(TEST_MANAGER),
            &Patch::Apply(&object),
        )
        .await
        .with_context(|| format!("applying {} {name}", types.kind))?;
    }
    Ok(())
}
