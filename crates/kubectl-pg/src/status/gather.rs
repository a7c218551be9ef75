//! Everything `status` (and `report`) shows about a Database, read with the user's rights.

use api::names;
use api::{Backup, Database, Restore};
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use kube::api::ListParams;
use kube::{Api, ResourceExt as _};

use crate::cli::Target;
use crate::failure::{Failure, call};

/// A Database and what belongs to it or refers to it.
pub struct Objects {
    pub database: Database,
    pub pods: Vec<Pod>,
    pub services: Vec<Service>,
    /// Backups whose `databaseRef` names the Database.
    pub backups: Vec<Backup>,
    /// Restores into the Database.
    pub restores: Vec<Restore>,
    /// Events about the Database or any object above (or their Jobs), oldest first.
    pub events: Vec<Event>,
}

/// The label selector of a Database's PostgreSQL Pods (the StatefulSet's selector; the
/// backup Jobs' Pods carry the Database label too, but not this name).
pub fn pod_selector(database: &str) -> String {
    format!(
        "{}={database},app.kubernetes.io/name=postgresql",
        names::LABEL_DATABASE
    )
}

pub async fn gather_one(target: &Target, name: &str) -> Result<Objects, Failure> {
    let ns = target.namespace.as_str();
    let databases: Api<Database> = Api::namespaced(target.client.clone(), ns);
    let database = databases
        .get(name)
        .await
        .map_err(call("get", "Database", Some(name), ns))?;
    let shared = Shared::list(target).await?;
    related(target, database, &shared).await
}

pub async fn gather_all(target: &Target) -> Result<Vec<Objects>, Failure> {
    let ns = target.namespace.as_str();
    let databases: Api<Database> = Api::namespaced(target.client.clone(), ns);
    let list = databases
        .list(&ListParams::default())
        .await
        .map_err(call("list", "Database", None, ns))?;
    let shared = Shared::list(target).await?;
    let mut all = Vec::new();
    for database in list.items {
        all.push(related(target, database, &shared).await?);
    }
    all.sort_by_key(|o| o.database.name_any());
    Ok(all)
}

/// What is listed once per namespace and divided among its Databases.
struct Shared {
    backups: Vec<Backup>,
    restores: Vec<Restore>,
    events: Vec<Event>,
}

impl Shared {
    async fn list(target: &Target) -> Result<Shared, Failure> {
        let ns = target.namespace.as_str();
        let lp = ListParams::default();
        let backups: Api<Backup> = Api::namespaced(target.client.clone(), ns);
        let restores: Api<Restore> = Api::namespaced(target.client.clone(), ns);
        let events: Api<Event> = Api::namespaced(target.client.clone(), ns);
        Ok(Shared {
            backups: backups
                .list(&lp)
                .await
                .map_err(call("list", "Backup", None, ns))?
                .items,
            restores: restores
                .list(&lp)
                .await
                .map_err(call("list", "Restore", None, ns))?
                .items,
            events: events
                .list(&lp)
                .await
                .map_err(call("list", "Event", None, ns))?
                .items,
        })
    }
}

async fn related(target: &Target, database: Database, shared: &Shared) -> Result<Objects, Failure> {
    let ns = target.namespace.as_str();
    let name = database.name_any();
    let pods: Api<Pod> = Api::namespaced(target.client.clone(), ns);
    let mut pods = pods
        .list(&ListParams::default().labels(&pod_selector(&name)))
        .await
        .map_err(call("list", "Pod", None, ns))?
        .items;
    pods.sort_by_key(|p| p.name_any());
    let services_api: Api<Service> = Api::namespaced(target.client.clone(), ns);
    let mut services = Vec::new();
    for service in [names::client_service(&name), names::headless_service(&name)] {
        let found = services_api.get_opt(&service).await.map_err(call(
            "get",
            "Service",
            Some(&service),
            ns,
        ))?;
        services.extend(found);
    }
    let backups: Vec<Backup> = shared
        .backups
        .iter()
        .filter(|b| b.spec.database_ref.name == name)
        .cloned()
        .collect();
    let restores: Vec<Restore> = shared
        .restores
        .iter()
        .filter(|r| r.spec.database_ref.name == name)
        .cloned()
        .collect();
    let about = About::new(&name, &backups, &restores);
    let mut events: Vec<Event> = shared
        .events
        .iter()
        .filter(|e| about.matches(e.involved_object.name.as_deref().unwrap_or_default()))
        .cloned()
        .collect();
    events.sort_by_key(event_time);
    Ok(Objects {
        database,
        pods,
        services,
        backups,
        restores,
        events,
    })
}

/// When an Event last happened: the newest of the times the API may have filled in.
pub fn event_time(event: &Event) -> Option<k8s_openapi::jiff::Timestamp> {
    event
        .last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or(event.event_time.as_ref().map(|t| t.0))
        .or(event.first_timestamp.as_ref().map(|t| t.0))
        .or(event.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// Which objects' Events are about a Database: itself, its StatefulSet, Pods (`<name>-N`),
/// Secret, Services and volumes (`data-<name>-N`), the Backups of it and their Jobs and Pods
/// (`<backup>-...`), the Restores into it and theirs. Exact names and ordinal suffixes, so
/// a Database `shop` does not collect the Events of a Database `shop-copy`.
struct About {
    exact: Vec<String>,
    ordinal_of: Vec<String>,
    prefixes: Vec<String>,
}

impl About {
    fn new(name: &str, backups: &[Backup], restores: &[Restore]) -> About {
        let mut exact = vec![
            name.to_string(),
            names::credentials_secret(name),
            names::headless_service(name),
        ];
        exact.extend(backups.iter().map(|b| b.name_any()));
        exact.extend(restores.iter().map(|r| r.name_any()));
        let prefixes = backups
            .iter()
            .map(|b| format!("{}-", b.name_any()))
            .chain(restores.iter().map(|r| names::restore_job(&r.name_any())))
            .collect();
        let statefulset = names::statefulset(name);
        About {
            exact,
            ordinal_of: vec![format!("{statefulset}-"), format!("data-{statefulset}-")],
            prefixes,
        }
    }

    fn matches(&self, involved: &str) -> bool {
        self.exact.iter().any(|e| e == involved)
            || self
                .prefixes
                .iter()
                .any(|p| involved.starts_with(p.as_str()))
            || self.ordinal_of.iter().any(|p| {
                involved
                    .strip_prefix(p.as_str())
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_of_a_database_and_not_of_its_namesakes() {
        let backups = [testkit::backup("shop-nightly", "shop").build()];
        let restores = [testkit::restore("again", "shop-nightly", "shop").build()];
        let about = About::new("shop", &backups, &restores);
        for name in [
            "shop",
            "shop-0",
            "shop-12",
            "data-shop-0",
            "shop-credentials",
            "shop-headless",
            "shop-nightly",
            "shop-nightly-20260102t020000z",
            "shop-nightly-20260102t020000z-x7k2p",
            "again",
            "restore-again",
            "restore-again-x7k2p",
        ] {
            assert!(about.matches(name), "{name}");
        }
        for name in [
            "shop-copy",
            "shop-copy-0",
            "data-shop-copy-0",
            "shopping",
            "shop-",
            "other",
        ] {
            assert!(!about.matches(name), "{name}");
        }
    }
}
