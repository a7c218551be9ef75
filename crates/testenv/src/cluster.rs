//! Starting (or joining) the shared test cluster and handing out clients for it.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use k8s_openapi::{
    api::{
        authentication::v1::{TokenRequest, TokenRequestSpec},
        core::v1::{Node, ServiceAccount},
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, Config,
    api::{ApiResource, ListParams, Patch, PatchParams, PostParams},
    config::{AuthInfo, KubeConfigOptions, Kubeconfig},
    runtime::wait::{await_condition, conditions},
};
use serde::Deserialize;
use tokio::{process::Command, sync::OnceCell};

use crate::{AuditEvent, Operator, TestNamespace, audit};

/// Field manager of the CRDs applied here; the operators never own them.
const FIELD_MANAGER: &str = "testenv";
const CRD_ESTABLISHED_TIMEOUT: Duration = Duration::from_secs(30);

static CLUSTER: OnceCell<Cluster> = OnceCell::const_new();

/// The shared test cluster, started on first use in this process.
///
/// Runs `hack/cluster-up.sh` (which reuses a running cluster, so only the first test run on
/// a machine pays for the start), removes the operators a quick start installed
/// (`hack/stop-quickstart.sh`), and applies every CRD in `deploy/crds/`, waiting until each
/// is Established, so a test can create custom objects at once. Fails, with the script's
/// output, when the cluster cannot start: tests must not pass by skipping.
pub async fn cluster() -> Result<&'static Cluster> {
    CLUSTER.get_or_try_init(Cluster::start).await
}

/// Where the test cluster lives and how to reach it.
///
/// No [`kube::Client`] is kept: a client is bound to the tokio runtime that built it, and
/// every `#[tokio::test]` has its own runtime, so each call makes a fresh one.
pub struct Cluster {
    repo_root: PathBuf,
    state_dir: PathBuf,
    admin_kubeconfig: PathBuf,
    k8s_bin: PathBuf,
    admin_config: Config,
    /// The custom resources of every applied CRD, for namespace dumps and cleanup.
    crds: Vec<CustomResource>,
    operator_kubeconfigs: [OnceCell<PathBuf>; 2],
}

impl Cluster {
    async fn start() -> Result<Cluster> {
        let repo_root = repo_root()?;
        let script = repo_root.join("hack/cluster-up.sh");
        let stdout = run_script(&script, &[], None).await?;
        let admin_kubeconfig = stdout
            .lines()
            .last()
            .and_then(|line| line.strip_prefix("export KUBECONFIG="))
            .map(PathBuf::from)
            .with_context(|| {
                format!(
                    "{} did not end with `export KUBECONFIG=...`; it printed:\n{stdout}",
                    script.display()
                )
            })?;
        let state_dir = admin_kubeconfig
            .parent()
            .context("the admin kubeconfig has no parent directory")?
            .to_path_buf();
        let k8s_bin = read_env_file(&state_dir.join("cluster.env"), "K8S_BIN")?;
        // On a cluster `./justw up` started, its in-cluster operators watch every namespace
        // and would race the tests' own operator processes over every object.
        run_script(
            &repo_root.join("hack/stop-quickstart.sh"),
            &[],
            Some(&state_dir),
        )
        .await?;
        let admin_config = load_config(&admin_kubeconfig).await?;
        let client = Client::try_from(admin_config.clone()).context("building the admin client")?;
        let crds = apply_crds(&client, &repo_root.join("deploy/crds")).await?;
        Ok(Cluster {
            repo_root,
            state_dir,
            admin_kubeconfig,
            k8s_bin: PathBuf::from(k8s_bin),
            admin_config,
            crds,
            operator_kubeconfigs: [OnceCell::const_new(), OnceCell::const_new()],
        })
    }

    /// A client with cluster-admin rights (system:masters), for test set-up and assertions.
    pub fn admin_client(&self) -> Client {
        // The same configuration already built a client in `start`, so this cannot fail.
        Client::try_from(self.admin_config.clone())
            .expect("the admin configuration was validated at start-up")
    }

    /// The admin kubeconfig (`<state>/admin.kubeconfig`), for tools run by tests.
    pub fn admin_kubeconfig(&self) -> &Path {
        &self.admin_kubeconfig
    }

    /// The cluster's state directory: pki, logs, pid files, kubeconfigs, audit log.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// `kubectl` from the cluster's own build, pointed at the admin kubeconfig.
    pub fn kubectl(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(self.k8s_bin.join("kubectl"));
        cmd.env("KUBECONFIG", &self.admin_kubeconfig);
        cmd
    }

