//! Loosening the schemas of CRDs for one test, and putting them back even when it panics.
//!
//! With its schema, the API server refuses a Backup or Restore of the wrong shape, so an
//! object the operators' types cannot read exists only where the schema was looser: an older
//! CRD, or one a user edited. To make one, the test swaps the CRD's schema for one that keeps
//! `spec` and `status` as they are given.
//!
//! The swap is a merge patch of `spec.versions`: a merge patch replaces a list whole, so the
//! schema becomes exactly the permissive one whoever manages the CRD's fields (server-side
//! apply would keep the fields other managers, `kubectl` say, co-own). Putting the original
//! back does the same with the schema from `deploy/crds/`, then server-side applies the file
//! as `testenv::cluster()` does, so the CRD ends as every other test expects it.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams},
    runtime::wait::{await_condition, conditions},
};
use serde_json::{Value, json};
use testenv::Cluster;

/// The field manager `testenv::cluster()` applies the CRDs with.
const CRD_MANAGER: &str = "testenv";
/// How long a schema change may take to reach the API server's handlers: it swaps them
/// asynchronously, after the CRD is written.
const SCHEMA_IN_EFFECT: Duration = Duration::from_secs(30);
/// Where dry-run probes are created: it always exists, and nothing is stored.
const PROBE_NAMESPACE: &str = "default";

/// One CRD whose schema is loosened, and an object only the loose schema accepts.
pub struct Loosened {
    /// The CRD as `deploy/crds/` has it.
    original: CustomResourceDefinition,
    /// An object of the CRD's kind that its real schema refuses.
    probe: Value,
}

impl Loosened {
    /// The CRD `deploy/crds/<name>.yaml`, to be loosened so that `probe` is accepted.
    pub fn new(name: &str, probe: Value) -> Result<Loosened> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/crds")
            .join(format!("{name}.yaml"));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let original = serde_yaml::from_str(&text)
            .with_context(|| format!("{} is not a CustomResourceDefinition", path.display()))?;
        Ok(Loosened { original, probe })
    }

    fn name(&self) -> &str {
        self.original.metadata.name.as_deref().unwrap_or_default()
    }
}

/// CRDs with permissive schemas until [`PermissiveSchemas::restore`] or drop.
pub struct PermissiveSchemas {
    cluster: &'static Cluster,
    crds: Vec<Loosened>,
    restored: bool,
}

impl PermissiveSchemas {
    /// Loosens every CRD of `crds` and returns once the API server accepts their probes.
    pub async fn install(cluster: &'static Cluster, crds: Vec<Loosened>) -> Result<Self> {
        // Restored on drop from here on, even when loosening fails half-way.
        let schemas = PermissiveSchemas {
            cluster,
            crds,
            restored: false,
        };
        let client = cluster.admin_client();
        for crd in &schemas.crds {
            let mut versions = serde_json::to_value(&crd.original.spec.versions)?;
            for version in versions.as_array_mut().into_iter().flatten() {
                version["schema"] = json!({"openAPIV3Schema": permissive_schema()});
            }
            let patch = json!({"spec": {"versions": versions}});
            crds_api(&client)
                .patch(crd.name(), &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .with_context(|| format!("loosening the schema of {}", crd.name()))?;
            wait_until_probe(&client, crd, true).await?;
        }
        Ok(schemas)
    }

    /// Puts the original CRDs back and checks that their schemas refuse the probes again.
    pub async fn restore(mut self) -> Result<()> {
        self.restored = true;
        restore(&self.cluster.admin_client(), &self.crds).await
    }
}

impl Drop for PermissiveSchemas {
    /// A panicking test still leaves the CRDs as it found them. The test's runtime cannot be
    /// blocked on from here, so the restore runs on a runtime of its own, in a thread.
    fn drop(&mut self) {
        if self.restored {
            return;
        }
        let cluster = self.cluster;
        let crds = std::mem::take(&mut self.crds);
        let restored = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting a runtime to restore the CRDs")?;
            runtime.block_on(async { restore(&cluster.admin_client(), &crds).await })
        })
        .join();
        match restored {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!(
                "RESTORING THE CRDs FAILED: {e:#}\nReapply them: kubectl apply --server-side \
                 --force-conflicts -f deploy/crds"
            ),
            Err(_) => eprintln!("restoring the CRDs panicked; reapply deploy/crds"),
        }
    }
}

/// A schema that accepts any `spec` and `status`, stored as given.
fn permissive_schema() -> Value {
    let anything = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    json!({"type": "object", "properties": {"spec": anything, "status": anything}})
}

async fn restore(client: &Client, crds: &[Loosened]) -> Result<()> {
    let api = crds_api(client);
    for crd in crds {
        let name = crd.name();
        let versions = serde_json::to_value(&crd.original.spec.versions)?;
        let patch = json!({"spec": {"versions": versions}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .with_context(|| format!("putting the schema of {name} back"))?;
        api.patch(
            name,
            &PatchParams::apply(CRD_MANAGER).force(),
            &Patch::Apply(&crd.original),
        )
        .await
        .with_context(|| format!("reapplying {name}"))?;
        let established = await_condition(api.clone(), name, conditions::is_crd_established());
        tokio::time::timeout(SCHEMA_IN_EFFECT, established)
            .await
            .with_context(|| format!("{name} was not Established within {SCHEMA_IN_EFFECT:?}"))?
            .with_context(|| format!("watching {name}"))?;
        wait_until_probe(client, crd, false).await?;
    }
    Ok(())
}

/// Waits until the API server's handler for `crd` uses the schema just written: its probe
/// is `accepted` (loose schema) or refused (original), as a dry-run create shows.
async fn wait_until_probe(client: &Client, crd: &Loosened, accepted: bool) -> Result<()> {
    let resource = ApiResource {
        group: crd.original.spec.group.clone(),
        version: crd.original.spec.versions[0].name.clone(),
        api_version: format!(
            "{}/{}",
            crd.original.spec.group, crd.original.spec.versions[0].name
        ),
        kind: crd.original.spec.names.kind.clone(),
        plural: crd.original.spec.names.plural.clone(),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), PROBE_NAMESPACE, &resource);
    let probe: DynamicObject = serde_json::from_value(crd.probe.clone())?;
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let deadline = tokio::time::Instant::now() + SCHEMA_IN_EFFECT;
    loop {
        let outcome = match api.create(&dry_run, &probe).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 422 => Ok(false),
            Err(e) => Err(e),
        };
        match outcome.with_context(|| format!("probing the schema of {}", crd.name()))? {
            now if now == accepted => return Ok(()),
            _ if tokio::time::Instant::now() >= deadline => bail!(
                "{SCHEMA_IN_EFFECT:?} after the change, the schema of {} still {} {}",
                crd.name(),
                if accepted { "refuses" } else { "accepts" },
                crd.probe
            ),
            // There is nothing to watch for a handler swap; a short poll, bounded above.
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

fn crds_api(client: &Client) -> Api<CustomResourceDefinition> {
    Api::all(client.clone())
}
