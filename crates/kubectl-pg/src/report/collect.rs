//! Collect: what goes into a report, read with the user's rights. Only the Database itself
//! must be readable; anything else that cannot be read is noted in the bundle's README.

use api::names;
use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret};
use kube::api::{ListParams, LogParams};
use kube::{Api, Resource, ResourceExt as _};
use serde::Serialize;

use super::{Entry, redact};
use crate::cli::Target;
use crate::failure::{Failure, one_line};
use crate::status;

/// Labels the operators' Pods carry when they run in the cluster (charts and deploy/).
const OPERATOR_SELECTOR: &str = "app.kubernetes.io/name in (database-operator,backup-operator)";
const POD_LOG_LINES: i64 = 300;
const OPERATOR_LOG_LINES: i64 = 5000;

pub struct Bundle {
    pub entries: Vec<Entry>,
    /// Every value of the Secrets read, for scrubbing.
    pub secret_values: Vec<String>,
}

pub async fn collect(
    target: &Target,
    database: &str,
    now: DateTime<Utc>,
) -> Result<Bundle, Failure> {
    let objects = status::gather_one(target, database).await?;
    let ns = target.namespace.as_str();
    let client = &target.client;
    let mut entries = Vec::new();
    let mut notes = Vec::new();
    let mut note = |what: &str, error: kube::Error| {
        notes.push(format!("- {what}: {}", one_line(&error.to_string())));
    };

    entries.push(yaml("database.yaml", &[clean(objects.database.clone())]));
    entries.push(Entry {
        path: "status.txt".into(),
        text: status::screen(&objects, now),
    });
    entries.push(yaml("pods.yaml", &cleaned(&objects.pods)));
    entries.push(yaml("services.yaml", &cleaned(&objects.services)));
    entries.push(yaml("backups.yaml", &cleaned(&objects.backups)));
    entries.push(yaml("restores.yaml", &cleaned(&objects.restores)));
    entries.push(yaml("events.yaml", &cleaned(&objects.events)));

    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    match statefulsets.get_opt(&names::statefulset(database)).await {
        Ok(found) => entries.push(yaml("statefulset.yaml", &cleaned(&Vec::from_iter(found)))),
        Err(e) => note("StatefulSet", e),
    }

    let claims: Vec<String> = objects
        .backups
        .iter()
        .map(|b| {
            b.spec
                .destination
                .pvc
                .as_ref()
                .and_then(|p| p.claim_name.clone())
                .unwrap_or_else(|| names::backup_claim(&b.name_any()))
        })
        .collect();
    let data_prefix = format!("data-{}-", names::statefulset(database));
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    match pvcs.list(&ListParams::default()).await {
        Ok(list) => {
            let mine: Vec<_> = list
                .items
                .into_iter()
                .filter(|c| {
                    let name = c.name_any();
                    name.starts_with(&data_prefix) || claims.contains(&name)
                })
                .collect();
            entries.push(yaml("persistentvolumeclaims.yaml", &cleaned(&mine)));
        }
        Err(e) => note("PersistentVolumeClaims", e),
    }

    let by_database =
        ListParams::default().labels(&format!("{}={database}", names::LABEL_DATABASE));
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    match jobs.list(&by_database).await {
        Ok(list) => entries.push(yaml("jobs.yaml", &cleaned(&list.items))),
        Err(e) => note("Jobs", e),
    }

    // Secrets: the credentials and any S3 credentials a Backup names.
    let mut secret_names = vec![names::credentials_secret(database)];
    secret_names.extend(
        objects
            .backups
            .iter()
            .filter_map(|b| b.spec.destination.s3.as_ref())
            .map(|s3| s3.credentials_secret.name.clone()),
    );
    secret_names.sort();
    secret_names.dedup();
    let secrets_api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let mut secrets = Vec::new();
    for name in &secret_names {
        match secrets_api.get_opt(name).await {
            Ok(found) => secrets.extend(found),
            Err(e) => note(&format!("Secret {name}"), e),
        }
    }
    let secret_values = redact::values(&secrets);
    let redacted: Vec<Secret> = secrets.into_iter().map(redact::secret).collect();
    entries.push(yaml("secrets.yaml", &redacted));

    // Logs of the Database's Pods and of its Jobs' Pods.
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mut log_pods = objects.pods.clone();
    match pods.list(&by_database).await {
        Ok(list) => log_pods.extend(
            list.items
                .into_iter()
                .filter(|p| !objects.pods.iter().any(|o| o.name_any() == p.name_any())),
        ),
        Err(e) => note("Pods of the Jobs", e),
    }
    for pod in &log_pods {
        for container in containers(pod) {
            let params = LogParams {
                container: Some(container.clone()),
                tail_lines: Some(POD_LOG_LINES),
                ..LogParams::default()
            };
            let path = format!("logs/{}/{container}.log", pod.name_any());
            match pods.logs(&pod.name_any(), &params).await {
                Ok(text) => entries.push(Entry { path, text }),
                Err(e) => note(&format!("log of {}/{container}", pod.name_any()), e),
            }
        }
    }

    let backups: Vec<String> = objects.backups.iter().map(|b| b.name_any()).collect();
    entries.extend(operator_logs(target, database, &backups, &mut notes).await);

    entries.insert(0, readme(target, database, now, &notes));
    Ok(Bundle {
        entries,
        secret_values,
    })
}

