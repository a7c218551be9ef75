//! Which instance a dump reads from (pure): a standby when the Backup allows it and the
//! Database's status says replication is healthy with a ready standby, so backups do not load
//! the primary; the primary otherwise. Read from the Database's status, as everything this
//! operator knows of a Database.

use api::conditions::{self, REPLICATION_HEALTHY};
use api::names::{self, ROLE_REPLICA};
use api::{Backup, BackupSource, Database};

/// The host of the Service the dump connects to.
pub fn dump_host(backup: &Backup, database: Option<&Database>, namespace: &str) -> String {
    let name = &backup.spec.database_ref.name;
    let standby_ready = database
        .and_then(|db| db.status.as_ref())
        .is_some_and(|status| {
            conditions::is_true(&status.conditions, REPLICATION_HEALTHY)
                && status
                    .instances
                    .iter()
                    .any(|i| i.ready && i.role.as_deref() == Some(ROLE_REPLICA))
        });
    if backup.spec.source == BackupSource::PreferStandby && standby_ready {
        names::read_only_host(name, namespace)
    } else {
        names::service_host(name, namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn backup(source: &str) -> Backup {
        serde_json::from_value(json!({
            "apiVersion": "database.example.com/v1", "kind": "Backup",
            "metadata": {"name": "nightly", "namespace": "prod"},
            "spec": {"databaseRef": {"name": "shop"}, "source": source},
        }))
        .unwrap()
    }

    fn database(healthy: &str, standby_ready: bool) -> Database {
        serde_json::from_value(json!({
            "apiVersion": "database.example.com/v1", "kind": "Database",
            "metadata": {"name": "shop", "namespace": "prod"},
            "spec": {"databaseName": "shop", "username": "shop_owner", "storage": {"size": "1Gi"}},
            "status": {
                "readyReplicas": 2,
                "instances": [
                    {"name": "shop-0", "role": "primary", "ready": true},
                    {"name": "shop-1", "role": "replica", "ready": standby_ready},
                ],
                "conditions": [{"type": "ReplicationHealthy", "status": healthy,
                    "reason": "Streaming", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            }
        }))
        .unwrap()
    }

    #[test]
    fn a_healthy_ready_standby_takes_the_dump_unless_the_backup_asks_for_the_primary() {
        let (standby, primary) = ("shop-ro.prod.svc", "shop.prod.svc");
        let healthy = database("True", true);
        let rows = [
            ("PreferStandby", Some(&healthy), standby),
            ("Primary", Some(&healthy), primary),
            ("PreferStandby", Some(&database("False", true)), primary),
            ("PreferStandby", Some(&database("True", false)), primary),
            ("PreferStandby", None, primary),
        ];
        for (source, db, want) in rows {
            assert_eq!(dump_host(&backup(source), db, "prod"), want, "{source}");
        }
    }
}