    /// A kubeconfig acting as the operator's ServiceAccount, so its RBAC rules are enforced.
    ///
    /// Runs `hack/operator-kubeconfig.sh` once per process: it applies the operator's
    /// namespace, ServiceAccount and RBAC from `deploy/<operator>/` and writes a kubeconfig
    /// with a 24-hour token from the TokenRequest API.
    pub async fn operator_kubeconfig(&self, operator: Operator) -> Result<PathBuf> {
        let cell = &self.operator_kubeconfigs[operator.index()];
        let path = cell
            .get_or_try_init(|| async {
                let script = self.repo_root.join("hack/operator-kubeconfig.sh");
                let stdout = run_script(&script, &[operator.name()], Some(&self.state_dir)).await?;
                let path = stdout.lines().last().map(PathBuf::from).unwrap_or_default();
                if !path.is_file() {
                    bail!(
                        "{} printed no kubeconfig path; it printed:\n{stdout}",
                        script.display()
                    );
                }
                Ok(path)
            })
            .await?;
        Ok(path.clone())
    }

    /// A client acting as the operator's ServiceAccount; see [`Cluster::operator_kubeconfig`].
    pub async fn operator_client(&self, operator: Operator) -> Result<Client> {
        let path = self.operator_kubeconfig(operator).await?;
        let config = load_config(&path).await?;
        Client::try_from(config)
            .with_context(|| format!("building a client from {}", path.display()))
    }

    /// A client acting as any ServiceAccount, with a 10-minute token from the TokenRequest
    /// API: for checking what a given set of RBAC rules allows.
    pub async fn service_account_client(&self, namespace: &str, name: &str) -> Result<Client> {
        let token = self.service_account_token(namespace, name, 600).await?;
        let mut config = self.admin_config.clone();
        // Only the token: the admin's client certificate must not come along.
        config.auth_info = AuthInfo {
            token: Some(token.into()),
            ..AuthInfo::default()
        };
        Client::try_from(config).context("building a ServiceAccount client")
    }

    /// A token of ServiceAccount `namespace/name` from the TokenRequest API, valid for
    /// `seconds`.
    pub async fn service_account_token(
        &self,
        namespace: &str,
        name: &str,
        seconds: i64,
    ) -> Result<String> {
        let accounts: Api<ServiceAccount> = Api::namespaced(self.admin_client(), namespace);
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                expiration_seconds: Some(seconds),
                ..TokenRequestSpec::default()
            }),
            ..TokenRequest::default()
        };
        let response: TokenRequest = accounts
            .create_subresource("token", name, &PostParams::default(), &request)
            .await
            .with_context(|| format!("requesting a token for ServiceAccount {namespace}/{name}"))?;
        response
            .status
            .and_then(|status| status.token)
            .context("the TokenRequest came back without a token")
    }

    /// A fresh, uniquely named namespace `<prefix>-<random>` whose Pods are never scheduled,
    /// node or not (a node selector no node matches, set by the PodNodeSelector admission
    /// plugin): the test plays the kubelet there. See [`TestNamespace`].
    pub async fn namespace(&'static self, prefix: &str) -> Result<TestNamespace> {
        TestNamespace::create(self, prefix, false).await
    }

    /// A fresh namespace for tests whose Pods must really run on the node.
    ///
    /// Fails unless the cluster has a Ready node. The node is not started from here: doing so
    /// may replace a control plane advertised on 127.0.0.1 under other running tests. Run such
    /// tests with `PGOP_NODE=1`, which makes `hack/cluster-up.sh` start it (docs/cluster.md).
    pub async fn node_namespace(&'static self, prefix: &str) -> Result<TestNamespace> {
        let nodes: Api<Node> = Api::all(self.admin_client());
        let nodes = nodes
            .list(&ListParams::default())
            .await
            .context("listing nodes")?;
        if !nodes.items.iter().any(node_is_ready) {
            bail!(
                "this test needs a Ready node and the cluster has {} node(s), none Ready; run the \
                 tests with PGOP_NODE=1 (hack/cluster-up.sh then starts one with hack/node-up.sh)",
                nodes.items.len()
            );
        }
        TestNamespace::create(self, prefix, true).await
    }

    /// The write requests (create, update, patch, delete, deletecollection) that `username`
    /// made since `since`, as the API server's audit log recorded them, oldest first.
    ///
    /// Includes refused ones: check [`AuditEvent::code`]. The API server writes an event just
    /// after answering, so poll briefly when a request that just returned is expected here.
    pub fn audit_writes(&self, username: &str, since: DateTime<Utc>) -> Result<Vec<AuditEvent>> {
        audit::writes(&self.state_dir.join("audit.log"), username, since)
    }

    /// The repository these tests were built from: its `hack/` scripts run the cluster.
    pub(crate) fn repo(&self) -> &Path {
        &self.repo_root
    }

    /// The namespaced custom resources from `deploy/crds/`.
    pub(crate) fn namespaced_custom_resources(&self) -> impl Iterator<Item = &CustomResource> {
        self.crds.iter().filter(|crd| crd.namespaced)
    }
}