/// Lines of the operators' logs that mention the Database or its Backups, from operator Pods
/// found by label anywhere in the cluster. Operators running outside the cluster (as host
/// processes) are not reachable from here; the bundle says so.
async fn operator_logs(
    target: &Target,
    database: &str,
    backups: &[String],
    notes: &mut Vec<String>,
) -> Vec<Entry> {
    let all: Api<Pod> = Api::all(target.client.clone());
    let found = match all
        .list(&ListParams::default().labels(OPERATOR_SELECTOR))
        .await
    {
        Ok(list) => list.items,
        Err(e) => {
            notes.push(format!(
                "- operator Pods (listing Pods in all namespaces): {}",
                one_line(&e.to_string())
            ));
            return vec![Entry {
                path: "operators/NONE.txt".into(),
                text: "The operators' Pods could not be listed (see README.txt); attach their logs by hand.\n".into(),
            }];
        }
    };
    if found.is_empty() {
        return vec![Entry {
            path: "operators/NONE.txt".into(),
            text: format!(
                "No operator Pods were found in the cluster (label selector `{OPERATOR_SELECTOR}`).\n\
                 If the operators run outside the cluster, attach their log lines about \
                 {}/{database} by hand.\n",
                target.namespace
            ),
        }];
    }
    let mut entries = Vec::new();
    for pod in found {
        let ns = pod.namespace().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(target.client.clone(), &ns);
        let params = LogParams {
            tail_lines: Some(OPERATOR_LOG_LINES),
            ..LogParams::default()
        };
        match api.logs(&pod.name_any(), &params).await {
            Ok(text) => {
                let mentions = |line: &&str| {
                    line.contains(&target.namespace)
                        && (line.contains(database)
                            || backups.iter().any(|b| line.contains(b.as_str())))
                };
                let lines: Vec<&str> = text.lines().filter(mentions).collect();
                entries.push(Entry {
                    path: format!("operators/{ns}-{}.log", pod.name_any()),
                    text: lines.join("\n") + "\n",
                });
            }
            Err(e) => notes.push(format!(
                "- log of operator Pod {ns}/{}: {}",
                pod.name_any(),
                one_line(&e.to_string())
            )),
        }
    }
    entries
}

fn containers(pod: &Pod) -> Vec<String> {
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    spec.init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .map(|c| c.name.clone())
        .collect()
}

fn readme(target: &Target, database: &str, now: DateTime<Utc>, notes: &[String]) -> Entry {
    let mut text = format!(
        "Support bundle for Database {database} in namespace {}, written by kubectl pg {} at {}.\n\n\
         database.yaml, statefulset.yaml, pods.yaml, services.yaml, persistentvolumeclaims.yaml,\n\
         backups.yaml, restores.yaml, jobs.yaml, events.yaml: the objects as the API server has them.\n\
         secrets.yaml: the Secrets involved, every value replaced by {}; every other file is\n\
         scrubbed of those values too.\n\
         status.txt: what `kubectl pg status {database}` showed.\n\
         logs/<pod>/<container>.log: the last {POD_LOG_LINES} lines of each container.\n\
         operators/: the operators' log lines that mention this Database or its Backups.\n",
        target.namespace,
        env!("CARGO_PKG_VERSION"),
        now.to_rfc3339(),
        redact::REDACTED,
    );
    if !notes.is_empty() {
        text += "\nNot collected (the API server refused or failed):\n";
        text += &notes.join("\n");
        text += "\n";
    }
    Entry {
        path: "README.txt".into(),
        text,
    }
}

/// Without managedFields, which say nothing a reader of the bundle needs.
fn clean<K: Resource>(mut object: K) -> K {
    object.meta_mut().managed_fields = None;
    object
}

fn cleaned<K: Resource + Clone>(objects: &[K]) -> Vec<K> {
    objects.iter().cloned().map(clean).collect()
}

fn yaml<T: Serialize>(path: &str, objects: &[T]) -> Entry {
    let text = objects
        .iter()
        .map(|o| serde_yaml::to_string(o).unwrap_or_else(|e| format!("# not serialisable: {e}\n")))
        .collect::<Vec<_>>()
        .join("---\n");
    Entry {
        path: path.into(),
        text,
    }
}
