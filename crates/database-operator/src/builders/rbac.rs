//! The ServiceAccount of a Database's Pods and what it may do: exactly what the instance
//! manager in them needs, on this Database's objects only.
//!
//! - the Lease `<db>-primary`: read and write it (create it the first time: creation cannot be
//!   limited to a name);
//! - the Pods `<db>-0` .. `<db>-(replicas-1)`: read them and set their role label (a new
//!   primary relabels the former one);
//! - the StatefulSet `<db>`: read how many instances there are (replication slots, peers);
//! - the Database `<db>`: read a switchover request (an annotation).

use api::{Database, names};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::ResourceExt;

use super::owned_meta;

pub fn service_account(db: &Database) -> ServiceAccount {
    ServiceAccount {
        metadata: owned_meta(db, names::instance_account(&db.name_any())),
        ..ServiceAccount::default()
    }
}

pub fn role(db: &Database) -> Role {
    let name = db.name_any();
    let rule = |group: &str, resource: &str, names: Vec<String>, verbs: &[&str]| PolicyRule {
        api_groups: Some(vec![group.to_string()]),
        resources: Some(vec![resource.to_string()]),
        resource_names: (!names.is_empty()).then_some(names),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        ..PolicyRule::default()
    };
    let pods = (0..db.spec.replicas.max(1))
        .map(|i| format!("{}-{i}", names::statefulset(&name)))
        .collect();
    Role {
        metadata: owned_meta(db, names::instance_account(&name)),
        rules: Some(vec![
            rule("coordination.k8s.io", "leases", vec![], &["create"]),
            rule(
                "coordination.k8s.io",
                "leases",
                vec![names::primary_lease(&name)],
                &["get", "update"],
            ),
            rule("", "pods", pods, &["get", "patch"]),
            rule(
                "apps",
                "statefulsets",
                vec![names::statefulset(&name)],
                &["get"],
            ),
            rule(
                "database.example.com",
                "databases",
                vec![name.clone()],
                &["get"],
            ),
        ]),
    }
}

pub fn role_binding(db: &Database) -> RoleBinding {
    let name = names::instance_account(&db.name_any());
    RoleBinding {
        metadata: owned_meta(db, name.clone()),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".to_string()),
            kind: "Role".to_string(),
            name: name.clone(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_string(),
            name,
            namespace: db.namespace(),
            ..Subject::default()
        }]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::fixtures::database;

    #[test]
    fn the_instances_may_touch_their_own_lease_pods_and_statefulset_only() {
        let mut db = database("shop");
        db.spec.replicas = 3;
        let rules = role(&db).rules.unwrap_or_default();
        let table: Vec<(String, Vec<String>, Vec<String>)> = rules
            .iter()
            .map(|r| {
                (
                    r.resources.clone().unwrap_or_default().join(","),
                    r.resource_names.clone().unwrap_or_default(),
                    r.verbs.clone(),
                )
            })
            .collect();
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            table,
            vec![
                ("leases".into(), vec![], owned(&["create"])),
                (
                    "leases".into(),
                    owned(&["shop-primary"]),
                    owned(&["get", "update"])
                ),
                (
                    "pods".into(),
                    owned(&["shop-0", "shop-1", "shop-2"]),
                    owned(&["get", "patch"])
                ),
                ("statefulsets".into(), owned(&["shop"]), owned(&["get"])),
                ("databases".into(), owned(&["shop"]), owned(&["get"])),
            ]
        );
        let binding = role_binding(&db);
        assert_eq!(binding.role_ref.name, "shop-instance");
        let subject = &binding.subjects.unwrap_or_default()[0];
        assert_eq!(
            (
                subject.kind.as_str(),
                subject.name.as_str(),
                subject.namespace.as_deref()
            ),
            ("ServiceAccount", "shop-instance", Some("prod"))
        );
        assert_eq!(
            service_account(&db).metadata.name.as_deref(),
            Some("shop-instance")
        );
    }
}
