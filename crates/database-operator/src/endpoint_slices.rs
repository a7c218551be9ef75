//! Whether the client Service routes to the primary Pod yet. Pure.
//!
//! The StatefulSet counts a Pod ready the moment the kubelet reports it Ready, but clients
//! reach it through the client Service only after the EndpointSlice controller has published
//! the Pod as a ready endpoint, which is what kube-proxy programs its rules from. In between,
//! a connection (a backup Job started on Ready, say) is refused, so a Database is not Ready
//! until [`routes_to`] says so.

use k8s_openapi::api::discovery::v1::EndpointSlice;

/// Label the EndpointSlice controller puts on each slice with the name of its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// True when one of `slices` has a ready endpoint backed by Pod `pod`.
///
/// An endpoint without a `ready` condition counts as ready, as the EndpointSlice API asks of
/// its readers and as kube-proxy does; the EndpointSlice controller always sets it.
pub fn routes_to(slices: &[EndpointSlice], pod: &str) -> bool {
    slices
        .iter()
        .flat_map(|s| s.endpoints.iter().flatten())
        .any(|endpoint| {
            let ready = endpoint
                .conditions
                .as_ref()
                .and_then(|c| c.ready)
                .unwrap_or(true);
            let backed_by_pod = endpoint.target_ref.as_ref().is_some_and(|r| {
                r.kind.as_deref() == Some("Pod") && r.name.as_deref() == Some(pod)
            });
            ready && backed_by_pod && !endpoint.addresses.is_empty()
        })
}

#[cfg(test)]
pub mod fixtures {
    use k8s_openapi::api::core::v1::ObjectReference;
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointSlice};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    /// A slice of Service `service` with one endpoint per `(pod, ready)`.
    pub fn slice(service: &str, endpoints: &[(&str, Option<bool>)]) -> EndpointSlice {
        EndpointSlice {
            metadata: ObjectMeta {
                name: Some(format!("{service}-abcde")),
                namespace: Some("prod".into()),
                labels: Some([(super::SERVICE_NAME_LABEL.to_string(), service.to_string())].into()),
                ..ObjectMeta::default()
            },
            address_type: "IPv4".into(),
            endpoints: Some(
                endpoints
                    .iter()
                    .map(|(pod, ready)| Endpoint {
                        addresses: vec!["10.244.0.250".into()],
                        conditions: Some(EndpointConditions {
                            ready: *ready,
                            ..EndpointConditions::default()
                        }),
                        target_ref: Some(ObjectReference {
                            kind: Some("Pod".into()),
                            name: Some(pod.to_string()),
                            namespace: Some("prod".into()),
                            ..ObjectReference::default()
                        }),
                        ..Endpoint::default()
                    })
                    .collect(),
            ),
            ports: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::slice;
    use super::*;

    #[test]
    fn routes_only_through_a_ready_endpoint_of_the_primary() {
        let rows: [(&str, Vec<EndpointSlice>, bool); 7] = [
            ("no slice yet", vec![], false),
            ("slice without endpoints", vec![slice("shop", &[])], false),
            (
                "primary not ready yet",
                vec![slice("shop", &[("shop-0", Some(false))])],
                false,
            ),
            (
                "another Pod ready",
                vec![slice("shop", &[("shop-1", Some(true))])],
                false,
            ),
            (
                "primary ready",
                vec![slice("shop", &[("shop-0", Some(true))])],
                true,
            ),
            (
                "ready condition unset",
                vec![slice("shop", &[("shop-0", None)])],
                true,
            ),
            (
                "primary ready in a second slice",
                vec![
                    slice("shop", &[("shop-1", Some(true))]),
                    slice("shop", &[("shop-0", Some(true))]),
                ],
                true,
            ),
        ];
        for (what, slices, want) in rows {
            assert_eq!(routes_to(&slices, "shop-0"), want, "{what}");
        }
    }

    #[test]
    fn an_endpoint_of_another_kind_is_not_the_pod() {
        let mut s = slice("shop", &[("shop-0", Some(true))]);
        for endpoint in s.endpoints.iter_mut().flatten() {
            if let Some(r) = endpoint.target_ref.as_mut() {
                r.kind = Some("Node".into());
            }
        }
        assert!(!routes_to(&[s], "shop-0"));
    }
}
