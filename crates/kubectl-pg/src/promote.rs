//! `kubectl pg promote DATABASE INSTANCE`: a planned switchover (docs/replication.md). The
//! plugin asks for it with the `database.example.com/switchover-to` annotation on the
//! Database; the primary's instance manager does the rest, and the plugin follows until the
//! Database reports the new primary.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use api::Database;
use api::names::{ANNOTATION_SWITCHOVER_FROM, ANNOTATION_SWITCHOVER_TO, ROLE_REPLICA};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::cli::Target;
use crate::failure::{Failure, call};

/// What must hold of `instance` before a switchover to it is asked for (pure).
pub fn check(db: &Database, instance: &str) -> Result<(), String> {
    let name = db.metadata.name.clone().unwrap_or_default();
    let status = db.status.clone().unwrap_or_default();
    if status.current_primary.as_deref() == Some(instance) {
        return Err(format!(
            "{instance} is already the primary of Database {name}"
        ));
    }
    let Some(found) = status.instances.iter().find(|i| i.name == instance) else {
        let known: Vec<&str> = status.instances.iter().map(|i| i.name.as_str()).collect();
        return Err(format!(
            "Database {name} has no instance {instance} (its instances: {})",
            if known.is_empty() {
                "none yet".to_string()
            } else {
                known.join(", ")
            }
        ));
    };
    if found.role.as_deref() != Some(ROLE_REPLICA) || !found.ready {
        return Err(format!(
            "{instance} is not a ready standby of Database {name}: see `kubectl pg status {name}`"
        ));
    }
    Ok(())
}

pub async fn run(
    target: &Target,
    database: &str,
    instance: &str,
    timeout: Duration,
) -> Result<ExitCode, Failure> {
    let ns = target.namespace.as_str();
    let databases: Api<Database> = Api::namespaced(target.client.clone(), ns);
    let db = databases
        .get(database)
        .await
        .map_err(call("get", "Database", Some(database), ns))?;
    check(&db, instance).map_err(Failure::new)?;
    let primary = db
        .status
        .as_ref()
        .and_then(|s| s.current_primary.clone())
        .ok_or_else(|| {
            Failure::new(format!(
                "Database {database} has no primary to switch over from"
            ))
        })?;
    let patch = json!({"metadata": {"annotations": {
        ANNOTATION_SWITCHOVER_FROM: primary,
        ANNOTATION_SWITCHOVER_TO: instance,
    }}});
    databases
        .patch(database, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(call("patch", "Database", Some(database), ns))?;
    let started = Instant::now();
    eprintln!("asked for a switchover of Database {database} to {instance}; waiting");
    loop {
        let db =
            databases
                .get(database)
                .await
                .map_err(call("get", "Database", Some(database), ns))?;
        let status = db.status.unwrap_or_default();
        if status.current_primary.as_deref() == Some(instance)
            && status
                .instances
                .iter()
                .any(|i| i.name == instance && i.ready)
        {
            println!(
                "{instance} is the primary of Database {database} (after {:.1}s)",
                started.elapsed().as_secs_f64()
            );
            return Ok(ExitCode::SUCCESS);
        }
        if started.elapsed() > timeout {
            return Err(Failure::new(format!(
                "{instance} did not become the primary of Database {database} within {}s: \
                 see `kubectl pg status {database}` and the primary's log",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Database {
        let mut db = testkit::database("shop").replicas(2).build();
        db.status = Some(
            serde_json::from_value(json!({
                "currentPrimary": "shop-0",
                "instances": [
                    {"name": "shop-0", "role": "primary", "ready": true},
                    {"name": "shop-1", "role": "replica", "ready": true},
                    {"name": "shop-2", "role": "replica", "ready": false},
                ],
            }))
            .unwrap(),
        );
        db
    }

    #[test]
    fn only_a_ready_standby_can_be_promoted() {
        assert_eq!(check(&db(), "shop-1"), Ok(()));
        assert_eq!(
            check(&db(), "shop-0"),
            Err("shop-0 is already the primary of Database shop".to_string())
        );
        assert!(
            check(&db(), "shop-2")
                .unwrap_err()
                .contains("not a ready standby")
        );
        assert!(
            check(&db(), "shop-9")
                .unwrap_err()
                .contains("its instances: shop-0, shop-1, shop-2")
        );
    }
}
