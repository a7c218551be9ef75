//! One temporary namespace per test, so tests sharing the cluster do not see each other.

use std::{
    collections::hash_map::RandomState,
    hash::{BuildHasher, Hasher},
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, DynamicObject, ListParams, ObjectMeta, PostParams},
};

use crate::{Cluster, kubelet::NO_KUBELET_NODE};

/// How long [`TestNamespace::cleanup`] gives the operators to finish their finalizers. A
/// physical Backup's goes only once its WAL archiver's Pod is gone, which may take the
/// archiver's whole 60 s grace period when the store fails its last uploads (a test's S3
/// server answering 500), and then a Job drops the slot.
const FINALIZE_TIMEOUT: Duration = Duration::from_secs(120);

/// Set to keep the namespaces of failed tests for inspection instead of deleting them.
const KEEP_ENV: &str = "PGOP_KEEP_NAMESPACES";
/// Label on every test namespace, so leftovers can be found with a selector.
const LABEL: &str = "testenv.pg-operators.dev/test";
/// The PodNodeSelector admission plugin gives every Pod of a namespace with this annotation
/// the node selector in its value. No node carries that label, so Pods there are never
/// scheduled: tests that play the kubelet own their Pods' status even when a node runs.
const NODE_SELECTOR_ANNOTATION: &str = "scheduler.alpha.kubernetes.io/node-selector";
const NO_NODE_SELECTOR: &str = "testenv.pg-operators.dev/no-node=true";

/// A namespace owned by one test.
///
/// [`TestNamespace::cleanup`] deletes it and waits for the operators' finalizers. When dropped
/// without cleanup (a failed assertion unwinding) it prints [`TestNamespace::dump`] to the
/// test's output and deletes the namespace, removing the finalizers of custom objects (their
/// operators are usually gone by then) so the shared cluster does not collect namespaces stuck
/// in Terminating. `PGOP_KEEP_NAMESPACES` keeps failed tests' namespaces instead.
pub struct TestNamespace {
    name: String,
    cluster: &'static Cluster,
    cleaned_up: bool,
}

impl TestNamespace {
    pub(crate) async fn create(
        cluster: &'static Cluster,
        prefix: &str,
        on_node: bool,
    ) -> Result<TestNamespace> {
        let api: Api<Namespace> = Api::all(cluster.admin_client());
        let prefix = sanitize(prefix);
        // A few tries in case a random suffix collides with a namespace still terminating.
        let mut last_error = None;
        for _ in 0..5 {
            let name = format!("{prefix}-{}", random_suffix());
            let namespace = Namespace {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    labels: Some([(LABEL.to_string(), prefix.clone())].into()),
                    annotations: (!on_node).then(|| {
                        [(
                            NODE_SELECTOR_ANNOTATION.to_string(),
                            NO_NODE_SELECTOR.to_string(),
                        )]
                        .into()
                    }),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            };
            match api.create(&PostParams::default(), &namespace).await {
                Ok(_) => {
                    return Ok(TestNamespace {
                        name,
                        cluster,
                        cleaned_up: false,
                    });
                }
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    last_error = Some(kube::Error::Api(status))
                }
                Err(e) => return Err(e).with_context(|| format!("creating namespace {name}")),
            }
        }
        Err(last_error.expect("the loop ran")).context("creating a test namespace")
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Deletes the namespace's custom objects (Databases, Backups, ...), waits until the
    /// operators' finalizers let them go, then deletes the namespace: call it while the test's
    /// operators still run. Deleting them here rather than through the namespace controller
    /// saves its ten-second retry. Fails, after removing the leftover finalizers, when that
    /// takes longer than a minute. Does not wait for Pods and claims (the kubelet's business),
    /// but removes the Pods the test played the kubelet for (see [`Self::release_played_pods`]).
    pub async fn cleanup(mut self) -> Result<()> {
        self.cleaned_up = true;
        let client = self.cluster.admin_client();
        let custom_objects = self.delete_custom_objects(&client).await;
        // The namespace goes in any case, so a failed cleanup leaves nothing behind either.
        let namespaces: Api<Namespace> = Api::all(client);
        let deleted = match namespaces
            .delete(&self.name, &DeleteParams::background())
            .await
        {
            Ok(_) => custom_objects,
            Err(kube::Error::Api(status)) if status.code == 404 => custom_objects,
            Err(e) => Err(e).with_context(|| format!("deleting namespace {}", self.name)),
        };
        self.release_played_pods();
        deleted
    }

    /// Force-deletes the Pods bound to the kubelet-less Node ([`NO_KUBELET_NODE`]): no kubelet
    /// will ever confirm that they stopped, so without this they, and with them the namespace,
    /// would stay Terminating for ever. Blocking (kubectl): it runs from Drop too.
    fn release_played_pods(&self) {
        let _ = self
            .cluster
            .kubectl()
            .args(["delete", "pods", "--namespace", &self.name])
            .arg(format!("--field-selector=spec.nodeName={NO_KUBELET_NODE}"))
            .args(["--grace-period=0", "--force", "--wait=false"])
            .output();
    }

