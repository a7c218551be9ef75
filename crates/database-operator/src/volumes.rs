//! Growing the data volumes when `storage.size` grows.
//!
//! A StatefulSet's claim template cannot change, so a larger size is applied to each claim
//! `data-<db>-N` directly. The API server accepts that only when the claim's StorageClass
//! allows volume expansion; otherwise the refusal is reported in the Degraded condition and
//! not retried until the Database changes. Sizes are compared by value (see
//! [`api::quantity`]).

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::Patch;
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use crate::apply::apply_params;
use crate::error::{ApplyError, Stage};
use api::quantity;

fn storage_of(
    map: Option<
        &std::collections::BTreeMap<
            String,
            k8s_openapi::apimachinery::pkg::api::resource::Quantity,
        >,
    >,
) -> Option<u128> {
    map?.get("storage").and_then(|q| quantity::bytes(&q.0))
}

fn requested(claim: &PersistentVolumeClaim) -> Option<u128> {
    storage_of(claim.spec.as_ref()?.resources.as_ref()?.requests.as_ref())
}

fn capacity(claim: &PersistentVolumeClaim) -> Option<u128> {
    storage_of(claim.status.as_ref()?.capacity.as_ref())
}

/// The claims that request less than `size`: they must be asked to grow.
pub fn claims_to_expand(claims: &[PersistentVolumeClaim], size: &str) -> Vec<String> {
    let Some(wanted) = quantity::bytes(size) else {
        return Vec::new();
    };
    claims
        .iter()
        .filter(|claim| requested(claim).is_some_and(|r| r < wanted))
        .map(|claim| claim.name_any())
        .collect()
}

/// The bound claims whose volume is still smaller than `size`. (An unbound claim gets its
/// volume at the requested size.)
pub fn growing_claims(claims: &[PersistentVolumeClaim], size: &str) -> Vec<String> {
    let Some(wanted) = quantity::bytes(size) else {
        return Vec::new();
    };
    let mut names: Vec<String> = claims
        .iter()
        .filter(|claim| capacity(claim).is_some_and(|c| c < wanted))
        .map(|claim| claim.name_any())
        .collect();
    names.sort();
    names
}

/// Grows each claim in `names` to `size` by applying only its storage request.
pub async fn expand(
    client: &Client,
    namespace: &str,
    names: &[String],
    size: &str,
) -> Result<(), ApplyError> {
    let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), namespace);
    for name in names {
        let patch = json!({
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name},
            "spec": {"resources": {"requests": {"storage": size}}},
        });
        claims
            .patch(name, &apply_params(), &Patch::Apply(&patch))
            .await
            .map_err(|source| ApplyError::Apply {
                stage: Stage::Volumes,
                name: name.clone(),
                source,
            })?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod fixtures {
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    use serde_json::json;

    /// Claim `name` requesting `requested`, with a volume of `capacity`.
    pub fn claim(name: &str, requested: &str, capacity: &str) -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "prod"},
            "spec": {"resources": {"requests": {"storage": requested}}},
            "status": {"capacity": {"storage": capacity}},
        }))
        .unwrap_or_else(|e| panic!("claim fixture: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::claim;
    use super::*;

    #[test]
    fn which_claims_grow() {
        let claims = [
            claim("data-shop-0", "1Gi", "1Gi"),
            claim("data-shop-1", "2Gi", "1Gi"),
            claim("data-shop-2", "2048Mi", "2Gi"),
        ];
        // (size, asked to grow, still growing)
        let rows: [(&str, &[&str], &[&str]); 3] = [
            ("2Gi", &["data-shop-0"], &["data-shop-0", "data-shop-1"]),
            ("1Gi", &[], &[]),
            ("junk", &[], &[]),
        ];
        for (size, expand, growing) in rows {
            assert_eq!(claims_to_expand(&claims, size), expand, "{size}");
            assert_eq!(growing_claims(&claims, size), growing, "{size}");
        }
    }
}
