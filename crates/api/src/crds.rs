//! The CustomResourceDefinitions as the API server gets them, and their YAML form.
//!
//! `deploy/crds/*.yaml` and the Helm charts are generated from here (`just crds`); a test
//! fails when the committed files drift from the types. Descriptions are rewritten into
//! paragraphs on the way ([`descriptions`]).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::{Backup, Database, Restore};

mod descriptions;

/// Every CRD, with the file name it is written to.
pub fn all() -> Vec<(String, CustomResourceDefinition)> {
    [Database::crd(), Backup::crd(), Restore::crd()]
        .into_iter()
        .map(|mut crd| {
            for version in &mut crd.spec.versions {
                let schema = version.schema.as_mut();
                if let Some(schema) = schema.and_then(|s| s.open_api_v3_schema.as_mut()) {
                    descriptions::unwrap_schema(schema);
                }
            }
            let file = format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"));
            (file, crd)
        })
        .collect()
}

/// The YAML document committed for a CRD.
pub fn to_yaml(crd: &CustomResourceDefinition) -> anyhow::Result<String> {
    let body = serde_yaml::to_string(crd)?;
    Ok(format!(
        "# Generated from crates/api by `just crds`; do not edit by hand.\n{body}"
    ))
}
