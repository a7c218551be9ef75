//! Restarting the control plane under running tests: the fault every client of a real
//! cluster meets on an upgrade or a crash of etcd or the API server.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::{
    api::{coordination::v1::Lease, core::v1::Node},
    jiff::Timestamp,
};
use kube::{Api, api::ListParams};

use crate::{
    Cluster,
    cluster::{node_is_ready, run_script},
    kubelet::NO_KUBELET_NODE,
};

/// How long the real node's kubelet may take to report back after a restart: it retries
/// with backoff, and renews its Lease every 10 seconds once connected.
const KUBELET_BACK: Duration = Duration::from_secs(120);

/// A process of the control plane that [`Cluster::restart`] can restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    Etcd,
    ApiServer,
}

impl Component {
    /// Its name in `hack/cluster-up.sh`: pid file, log file.
    pub fn name(self) -> &'static str {
        match self {
            Component::Etcd => "etcd",
            Component::ApiServer => "kube-apiserver",
        }
    }
}

impl Cluster {
    /// Stops `component` and starts it again with the same command line and environment
    /// (`hack/restart-component.sh`), then waits until the API server is ready and every
    /// real node's kubelet has renewed its Lease since and reports Ready, so that whatever
    /// runs next finds a whole cluster.
    ///
    /// Every other client of the cluster, other tests included, loses its connections while
    /// this runs: call it only from a test binary of its own.
    pub async fn restart(&self, component: Component) -> Result<()> {
        let before = Timestamp::now();
        let script = self.repo().join("hack/restart-component.sh");
        run_script(&script, &[component.name()], Some(self.state_dir())).await?;
        self.wait_for_kubelets_since(before).await
    }

    async fn wait_for_kubelets_since(&self, since: Timestamp) -> Result<()> {
        let client = self.admin_client();
        let nodes: Api<Node> = Api::all(client.clone());
        let leases: Api<Lease> = Api::namespaced(client, "kube-node-lease");
        let deadline = tokio::time::Instant::now() + KUBELET_BACK;
        loop {
            let mut waiting = Vec::new();
            for node in nodes.list(&ListParams::default()).await? {
                let name = node.metadata.name.clone().unwrap_or_default();
                // The tests' kubelet-less Node has no kubelet to come back.
                if name == NO_KUBELET_NODE {
                    continue;
                }
                let renewed = leases
                    .get_opt(&name)
                    .await
                    .with_context(|| format!("reading the Lease of node {name}"))?
                    .and_then(|l| l.spec?.renew_time)
                    .is_some_and(|t| t.0 > since);
                if !renewed || !node_is_ready(&node) {
                    waiting.push(name);
                }
            }
            if waiting.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("node(s) {waiting:?} did not report back Ready within {KUBELET_BACK:?}");
            }
            // Node status has no event for "renewed since"; a Lease is renewed every 10 s.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
