//! The Services of a Database.
//!
//! The headless Service gives each Pod a stable DNS name (`<db>-N.<db>-headless`) and is the
//! StatefulSet's governing Service. Clients connect to the other three, which select on the
//! role label each instance's manager puts on its own Pod:
//!
//! | Service | reaches | for |
//! |---|---|---|
//! | `<db>` | the primary | reads and writes |
//! | `<db>-ro` | the standbys | reads that may lag by the replication delay |
//! | `<db>-r` | every instance | reads from whichever answers |
//!
//! Only ready Pods are endpoints, and a primary that can no longer prove its Lease stops
//! PostgreSQL (docs/replication.md), so the read-write Service never has two writable
//! servers behind it.
//!
//! Each Service says which it is in [`names::LABEL_SERVICE`], which the EndpointSlice
//! controller copies to its slices: the operator reads the read-write Service's slices only,
//! and its watch leaves out the others' ([`crate::controller`]).

use std::collections::BTreeMap;

use api::{Database, names};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::{owned_meta, selector_labels};

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
        metadata: service_meta(
            db,
            names::headless_service(&db.name_any()),
            names::SERVICE_HEADLESS,
        ),
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

/// The Service clients write through: the primary only.
pub fn client_service(db: &Database) -> Service {
    role_service(
        db,
        names::client_service(&db.name_any()),
        names::SERVICE_READ_WRITE,
        Some(names::ROLE_PRIMARY),
    )
}

/// The read-only Service: the standbys.
pub fn read_only_service(db: &Database) -> Service {
    role_service(
        db,
        names::read_only_service(&db.name_any()),
        names::SERVICE_READ_ONLY,
        Some(names::ROLE_REPLICA),
    )
}

/// Any ready instance.
pub fn any_instance_service(db: &Database) -> Service {
    role_service(
        db,
        names::any_instance_service(&db.name_any()),
        names::SERVICE_ANY,
        None,
    )
}

fn role_service(db: &Database, name: String, which: &str, role: Option<&str>) -> Service {
    let mut selector: BTreeMap<String, String> = selector_labels(db);
    if let Some(role) = role {
        selector.insert(names::LABEL_ROLE.to_string(), role.to_string());
    }
    Service {
        metadata: service_meta(db, name, which),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_string()),
            selector: Some(selector),
            ports: Some(vec![postgres_port()]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// The metadata of every owned object, with the label saying `which` Service this is.
fn service_meta(db: &Database, name: String, which: &str) -> ObjectMeta {
    let mut meta = owned_meta(db, name);
    meta.labels
        .get_or_insert_default()
        .insert(names::LABEL_SERVICE.to_string(), which.to_string());
    meta
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::fixtures::database;

    fn role_of(service: &Service) -> Option<String> {
        service
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .and_then(|s| s.get(names::LABEL_ROLE).cloned())
    }

    fn which_of(service: &Service) -> Option<String> {
        service
            .metadata
            .labels
            .as_ref()?
            .get(names::LABEL_SERVICE)
            .cloned()
    }

    #[test]
    fn services_table() {
        let db = database("shop");
        let rows = [
            (client_service(&db), "shop", Some("primary"), "read-write"),
            (
                read_only_service(&db),
                "shop-ro",
                Some("replica"),
                "read-only",
            ),
            (any_instance_service(&db), "shop-r", None, "any"),
        ];
        for (service, name, role, which) in &rows {
            assert_eq!(service.metadata.name.as_deref(), Some(*name));
            assert_eq!(role_of(service).as_deref(), *role, "{name}'s role");
            assert_eq!(which_of(service).as_deref(), Some(*which), "{name}");
            let spec = service.spec.clone().unwrap_or_default();
            assert_eq!(spec.type_.as_deref(), Some("ClusterIP"), "{name}");
            assert_eq!(spec.cluster_ip, None, "{name}");
        }
        let headless = headless_service(&db);
        let hs = headless.spec.clone().unwrap_or_default();
        assert_eq!(headless.metadata.name.as_deref(), Some("shop-headless"));
        assert_eq!(hs.cluster_ip.as_deref(), Some("None"));
        assert_eq!(hs.publish_not_ready_addresses, Some(true));
        assert_eq!(role_of(&headless), None, "headless selects every instance");
        assert_eq!(which_of(&headless).as_deref(), Some("headless"));
        for service in rows.iter().map(|(s, ..)| s).chain([&headless]) {
            let labels = service.metadata.labels.clone().unwrap_or_default();
            assert_eq!(labels[names::LABEL_MANAGED_BY], "database-operator");
            let spec = service.spec.clone().unwrap_or_default();
            let ports = spec.ports.clone().unwrap_or_default();
            assert_eq!(ports.len(), 1);
            assert_eq!(ports[0].port, 5432);
            let selector = spec.selector.clone().unwrap_or_default();
            assert_eq!(selector[names::LABEL_DATABASE], "shop");
            assert_eq!(selector["app.kubernetes.io/name"], "postgresql");
        }
    }
}