    async fn delete_custom_objects(&self, client: &Client) -> Result<()> {
        let apis: Vec<_> = self
            .cluster
            .namespaced_custom_resources()
            .map(|crd| {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(client.clone(), &self.name, &crd.resource);
                (crd, api)
            })
            .collect();
        for (crd, api) in &apis {
            api.delete_collection(&DeleteParams::background(), &ListParams::default())
                .await
                .with_context(|| format!("deleting the {} in {}", crd.name, self.name))?;
        }
        let deadline = tokio::time::Instant::now() + FINALIZE_TIMEOUT;
        loop {
            let mut left = Vec::new();
            for (crd, api) in &apis {
                let objects = api
                    .list(&ListParams::default())
                    .await
                    .with_context(|| format!("listing {} in {}", crd.name, self.name))?;
                left.extend(objects.items.into_iter().map(|o| {
                    let finalizers = o.finalizers().to_vec();
                    format!(
                        "{} {} (finalizers {finalizers:?})",
                        crd.resource.kind,
                        o.name_any()
                    )
                }));
            }
            if left.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                let dump = self.dump();
                self.remove_finalizers();
                bail!(
                    "{FINALIZE_TIMEOUT:?} after their deletion, objects in {} were still there: \
                     {}. Their finalizers have now been removed. Were the operators still \
                     running?\n{dump}",
                    self.name,
                    left.join(", ")
                );
            }
            // A short poll, bounded by the deadline: simpler than one watch per resource type.
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Clears the finalizers of every custom object in the namespace, so its deletion can
    /// finish without the operators. Blocking (kubectl): it runs from Drop.
    fn remove_finalizers(&self) {
        for crd in self.cluster.namespaced_custom_resources() {
            let Ok(listed) = self
                .cluster
                .kubectl()
                .args(["get", &crd.name, "--namespace", &self.name, "-o", "name"])
                .output()
            else {
                continue;
            };
            for object in String::from_utf8_lossy(&listed.stdout).lines() {
                let _ = self
                    .cluster
                    .kubectl()
                    .args(["patch", object, "--namespace", &self.name, "--type=merge"])
                    .args(["-p", r#"{"metadata":{"finalizers":null}}"#])
                    .output();
            }
        }
    }

    /// Everything in the namespace, for failure messages: workloads, claims, config maps and
    /// secrets (names only), the custom objects as YAML, and the events in order.
    ///
    /// Blocks while kubectl runs; it is meant for the failure path.
    pub fn dump(&self) -> String {
        let ns = self.name.as_str();
        let mut out = format!("===== namespace {ns} =====\n");
        let mut section = |title: &str, args: &[&str]| {
            out.push_str(&format!("----- {title} -----\n"));
            match self
                .cluster
                .kubectl()
                .args(args)
                .args(["--namespace", ns])
                .output()
            {
                Ok(o) => {
                    out.push_str(&String::from_utf8_lossy(&o.stdout));
                    out.push_str(&String::from_utf8_lossy(&o.stderr));
                }
                Err(e) => out.push_str(&format!("kubectl failed to run: {e}\n")),
            }
        };
        section(
            "objects",
            &[
                "get",
                "all,pvc,configmaps,secrets,serviceaccounts,roles,rolebindings",
                "-o",
                "wide",
            ],
        );
        for crd in self.cluster.namespaced_custom_resources() {
            section(
                &crd.name,
                &[
                    "get",
                    &crd.name,
                    "-o",
                    "yaml",
                    "--show-managed-fields=false",
                ],
            );
        }
        section(
            "events",
            &["get", "events", "--sort-by=.metadata.creationTimestamp"],
        );
        out
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if self.cleaned_up {
            return;
        }
        if std::thread::panicking() {
            // Printed from the test's thread, so the harness shows it with the failure.
            eprintln!("{}", self.dump());
            if std::env::var_os(KEEP_ENV).is_some() {
                eprintln!(
                    "testenv: keeping namespace {} ({KEEP_ENV} is set)",
                    self.name
                );
                return;
            }
        }
        // Blocking kubectl, not the async client: Drop cannot await, and the test's runtime
        // may already be shutting down.
        let _ = self
            .cluster
            .kubectl()
            .args([
                "delete",
                "namespace",
                &self.name,
                "--wait=false",
                "--ignore-not-found",
            ])
            .output();
        self.remove_finalizers();
        self.release_played_pods();
    }
}

/// Lower-case alphanumerics and dashes, short enough to leave room for the suffix.
fn sanitize(prefix: &str) -> String {
    let cleaned: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(50)
        .collect();
    let trimmed = cleaned.trim_matches('-');
    if trimmed.is_empty() {
        "test".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Six random base-36 characters. `RandomState` is seeded randomly per process, and the
/// counter makes calls within one process differ.
fn random_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let mut n = hasher.finish();
    (0..6)
        .map(|_| {
            let digit = (n % 36) as u32;
            n /= 36;
            char::from_digit(digit, 36).expect("below 36")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_become_valid_namespace_names() {
        assert_eq!(sanitize("Backup_Waits.For DB"), "backup-waits-for-db");
        assert_eq!(sanitize("--"), "test");
        assert_eq!(sanitize(&"x".repeat(80)).len(), 50);
    }

    #[test]
    fn suffixes_differ() {
        let a = random_suffix();
        let b = random_suffix();
        assert_eq!(a.len(), 6);
        assert_ne!(a, b);
    }
}