/// Whether a Node reports the condition Ready=True.
pub(crate) fn node_is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}

/// A custom resource type the cluster serves, as applied from `deploy/crds/`.
pub(crate) struct CustomResource {
    /// `plural.group`, as kubectl takes it.
    pub name: String,
    pub resource: ApiResource,
    pub namespaced: bool,
}

impl CustomResource {
    fn from_crd(crd: &CustomResourceDefinition) -> Option<CustomResource> {
        let spec = &crd.spec;
        // The storage version; every served version holds the same objects.
        let version = spec
            .versions
            .iter()
            .find(|v| v.storage)
            .or_else(|| spec.versions.first())?;
        Some(CustomResource {
            name: format!("{}.{}", spec.names.plural, spec.group),
            resource: ApiResource {
                group: spec.group.clone(),
                version: version.name.clone(),
                api_version: format!("{}/{}", spec.group, version.name),
                kind: spec.names.kind.clone(),
                plural: spec.names.plural.clone(),
            },
            namespaced: spec.scope == "Namespaced",
        })
    }
}

fn repo_root() -> Result<PathBuf> {
    // testenv lives at <repo>/crates/testenv; this is fixed at compile time, so it holds
    // whichever crate's tests link it.
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.join("../..").canonicalize().with_context(|| {
        format!(
            "locating the repository root from {}",
            manifest_dir.display()
        )
    })
}

/// Runs a hack/ script and returns its stdout; on failure the error carries the end of its
/// stderr, which says what went wrong (the scripts tail the failing component's log there).
pub(crate) async fn run_script(
    script: &Path,
    args: &[&str],
    state_dir: Option<&Path>,
) -> Result<String> {
    let mut cmd = Command::new("bash");
    cmd.arg(script).args(args).stdin(Stdio::null());
    if let Some(dir) = state_dir {
        cmd.env("PGOP_CLUSTER_DIR", dir);
    }
    let output = cmd
        .output()
        .await
        .with_context(|| format!("running {}", script.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        bail!(
            "{} failed ({}); the end of its output:\n{}",
            script.display(),
            output.status,
            tail(&stderr, 60)
        );
    }
    Ok(stdout)
}

pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Reads `KEY=value` from the env file cluster-up.sh writes (bash `%q` quoting, which leaves
/// ordinary paths as they are).
fn read_env_file(path: &Path, key: &str) -> Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .map(|value| value.replace('\\', ""))
        .with_context(|| format!("{} has no {key}", path.display()))
}

async fn load_config(kubeconfig: &Path) -> Result<Config> {
    let file = Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading {}", kubeconfig.display()))?;
    Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("loading {}", kubeconfig.display()))
}

/// Applies every CRD under `dir` (server-side apply, forced: the files are the truth) and
/// waits until each is Established. Returns the resources they define.
async fn apply_crds(client: &Client, dir: &Path) -> Result<Vec<CustomResource>> {
    let mut files = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|entry| entry.map(|e| e.path()))
            .collect::<std::io::Result<Vec<_>>>()
            .with_context(|| format!("listing {}", dir.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    files.retain(|p| {
        p.extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml")
    });
    files.sort();

    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut names = Vec::new();
    let mut resources = Vec::new();
    for file in &files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_yaml::Value::deserialize(document)
                .with_context(|| format!("parsing {}", file.display()))?;
            if value.is_null() {
                continue;
            }
            let crd: CustomResourceDefinition = serde_yaml::from_value(value)
                .with_context(|| format!("{} is not a CustomResourceDefinition", file.display()))?;
            let name = crd
                .metadata
                .name
                .clone()
                .with_context(|| format!("a CRD in {} has no name", file.display()))?;
            api.patch(&name, &params, &Patch::Apply(&crd))
                .await
                .with_context(|| format!("applying CRD {name} from {}", file.display()))?;
            resources.extend(CustomResource::from_crd(&crd));
            names.push(name);
        }
    }
    for name in &names {
        let established = await_condition(api.clone(), name, conditions::is_crd_established());
        match tokio::time::timeout(CRD_ESTABLISHED_TIMEOUT, established).await {
            Ok(result) => {
                result.with_context(|| format!("watching CRD {name}"))?;
            }
            Err(_) => {
                let conditions = api
                    .get_opt(name)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|crd| crd.status)
                    .and_then(|status| status.conditions);
                bail!(
                    "CRD {name} was not Established within {CRD_ESTABLISHED_TIMEOUT:?}; its conditions: {conditions:?}"
                );
            }
        }
    }
    Ok(resources)
}
