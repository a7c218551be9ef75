//! The two Services of a Database.
//!
//! The headless Service gives each Pod a stable DNS name (`<db>-N.<db>-headless`) and is the
//! StatefulSet's governing Service. The client Service is what applications connect to. It
//! selects only Pod `<db>-0`: every replica is an independent PostgreSQL server with its own
//! volume (this operator does not set up replication), so spreading connections over them
//! would scatter writes over databases that never see each other's data.

use std::collections::BTreeMap;

use api::{Database, names};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::{owned_meta, selector_labels};

/// Label the StatefulSet controller puts on each Pod with the Pod's own name.
const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";

fn postgres_port() -> ServicePort {
    ServicePort {
        name: Some("postgres".to_string()),
        port: names::POSTGRES_PORT,
        target_port: Some(IntOrString::Int(names::POSTGRES_PORT)),
        protocol: Some("TCP".to_string()),
        ..ServicePort::default()
    }
}

/// The headless governing Service of the StatefulSet.
pub fn headless_service(db: &Database) -> Service {
    Service {
        metadata: owned_meta(db, names::headless_service(&db.name_any())),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_string()),
            // DNS records must exist before a Pod is ready: PostgreSQL replicas and restore
            // Jobs address Pods by name while they start.
            publish_not_ready_addresses: Some(true),
            selector: Some(selector_labels(db)),
            ports: Some(vec![postgres_port()]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// The Pod the client Service reaches: `<db>-0`.
pub fn primary_pod(db: &Database) -> String {
    format!("{}-0", names::statefulset(&db.name_any()))
}

/// The Service clients connect to; it reaches Pod `<db>-0` only (see the module docs).
pub fn client_service(db: &Database) -> Service {
    let name = db.name_any();
    let mut selector: BTreeMap<String, String> = selector_labels(db);
    selector.insert(POD_NAME_LABEL.to_string(), primary_pod(db));
    Service {
        metadata: owned_meta(db, names::client_service(&name)),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_string()),
            selector: Some(selector),
            ports: Some(vec![postgres_port()]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::fixtures::database;

    #[test]
    fn services_table() {
        let db = database("shop");
        let headless = headless_service(&db);
        let client = client_service(&db);
        let hs = headless.spec.clone().unwrap_or_default();
        let cs = client.spec.clone().unwrap_or_default();
        let rows: [(&str, Option<String>, Option<String>); 6] = [
            (
                "name",
                headless.metadata.name.clone(),
                Some("shop-headless".into()),
            ),
            ("clusterIP", hs.cluster_ip.clone(), Some("None".into())),
            (
                "client name",
                client.metadata.name.clone(),
                Some("shop".into()),
            ),
            ("client type", cs.type_.clone(), Some("ClusterIP".into())),
            ("client clusterIP", cs.cluster_ip.clone(), None),
            (
                "client primary",
                cs.selector
                    .clone()
                    .unwrap_or_default()
                    .get(POD_NAME_LABEL)
                    .cloned(),
                Some("shop-0".into()),
            ),
        ];
        for (what, got, want) in rows {
            assert_eq!(got, want, "{what}");
        }
        assert_eq!(hs.publish_not_ready_addresses, Some(true));
        for spec in [&hs, &cs] {
            let ports = spec.ports.clone().unwrap_or_default();
            assert_eq!(ports.len(), 1);
            assert_eq!(ports[0].port, 5432);
            let selector = spec.selector.clone().unwrap_or_default();
            assert_eq!(selector[names::LABEL_DATABASE], "shop");
            assert_eq!(selector["app.kubernetes.io/name"], "postgresql");
        }
        assert_eq!(
            hs.selector.map(|s| s.len()),
            Some(2),
            "headless selects all replicas"
        );
    }
}
